//! Whether a request may pass, without I/O: the provider's session cookie (opened, not expired,
//! not revoked), paths that skip login, and what to answer otherwise for each kind of caller
//! (nginx wants 401, the other reverse proxies and proxy mode a redirect to the login start).

use super::forward::Flavour;
use super::session::{OpenError, Session, open_session};
use super::state::{ProviderView, ProxyState};
use std::sync::Arc;

/// What the cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A live session; `reseal` when it was sealed with an older key.
    Session { session: Arc<Session>, reseal: bool },
    /// No usable session.
    Anonymous(Anonymous),
}

/// Why there is no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    NoCookie,
    Rejected(OpenError),
    Revoked,
}

impl Anonymous {
    /// The label of `redoubt_proxy_sessions_rejected_total{reason}`; `None` for no cookie.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Self::NoCookie => None,
            Self::Rejected(e) => Some(e.label()),
            Self::Revoked => Some("revoked"),
        }
    }
}

/// Opens the provider's cookie (`cookie`: its value, if the request has one).
pub fn check_session(
    state: &ProxyState,
    provider: &ProviderView,
    cookie: Option<&str>,
    now_ms: i64,
) -> Check {
    let Some(cookie) = cookie else {
        return Check::Anonymous(Anonymous::NoCookie);
    };
    match open_session(&state.keys, &provider.session_aad, cookie, now_ms) {
        Ok(opened) => still_good(state, Arc::new(opened.value), opened.stale_key, now_ms),
        Err(error) => Check::Anonymous(Anonymous::Rejected(error)),
    }
}

/// Whether an opened session still holds at `now_ms`: not expired, not revoked.
pub fn still_good(state: &ProxyState, session: Arc<Session>, reseal: bool, now_ms: i64) -> Check {
    if session.exp.saturating_mul(1000) <= now_ms {
        return Check::Anonymous(Anonymous::Rejected(OpenError::Expired));
    }
    if state
        .revocations
        .ends(session.user_id, &session.sid, session.auth_time_ms)
    {
        return Check::Anonymous(Anonymous::Revoked);
    }
    Check::Session { session, reseal }
}

/// The answer to a forward-auth or proxied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Pass, with the identity when there is a session.
    Allow {
        session: Option<Arc<Session>>,
        reseal: bool,
    },
    /// 401 (nginx).
    Unauthorized,
    /// 302 to the login start ([`start_url`]).
    Login,
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Forward(Flavour),
    Proxy,
}

/// Decides from the session check, the skip paths and the caller.
pub fn decide(
    provider: &ProviderView,
    check: Check,
    caller: Caller,
    path_and_query: &str,
) -> Verdict {
    match check {
        Check::Session { session, reseal } => Verdict::Allow {
            session: Some(session),
            reseal,
        },
        Check::Anonymous(_) if provider.skips(path_and_query) => Verdict::Allow {
            session: None,
            reseal: false,
        },
        Check::Anonymous(_) => match caller {
            Caller::Forward(flavour) if !flavour.redirects() => Verdict::Unauthorized,
            _ => Verdict::Login,
        },
    }
}

/// `<origin>/outpost.redoubt/start?rd=<url>`: `origin` is where the outpost's endpoints answer
/// for the user, `rd` where they were going.
pub fn start_url(origin: &str, rd: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("rd", rd)
        .finish();
    format!("{origin}/outpost.redoubt/start?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::session::tests::session;
    use crate::proxy::session::{Keyring, seal_session, session_aad};
    use crate::proxy::state::tests::sample;

    fn cookie(state: &ProxyState, provider: &ProviderView, s: &Session) -> String {
        seal_session(
            &state.keys,
            &session_aad(provider.id, &provider.cookie_name),
            s,
            [3; 24],
        )
        .expect("seal")
    }

    #[test]
    fn sessions_open_unless_revoked_expired_or_forged() {
        let state = sample();
        let p = &state.providers[0];
        let good = cookie(&state, p, &session(100));
        assert!(matches!(
            check_session(&state, p, Some(&good), 1_000),
            Check::Session { reseal: false, .. }
        ));
        assert_eq!(
            check_session(&state, p, None, 0),
            Check::Anonymous(Anonymous::NoCookie)
        );
        assert_eq!(
            check_session(&state, p, Some(&good), 100_000),
            Check::Anonymous(Anonymous::Rejected(OpenError::Expired))
        );
        // Another provider's cookie does not open here.
        let other = cookie(&state, &state.providers[1], &session(100));
        assert_eq!(
            check_session(&state, p, Some(&other), 0),
            Check::Anonymous(Anonymous::Rejected(OpenError::Forged))
        );
        // User 7's session "gone" was signed out; user 8 lost every session up to 500 ms.
        let mut signed_out = session(100);
        signed_out.sid = "gone".into();
        let c = cookie(&state, p, &signed_out);
        assert_eq!(
            check_session(&state, p, Some(&c), 0),
            Check::Anonymous(Anonymous::Revoked)
        );
        let mut disabled = session(100);
        disabled.user_id = 8;
        disabled.auth_time_ms = 400;
        let c = cookie(&state, p, &disabled);
        assert_eq!(
            check_session(&state, p, Some(&c), 0),
            Check::Anonymous(Anonymous::Revoked)
        );
        disabled.auth_time_ms = 600;
        let c = cookie(&state, p, &disabled);
        assert!(matches!(
            check_session(&state, p, Some(&c), 0),
            Check::Session { .. }
        ));
    }

    #[test]
    fn older_keys_ask_for_a_reseal() {
        let state = sample();
        let p = &state.providers[0];
        let (old, _) = Keyring::new(&[crate::proxy::session::tests::key(1, 1)]);
        let c = seal_session(
            &old,
            &session_aad(p.id, &p.cookie_name),
            &session(100),
            [1; 24],
        )
        .expect("seal");
        assert!(matches!(
            check_session(&state, p, Some(&c), 0),
            Check::Session { reseal: true, .. }
        ));
    }

    #[test]
    fn verdicts_per_caller() {
        let state = sample();
        let p = &state.providers[0];
        let anon = Check::Anonymous(Anonymous::NoCookie);
        assert_eq!(
            decide(p, anon.clone(), Caller::Forward(Flavour::Nginx), "/a?b=c"),
            Verdict::Unauthorized
        );
        for caller in [
            Caller::Proxy,
            Caller::Forward(Flavour::Traefik),
            Caller::Forward(Flavour::Caddy),
            Caller::Forward(Flavour::Envoy),
        ] {
            assert_eq!(decide(p, anon.clone(), caller, "/a?b=c"), Verdict::Login);
        }
        assert_eq!(
            start_url("https://app.example.com", "https://app.example.com/a?b=c"),
            "https://app.example.com/outpost.redoubt/start?rd=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3Dc"
        );
        assert_eq!(
            decide(p, anon, Caller::Proxy, "/public/x"),
            Verdict::Allow {
                session: None,
                reseal: false
            }
        );
        let live = Check::Session {
            session: Arc::new(session(100)),
            reseal: true,
        };
        assert_eq!(
            decide(p, live, Caller::Forward(Flavour::Nginx), "/"),
            Verdict::Allow {
                session: Some(Arc::new(session(100))),
                reseal: true
            }
        );
    }
}
