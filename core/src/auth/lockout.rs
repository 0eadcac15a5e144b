//! The brute-force policy, as a pure decision over counts read from the event log (so every core
//! replica, on SQLite or PostgreSQL, sees the same numbers).
//!
//! - Failures of one user from one source lock that *(source, user) pair*: after
//!   `failures_per_source` failures the pair waits `wait_increment_seconds` from its last
//!   failure, and every further failure (made once a wait has ended) adds another increment, up
//!   to `max_wait_seconds`. A success resets the pair. An attacker at one address therefore
//!   cannot lock out the same user at another address.
//! - Failures of one user from all sources together never block: past `slowdown_after_failures`
//!   each answer for that user is delayed by `slowdown_step_ms` per further failure, capped at
//!   `max_slowdown_ms`.
//! - A source is refused altogether while it *sprays*: at least `spray_distinct_users` distinct
//!   users failed from it in the window and more distinct users failed than succeeded. An
//!   application server relaying many users (mostly successes) is never a sprayer.
//! - Attempts refused by a lock are recorded under another action and counted nowhere, so they
//!   neither extend a lock nor count as failures.
//!
//! Only failures within `window_seconds` are counted.

use std::time::Duration;

/// Lockout thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures older than this are forgotten.
    pub window_seconds: i64,
    /// Failures of one user from one source that lock the pair; 0 turns pair locks off.
    pub failures_per_source: i64,
    /// The first wait of a locked pair; each further failure adds one more.
    pub wait_increment_seconds: i64,
    /// The longest a pair waits.
    pub max_wait_seconds: i64,
    /// Failures of one user (all sources) before answers for that user slow down; 0 turns the
    /// slowdown off.
    pub slowdown_after_failures: i64,
    /// Added delay per failure past `slowdown_after_failures`.
    pub slowdown_step_ms: u64,
    /// The longest delay.
    pub max_slowdown_ms: u64,
    /// Distinct failing users that make a source a sprayer (when they outnumber the users who
    /// succeeded from it); 0 turns the source rule off.
    pub spray_distinct_users: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            window_seconds: 3600,
            failures_per_source: 5,
            wait_increment_seconds: 60,
            max_wait_seconds: 900,
            slowdown_after_failures: 10,
            slowdown_step_ms: 250,
            max_slowdown_ms: 3000,
            spray_distinct_users: 20,
        }
    }
}

/// What the event log says about an attempt's user and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Failures of this user from this source in the window, after the pair's last success.
    pub pair_failures: i64,
    /// When the newest of those failures happened (unix seconds).
    pub pair_last_failure: Option<i64>,
    /// Failures of this user from every source in the window.
    pub user_failures: i64,
    /// Distinct users that failed from this source in the window.
    pub source_failed_users: i64,
    /// Distinct users that succeeded from this source in the window.
    pub source_succeeded_users: i64,
}

/// Which rule refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// The (source, user) pair waits until the given unix second.
    Pair { until: i64 },
    /// The source sprays many users.
    Source,
}

impl Locked {
    /// The reason kept in the event log.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Pair { .. } => "locked_pair",
            Self::Source => "locked_source",
        }
    }
}

/// The verdict before the password is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead, after waiting `delay`.
    Allow { delay: Duration },
    /// Refuse without checking the password.
    Refuse(Locked),
}

impl LockoutPolicy {
    /// The start of the window ending at `now`.
    pub fn window_start(&self, now: i64) -> i64 {
        now.saturating_sub(self.window_seconds)
    }

    /// How long a pair with `failures` failures waits after its last failure; zero below the
    /// threshold.
    pub fn pair_wait(&self, failures: i64) -> i64 {
        if self.failures_per_source <= 0 || failures < self.failures_per_source {
            return 0;
        }
        let steps = failures
            .saturating_sub(self.failures_per_source)
            .saturating_add(1);
        self.wait_increment_seconds
            .saturating_mul(steps)
            .min(self.max_wait_seconds)
            .max(0)
    }

    /// Until when (unix seconds) the pair is locked, if its counts lock it at all.
    pub fn pair_locked_until(&self, failures: i64, last_failure: Option<i64>) -> Option<i64> {
        let wait = self.pair_wait(failures);
        match last_failure {
            Some(last) if wait > 0 => Some(last.saturating_add(wait)),
            _ => None,
        }
    }

    /// Whether a source with these distinct-user counts sprays.
    pub fn sprays(&self, failed_users: i64, succeeded_users: i64) -> bool {
        self.spray_distinct_users > 0
            && failed_users >= self.spray_distinct_users
            && failed_users > succeeded_users
    }

    /// The delay before answering for a user with `failures` failures from all sources.
    pub fn slowdown(&self, failures: i64) -> Duration {
        if self.slowdown_after_failures <= 0 || failures <= self.slowdown_after_failures {
            return Duration::ZERO;
        }
        let excess = u64::try_from(failures.saturating_sub(self.slowdown_after_failures))
            .unwrap_or(u64::MAX);
        Duration::from_millis(
            self.slowdown_step_ms
                .saturating_mul(excess)
                .min(self.max_slowdown_ms),
        )
    }

    /// Decides whether an attempt at `now` may go ahead.
    pub fn decide(&self, counts: &Counts, now: i64) -> Decision {
        if let Some(until) = self.pair_locked_until(counts.pair_failures, counts.pair_last_failure)
            && now < until
        {
            return Decision::Refuse(Locked::Pair { until });
        }
        if self.sprays(counts.source_failed_users, counts.source_succeeded_users) {
            return Decision::Refuse(Locked::Source);
        }
        Decision::Allow {
            delay: self.slowdown(counts.user_failures),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 10_000;

    fn allow(ms: u64) -> Decision {
        Decision::Allow {
            delay: Duration::from_millis(ms),
        }
    }

    fn pair(failures: i64, last: i64) -> Counts {
        Counts {
            pair_failures: failures,
            pair_last_failure: Some(last),
            user_failures: failures,
            ..Counts::default()
        }
    }

    #[test]
    fn decision_table() {
        let policy = LockoutPolicy::default();
        let cases: Vec<(&str, Counts, Decision)> = vec![
            ("nothing recorded", Counts::default(), allow(0)),
            ("four failures from one source", pair(4, NOW - 1), allow(0)),
            (
                "the fifth locks the pair for one increment",
                pair(5, NOW - 1),
                Decision::Refuse(Locked::Pair { until: NOW + 59 }),
            ),
            (
                "the wait runs from the last failure, not the last attempt",
                pair(5, NOW - 60),
                allow(0),
            ),
            (
                "a sixth failure after the wait doubles it",
                pair(6, NOW - 100),
                Decision::Refuse(Locked::Pair { until: NOW + 20 }),
            ),
            (
                "the wait is capped",
                pair(30, NOW - 899),
                Decision::Refuse(Locked::Pair { until: NOW + 1 }),
            ),
            (
                "capped waits still end (the user's failures still slow answers down)",
                pair(100, NOW - 900),
                allow(3000),
            ),
            (
                "many failures from many sources slow down, never block",
                Counts {
                    user_failures: 14,
                    ..Counts::default()
                },
                allow(1000),
            ),
            (
                "the slowdown is capped",
                Counts {
                    user_failures: 10_000,
                    ..Counts::default()
                },
                allow(3000),
            ),
            (
                "a sprayer: many distinct users, mostly failures",
                Counts {
                    source_failed_users: 20,
                    source_succeeded_users: 1,
                    ..Counts::default()
                },
                Decision::Refuse(Locked::Source),
            ),
            (
                "an application server: many distinct users, mostly successes",
                Counts {
                    source_failed_users: 25,
                    source_succeeded_users: 50,
                    ..Counts::default()
                },
                allow(0),
            ),
            (
                "a few failing users behind one address are no sprayer",
                Counts {
                    source_failed_users: 19,
                    ..Counts::default()
                },
                allow(0),
            ),
        ];
        for (name, counts, expected) in cases {
            assert_eq!(policy.decide(&counts, NOW), expected, "{name}");
        }
    }

    #[test]
    fn rules_can_be_turned_off() {
        let off = LockoutPolicy {
            failures_per_source: 0,
            slowdown_after_failures: 0,
            spray_distinct_users: 0,
            ..LockoutPolicy::default()
        };
        let counts = Counts {
            pair_failures: 1000,
            pair_last_failure: Some(NOW),
            user_failures: 1000,
            source_failed_users: 1000,
            source_succeeded_users: 0,
        };
        assert_eq!(off.decide(&counts, NOW), allow(0));
        assert_eq!(LockoutPolicy::default().window_start(NOW), NOW - 3600);
    }

    #[test]
    fn waits_grow_by_increments() {
        let policy = LockoutPolicy::default();
        let waits: Vec<i64> = (4..=21).map(|n| policy.pair_wait(n)).collect();
        assert_eq!(
            waits,
            [
                0, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 660, 720, 780, 840, 900, 900,
                900
            ]
        );
        assert_eq!(policy.pair_locked_until(3, Some(NOW)), None);
        assert_eq!(policy.pair_locked_until(5, None), None);
        assert_eq!(policy.pair_wait(i64::MAX), 900);
    }
}
