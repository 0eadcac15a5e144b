//! The per-source count of unproven connections: connections that have not yet sent a complete
//! request (HTTP) or bound (LDAP). A source is an IPv4 address or an IPv6 /64 (one host usually
//! holds a whole /64). Pure bookkeeping under a mutex; [`Unproven`] gives its slot back when it
//! is proven or dropped, whichever comes first.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The key connections are counted under: the IPv4 address (IPv4-mapped IPv6 included), or the
/// /64 of an IPv6 address.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Counts of unproven connections per source, with a cap.
#[derive(Debug, Default)]
pub struct SourceCounts {
    counts: HashMap<IpAddr, usize>,
}

impl SourceCounts {
    /// Takes a slot for `key` unless it already holds `cap`.
    pub fn admit(&mut self, key: IpAddr, cap: usize) -> bool {
        let count = self.counts.entry(key).or_insert(0);
        if *count >= cap {
            if *count == 0 {
                self.counts.remove(&key);
            }
            return false;
        }
        *count += 1;
        true
    }

    /// Gives a slot of `key` back; sources with none left are forgotten.
    pub fn release(&mut self, key: IpAddr) {
        if let Some(count) = self.counts.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.counts.remove(&key);
            }
        }
    }

    /// Slots `key` holds.
    pub fn held(&self, key: IpAddr) -> usize {
        self.counts.get(&key).copied().unwrap_or(0)
    }

    /// Sources holding at least one slot.
    pub fn sources(&self) -> usize {
        self.counts.len()
    }
}

/// A shared [`SourceCounts`] with its cap; cloning shares the counts.
#[derive(Debug, Clone)]
pub struct SourceGate {
    counts: Arc<Mutex<SourceCounts>>,
    cap: usize,
}

impl SourceGate {
    /// A gate letting each source hold at most `cap` unproven connections (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            counts: Arc::new(Mutex::new(SourceCounts::default())),
            cap: cap.max(1),
        }
    }

    /// A slot for a new connection from `ip`, or `None` when its source holds the cap.
    pub fn admit(&self, ip: IpAddr) -> Option<Unproven> {
        let key = source_key(ip);
        let admitted = self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(key, self.cap);
        admitted.then(|| Unproven {
            inner: Arc::new(Slot {
                gate: self.clone(),
                key,
                released: AtomicBool::new(false),
            }),
        })
    }

    /// Unproven connections `ip`'s source holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .held(source_key(ip))
    }

    fn release(&self, key: IpAddr) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(key);
    }
}

/// One connection's slot; clones share it. Freed by [`Unproven::prove`] or when the last clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct Unproven {
    inner: Arc<Slot>,
}

#[derive(Debug)]
struct Slot {
    gate: SourceGate,
    key: IpAddr,
    released: AtomicBool,
}

impl Slot {
    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.gate.release(self.key);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

impl Unproven {
    /// The connection has shown it is a real client: it stops counting against its source.
    pub fn prove(&self) {
        self.inner.release();
    }

    /// Whether [`Unproven::prove`] was called.
    pub fn is_proven(&self) -> bool {
        self.inner.released.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn counts_are_capped_per_source_and_forgotten_at_zero() {
        let mut counts = SourceCounts::default();
        assert!(counts.admit(ip("10.0.0.1"), 2));
        assert!(counts.admit(ip("10.0.0.1"), 2));
        assert!(!counts.admit(ip("10.0.0.1"), 2));
        assert!(
            counts.admit(ip("10.0.0.2"), 2),
            "another source is unaffected"
        );
        counts.release(ip("10.0.0.1"));
        assert!(counts.admit(ip("10.0.0.1"), 2));
        counts.release(ip("10.0.0.1"));
        counts.release(ip("10.0.0.1"));
        counts.release(ip("10.0.0.2"));
        assert_eq!(counts.sources(), 0);
        counts.release(ip("10.0.0.9"));
        assert_eq!(counts.sources(), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(source_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            source_key(ip("2001:db8:1:2:ffff:1:2:3")),
            source_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(source_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(source_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn a_slot_is_freed_once_by_proof_or_drop() {
        let gate = SourceGate::new(1);
        let first = gate.admit(ip("10.0.0.1")).expect("first");
        assert!(gate.admit(ip("10.0.0.1")).is_none());
        let clone = first.clone();
        first.prove();
        assert!(clone.is_proven());
        assert_eq!(gate.held(ip("10.0.0.1")), 0);
        let second = gate.admit(ip("10.0.0.1")).expect("freed by proof");
        drop(first);
        drop(clone);
        assert_eq!(
            gate.held(ip("10.0.0.1")),
            1,
            "a proven slot is not freed twice"
        );
        drop(second);
        assert_eq!(gate.held(ip("10.0.0.1")), 0);
    }
}
