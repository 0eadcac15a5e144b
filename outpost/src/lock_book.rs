//! The (source, user) pairs the core's brute-force policy has locked, as pushed over the control
//! channel (`ChangeItem::LockChanged`). A directory outpost's credential check consults it before
//! answering from its warm-credential cache: a locked pair always goes to the core (which refuses
//! it) and, with the core unreachable, is refused outright, until the lock ends by the clock.

use redoubt_outpost_proto::clock::SharedClock;
use std::collections::HashMap;
use std::sync::Mutex;

/// Above this many pairs, ended locks are swept on every insert.
const SWEEP_ABOVE: usize = 10_000;

/// One pushed lock; an empty `username` locks every user at the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairLock {
    pub username: String,
    pub source_address: String,
    /// Unix seconds at which the pair may try again.
    pub locked_until: i64,
}

/// Locked pairs, with when each lock ends.
pub struct LockBook {
    clock: SharedClock,
    locks: Mutex<HashMap<(String, String), i64>>,
}

impl std::fmt::Debug for LockBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockBook")
            .field("pairs", &self.len())
            .finish_non_exhaustive()
    }
}

impl LockBook {
    /// An empty book reading time from `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), i64>> {
        self.locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes `locks` (a lock that already ended is ignored; a longer one wins).
    pub fn record(&self, locks: &[PairLock]) {
        let now = self.clock.now();
        let mut book = self.guard();
        for lock in locks.iter().filter(|l| l.locked_until > now) {
            let until = book
                .entry((lock.username.clone(), lock.source_address.clone()))
                .or_insert(lock.locked_until);
            *until = (*until).max(lock.locked_until);
        }
        if book.len() > SWEEP_ABOVE {
            book.retain(|_, until| *until > now);
        }
    }

    /// Whether `username` at `source_address` is locked now, as a pair or because every user
    /// at that source is.
    pub fn is_locked(&self, username: &str, source_address: &str) -> bool {
        let now = self.clock.now();
        let mut book = self.guard();
        [username, ""].into_iter().any(|user| {
            let key = (user.to_owned(), source_address.to_owned());
            match book.get(&key) {
                Some(until) if *until > now => true,
                Some(_) => {
                    book.remove(&key);
                    false
                }
                None => false,
            }
        })
    }

    /// Pairs held (some may have ended).
    pub fn len(&self) -> usize {
        self.guard().len()
    }

    /// Whether no pair is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::clock::ManualClock;
    use std::sync::Arc;

    fn lock(user: &str, source: &str, until: i64) -> PairLock {
        PairLock {
            username: user.into(),
            source_address: source.into(),
            locked_until: until,
        }
    }

    #[test]
    fn locks_hold_per_pair_until_they_end() {
        let clock = Arc::new(ManualClock::new(1000));
        let book = LockBook::new(clock.clone());
        book.record(&[
            lock("alice", "10.0.0.1", 1060),
            lock("bob", "10.0.0.1", 999),
        ]);
        assert!(book.is_locked("alice", "10.0.0.1"));
        assert!(!book.is_locked("alice", "10.0.0.2"), "another source");
        assert!(
            !book.is_locked("bob", "10.0.0.1"),
            "an ended lock is ignored"
        );
        book.record(&[lock("alice", "10.0.0.1", 1030)]);
        clock.advance(59);
        assert!(book.is_locked("alice", "10.0.0.1"), "the longer lock wins");
        clock.advance(1);
        assert!(!book.is_locked("alice", "10.0.0.1"));
        assert!(book.is_empty());
        book.record(&[lock("", "10.0.0.9", 1100)]);
        assert!(book.is_locked("carol", "10.0.0.9"), "a whole source");
        assert!(!book.is_locked("carol", "10.0.0.8"));
    }
}
