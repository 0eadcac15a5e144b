//! Bodies of the outpost-facing credential check (`POST /api/v1/outpost/credentials/verify`).

use serde::{Deserialize, Serialize};

/// Asks the core to verify a user's credentials for one of the outpost's providers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyCredentialsRequest {
    pub provider_id: i64,
    pub username: String,
    /// The password; `password;123456` carries a TOTP code when `totp_code` is absent.
    pub password: String,
    #[serde(default)]
    pub totp_code: Option<String>,
    /// The end client's address as the outpost saw it (LDAP client, browser), or its
    /// identity as the NAS reports it (RADIUS Calling-Station-Id). Failures count against it
    /// for the brute-force limit.
    #[serde(default)]
    pub source_address: Option<String>,
    /// More about where the request came from, recorded with the event (e.g. the RADIUS NAS's
    /// address and identifier). At most [`MAX_DETAIL_BYTES`] serialized.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Largest `details` of a credential check, serialized.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// The verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum VerifyCredentialsResponse {
    Success { user: VerifiedUser },
    Failure { reason: FailureReason },
}

/// Why a check failed; deliberately coarse, so it helps no attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Unknown user, wrong password or code, or disabled user.
    InvalidCredentials,
    /// The password was right; send it again with a TOTP code.
    MfaRequired,
    /// The user may not use the provider's application.
    AccessDenied,
    /// Too many recent failures for the user or the source address.
    RateLimited,
}

/// Who the user is, as the outpost needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedUser {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    /// Every group the user belongs to, directly or through nesting.
    pub groups: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// A one-time code was checked: the verdict is for this request only and must never be
    /// cached (the outpost's copy of the directory may not know yet that the user has TOTP).
    #[serde(default)]
    pub used_totp: bool,
}

/// Asks the core to change a user's password, for a user who proves the old one through one of
/// the outpost's providers (LDAP Password Modify).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub provider_id: i64,
    pub username: String,
    /// The current password; `password;123456` carries a TOTP code when the user has one.
    pub old_password: String,
    pub new_password: String,
    #[serde(default)]
    pub source_address: Option<String>,
}

/// The verdict on a password change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ChangePasswordResponse {
    /// The new password is set; the user's credential epoch moved on.
    Changed,
    /// The old credentials did not check out.
    Failure { reason: FailureReason },
    /// The new password is not acceptable; `message` says why, for the user.
    Rejected { message: String },
}

/// Events an outpost records in the core's event log (RADIUS accounting, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutpostEventsRequest {
    pub events: Vec<OutpostEvent>,
}

/// The event a proxy outpost records when a reverse proxy in front of it sends a request it
/// cannot place (no original URL, a host no provider serves): a configuration error to fix, shown
/// to the user as an error page instead of a redirect loop.
pub const PROXY_MISCONFIGURED: &str = "proxy_misconfigured";

/// The event an outpost records for every login it answered from its credential cache, fresh
/// or offline, so the core's log shows each login whoever answered it.
pub const CACHED_LOGIN: &str = "cached_login";

/// The event an outpost records for every login it refused while the core was unreachable
/// (no usable cached credential, or a pair the core had locked), so the core's log shows the
/// attempts made during an outage too. `detail.reason` says which.
pub const OFFLINE_REFUSAL: &str = "offline_refusal";

/// Most events one request may carry.
pub const MAX_EVENTS_PER_REQUEST: usize = 500;

/// One event from an outpost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutpostEvent {
    /// One of the outpost's providers; 0 for [`PROXY_MISCONFIGURED`] when the request matched
    /// none of them.
    pub provider_id: i64,
    /// What happened, e.g. `radius_accounting`.
    pub action: String,
    /// The user it concerns, by name, if any.
    #[serde(default)]
    pub username: Option<String>,
    /// The end client's (or NAS's) address.
    #[serde(default)]
    pub source_address: Option<String>,
    /// Details, kept as given.
    #[serde(default)]
    pub detail: serde_json::Map<String, serde_json::Value>,
    /// 128 random bits in hex, made when the outpost queued the event: the core stores an
    /// event id once, so a batch delivered twice (the answer lost) is recorded once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When it happened (seconds since the Unix epoch): the RADIUS Event-Timestamp where the
    /// NAS sent one, else the outpost's clock when it queued the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_samples_round_trip() {
        let failure = r#"{"result":"failure","reason":"mfa_required"}"#;
        let parsed: VerifyCredentialsResponse = serde_json::from_str(failure).expect("parse");
        assert_eq!(
            parsed,
            VerifyCredentialsResponse::Failure {
                reason: FailureReason::MfaRequired
            }
        );
        assert_eq!(serde_json::to_string(&parsed).expect("encode"), failure);
        let request = r#"{"provider_id":3,"username":"alice","password":"pw;123456"}"#;
        let parsed: VerifyCredentialsRequest = serde_json::from_str(request).expect("parse");
        assert_eq!(parsed.totp_code, None);
    }
}
