//! Injected time, shared by the core and its outposts, so expiry, lockout windows, TOTP steps,
//! cached credentials and session cookies can be driven by tests and agree across processes.
//! (Reading the wall clock is not I/O in the sense of this crate's invariant.)

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now(&self) -> i64;

    /// Milliseconds since 1970-01-01T00:00:00Z, for ordering logins against session
    /// revocations.
    fn now_ms(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        let elapsed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
    }

    fn now_ms(&self) -> i64 {
        let elapsed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to; for tests. Its milliseconds tick by one on every read
/// (staying inside the current second), so events in a test still have an order.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>, Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now)), Arc::new(AtomicI64::new(0)))
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    fn now_ms(&self) -> i64 {
        let tick = self.1.fetch_add(1, Ordering::SeqCst) % 1000;
        self.now().saturating_mul(1000) + tick
    }
}

/// Shared handle to the clock in use.
pub type SharedClock = Arc<dyn Clock>;
