//! The live connections of this outpost instance: who holds each one, so a pushed revocation,
//! a lease the core refuses, an endpoint removed or the outpost stopping ends exactly the right
//! connections within a second, and the leases of the rest are renewed.

use redoubt_outpost_proto::rac::EndReason;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// Who holds a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub provider_id: i64,
    pub endpoint: String,
    pub user_id: i64,
    pub sid: String,
    pub auth_time_ms: i64,
}

struct Entry {
    holder: Holder,
    end: watch::Sender<Option<EndReason>>,
}

/// The live connections, by connection id.
#[derive(Default)]
pub struct Registry {
    live: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("live", &self.len())
            .finish()
    }
}

impl Registry {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a connection; the receiver turns `Some(reason)` when it must end.
    pub fn insert(&self, id: &str, holder: Holder) -> watch::Receiver<Option<EndReason>> {
        let (end, receiver) = watch::channel(None);
        self.live().insert(id.to_owned(), Entry { holder, end });
        receiver
    }

    /// Removes a connection that ended.
    pub fn remove(&self, id: &str) {
        self.live().remove(id);
    }

    /// The ids of every live connection.
    pub fn ids(&self) -> Vec<String> {
        self.live().keys().cloned().collect()
    }

    /// How many are live.
    pub fn len(&self) -> usize {
        self.live().len()
    }

    /// Whether none is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many connections `user_id` holds here.
    pub fn held_by(&self, user_id: i64) -> usize {
        self.live()
            .values()
            .filter(|e| e.holder.user_id == user_id)
            .count()
    }

    /// Ends connection `id` with `reason` (no-op when it is gone or already ending).
    pub fn end(&self, id: &str, reason: EndReason) {
        if let Some(entry) = self.live().get(id) {
            entry.end.send_if_modified(|current| {
                let fresh = current.is_none();
                if fresh {
                    *current = Some(reason);
                }
                fresh
            });
        }
    }

    /// Ends every connection whose holder `matches`, with `reason`; returns how many.
    pub fn end_where(&self, reason: EndReason, matches: impl Fn(&Holder) -> bool) -> usize {
        let live = self.live();
        let mut ended = 0;
        for entry in live.values() {
            if matches(&entry.holder)
                && entry.end.send_if_modified(|current| {
                    let fresh = current.is_none();
                    if fresh {
                        *current = Some(reason);
                    }
                    fresh
                })
            {
                ended += 1;
            }
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(user_id: i64, endpoint: &str) -> Holder {
        Holder {
            provider_id: 1,
            endpoint: endpoint.into(),
            user_id,
            sid: format!("sid-{user_id}"),
            auth_time_ms: 5,
        }
    }

    #[test]
    fn ends_only_the_matching_connections_once() {
        let registry = Registry::default();
        let a = registry.insert("a", holder(1, "desk"));
        let b = registry.insert("b", holder(2, "desk"));
        let c = registry.insert("c", holder(1, "lab"));
        assert_eq!(registry.held_by(1), 2);
        assert_eq!(
            registry.end_where(EndReason::Revoked, |h| h.user_id == 1),
            2
        );
        assert_eq!(*a.borrow(), Some(EndReason::Revoked));
        assert_eq!(*b.borrow(), None);
        assert_eq!(*c.borrow(), Some(EndReason::Revoked));
        // A second reason does not replace the first.
        registry.end("a", EndReason::Idle);
        assert_eq!(*a.borrow(), Some(EndReason::Revoked));
        assert_eq!(
            registry.end_where(EndReason::Revoked, |h| h.user_id == 1),
            0
        );
        registry.remove("a");
        let mut ids = registry.ids();
        ids.sort();
        assert_eq!(ids, ["b", "c"]);
    }
}
