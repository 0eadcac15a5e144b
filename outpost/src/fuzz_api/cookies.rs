//! The proxy's cookies: the session cookie and the login state, read from `Cookie` headers
//! ([`find_cookie`]) and opened with the state's keyring ([`check_session`], [`open_state`]).
//! [`ProxyCookieTarget::run_header`] takes the bytes of `Cookie` headers (one per line);
//! [`ProxyCookieTarget::run_sealed`] seals the bytes as a cookie's plaintext with the newest key
//! first, so the parsing behind the authentication tag is reached too.
//!
//! Invariants: no panic; a value read is made of cookie octets only; nothing but the genuine
//! cookie (or state) opens, and it opens as what was sealed; a sealed plaintext opens only
//! as a well-formed, unexpired session or state of the right provider.

use crate::proxy::decide::{Check, check_session};
use crate::proxy::fixtures::{sample, session};
use crate::proxy::headers::find_cookie;
use crate::proxy::login::state_cookie_name;
use crate::proxy::session::{
    LoginState, Session, open_session, open_state, seal_session, seal_state, session_aad, state_aad,
};
use crate::proxy::state::ProxyState;
use http::{HeaderMap, HeaderValue, header::COOKIE};

/// When the fuzz inputs arrive, Unix milliseconds (the genuine session and state are live).
const NOW_MS: i64 = 2_000_000_000_000;
/// The login binding of the genuine state.
const BINDING: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// The cookie target's fixed state: the sample proxy state, a genuine session cookie for its
/// first provider and a genuine login state.
pub struct ProxyCookieTarget {
    state: ProxyState,
    session: Session,
    cookie: String,
    login: LoginState,
    sealed_login: String,
}

impl Default for ProxyCookieTarget {
    fn default() -> Self {
        let state = sample();
        let provider = &state.providers[0];
        let session = session(4_000_000_000);
        let cookie = seal_session(&state.keys, &provider.session_aad, &session, [5; 24])
            .expect("the sample keys seal");
        let login = LoginState {
            provider_id: provider.id,
            rd: "https://app.example.com/".into(),
            redirect_uri: "https://app.example.com/outpost.redoubt/callback".into(),
            verifier: "v".repeat(43),
            nonce: "n".repeat(43),
            binding: BINDING.into(),
            exp: 4_000_000_000_000,
        };
        let sealed_login = seal_state(&state.keys, &login, [6; 24]).expect("the sample keys seal");
        Self {
            state,
            session,
            cookie,
            login,
            sealed_login,
        }
    }
}

impl ProxyCookieTarget {
    /// The genuine session cookie and login state, for seeds: `(name, value)` pairs.
    pub fn genuine(&self) -> Vec<(String, String)> {
        let provider = &self.state.providers[0];
        vec![
            (provider.cookie_name.clone(), self.cookie.clone()),
            (
                state_cookie_name(provider.id, BINDING),
                self.sealed_login.clone(),
            ),
        ]
    }

    /// Reads every provider's session cookie and the login state cookie from `bytes`, one
    /// `Cookie` header per line, and tries to open them.
    pub fn run_header(&self, bytes: &[u8]) {
        let mut headers = HeaderMap::new();
        for line in bytes.split(|b| *b == b'\n') {
            if let Ok(value) = HeaderValue::from_bytes(line) {
                headers.append(COOKIE, value);
            }
        }
        for provider in &self.state.providers {
            let value = find_cookie(&headers, &provider.cookie_name);
            if let Some(value) = value {
                assert!(
                    value.bytes().all(is_cookie_octet),
                    "a cookie value of cookie octets only: {value:?}"
                );
            }
            if let Check::Session { session, .. } =
                check_session(&self.state, provider, value, NOW_MS)
            {
                assert_eq!(
                    value,
                    Some(self.cookie.as_str()),
                    "only the genuine cookie passes"
                );
                assert_eq!(*session, self.session, "the genuine cookie opens as sealed");
            }
            let state_name = state_cookie_name(provider.id, BINDING);
            if let Some(value) = find_cookie(&headers, &state_name)
                && let Ok(login) = open_state(&self.state.keys, provider.id, value, NOW_MS)
            {
                assert_eq!(value, self.sealed_login, "only the genuine state opens");
                assert_eq!(login, self.login, "the genuine state opens as sealed");
            }
        }
    }

    /// Seals `plaintext` as a session cookie and as a login state of the first provider, then
    /// opens both.
    pub fn run_sealed(&self, plaintext: &[u8]) {
        let provider = &self.state.providers[0];
        if let Some(cookie) = self
            .state
            .keys
            .seal(&provider.session_aad, plaintext, [7; 24])
            && let Ok(opened) =
                open_session(&self.state.keys, &provider.session_aad, &cookie, NOW_MS)
        {
            assert!(
                opened.value.exp.saturating_mul(1000) > NOW_MS,
                "an expired session never opens: {opened:?}",
                opened = opened.value
            );
            assert!(!opened.stale_key, "sealed with the newest key");
            assert_eq!(
                session_aad(provider.id, &provider.cookie_name),
                provider.session_aad
            );
        }
        if let Some(sealed) = self
            .state
            .keys
            .seal(&state_aad(provider.id), plaintext, [8; 24])
            && let Ok(login) = open_state(&self.state.keys, provider.id, &sealed, NOW_MS)
        {
            assert_eq!(
                login.provider_id, provider.id,
                "a state opens for its provider only"
            );
            assert!(login.exp > NOW_MS, "an expired state never opens");
        }
    }
}

/// RFC 6265 section 4.1.1 `cookie-octet`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}
