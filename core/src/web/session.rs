//! The core login session: the `redoubt_session` cookie, sealed with XChaCha20-Poly1305 under a
//! key derived from the secret key (`web-session`). It holds a random session id (`sid`), the
//! user id, the login time in milliseconds and the expiry; nothing is stored server-side.
//!
//! A session counts only while the user exists and is active and no revocation ends it
//! (`Store::session_revoked`): signing out revokes its `sid`, and changing the password or TOTP,
//! disabling or deleting the user revokes every older session.

use crate::auth::seal::Sealer;

/// The session cookie.
pub const COOKIE: &str = "redoubt_session";
/// What sealed session values are bound to.
const CONTEXT: &[u8] = b"redoubt web session v1";

/// The contents of a session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Random session id, 128 bits base64url; the `sid` of tokens issued in it.
    pub sid: String,
    pub user_id: i64,
    /// When the user logged in, Unix milliseconds.
    pub auth_time_ms: i64,
    /// When the cookie stops being accepted, Unix seconds.
    pub expires_at: i64,
}

/// Why a cookie was not a session.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("session cookie does not open")]
    Forged,
    #[error("session cookie is malformed")]
    Malformed,
    #[error("session has expired")]
    Expired,
    #[error("no randomness available")]
    Random,
}

/// A fresh session id.
pub fn new_sid() -> Result<String, SessionError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| SessionError::Random)?;
    Ok(data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

impl Session {
    /// Seals the session into a cookie value.
    pub fn seal(&self, sealer: &Sealer) -> Result<String, SessionError> {
        let plain = format!(
            "{}|{}|{}|{}",
            self.sid, self.user_id, self.auth_time_ms, self.expires_at
        );
        sealer
            .seal(plain.as_bytes(), CONTEXT)
            .map_err(|_| SessionError::Random)
    }

    /// Opens a cookie value; expired sessions (at `now`, seconds) are refused.
    pub fn open(sealer: &Sealer, value: &str, now: i64) -> Result<Self, SessionError> {
        let plain = sealer
            .open(value, CONTEXT)
            .map_err(|_| SessionError::Forged)?;
        let text = String::from_utf8(plain).map_err(|_| SessionError::Malformed)?;
        let mut parts = text.split('|');
        let (Some(sid), Some(user_id), Some(auth_time_ms), Some(expires_at), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SessionError::Malformed);
        };
        let session = Self {
            sid: sid.to_owned(),
            user_id: user_id.parse().map_err(|_| SessionError::Malformed)?,
            auth_time_ms: auth_time_ms.parse().map_err(|_| SessionError::Malformed)?,
            expires_at: expires_at.parse().map_err(|_| SessionError::Malformed)?,
        };
        if session.sid.is_empty() {
            return Err(SessionError::Malformed);
        }
        if session.expires_at <= now {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_expiry_and_forgery() {
        let sealer = Sealer::new(&[1u8; 32]);
        let session = Session {
            sid: new_sid().expect("sid"),
            user_id: 7,
            auth_time_ms: 1_000_123,
            expires_at: 2_000,
        };
        let cookie = session.seal(&sealer).expect("seal");
        assert_eq!(Session::open(&sealer, &cookie, 1_999), Ok(session));
        assert_eq!(
            Session::open(&sealer, &cookie, 2_000),
            Err(SessionError::Expired)
        );
        assert_eq!(
            Session::open(&Sealer::new(&[2u8; 32]), &cookie, 0),
            Err(SessionError::Forged)
        );
        assert_eq!(
            Session::open(&sealer, "garbage", 0),
            Err(SessionError::Forged)
        );
        let other_context = sealer.seal(b"x|1|2|3", b"other").expect("seal");
        assert_eq!(
            Session::open(&sealer, &other_context, 0),
            Err(SessionError::Forged)
        );
    }
}
