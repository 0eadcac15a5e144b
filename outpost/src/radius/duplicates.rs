//! Retransmissions: a NAS that gets no answer in time sends the same request again (same
//! source, identifier and Request Authenticator). The first copy is answered once; copies that
//! arrive while it is being answered are dropped, and copies after it get the same reply bytes
//! again, without authenticating twice (RFC 5080 section 2.2.2). The reply's age counts from
//! the request's arrival.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reply is kept for retransmissions.
pub const REPLY_TTL: Duration = Duration::from_secs(5);
/// Most requests one shard remembers per generation; beyond it new requests are answered but not
/// remembered (a retransmission is then answered afresh), so memory stays bounded at any rate.
const MAX_PER_GENERATION: usize = 8_192;
/// Independent shards, so concurrent requests rarely wait for one another.
const SHARDS: usize = 16;

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

impl Slot {
    fn at(&self) -> Instant {
        match self {
            Self::InProgress(at) | Self::Answered(at, _) => *at,
        }
    }
}

/// Two generations of entries: new ones go into `current`; every [`REPLY_TTL`] `current` becomes
/// `previous` and the old `previous` is dropped whole. No scans, and every entry lives at least
/// one TTL (the lookup checks the exact age).
struct Generations {
    current: HashMap<Key, Slot>,
    previous: HashMap<Key, Slot>,
    started: Instant,
}

impl Generations {
    fn rotate_if_due(&mut self, now: Instant) {
        let age = now.duration_since(self.started);
        if age >= REPLY_TTL {
            self.previous = if age >= REPLY_TTL * 2 {
                HashMap::new()
            } else {
                std::mem::take(&mut self.current)
            };
            self.current.clear();
            self.started = now;
        }
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut Slot> {
        match self.current.get_mut(key) {
            Some(slot) => Some(slot),
            None => self.previous.get_mut(key),
        }
    }
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
pub struct ReplyCache {
    shards: Vec<Mutex<Generations>>,
}

impl Default for ReplyCache {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Generations {
                        current: HashMap::new(),
                        previous: HashMap::new(),
                        started: now,
                    })
                })
                .collect(),
        }
    }
}

impl ReplyCache {
    fn shard(&self, key: &Key) -> std::sync::MutexGuard<'_, Generations> {
        let index = (usize::from(key.identifier)
            ^ usize::from(key.source.port())
            ^ usize::from(key.authenticator[0]))
            % SHARDS;
        self.shards[index]
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
        let mut shard = self.shard(&key);
        shard.rotate_if_due(now);
        if let Some(slot) = shard.get_mut(&key)
            && now.duration_since(slot.at()) < REPLY_TTL
        {
            return match slot {
                Slot::InProgress(_) => Seen::InProgress,
                Slot::Answered(_, reply) => Seen::Answered(reply.clone()),
            };
        }
        if shard.current.len() < MAX_PER_GENERATION {
            shard.previous.remove(&key);
            shard.current.insert(key, Slot::InProgress(now));
        }
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
        let mut shard = self.shard(&key);
        match reply {
            Some(bytes) => {
                if let Some(slot) = shard.get_mut(&key) {
                    *slot = Slot::Answered(slot.at(), bytes.to_vec());
                }
            }
            None => {
                shard.current.remove(&key);
                shard.previous.remove(&key);
            }
        }
    }

    /// Entries held (some may be expired but not yet rotated out).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                s.current.len() + s.previous.len()
            })
            .sum()
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
