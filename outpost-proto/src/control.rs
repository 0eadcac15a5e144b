//! The control channel: JSON text messages over a WebSocket at `/api/v1/outpost/ws`,
//! authenticated with the outpost's bearer token.
//!
//! The outpost opens with [`OutpostMessage::Hello`]; the core answers with a snapshot (when the
//! outpost's revision is unknown or too old) or the changes since it, then pushes every later
//! change. The outpost acknowledges each revision it has applied and sends a heartbeat every
//! `heartbeat_interval_seconds`. The core ends a session with a WebSocket close frame whose code
//! is one of [`CloseCode`] and whose reason is one readable sentence.

use crate::config::{ConfigSnapshot, DirectoryGroup, DirectoryUser, OutpostInfo, ProviderConfig};
use serde::{Deserialize, Serialize};

/// Path of the control channel.
pub const CHANNEL_PATH: &str = "/api/v1/outpost/ws";
/// Largest message either side accepts, in bytes. Snapshots of large directories are the
/// biggest messages; 64 MiB holds several hundred thousand users.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Largest message the core accepts from an outpost.
pub const MAX_OUTPOST_MESSAGE_BYTES: usize = 64 * 1024;
/// Default seconds between heartbeats.
pub const DEFAULT_HEARTBEAT_SECONDS: u64 = 10;
/// The range an outpost's `heartbeat_interval_seconds` setting is clamped to, on both sides.
pub const MIN_HEARTBEAT_SECONDS: u64 = 1;
pub const MAX_HEARTBEAT_SECONDS: u64 = 30;
/// Heartbeats in a row the core may miss before it closes the session
/// ([`CloseCode::Timeout`]); the outpost gives up after as many silent periods (at least
/// [`MIN_OUTPOST_SILENCE_SECONDS`]).
pub const MISSED_HEARTBEATS: u32 = 3;
/// The shortest silence from the core an outpost tolerates before it reconnects.
pub const MIN_OUTPOST_SILENCE_SECONDS: u64 = 90;
/// The idle timeout of any listener that carries the channel (the core's HTTP and HTTPS
/// listeners, a proxy in front): the channel is never silent for longer than one heartbeat
/// period, so twice the longest period leaves room for a slow peer.
pub const CHANNEL_IDLE_TIMEOUT_SECONDS: u64 = 2 * MAX_HEARTBEAT_SECONDS;

/// The heartbeat period for a configured number of seconds (the default when unset), clamped
/// to what both sides accept.
pub fn heartbeat_period(configured_seconds: Option<u64>) -> std::time::Duration {
    std::time::Duration::from_secs(
        configured_seconds
            .unwrap_or(DEFAULT_HEARTBEAT_SECONDS)
            .clamp(MIN_HEARTBEAT_SECONDS, MAX_HEARTBEAT_SECONDS),
    )
}

/// How long the core waits for a heartbeat before closing the session.
pub fn missed_heartbeat_limit(period: std::time::Duration) -> std::time::Duration {
    period.saturating_mul(MISSED_HEARTBEATS)
}

/// How long an outpost waits without hearing from the core (messages or pongs) before it
/// reconnects: never sooner than the core would give up on it.
pub fn outpost_silence_limit(period: std::time::Duration) -> std::time::Duration {
    missed_heartbeat_limit(period).max(std::time::Duration::from_secs(MIN_OUTPOST_SILENCE_SECONDS))
}

/// Messages from an outpost to the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutpostMessage {
    /// First message of a session.
    Hello(Hello),
    /// "Still here", every heartbeat interval.
    Heartbeat { applied_revision: i64 },
    /// The outpost has applied everything up to `revision`.
    Ack { revision: i64 },
}

/// Who is connecting and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub software_version: String,
    /// Build identifier (commit or build date).
    pub build: String,
    pub hostname: String,
    /// Random per process start; tells replicas of one outpost apart.
    pub instance_id: String,
    /// The revision of the configuration the outpost holds, if any.
    pub revision: Option<i64>,
}

/// Messages from the core to an outpost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoreMessage {
    /// Session accepted.
    Welcome {
        heartbeat_interval_seconds: u64,
        core_version: String,
    },
    /// The whole configuration; replaces what the outpost holds.
    Snapshot(ConfigSnapshot),
    /// What changed after `from_revision`, up to and including `revision`.
    Changes(ChangeSet),
}

/// An ordered set of changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub from_revision: i64,
    pub revision: i64,
    pub items: Vec<ChangeItem>,
}

/// One change. Upserts carry the object's whole new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeItem {
    UserUpserted {
        user: DirectoryUser,
    },
    UserDeleted {
        id: i64,
    },
    GroupUpserted {
        group: DirectoryGroup,
    },
    /// The group is gone, and so are memberships in it and its children's parent link.
    GroupDeleted {
        id: i64,
    },
    ProviderUpserted {
        provider: ProviderConfig,
    },
    ProviderRemoved {
        id: i64,
    },
    OutpostUpdated {
        outpost: OutpostInfo,
    },
    /// Sessions end now: every session of the user that began at or before the revocation
    /// (disabled, deleted, password or TOTP changed), or the one signed out.
    SessionsRevoked {
        #[serde(flatten)]
        revocation: crate::session::SessionRevocation,
    },
    /// Who may use what may have changed for these users (disabled, deleted, group membership)
    /// and for the members of these groups (nesting changed, group deleted). Sent to RAC
    /// outposts, which hold no directory, so they re-check their live connections at once
    /// (through the core's lease endpoint).
    AccessChanged {
        #[serde(default)]
        user_ids: Vec<i64>,
        #[serde(default)]
        group_ids: Vec<i64>,
    },
    /// The brute-force policy locked `username` at `source_address` (the end client's address
    /// or RADIUS Calling-Station-Id, as outposts report it) until `locked_until` (Unix
    /// seconds); an empty `username` means every user at that source (it sprays). Sent to
    /// directory outposts: until then they answer it from no cache.
    LockChanged {
        username: String,
        source_address: String,
        locked_until: i64,
    },
}

/// Most bytes of UTF-8 a WebSocket close frame's reason may hold (RFC 6455 section 5.5: a
/// control frame's payload is at most 125 bytes, two of them the code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// `reason` cut to fit a close frame, on a character boundary.
pub fn close_reason(reason: &str) -> &str {
    let end = (0..=reason.len().min(MAX_CLOSE_REASON_BYTES))
        .rev()
        .find(|end| reason.is_char_boundary(*end))
        .unwrap_or(0);
    reason.get(..end).unwrap_or_default()
}

/// WebSocket close codes the core uses (RFC 6455 section 7.4.2: 4000-4999 are private).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// The token is unknown, was rotated, or its outpost was deleted. Do not retry quickly.
    TokenRefused = 4001,
    /// The outpost speaks a protocol version the core does not.
    IncompatibleProtocol = 4002,
    /// A message could not be parsed, came out of order, or was too large.
    ProtocolViolation = 4003,
    /// No hello or heartbeat arrived in time.
    Timeout = 4004,
    /// The core is shutting down; reconnect (to another replica).
    ShuttingDown = 4005,
}

impl CloseCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::TokenRefused => 4001,
            Self::IncompatibleProtocol => 4002,
            Self::ProtocolViolation => 4003,
            Self::Timeout => 4004,
            Self::ShuttingDown => 4005,
        }
    }

    /// The code for a number, if it is one of ours.
    pub fn from_code(code: u16) -> Option<Self> {
        [
            Self::TokenRefused,
            Self::IncompatibleProtocol,
            Self::ProtocolViolation,
            Self::Timeout,
            Self::ShuttingDown,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_fixed_sample() {
        let text = r#"{"type":"hello","protocol_version":1,"software_version":"0.1.0","build":"abc","hostname":"h","instance_id":"i","revision":null}"#;
        let parsed: OutpostMessage = serde_json::from_str(text).expect("parse");
        assert!(
            matches!(&parsed, OutpostMessage::Hello(h) if h.revision.is_none() && h.protocol_version == 1)
        );
        assert_eq!(serde_json::to_string(&parsed).expect("encode"), text);
    }

    #[test]
    fn ack_and_heartbeat_samples() {
        let ack: OutpostMessage =
            serde_json::from_str(r#"{"type":"ack","revision":42}"#).expect("parse");
        assert_eq!(ack, OutpostMessage::Ack { revision: 42 });
        let hb: OutpostMessage =
            serde_json::from_str(r#"{"type":"heartbeat","applied_revision":7}"#).expect("parse");
        assert_eq!(
            hb,
            OutpostMessage::Heartbeat {
                applied_revision: 7
            }
        );
        assert!(
            serde_json::from_str::<OutpostMessage>(r#"{"type":"ack","revision":1,"x":2}"#).is_err()
        );
        assert!(serde_json::from_str::<OutpostMessage>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn changes_fixed_sample() {
        let text = r#"{"type":"changes","from_revision":3,"revision":5,"items":[{"kind":"user_deleted","id":9},{"kind":"sessions_revoked","user_id":9,"session_id":null,"revoked_at_ms":5000}]}"#;
        let parsed: CoreMessage = serde_json::from_str(text).expect("parse");
        assert_eq!(serde_json::to_string(&parsed).expect("encode"), text);
    }

    #[test]
    fn heartbeats_and_timeouts_agree() {
        use std::time::Duration;
        assert_eq!(heartbeat_period(None), Duration::from_secs(10));
        assert_eq!(heartbeat_period(Some(0)), Duration::from_secs(1));
        assert_eq!(heartbeat_period(Some(u64::MAX)), Duration::from_secs(30));
        for seconds in [None, Some(1), Some(10), Some(29), Some(30), Some(300)] {
            let period = heartbeat_period(seconds);
            // A heartbeat (and the pong to it) crosses every listener before its idle timeout.
            assert!(period.saturating_mul(2) <= Duration::from_secs(CHANNEL_IDLE_TIMEOUT_SECONDS));
            // The core waits for several heartbeats, the outpost at least as long.
            assert!(missed_heartbeat_limit(period) >= period.saturating_mul(2));
            assert!(outpost_silence_limit(period) >= missed_heartbeat_limit(period));
        }
    }

    #[test]
    fn close_reasons_fit_a_control_frame() {
        assert_eq!(
            close_reason("no heartbeat for 30 s"),
            "no heartbeat for 30 s"
        );
        let long = "x".repeat(200);
        assert_eq!(close_reason(&long).len(), MAX_CLOSE_REASON_BYTES);
        // A four-byte character straddling byte 123 is dropped whole.
        let straddling = format!("{}😀tail", "a".repeat(121));
        assert_eq!(close_reason(&straddling), "a".repeat(121));
        for text in ["é".repeat(100), "😀".repeat(40), "a€".repeat(50)] {
            let cut = close_reason(&text);
            assert!(cut.len() <= MAX_CLOSE_REASON_BYTES && text.starts_with(cut));
            assert!(cut.len() > MAX_CLOSE_REASON_BYTES - 4, "{}", cut.len());
        }
    }

    #[test]
    fn close_codes_round_trip() {
        assert_eq!(
            CloseCode::from_code(4002),
            Some(CloseCode::IncompatibleProtocol)
        );
        assert_eq!(CloseCode::from_code(1000), None);
    }
}
