//! Retransmissions: a NAS that gets no answer in time sends the same request again (same
//! source, identifier and Request Authenticator). The first copy is answered once; copies that
//! arrive while it is being answered are dropped, and copies after it get the same reply bytes
//! again, without authenticating twice (RFC 5080 section 2.2.2).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reply is kept for retransmissions.
pub const REPLY_TTL: Duration = Duration::from_secs(5);
/// Most requests remembered; beyond it, expired ones are pruned and, if still full, new
/// requests are not remembered (they are still answered).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: SocketAddr,
    identifier: u8,
    authenticator: [u8; 16],
}

enum Slot {
    InProgress(Instant),
    Answered(Instant, Vec<u8>),
}

/// What to do with an arriving request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// First copy: answer it, then [`ReplyCache::finish`].
    New,
    /// A copy of a request still being answered: drop it.
    InProgress,
    /// A copy of an answered request: send these bytes again.
    Answered(Vec<u8>),
}

/// The cache of recent requests and their replies.
#[derive(Default)]
pub struct ReplyCache {
    slots: Mutex<HashMap<Key, Slot>>,
}

impl ReplyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers an arriving request.
    pub fn arrive(&self, source: SocketAddr, identifier: u8, authenticator: [u8; 16]) -> Seen {
        let now = Instant::now();
        let key = Key {
            source,
            identifier,
            authenticator,
        };
        let mut slots = self.lock();
        match slots.get(&key) {
            Some(Slot::InProgress(at)) if now.duration_since(*at) < REPLY_TTL => {
                return Seen::InProgress;
            }
            Some(Slot::Answered(at, reply)) if now.duration_since(*at) < REPLY_TTL => {
                return Seen::Answered(reply.clone());
            }
            _ => {}
        }
        if slots.len() >= MAX_ENTRIES {
            slots.retain(|_, slot| match slot {
                Slot::InProgress(at) | Slot::Answered(at, _) => now.duration_since(*at) < REPLY_TTL,
            });
            if slots.len() >= MAX_ENTRIES {
                return Seen::New;
            }
        }
        slots.insert(key, Slot::InProgress(now));
        Seen::New
    }

    /// Records the reply sent (`None`: the request was dropped, forget it).
    pub fn finish(
        &self,
        source: SocketAddr,
        identifier: u8,
        authenticator: [u8; 16],
        reply: Option<&[u8]>,
    ) {
        let key = Key {
            source,
            identifier,
            authenticator,
        };
        let mut slots = self.lock();
        match reply {
            Some(bytes) => {
                if let Some(slot) = slots.get_mut(&key) {
                    *slot = Slot::Answered(Instant::now(), bytes.to_vec());
                }
            }
            None => {
                slots.remove(&key);
            }
        }
    }

    /// Drops expired entries; called now and then.
    pub fn prune(&self) {
        let now = Instant::now();
        self.lock().retain(|_, slot| match slot {
            Slot::InProgress(at) | Slot::Answered(at, _) => now.duration_since(*at) < REPLY_TTL,
        });
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_wait_then_get_the_same_reply() {
        let cache = ReplyCache::default();
        let nas: SocketAddr = "192.0.2.1:40000".parse().expect("addr");
        assert_eq!(cache.arrive(nas, 1, [1; 16]), Seen::New);
        assert_eq!(cache.arrive(nas, 1, [1; 16]), Seen::InProgress);
        assert_eq!(
            cache.arrive(nas, 1, [2; 16]),
            Seen::New,
            "new authenticator"
        );
        let other: SocketAddr = "192.0.2.1:40001".parse().expect("addr");
        assert_eq!(cache.arrive(other, 1, [1; 16]), Seen::New, "other port");
        cache.finish(nas, 1, [1; 16], Some(b"reply"));
        assert_eq!(
            cache.arrive(nas, 1, [1; 16]),
            Seen::Answered(b"reply".to_vec())
        );
        cache.finish(nas, 1, [2; 16], None);
        assert_eq!(
            cache.arrive(nas, 1, [2; 16]),
            Seen::New,
            "dropped is forgotten"
        );
        assert_eq!(cache.len(), 3);
    }
}
