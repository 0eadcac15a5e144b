//! Whether the core was reached recently, and what that makes of the outpost's health.
//!
//! The rule (README, "Honest health"): the core counts as reachable while the control channel is
//! up, and for one heartbeat period after the last moment it was known reachable (the channel
//! going down, or the last call to the core that got an answer other than a refused token). [`CoreStatus`] adds whether a
//! configuration is held: `connected` (reachable, configuration held), `degraded` (not
//! reachable, serving the configuration and cached credentials it holds), `disconnected`
//! (nothing held, so nothing to serve).
//! The decisions are pure functions of the recorded contact, the time (a monotonic [`Instant`])
//! and the heartbeat period; [`CoreContact`] is the shared record the runtime and the module
//! calls write.

use redoubt_outpost_proto::config::ConfigSnapshot;
use redoubt_outpost_proto::control::DEFAULT_HEARTBEAT_SECONDS;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The last known contact with the core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contact {
    /// The control channel is up now.
    pub channel_up: bool,
    /// The last moment the core was known reachable: when the channel went down, or the last
    /// call that got an answer. `None`: never.
    pub last: Option<Instant>,
}

/// Whether the core counts as reachable at `now` with heartbeat `period`: the channel is up, or
/// the last contact is at most one period old.
pub fn core_reachable(contact: Contact, now: Instant, period: Duration) -> bool {
    contact.channel_up
        || contact
            .last
            .is_some_and(|last| now.saturating_duration_since(last) <= period)
}

/// What the outpost can do, as `/-/health/ready` and `redoubt_outpost_core_status` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreStatus {
    /// The core is reachable: every answer is the core's.
    Connected,
    /// The core is not reachable; the held configuration (and, within the offline window,
    /// cached credentials) is served.
    Degraded,
    /// No configuration is held (the core is not reachable, or its first answer is still under
    /// way): nothing can be served.
    Disconnected,
}

impl CoreStatus {
    /// Every status, in the order of the metric's label values.
    pub const ALL: [Self; 3] = [Self::Connected, Self::Degraded, Self::Disconnected];

    /// From reachability and whether a configuration is held.
    pub fn of(reachable: bool, has_config: bool) -> Self {
        match (reachable, has_config) {
            (true, true) => Self::Connected,
            (false, true) => Self::Degraded,
            // Reachable but nothing held yet (the first fetch is under way) serves nothing either.
            (_, false) => Self::Disconnected,
        }
    }

    /// The label value and the `status` of the ready answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Degraded => "degraded",
            Self::Disconnected => "disconnected",
        }
    }

    /// Whether a readiness probe should send traffic here: yes while something can be served
    /// (connected or degraded), no when nothing can.
    pub fn is_ready(self) -> bool {
        !matches!(self, Self::Disconnected)
    }
}

/// The heartbeat period the core uses with this outpost: the outpost's
/// `heartbeat_interval_seconds` setting, as the core reads it (clamped to 1..=300), else the
/// protocol's default.
pub fn heartbeat_period(snapshot: Option<&ConfigSnapshot>) -> Duration {
    let seconds = snapshot
        .and_then(|s| s.config.outpost.settings.get("heartbeat_interval_seconds"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(DEFAULT_HEARTBEAT_SECONDS)
        .clamp(1, 300);
    Duration::from_secs(seconds)
}

/// The shared record of contact with the core. Cheap to clone; every clone is the same record.
#[derive(Debug, Clone, Default)]
pub struct CoreContact {
    inner: Arc<Mutex<Contact>>,
}

impl CoreContact {
    /// The control channel is `up` or not. Coming up, and going down (the last moment it was
    /// known up), are contact; being told it is still down (after each failed reconnection
    /// attempt) is not.
    pub fn channel(&self, up: bool) {
        self.update(|contact| {
            if up || contact.channel_up {
                contact.last = Some(Instant::now());
            }
            contact.channel_up = up;
        });
    }

    /// A call to the core got an answer from the core itself (not a refused token, not a 502/503/504
    /// from a load balancer in front of it).
    pub fn reached(&self) {
        self.update(|contact| contact.last = Some(Instant::now()));
    }

    /// The record as of now.
    pub fn get(&self) -> Contact {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the core counts as reachable now (see [`core_reachable`]).
    pub fn is_reachable(&self, period: Duration) -> bool {
        core_reachable(self.get(), Instant::now(), period)
    }

    fn update(&self, change: impl FnOnce(&mut Contact)) {
        change(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(10);

    fn check(channel_up: bool, last_ago: Option<u64>, expected: bool) {
        let now = Instant::now() + Duration::from_secs(1000);
        let contact = Contact {
            channel_up,
            last: last_ago.map(|ago| now - Duration::from_secs(ago)),
        };
        assert_eq!(
            core_reachable(contact, now, PERIOD),
            expected,
            "channel_up={channel_up} last_ago={last_ago:?}"
        );
    }

    #[test]
    fn an_open_channel_is_contact() {
        check(true, None, true);
        check(true, Some(500), true);
    }

    #[test]
    fn contact_lasts_one_heartbeat_period() {
        check(false, Some(0), true);
        check(false, Some(9), true);
        check(false, Some(10), true);
        check(false, Some(11), false);
        check(false, Some(500), false);
    }

    #[test]
    fn never_reached_is_unreachable() {
        check(false, None, false);
    }

    #[test]
    fn a_contact_in_the_future_counts_as_now() {
        // Instants taken on other threads may be a little after the `now` a caller took.
        let now = Instant::now();
        let contact = Contact {
            channel_up: false,
            last: Some(now + Duration::from_millis(5)),
        };
        assert!(core_reachable(contact, now, PERIOD));
    }

    #[test]
    fn status_from_reachability_and_configuration() {
        assert_eq!(CoreStatus::of(true, true), CoreStatus::Connected);
        assert_eq!(CoreStatus::of(true, false), CoreStatus::Disconnected);
        assert_eq!(CoreStatus::of(false, true), CoreStatus::Degraded);
        assert_eq!(CoreStatus::of(false, false), CoreStatus::Disconnected);
        assert!(CoreStatus::Connected.is_ready());
        assert!(CoreStatus::Degraded.is_ready());
        assert!(!CoreStatus::Disconnected.is_ready());
    }

    #[test]
    fn the_record_follows_the_channel_and_calls() {
        let contact = CoreContact::default();
        assert!(!contact.is_reachable(PERIOD));
        contact.channel(true);
        assert!(contact.get().channel_up);
        assert!(contact.is_reachable(Duration::ZERO));
        contact.channel(false);
        assert!(!contact.get().channel_up);
        assert!(contact.is_reachable(PERIOD));
        // A failed reconnection attempt reports "down" again: that is no contact.
        let went_down = contact.get().last;
        contact.channel(false);
        assert_eq!(contact.get().last, went_down);
        let copy = contact.clone();
        copy.reached();
        assert_eq!(copy.get(), contact.get());
    }

    #[test]
    fn the_period_comes_from_the_outpost_settings() {
        use redoubt_outpost_proto::config::{OutpostConfig, OutpostInfo, OutpostKind};
        let snapshot = |settings: serde_json::Value| ConfigSnapshot {
            revision: 1,
            config: OutpostConfig {
                outpost: OutpostInfo {
                    id: 1,
                    name: "r".into(),
                    kind: OutpostKind::Radius,
                    settings,
                },
                providers: Vec::new(),
                directory: None,
                sessions: None,
            },
        };
        let default = Duration::from_secs(DEFAULT_HEARTBEAT_SECONDS);
        assert_eq!(heartbeat_period(None), default);
        assert_eq!(
            heartbeat_period(Some(&snapshot(serde_json::json!({})))),
            default
        );
        assert_eq!(
            heartbeat_period(Some(&snapshot(
                serde_json::json!({"heartbeat_interval_seconds": 2})
            ))),
            Duration::from_secs(2)
        );
        assert_eq!(
            heartbeat_period(Some(&snapshot(
                serde_json::json!({"heartbeat_interval_seconds": 0})
            ))),
            Duration::from_secs(1)
        );
        assert_eq!(
            heartbeat_period(Some(&snapshot(
                serde_json::json!({"heartbeat_interval_seconds": 9000})
            ))),
            Duration::from_secs(300)
        );
    }
}
