//! `Authorization` headers from API clients, for providers with `accept_header_auth`:
//! `Bearer <access token>` is checked by the core's introspection (the token must have been
//! issued to this provider's client), `Basic` by the shared credential check (users with TOTP
//! send `password;123456`). Answers are cached briefly under a keyed hash of the credentials
//! (never the credentials themselves), in a bounded map; cached identities still obey session
//! revocations (a password change or a disabled user ends them at once).

use super::session::Session;
use crate::core_api::{CoreApi, CoreCallError};
use crate::credential_cache::CredentialCache;
use crate::credential_check::{self, Verdict};
use data_encoding::BASE64;
use redoubt_outpost_proto::credentials::VerifyCredentialsRequest;
use redoubt_outpost_proto::oidc::{INTROSPECT_PATH, IntrospectionResponse};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest time an answer is reused.
const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Longest time a refusal is reused.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Most cached answers.
const MAX_ENTRIES: usize = 10_000;
/// Longest credentials looked at.
const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// Credentials from an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

impl Credentials {
    /// Parses an `Authorization` header value; `None` for other schemes or malformed values.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() > MAX_CREDENTIAL_LEN {
            return None;
        }
        let text = std::str::from_utf8(value).ok()?.trim();
        let (scheme, rest) = text.split_once(' ')?;
        let rest = rest.trim();
        if rest.is_empty() {
            return None;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Self::Bearer(rest.to_owned()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = BASE64.decode(rest.as_bytes()).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (username, password) = decoded.split_once(':')?;
            if username.is_empty() {
                return None;
            }
            return Some(Self::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        None
    }

    fn scheme(&self) -> &'static str {
        match self {
            Self::Bearer(_) => "bearer",
            Self::Basic { .. } => "basic",
        }
    }
}

/// The result of a header check.
#[derive(Debug, Clone)]
pub enum HeaderVerdict {
    /// Good credentials: who they belong to.
    Accepted(Arc<Session>),
    /// The core said no.
    Refused,
    /// The core could not be asked.
    Unavailable,
}

#[derive(Debug)]
struct Cached {
    until: Instant,
    identity: Option<Arc<Session>>,
}

/// The header checker with its cache.
pub struct HeaderAuth {
    key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// Never caches (proxy outposts hold no directory); the check itself is shared with LDAP.
    no_cache: CredentialCache,
}

impl HeaderAuth {
    /// A checker with a fresh per-process key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without randomness the cache key is still a hash; it is only never shared.
            key = *b"redoubt-proxy-header-auth-key-00";
        }
        Self {
            key,
            cache: Mutex::new(HashMap::new()),
            // Disabled: it never reads the clock.
            no_cache: CredentialCache::new(
                Duration::ZERO,
                Duration::ZERO,
                std::sync::Arc::new(redoubt_outpost_proto::clock::SystemClock),
            ),
        }
    }

    fn fingerprint(&self, provider_id: i64, credentials: &Credentials) -> [u8; 32] {
        // A keyed hash with a per-process secret key: equal only for equal credentials.
        let mut mac = Sha256::new();
        mac.update(self.key);
        mac.update(provider_id.to_le_bytes());
        mac.update(credentials.scheme().as_bytes());
        match credentials {
            Credentials::Bearer(token) => mac.update(token.as_bytes()),
            Credentials::Basic { username, password } => {
                mac.update((username.len() as u64).to_le_bytes());
                mac.update(username.as_bytes());
                mac.update(password.as_bytes());
            }
        }
        mac.finalize().into()
    }

    fn cached(&self, fingerprint: &[u8; 32], now: Instant) -> Option<Option<Arc<Session>>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(fingerprint)
            .filter(|c| c.until > now)
            .map(|c| c.identity.clone())
    }

    fn remember(&self, fingerprint: [u8; 32], identity: Option<Arc<Session>>, ttl: Duration) {
        let now = Instant::now();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, c| c.until > now);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(
            fingerprint,
            Cached {
                until: now + ttl,
                identity,
            },
        );
    }

    /// Checks `credentials` for the provider `provider_id` (client `client_id`).
    pub async fn check(
        &self,
        core: &CoreApi,
        provider_id: i64,
        client_id: &str,
        credentials: &Credentials,
        source: std::net::IpAddr,
        now_ms: i64,
    ) -> (HeaderVerdict, bool) {
        let fingerprint = self.fingerprint(provider_id, credentials);
        if let Some(hit) = self.cached(&fingerprint, Instant::now()) {
            let verdict = match hit {
                Some(identity) if identity.exp.saturating_mul(1000) > now_ms => {
                    HeaderVerdict::Accepted(identity)
                }
                _ => HeaderVerdict::Refused,
            };
            return (verdict, true);
        }
        let answer = match credentials {
            Credentials::Bearer(token) => self.introspect(core, client_id, token, now_ms).await,
            Credentials::Basic { username, password } => {
                self.verify(core, provider_id, username, password, source, now_ms)
                    .await
            }
        };
        match answer {
            Ok(Some((identity, ttl))) => {
                let identity = Arc::new(identity);
                self.remember(fingerprint, Some(identity.clone()), ttl);
                (HeaderVerdict::Accepted(identity), false)
            }
            Ok(None) => {
                self.remember(fingerprint, None, NEGATIVE_TTL);
                (HeaderVerdict::Refused, false)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot check an Authorization header with the core");
                (HeaderVerdict::Unavailable, false)
            }
        }
    }

    async fn introspect(
        &self,
        core: &CoreApi,
        client_id: &str,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<(Session, Duration)>, CoreCallError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let answer: IntrospectionResponse = core
            .post_oauth_form(INTROSPECT_PATH, client_id, form)
            .await?;
        Ok(session_from_introspection(answer, client_id, token, now_ms))
    }

    async fn verify(
        &self,
        core: &CoreApi,
        provider_id: i64,
        username: &str,
        password: &str,
        source: std::net::IpAddr,
        now_ms: i64,
    ) -> Result<Option<(Session, Duration)>, CoreCallError> {
        let request = VerifyCredentialsRequest {
            provider_id,
            username: username.to_owned(),
            password: password.to_owned(),
            totp_code: None,
            source_address: Some(source.to_string()),
            details: serde_json::Map::new(),
        };
        match credential_check::check(&self.no_cache, None, core, None, &request, true, |_| None)
            .await
        {
            Verdict::Accepted(user, _) => {
                let now = now_ms.div_euclid(1000);
                let ttl = if user.used_totp {
                    // A one-time code proves this request only.
                    Duration::ZERO
                } else {
                    POSITIVE_TTL
                };
                Ok(Some((
                    Session {
                        sid: String::new(),
                        user_id: user.id,
                        username: user.username.clone(),
                        name: user.name.clone(),
                        email: user.email.clone(),
                        groups: user.groups.clone(),
                        auth_time_ms: now_ms,
                        iat: now,
                        exp: now + POSITIVE_TTL.as_secs() as i64,
                        jwt: None,
                        upstream_authorization: None,
                    },
                    ttl,
                )))
            }
            Verdict::Refused(_) => Ok(None),
            Verdict::Unavailable(error) | Verdict::CoreError(error) => Err(error),
        }
    }

    /// The scheme label of `credentials`, for metrics.
    pub fn scheme_label(credentials: &Credentials) -> &'static str {
        credentials.scheme()
    }
}

impl Default for HeaderAuth {
    fn default() -> Self {
        Self::new()
    }
}

/// The identity of an introspected token: active, issued to `client_id`, naming a user.
pub fn session_from_introspection(
    answer: IntrospectionResponse,
    client_id: &str,
    token: &str,
    now_ms: i64,
) -> Option<(Session, Duration)> {
    if !answer.active || answer.client_id.as_deref() != Some(client_id) {
        return None;
    }
    let claims = answer.identity?;
    let user_id: i64 = claims.sub.parse().ok()?;
    let now = now_ms.div_euclid(1000);
    let exp = answer.exp.unwrap_or(now + POSITIVE_TTL.as_secs() as i64);
    if exp <= now {
        return None;
    }
    let ttl = Duration::from_secs(u64::try_from(exp - now).unwrap_or(0)).min(POSITIVE_TTL);
    let auth_time_ms = claims
        .auth_time_ms
        .or(claims.auth_time.map(|t| t.saturating_mul(1000)))
        .or(answer.iat.map(|t| t.saturating_mul(1000)))
        .unwrap_or(now_ms);
    Some((
        Session {
            sid: claims.sid.unwrap_or_default(),
            user_id,
            username: claims
                .preferred_username
                .unwrap_or_else(|| claims.sub.clone()),
            name: claims.name.unwrap_or_default(),
            email: claims.email.unwrap_or_default(),
            groups: claims.groups.unwrap_or_default(),
            auth_time_ms,
            iat: now,
            exp,
            jwt: (token.split('.').count() == 3).then(|| token.to_owned()),
            upstream_authorization: None,
        },
        ttl,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::oidc::IdentityClaims;

    #[test]
    fn parses_authorization_headers() {
        assert_eq!(
            Credentials::parse(b"Bearer abc.def"),
            Some(Credentials::Bearer("abc.def".into()))
        );
        assert_eq!(
            Credentials::parse(b"basic YWxpY2U6cHc6eA=="),
            Some(Credentials::Basic {
                username: "alice".into(),
                password: "pw:x".into()
            })
        );
        for bad in [
            &b"Bearer "[..],
            b"Basic !!!",
            b"Basic OnB3",
            b"Digest x",
            b"token",
            b"\xff\xfe",
        ] {
            assert_eq!(Credentials::parse(bad), None);
        }
    }

    fn answer(active: bool, client: &str, exp: i64) -> IntrospectionResponse {
        IntrospectionResponse {
            active,
            client_id: Some(client.into()),
            scope: None,
            exp: Some(exp),
            iat: Some(10),
            token_type: None,
            identity: Some(IdentityClaims {
                sub: "7".into(),
                preferred_username: Some("alice".into()),
                name: None,
                email: None,
                email_verified: None,
                groups: Some(vec!["g".into()]),
                sid: Some("s".into()),
                auth_time: None,
                auth_time_ms: None,
            }),
        }
    }

    #[test]
    fn introspection_needs_an_active_token_of_this_client() {
        let (s, ttl) =
            session_from_introspection(answer(true, "proxy-1", 1_030), "proxy-1", "t", 1_000_000)
                .expect("accepted");
        assert_eq!(s.user_id, 7);
        assert_eq!(s.auth_time_ms, 10_000);
        assert_eq!(ttl, Duration::from_secs(30));
        assert!(
            session_from_introspection(answer(false, "proxy-1", 2_000), "proxy-1", "t", 0)
                .is_none()
        );
        assert!(
            session_from_introspection(answer(true, "grafana", 2_000), "proxy-1", "t", 0).is_none()
        );
        assert!(
            session_from_introspection(answer(true, "proxy-1", 999), "proxy-1", "t", 1_000_000)
                .is_none()
        );
    }

    #[test]
    fn the_cache_is_keyed_and_bounded() {
        let auth = HeaderAuth::new();
        let a = auth.fingerprint(1, &Credentials::Bearer("x".into()));
        assert_ne!(a, auth.fingerprint(2, &Credentials::Bearer("x".into())));
        assert_ne!(
            auth.fingerprint(
                1,
                &Credentials::Basic {
                    username: "ab".into(),
                    password: "c".into()
                }
            ),
            auth.fingerprint(
                1,
                &Credentials::Basic {
                    username: "a".into(),
                    password: "bc".into()
                }
            )
        );
        for i in 0..(MAX_ENTRIES + 5) {
            let f = auth.fingerprint(1, &Credentials::Bearer(i.to_string()));
            auth.remember(f, None, Duration::from_secs(60));
        }
        let len = auth.cache.lock().expect("lock").len();
        assert!(len <= MAX_ENTRIES, "{len}");
        assert_eq!(auth.cached(&a, Instant::now()), None);
    }
}
