//! RAC (remote desktops in the browser): the outpost-facing REST bodies (grants, connection
//! reports, leases) and the browser protocol between the RAC outpost and its JavaScript client.
//!
//! # Browser protocol, version [`BROWSER_PROTOCOL_VERSION`]
//! Binary WebSocket messages at `/rac/{slug}/ws?ticket=…&width=…&height=…` (`width` and
//! `height`, optional: the browser's size in device pixels, where a desktop that follows the
//! browser starts). Every message starts with one type byte;
//! integers are little-endian; `str8`/`str16` are a `u8`/`u16` byte length followed by UTF-8;
//! `rest` is every remaining byte. A message the receiver cannot parse, of an unknown type,
//! or longer than its limit closes the socket (1007 invalid, 1009 too big, 1008 policy) with a
//! reason. The outpost sends [`ServerMessage`]s, the browser [`BrowserMessage`]s.
//!
//! | type | server → browser | layout after the type byte |
//! | --- | --- | --- |
//! | 0x01 | `Hello` | `version u16, width u16, height u16, features u32, connection_id str8, endpoint_name str16` |
//! | 0x02 | `Tile` | `x u16, y u16, w u16, h u16, encoding u8 (0 fill, 1 png, 2 jpeg), data rest` (fill: 4 bytes R, G, B, A) |
//! | 0x03 | `FrameEnd` | `seq u32, server_ms u32` (ms since the connection started) |
//! | 0x04 | `Resize` | `width u16, height u16` (the desktop's new size; tiles follow) |
//! | 0x05 | `Cursor` | `hot_x u16, hot_y u16, png rest` |
//! | 0x06 | `CursorDefault` | nothing |
//! | 0x07 | `CursorHidden` | nothing |
//! | 0x08 | `Clipboard` | `text rest` (text copied on the remote desktop) |
//! | 0x09 | `Ended` | `reason str8 ([`EndReason`] as snake_case), message rest` (a sentence for the user) |
//! | 0x0A | `Status` | `text rest` (progress: "Connecting to ...") |
//!
//! | type | browser → server | layout after the type byte |
//! | --- | --- | --- |
//! | 0x81 | `Key` | `down u8 (0/1), code str8 (KeyboardEvent.code), key str8 (KeyboardEvent.key)` |
//! | 0x82 | `Unicode` | `text rest` (IME or Unicode-mode text, typed as characters) |
//! | 0x83 | `Mouse` | `x u16, y u16, buttons u8` (desktop pixels; buttons: 1 left, 2 right, 4 middle, 8 back, 16 forward) |
//! | 0x84 | `Wheel` | `dx i16, dy i16` (120 per notch; positive dy scrolls down, positive dx right) |
//! | 0x85 | `Clipboard` | `text rest` (text copied in the browser) |
//! | 0x86 | `Resize` | `width u16, height u16` (wanted desktop size in device pixels) |
//! | 0x87 | `Ack` | `seq u32` (frame `seq` is drawn) |
//! | 0x88 | `SyncLocks` | `locks u8` (1 caps, 2 num, 4 scroll, 8 kana) |
//! | 0x89 | `Credentials` | `username str16, domain str16, password str16` (prompt mode; first message only) |
//! | 0x8A | `Special` | `combo u8` (1 Ctrl+Alt+Del, 2 Windows key, 3 Alt+Tab) |
//! | 0x8B | `ReleaseAll` | nothing (the tab lost focus: lift every held key and button) |
//!
//! Frames: the outpost sends a frame's tiles then its `FrameEnd`; the browser draws all tiles of
//! a frame at once and answers `Ack{seq}`. The outpost keeps at most two frames unacknowledged
//! and otherwise merges changes (latest frame wins), so a slow browser skips frames instead
//! of queueing them.

use serde::{Deserialize, Serialize};

mod wire;
pub use wire::WireError;

/// The browser protocol version (in `Hello`); bumped on incompatible changes.
pub const BROWSER_PROTOCOL_VERSION: u16 = 1;

/// Largest message the browser may send (a clipboard text, at most an endpoint's
/// `clipboard_max_bytes`, is the only large one).
pub const MAX_BROWSER_MESSAGE_BYTES: usize = 16 * 1024 * 1024 + 16;

/// Largest message the browser may send when it is not a clipboard text.
pub const MAX_BROWSER_INPUT_BYTES: usize = 64 * 1024;

/// `Hello.features` bits.
pub mod features {
    /// Text copied on the remote desktop is sent to the browser.
    pub const CLIPBOARD_TO_BROWSER: u32 = 1;
    /// Text copied in the browser is sent to the remote desktop.
    pub const CLIPBOARD_TO_REMOTE: u32 = 2;
    /// The remote desktop follows the browser's size (`Resize` from the browser is honoured).
    pub const RESIZE: u32 = 4;
    /// Printable keys should be sent as `Unicode` by default.
    pub const UNICODE_KEYBOARD: u32 = 8;
}

/// How a tile's pixels are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileEncoding {
    /// One colour: `data` is R, G, B, A.
    Fill = 0,
    Png = 1,
    Jpeg = 2,
}

impl TileEncoding {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::Fill => 0,
            Self::Png => 1,
            Self::Jpeg => 2,
        }
    }
}

/// Why a connection ended, as shown to the user and recorded in events and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The user closed it.
    User,
    /// The remote desktop logged off or disconnected.
    Server,
    /// `connection_expiry_seconds` passed.
    Expired,
    /// No input for `idle_timeout_seconds`.
    Idle,
    /// The user signed out, was disabled, had their sessions revoked or lost access.
    Revoked,
    /// The endpoint or provider was removed or changed.
    Removed,
    /// The core refused the connection (no access).
    Denied,
    /// A connection limit is reached.
    LimitReached,
    /// The RDP server refused the credentials.
    AuthFailed,
    /// The RDP server could not be reached.
    Unreachable,
    /// The server's TLS key did not match the pinned one, or TLS failed.
    Tls,
    /// The RDP server spoke something the outpost could not follow.
    Protocol,
    /// The browser sent something malformed.
    BadMessage,
    /// The outpost is stopping.
    OutpostStop,
    /// Connecting took too long.
    Timeout,
    /// Anything else (logged on the outpost).
    Error,
}

impl EndReason {
    /// The snake_case label (wire, events, metrics).
    pub fn label(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Server => "server",
            Self::Expired => "expired",
            Self::Idle => "idle",
            Self::Revoked => "revoked",
            Self::Removed => "removed",
            Self::Denied => "denied",
            Self::LimitReached => "limit_reached",
            Self::AuthFailed => "auth_failed",
            Self::Unreachable => "unreachable",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::BadMessage => "bad_message",
            Self::OutpostStop => "outpost_stop",
            Self::Timeout => "timeout",
            Self::Error => "error",
        }
    }
}

/// Path of the grant request (`POST`).
pub const GRANTS_PATH: &str = "/api/v1/outpost/rac/grants";
/// Path of the endpoint list a user may open (`POST`, [`RacEndpointsRequest`]).
pub const ENDPOINTS_PATH: &str = "/api/v1/outpost/rac/endpoints";
/// Path of connection reports (`POST`, [`RacConnectionReport`]).
pub const REPORTS_PATH: &str = "/api/v1/outpost/rac/reports";
/// Path of lease renewals (`POST`, [`RacLeaseRequest`]).
pub const LEASES_PATH: &str = "/api/v1/outpost/rac/leases";

/// How long a granted connection counts against limits without a lease renewal, in seconds.
/// Outposts renew every [`LEASE_RENEW_SECONDS`].
pub const LEASE_SECONDS: u64 = 60;
/// How often an outpost renews the leases of its live connections.
pub const LEASE_RENEW_SECONDS: u64 = 10;

/// Who is asking, from the outpost's sealed sign-in cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacUser {
    pub user_id: i64,
    /// The core login session.
    pub sid: String,
    /// When the user logged in at the core, Unix milliseconds.
    pub auth_time_ms: i64,
}

/// Which endpoints of a provider may this user open?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacEndpointsRequest {
    pub provider_id: i64,
    pub user: RacUser,
}

/// The endpoints the user may open (empty when none; a problem when the user or session is no
/// longer valid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RacEndpointsResponse {
    /// Slugs, in the provider's order.
    pub endpoints: Vec<String>,
}

/// Asks the core to let a user open an endpoint now: the core re-checks the user, their login
/// session, the application binding and the endpoint's groups, counts the limits across every
/// outpost replica, and records the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacGrantRequest {
    pub provider_id: i64,
    /// The endpoint's slug.
    pub endpoint: String,
    pub user: RacUser,
    /// The browser's address as the outpost saw it.
    #[serde(default)]
    pub client_address: Option<String>,
    /// The outpost instance that will hold the connection.
    pub instance_id: String,
}

/// A granted connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RacGrant {
    /// Identifies the connection in reports, leases and events.
    pub connection_id: String,
    /// When the connection must end, Unix seconds (`connection_expiry_seconds` from now).
    pub expires_at: i64,
    /// The endpoint's credentials in `static` mode; `None` in `prompt` mode.
    #[serde(default)]
    pub credentials: Option<RdpCredentials>,
}

/// Credentials for one RDP connection. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdpCredentials {
    pub username: String,
    #[serde(default)]
    pub domain: Option<String>,
    pub password: String,
}

impl std::fmt::Debug for RdpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdpCredentials")
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why the core refused a grant: the `type` of its problem document ends with
/// `/rac-<snake_case>` (e.g. `.../rac-limit_reached`), and the body's `reason` carries this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantRefusal {
    /// No such endpoint on the provider, or the provider is not this outpost's.
    UnknownEndpoint,
    /// The user may not open it (application binding or endpoint groups).
    NotInGroup,
    /// The user is disabled or gone, or the login session was ended.
    SessionEnded,
    /// An endpoint or per-user limit is reached.
    LimitReached,
    /// `static` mode but no credentials are set for the endpoint.
    NoCredentials,
}

/// The body of a refused grant (HTTP 403 or 409, `application/problem+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRefused {
    pub reason: GrantRefusal,
    #[serde(default)]
    pub detail: String,
}

/// What happened to a granted connection, reported by the outpost (each becomes an audit event
/// `rac_connection_started`, `rac_connection_failed` or `rac_connection_ended`).
///
/// No `deny_unknown_fields` here: serde does not support it together with `flatten` (every
/// flattened field would be refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RacConnectionReport {
    pub connection_id: String,
    #[serde(flatten)]
    pub what: RacConnectionEvent,
}

/// One step of a connection's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RacConnectionEvent {
    /// The RDP session is up.
    Started {
        /// `nla` or `tls`.
        security: String,
        /// SHA-256 (hex) of the server's TLS public key.
        server_key_sha256: String,
        width: u16,
        height: u16,
    },
    /// Connecting failed; the connection is over.
    Failed { reason: EndReason, detail: String },
    /// The connection ended.
    Ended {
        reason: EndReason,
        duration_seconds: u64,
        /// Bytes received from the RDP server.
        bytes_from_server: u64,
        /// Bytes sent to the browser.
        bytes_to_browser: u64,
        clipboard_transfers: u64,
    },
}

/// Renews the leases of an outpost instance's live connections; the core answers which of them
/// must end now (user disabled, session ended, access lost, endpoint removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacLeaseRequest {
    pub instance_id: String,
    pub connection_ids: Vec<String>,
}

/// Connections the outpost must end, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RacLeaseResponse {
    pub end: Vec<RacLeaseEnd>,
}

/// One connection to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RacLeaseEnd {
    pub connection_id: String,
    pub reason: EndReason,
}

/// A message from the RAC outpost to the browser (layouts in the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    Hello {
        version: u16,
        width: u16,
        height: u16,
        features: u32,
        connection_id: String,
        endpoint_name: String,
    },
    Tile {
        x: u16,
        y: u16,
        w: u16,
        h: u16,
        encoding: TileEncoding,
        data: Vec<u8>,
    },
    FrameEnd {
        seq: u32,
        server_ms: u32,
    },
    Resize {
        width: u16,
        height: u16,
    },
    Cursor {
        hot_x: u16,
        hot_y: u16,
        png: Vec<u8>,
    },
    CursorDefault,
    CursorHidden,
    Clipboard {
        text: String,
    },
    Ended {
        reason: EndReason,
        message: String,
    },
    Status {
        text: String,
    },
}

/// A message from the browser to the RAC outpost (layouts in the module documentation).
#[derive(Clone, PartialEq, Eq)]
pub enum BrowserMessage {
    Key {
        down: bool,
        code: String,
        key: String,
    },
    Unicode {
        text: String,
    },
    Mouse {
        x: u16,
        y: u16,
        buttons: u8,
    },
    Wheel {
        dx: i16,
        dy: i16,
    },
    Clipboard {
        text: String,
    },
    Resize {
        width: u16,
        height: u16,
    },
    Ack {
        seq: u32,
    },
    SyncLocks {
        locks: u8,
    },
    Credentials(RdpCredentials),
    Special {
        combo: SpecialCombo,
    },
    ReleaseAll,
}

/// Key combinations the browser cannot send itself (toolbar buttons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialCombo {
    CtrlAltDel = 1,
    Windows = 2,
    AltTab = 3,
}

impl SpecialCombo {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::CtrlAltDel => 1,
            Self::Windows => 2,
            Self::AltTab => 3,
        }
    }
}

impl std::fmt::Debug for BrowserMessage {
    /// Never shows typed text, clipboard contents or passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key { down, code, .. } => write!(f, "Key {{ down: {down}, code: {code:?} }}"),
            Self::Unicode { text } => write!(f, "Unicode {{ {} chars }}", text.chars().count()),
            Self::Mouse { x, y, buttons } => write!(f, "Mouse {{ {x}, {y}, {buttons:#x} }}"),
            Self::Wheel { dx, dy } => write!(f, "Wheel {{ {dx}, {dy} }}"),
            Self::Clipboard { text } => write!(f, "Clipboard {{ {} bytes }}", text.len()),
            Self::Resize { width, height } => write!(f, "Resize {{ {width}x{height} }}"),
            Self::Ack { seq } => write!(f, "Ack {{ {seq} }}"),
            Self::SyncLocks { locks } => write!(f, "SyncLocks {{ {locks:#x} }}"),
            Self::Credentials(c) => write!(f, "Credentials {{ {:?} }}", c.username),
            Self::Special { combo } => write!(f, "Special {{ {combo:?} }}"),
            Self::ReleaseAll => f.write_str("ReleaseAll"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_reports_round_trip() {
        for what in [
            RacConnectionEvent::Started {
                security: "nla".into(),
                server_key_sha256: "ab".repeat(32),
                width: 1280,
                height: 800,
            },
            RacConnectionEvent::Failed {
                reason: EndReason::AuthFailed,
                detail: "wrong password".into(),
            },
            RacConnectionEvent::Ended {
                reason: EndReason::User,
                duration_seconds: 5,
                bytes_from_server: 1,
                bytes_to_browser: 2,
                clipboard_transfers: 3,
            },
        ] {
            let report = RacConnectionReport {
                connection_id: "c1".into(),
                what,
            };
            let text = serde_json::to_string(&report).expect("json");
            assert_eq!(
                serde_json::from_str::<RacConnectionReport>(&text).expect("parses"),
                report,
                "{text}"
            );
        }
    }

    #[test]
    fn refusals_are_snake_case() {
        let refused = GrantRefused {
            reason: GrantRefusal::LimitReached,
            detail: String::new(),
        };
        assert_eq!(
            serde_json::to_value(&refused).expect("json")["reason"],
            "limit_reached"
        );
    }
}
