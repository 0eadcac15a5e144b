//! What proxy (and RAC) outposts need to keep browser sessions without a session store: the keys
//! that seal session cookies and the revocations that end sessions before they expire.
//!
//! Keys are derived by the core from its secret, per outpost and per key generation, and reach
//! the outpost in its configuration. The outpost seals new cookies with the first (newest) key
//! and opens cookies sealed with any listed key, so a rotation logs nobody out. Revocations are
//! kept by the core until every session they could end has expired, and are part of every
//! snapshot, so an outpost that restarts (or a second replica) honours them too.

use serde::{Deserialize, Serialize};

/// Session state an outpost holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// Cookie-sealing keys, newest first. Seal with the first; open with any.
    pub keys: Vec<SessionKey>,
    /// Revocations still in force, oldest first.
    #[serde(default)]
    pub revocations: Vec<SessionRevocation>,
    /// The core's URL as browsers reach it (login, authorize, end session), when it differs from
    /// the URL the outpost uses to reach the core. `None`: the same URL.
    #[serde(default)]
    pub core_public_url: Option<String>,
}

/// One cookie-sealing key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionKey {
    /// Key generation; written into every cookie sealed with it.
    pub id: u32,
    /// 32 bytes, base64url without padding.
    pub key: String,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Sessions that must end: every session of `user_id` that began before `revoked_at_ms`,
/// or only the session `session_id` (a sign-out) when it is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRevocation {
    pub user_id: i64,
    /// The core login session (`sid` claim) that was signed out; `None` ends all of the user's
    /// sessions (disabled, deleted, password or TOTP changed).
    #[serde(default)]
    pub session_id: Option<String>,
    /// When, in Unix milliseconds. A session whose login (`auth_time_ms`) is before this ends.
    pub revoked_at_ms: i64,
}

impl SessionRevocation {
    /// Whether this revocation ends the session `session_id` of `user_id` that logged in at
    /// `auth_time_ms`.
    pub fn ends(&self, user_id: i64, session_id: &str, auth_time_ms: i64) -> bool {
        if self.user_id != user_id {
            return false;
        }
        match &self.session_id {
            Some(sid) => sid == session_id,
            None => auth_time_ms < self.revoked_at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_wide_revocation_ends_only_older_logins() {
        let r = SessionRevocation {
            user_id: 7,
            session_id: None,
            revoked_at_ms: 1_000,
        };
        assert!(r.ends(7, "a", 999));
        assert!(!r.ends(7, "a", 1_000));
        assert!(!r.ends(7, "a", 1_001));
        assert!(!r.ends(8, "a", 10));
    }

    #[test]
    fn sign_out_ends_only_that_session() {
        let r = SessionRevocation {
            user_id: 7,
            session_id: Some("s1".into()),
            revoked_at_ms: 1_000,
        };
        assert!(r.ends(7, "s1", 5_000));
        assert!(!r.ends(7, "s2", 10));
    }

    #[test]
    fn keys_never_print() {
        let k = SessionKey {
            id: 3,
            key: "secret-material".into(),
        };
        assert!(!format!("{k:?}").contains("secret-material"));
    }
}
