//! The brute-force policy: how many failures, per user and per source address, within a sliding
//! window, lock further attempts out. The counts come from the event log, so every core replica
//! sees the same numbers.

/// Lockout thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub window_seconds: i64,
    pub max_failures_per_user: i64,
    pub max_failures_per_address: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            window_seconds: 300,
            max_failures_per_user: 5,
            max_failures_per_address: 20,
        }
    }
}

/// Which limit stopped an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    User,
    Address,
}

impl LockoutPolicy {
    /// The start of the window ending at `now`.
    pub fn window_start(&self, now: i64) -> i64 {
        now.saturating_sub(self.window_seconds)
    }

    /// Decides from recent failure counts whether another attempt may be made.
    pub fn check(&self, user_failures: i64, address_failures: i64) -> Result<(), Locked> {
        if self.max_failures_per_user > 0 && user_failures >= self.max_failures_per_user {
            Err(Locked::User)
        } else if self.max_failures_per_address > 0
            && address_failures >= self.max_failures_per_address
        {
            Err(Locked::Address)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let policy = LockoutPolicy::default();
        assert_eq!(policy.check(4, 19), Ok(()));
        assert_eq!(policy.check(5, 0), Err(Locked::User));
        assert_eq!(policy.check(0, 20), Err(Locked::Address));
        let off = LockoutPolicy {
            max_failures_per_user: 0,
            max_failures_per_address: 0,
            ..policy
        };
        assert_eq!(off.check(1000, 1000), Ok(()));
        assert_eq!(policy.window_start(1000), 700);
    }
}
