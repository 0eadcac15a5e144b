//! Sealed values: the session cookie and the login `state`. XChaCha20-Poly1305 under the keys the
//! core hands out (newest first); the key id travels in the clear so any listed key opens what it
//! sealed and a rotation logs nobody out. The associated data binds a value to its purpose, its
//! provider and (for sessions) its cookie name, so a value cannot be replayed elsewhere.
//!
//! Pure: time and randomness are passed in. Anything that does not open, names an unknown key,
//! has expired or is oversized is rejected with a reason; nothing here panics on input.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::BASE64URL_NOPAD;
use redoubt_outpost_proto::session::SessionKey;
use serde::{Deserialize, Serialize};

/// Longest sealed value accepted (cookies are at most 4 KiB in browsers).
pub const MAX_SEALED_LEN: usize = 6 * 1024;
/// Longest sealed session cookie value set; above it the ID token is left out.
pub const MAX_COOKIE_VALUE_LEN: usize = 3800;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why a sealed value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("malformed")]
    Malformed,
    #[error("sealed with a key this outpost does not hold")]
    UnknownKey,
    #[error("does not authenticate")]
    Forged,
    #[error("expired")]
    Expired,
}

impl OpenError {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::Forged => "forged",
            Self::Expired => "expired",
        }
    }
}

/// A key that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session key {id} is not 32 bytes of base64url")]
pub struct BadKey {
    pub id: u32,
}

/// The cookie-sealing keys, newest first.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Vec<(u32, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "ids",
                &self.keys.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// Decodes the configured keys; unusable ones are skipped and returned.
    pub fn new(keys: &[SessionKey]) -> (Self, Vec<BadKey>) {
        let mut ring = Vec::with_capacity(keys.len());
        let mut bad = Vec::new();
        for key in keys {
            let bytes = BASE64URL_NOPAD
                .decode(key.key.trim_end_matches('=').as_bytes())
                .ok()
                .filter(|b| b.len() == 32);
            match bytes {
                Some(bytes) => match XChaCha20Poly1305::new_from_slice(&bytes) {
                    Ok(cipher) => ring.push((key.id, cipher)),
                    Err(_) => bad.push(BadKey { id: key.id }),
                },
                None => bad.push(BadKey { id: key.id }),
            }
        }
        (Self { keys: ring }, bad)
    }

    /// Whether there is a key to seal with.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id new values are sealed with.
    pub fn newest_id(&self) -> Option<u32> {
        self.keys.first().map(|(id, _)| *id)
    }

    /// Seals `plaintext` with the newest key: `<key id>.<base64url(nonce ‖ ciphertext)>`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Option<String> {
        let (id, cipher) = self.keys.first()?;
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .ok()?;
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        Some(format!("{id}.{}", BASE64URL_NOPAD.encode(&raw)))
    }

    /// Opens a value sealed by [`Keyring::seal`] with any listed key; also says whether that was
    /// the newest key (otherwise the caller re-seals).
    pub fn open(&self, aad: &[u8], text: &str) -> Result<(Vec<u8>, bool), OpenError> {
        if text.len() > MAX_SEALED_LEN {
            return Err(OpenError::Malformed);
        }
        let (id, body) = text.split_once('.').ok_or(OpenError::Malformed)?;
        if id.is_empty() || id.len() > 10 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OpenError::Malformed);
        }
        let id_text = id;
        let id: u32 = id.parse().map_err(|_| OpenError::Malformed)?;
        if id.to_string() != id_text {
            // One spelling per value: no leading zeros.
            return Err(OpenError::Malformed);
        }
        let raw = BASE64URL_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| OpenError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (position, (_, cipher)) = self
            .keys
            .iter()
            .enumerate()
            .find(|(_, (k, _))| *k == id)
            .ok_or(OpenError::UnknownKey)?;
        let (nonce, sealed) = raw
            .split_at_checked(NONCE_LEN)
            .ok_or(OpenError::Malformed)?;
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| OpenError::Forged)?;
        Ok((plain, position == 0))
    }
}

/// What a session cookie holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The core login session (`sid`).
    #[serde(rename = "s")]
    pub sid: String,
    #[serde(rename = "u")]
    pub user_id: i64,
    #[serde(rename = "n")]
    pub username: String,
    #[serde(rename = "dn", default)]
    pub name: String,
    #[serde(rename = "e", default)]
    pub email: String,
    #[serde(rename = "g", default)]
    pub groups: Vec<String>,
    /// When the user logged in at the core, Unix milliseconds.
    #[serde(rename = "at")]
    pub auth_time_ms: i64,
    /// Sealed at, Unix seconds.
    pub iat: i64,
    /// Ends at, Unix seconds.
    pub exp: i64,
    /// The raw ID token, for `X-Redoubt-Jwt`; left out when the cookie would be too large.
    #[serde(rename = "j", default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// `Basic ...` for the upstream when the provider sets `basic_auth` (from the user's
    /// attributes, handed over by the core with the tokens); sealed like the rest.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub upstream_authorization: Option<String>,
}

/// The associated data of a provider's session cookie.
pub fn session_aad(provider_id: i64, cookie_name: &str) -> Vec<u8> {
    format!("redoubt-proxy-session\0{provider_id}\0{cookie_name}").into_bytes()
}

/// The associated data of a provider's login state.
pub fn state_aad(provider_id: i64) -> Vec<u8> {
    format!("redoubt-proxy-state\0{provider_id}").into_bytes()
}

/// Seals a session; `None` without a key. When the cookie would be too large the ID token is
/// dropped (the identity headers still work, only `X-Redoubt-Jwt` is missing).
pub fn seal_session(
    keys: &Keyring,
    aad: &[u8],
    session: &Session,
    nonce: [u8; NONCE_LEN],
) -> Option<String> {
    let json = serde_json::to_vec(session).ok()?;
    let sealed = keys.seal(aad, &json, nonce)?;
    if sealed.len() <= MAX_COOKIE_VALUE_LEN || session.jwt.is_none() {
        return Some(sealed);
    }
    let lean = Session {
        jwt: None,
        ..session.clone()
    };
    keys.seal(aad, &serde_json::to_vec(&lean).ok()?, nonce)
}

/// An opened session and whether it must be re-sealed with the newest key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<T> {
    pub value: T,
    pub stale_key: bool,
}

/// Opens a session cookie; expired sessions are refused.
pub fn open_session(
    keys: &Keyring,
    aad: &[u8],
    text: &str,
    now_ms: i64,
) -> Result<Opened<Session>, OpenError> {
    let (plain, newest) = keys.open(aad, text)?;
    let session: Session = serde_json::from_slice(&plain).map_err(|_| OpenError::Malformed)?;
    if session.exp.saturating_mul(1000) <= now_ms {
        return Err(OpenError::Expired);
    }
    Ok(Opened {
        value: session,
        stale_key: !newest,
    })
}

/// What the `state` parameter of a login carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// The provider the login is for.
    #[serde(rename = "p")]
    pub provider_id: i64,
    /// Where to go afterwards (already checked against the provider's hosts).
    pub rd: String,
    /// The redirect URI given to the authorization endpoint (the token request repeats it).
    #[serde(rename = "cb")]
    pub redirect_uri: String,
    /// PKCE code verifier.
    #[serde(rename = "v")]
    pub verifier: String,
    pub nonce: String,
    /// Also in the state cookie: the state is only good in the browser that started the login.
    #[serde(rename = "c")]
    pub binding: String,
    /// Unix milliseconds.
    pub exp: i64,
}

/// Seals a login state.
pub fn seal_state(keys: &Keyring, state: &LoginState, nonce: [u8; NONCE_LEN]) -> Option<String> {
    keys.seal(
        &state_aad(state.provider_id),
        &serde_json::to_vec(state).ok()?,
        nonce,
    )
}

/// Opens a login state for `provider_id`; expired states are refused.
pub fn open_state(
    keys: &Keyring,
    provider_id: i64,
    text: &str,
    now_ms: i64,
) -> Result<LoginState, OpenError> {
    let (plain, _) = keys.open(&state_aad(provider_id), text)?;
    let state: LoginState = serde_json::from_slice(&plain).map_err(|_| OpenError::Malformed)?;
    if state.provider_id != provider_id {
        return Err(OpenError::Forged);
    }
    if state.exp <= now_ms {
        return Err(OpenError::Expired);
    }
    Ok(state)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
pub(crate) mod tests {
    use super::*;

    pub(crate) use crate::proxy::fixtures::{key, session};

    #[test]
    fn seals_and_opens_and_rotation_keeps_old_cookies() {
        let (old, bad) = Keyring::new(&[key(1, 1)]);
        assert!(bad.is_empty());
        let aad = session_aad(3, "redoubt_proxy_3");
        let cookie = seal_session(&old, &aad, &session(100), [9; 24]).expect("seal");
        assert!(cookie.starts_with("1."));
        let opened = open_session(&old, &aad, &cookie, 50_000).expect("open");
        assert_eq!(opened.value, session(100));
        assert!(!opened.stale_key);
        let (rotated, _) = Keyring::new(&[key(2, 2), key(1, 1)]);
        let opened = open_session(&rotated, &aad, &cookie, 50_000).expect("open old");
        assert!(opened.stale_key, "sealed with an older key: re-seal");
        let (dropped, _) = Keyring::new(&[key(2, 2)]);
        assert_eq!(
            open_session(&dropped, &aad, &cookie, 50_000),
            Err(OpenError::UnknownKey)
        );
    }

    #[test]
    fn expired_tampered_and_misbound_cookies_are_refused() {
        let (keys, _) = Keyring::new(&[key(1, 1)]);
        let aad = session_aad(3, "redoubt_proxy_3");
        let cookie = seal_session(&keys, &aad, &session(100), [9; 24]).expect("seal");
        assert_eq!(
            open_session(&keys, &aad, &cookie, 100_000),
            Err(OpenError::Expired)
        );
        let other = session_aad(4, "redoubt_proxy_4");
        assert_eq!(
            open_session(&keys, &other, &cookie, 0),
            Err(OpenError::Forged)
        );
        let mut bytes = cookie.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert_eq!(
            open_session(&keys, &aad, &tampered, 0),
            Err(OpenError::Forged)
        );
        let (wrong, _) = Keyring::new(&[key(1, 2)]);
        assert_eq!(
            open_session(&wrong, &aad, &cookie, 0),
            Err(OpenError::Forged)
        );
        for junk in ["", ".", "1.", "x.abc", "1.!!", "99999999999.AAAA", "1.AAAA"] {
            assert!(open_session(&keys, &aad, junk, 0).is_err(), "{junk}");
        }
    }

    #[test]
    fn oversized_sessions_drop_the_id_token() {
        let (keys, _) = Keyring::new(&[key(1, 1)]);
        let aad = session_aad(3, "c");
        let mut big = session(100);
        big.jwt = Some("x".repeat(4000));
        let cookie = seal_session(&keys, &aad, &big, [1; 24]).expect("seal");
        assert!(cookie.len() <= MAX_COOKIE_VALUE_LEN);
        let opened = open_session(&keys, &aad, &cookie, 0).expect("open");
        assert_eq!(opened.value.jwt, None);
        assert_eq!(opened.value.username, "alice");
    }

    #[test]
    fn bad_keys_are_reported_and_skipped() {
        let (keys, bad) = Keyring::new(&[
            SessionKey {
                id: 5,
                key: "short".into(),
            },
            key(6, 1),
        ]);
        assert_eq!(bad, vec![BadKey { id: 5 }]);
        assert_eq!(keys.newest_id(), Some(6));
        let (none, _) = Keyring::new(&[]);
        assert!(none.is_empty());
        assert_eq!(none.seal(b"", b"x", [0; 24]), None);
    }

    #[test]
    fn states_bind_to_the_provider_and_expire() {
        let (keys, _) = Keyring::new(&[key(1, 1)]);
        let state = LoginState {
            provider_id: 3,
            rd: "https://app.example.com/x".into(),
            redirect_uri: "https://app.example.com/outpost.redoubt/callback".into(),
            verifier: "v".into(),
            nonce: "n".into(),
            binding: "b".into(),
            exp: 10_000,
        };
        let sealed = seal_state(&keys, &state, [2; 24]).expect("seal");
        assert_eq!(open_state(&keys, 3, &sealed, 9_999), Ok(state));
        assert_eq!(
            open_state(&keys, 3, &sealed, 10_000),
            Err(OpenError::Expired)
        );
        assert_eq!(open_state(&keys, 4, &sealed, 0), Err(OpenError::Forged));
        // A session cookie is not a state, and the other way round.
        let aad = session_aad(3, "c");
        assert!(open_session(&keys, &aad, &sealed, 0).is_err());
    }
}
