//! A per-thread memo of session cookies already opened, so a browser's next requests skip the
//! decryption and parsing. Thread-local, so the hot path takes no lock; bounded; emptied whenever
//! the configuration revision changes (keys may have been withdrawn). Only successfully opened
//! cookies are remembered, keyed by provider and the exact cookie text; expiry and revocations
//! are checked again on every use ([`super::decide::still_good`]).

use super::session::Session;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Most cookies remembered per thread.
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
struct Memo {
    revision: i64,
    entries: HashMap<String, (i64, Arc<Session>)>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// The session `cookie` opened to for `provider_id` at `revision`, if this thread saw it.
pub fn recall(revision: i64, provider_id: i64, cookie: &str) -> Option<Arc<Session>> {
    MEMO.with(|memo| {
        let memo = memo.borrow();
        if memo.revision != revision {
            return None;
        }
        match memo.entries.get(cookie) {
            Some((provider, session)) if *provider == provider_id => Some(session.clone()),
            _ => None,
        }
    })
}

/// Remembers that `cookie` opened to `session` for `provider_id` at `revision`.
pub fn remember(revision: i64, provider_id: i64, cookie: &str, session: Arc<Session>) {
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.revision != revision {
            memo.entries.clear();
            memo.revision = revision;
        }
        if memo.entries.len() >= MAX_ENTRIES {
            memo.entries.clear();
        }
        memo.entries
            .insert(cookie.to_owned(), (provider_id, session));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::session::tests::session;

    #[test]
    fn remembers_per_provider_and_revision() {
        let s = Arc::new(session(100));
        remember(1, 3, "cookie", s.clone());
        assert_eq!(recall(1, 3, "cookie"), Some(s.clone()));
        assert_eq!(recall(1, 4, "cookie"), None, "another provider");
        assert_eq!(recall(2, 3, "cookie"), None, "another revision");
        remember(2, 3, "other", s.clone());
        assert_eq!(recall(2, 3, "cookie"), None, "emptied on a new revision");
        for i in 0..(MAX_ENTRIES + 1) {
            remember(2, 3, &i.to_string(), s.clone());
        }
        MEMO.with(|m| assert!(m.borrow().entries.len() <= MAX_ENTRIES));
    }
}
