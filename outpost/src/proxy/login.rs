//! The login flow's decisions, without I/O: where a login may return to (open redirects refused),
//! the authorization request (PKCE S256, nonce, sealed state), and what the ID token returned by
//! the core must say before a session cookie is sealed from it.
//!
//! The ID token comes straight from the core's token endpoint over the outpost's own connection,
//! so its signature is not verified again; its issuer, audience, nonce and expiry are.

use super::forward::check_authority;
use super::session::{LoginState, Session};
use super::state::{ProviderView, Scheme, under_domain};
use data_encoding::BASE64URL_NOPAD;
use redoubt_outpost_proto::oidc::{
    AUTHORIZE_PATH, END_SESSION_PATH, IdentityClaims, UpstreamBasicAuth,
};
use redoubt_outpost_proto::provider::ProxyMode;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How long a login may take, from start to callback.
pub const STATE_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// Longest `rd` accepted.
const MAX_RD_LEN: usize = 4096;
/// Largest ID token accepted.
const MAX_ID_TOKEN_LEN: usize = 16 * 1024;
/// Clock skew tolerated on `exp`.
const SKEW_SECONDS: i64 = 60;

/// Whether `rd` is a URL a login of `provider` may return to: an absolute http(s) URL on the
/// external host or, in `forward_domain` mode, on a host under the cookie domain. Returns the URL
/// to use.
pub fn check_rd(provider: &ProviderView, rd: &str) -> Result<String, RdRefused> {
    if rd.len() > MAX_RD_LEN || rd.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') {
        return Err(RdRefused);
    }
    let (scheme, rest) = rd.split_once("://").ok_or(RdRefused)?;
    let scheme = match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        _ => return Err(RdRefused),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(RdRefused);
    }
    let host = check_authority(authority).map_err(|_| RdRefused)?;
    let allowed = host == provider.host
        || provider
            .cookie_domain
            .as_deref()
            .is_some_and(|d| under_domain(&host, d));
    if !allowed || (scheme == Scheme::Http && provider.scheme == Scheme::Https) {
        return Err(RdRefused);
    }
    if path.starts_with("//") {
        return Err(RdRefused);
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok(format!("{}://{authority}{path}", scheme.as_str()))
}

/// A return URL that is not one of the provider's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdRefused;

/// Where the core sends the browser back: the external host's callback, or in `forward_domain`
/// mode the callback on the host the user is on (with the external host's scheme).
pub fn redirect_uri(provider: &ProviderView, request_authority: Option<&str>) -> String {
    let callback = redoubt_outpost_proto::oidc::PROXY_CALLBACK_PATH;
    if provider.settings.mode == ProxyMode::ForwardDomain
        && let Some(authority) = request_authority
        && let Ok(host) = check_authority(authority)
        && provider.serves_host(&host)
    {
        return format!(
            "{}://{}{callback}",
            provider.scheme.as_str(),
            authority.to_ascii_lowercase()
        );
    }
    format!("{}{callback}", provider.origin)
}

/// The PKCE S256 challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()))
}

/// Random values a login needs (32 bytes each; base64url).
#[derive(Debug, Clone)]
pub struct LoginRandom {
    pub verifier: String,
    pub nonce: String,
    pub binding: String,
}

impl LoginRandom {
    /// From 96 random bytes.
    pub fn from_bytes(bytes: &[u8; 96]) -> Self {
        Self {
            verifier: BASE64URL_NOPAD.encode(&bytes[..32]),
            nonce: BASE64URL_NOPAD.encode(&bytes[32..64]),
            binding: BASE64URL_NOPAD.encode(&bytes[64..]),
        }
    }
}

/// The login state for a new login.
pub fn new_state(
    provider: &ProviderView,
    rd: String,
    redirect_uri: String,
    random: LoginRandom,
    now_ms: i64,
) -> LoginState {
    LoginState {
        provider_id: provider.id,
        rd,
        redirect_uri,
        verifier: random.verifier,
        nonce: random.nonce,
        binding: random.binding,
        exp: now_ms + STATE_LIFETIME_MS,
    }
}

/// The name of the cookie that binds a login to the browser that started it; one per login so
/// logins in several tabs do not overwrite each other.
pub fn state_cookie_name(provider_id: i64, binding: &str) -> String {
    let tag: String = binding.chars().take(8).collect();
    format!("redoubt_proxy_state_{provider_id}_{tag}")
}

/// The authorization request URL.
pub fn authorize_url(
    core_public_url: &str,
    provider: &ProviderView,
    state: &LoginState,
    sealed_state: &str,
) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", &state.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email groups")
        .append_pair("state", sealed_state)
        .append_pair("nonce", &state.nonce)
        .append_pair("code_challenge", &pkce_challenge(&state.verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{core_public_url}{AUTHORIZE_PATH}?{query}")
}

/// The core's end-session URL for a sign-out.
pub fn end_session_url(
    core_public_url: &str,
    provider: &ProviderView,
    id_token: Option<&str>,
    post_logout: &str,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", &provider.client_id);
    if let Some(token) = id_token {
        query.append_pair("id_token_hint", token);
    }
    query.append_pair("post_logout_redirect_uri", post_logout);
    format!("{core_public_url}{END_SESSION_PATH}?{}", query.finish())
}

/// Why an ID token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the token response has no ID token")]
    Missing,
    #[error("the ID token is malformed")]
    Malformed,
    #[error("the ID token was issued by `{0}`")]
    Issuer(String),
    #[error("the ID token is for another client")]
    Audience,
    #[error("the ID token's nonce does not match the login")]
    Nonce,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token names no usable user")]
    Subject,
}

#[derive(Deserialize)]
struct Registered {
    iss: String,
    aud: Audience,
    exp: i64,
    #[serde(default)]
    nonce: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Reads and checks an ID token's claims.
pub fn check_id_token(
    token: &str,
    issuers: &[String],
    client_id: &str,
    nonce: &str,
    now_ms: i64,
) -> Result<IdentityClaims, IdTokenError> {
    if token.len() > MAX_ID_TOKEN_LEN {
        return Err(IdTokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    let json = BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .map_err(|_| IdTokenError::Malformed)?;
    let registered: Registered =
        serde_json::from_slice(&json).map_err(|_| IdTokenError::Malformed)?;
    let claims: IdentityClaims =
        serde_json::from_slice(&json).map_err(|_| IdTokenError::Malformed)?;
    let issuer = registered.iss.trim_end_matches('/');
    if !issuers.iter().any(|i| i == issuer) {
        return Err(IdTokenError::Issuer(
            registered.iss.chars().take(100).collect(),
        ));
    }
    let audience_ok = match &registered.aud {
        Audience::One(a) => a == client_id,
        Audience::Many(all) => all.iter().any(|a| a == client_id),
    };
    if !audience_ok {
        return Err(IdTokenError::Audience);
    }
    if registered.nonce.as_deref() != Some(nonce) {
        return Err(IdTokenError::Nonce);
    }
    if registered
        .exp
        .saturating_add(SKEW_SECONDS)
        .saturating_mul(1000)
        <= now_ms
    {
        return Err(IdTokenError::Expired);
    }
    if claims.sub.parse::<i64>().is_err() {
        return Err(IdTokenError::Subject);
    }
    Ok(claims)
}

/// The session sealed after a login.
pub fn session_from_claims(
    claims: IdentityClaims,
    id_token: &str,
    validity_seconds: u64,
    now_ms: i64,
) -> Result<Session, IdTokenError> {
    let user_id: i64 = claims.sub.parse().map_err(|_| IdTokenError::Subject)?;
    let now = now_ms.div_euclid(1000);
    let auth_time_ms = claims
        .auth_time_ms
        .or(claims.auth_time.map(|t| t.saturating_mul(1000)))
        .unwrap_or(now_ms);
    let validity = i64::try_from(validity_seconds).unwrap_or(i64::MAX);
    Ok(Session {
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
        exp: now.saturating_add(validity),
        jwt: Some(id_token.to_owned()),
        upstream_authorization: None,
    })
}

/// The `Authorization` value for the upstream from the credentials the core handed over.
pub fn upstream_authorization(basic: &UpstreamBasicAuth) -> String {
    let pair = format!("{}:{}", basic.username, basic.password);
    format!("Basic {}", data_encoding::BASE64.encode(pair.as_bytes()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proxy::state::tests::sample;
    use serde_json::json;

    pub(crate) fn id_token(claims: serde_json::Value) -> String {
        format!(
            "{}.{}.sig",
            BASE64URL_NOPAD.encode(br#"{"alg":"RS256"}"#),
            BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn rd_must_be_on_a_provider_host() {
        let s = sample();
        let single = s.provider_for_host("single.example.com").expect("p");
        assert_eq!(
            check_rd(single, "https://single.example.com:8443/x?y=1"),
            Ok("https://single.example.com:8443/x?y=1".into())
        );
        assert_eq!(
            check_rd(single, "https://single.example.com"),
            Ok("https://single.example.com/".into())
        );
        for bad in [
            "https://evil.com/",
            "https://single.example.com.evil.com/",
            "https://evil.com@single.example.com/",
            "https://single.example.com@evil.com/",
            "//evil.com/",
            "/relative",
            "javascript:alert(1)",
            "https://single.example.com//evil.com",
            "https://single.example.com\\@evil.com",
            "http://single.example.com/",
            "https://wiki.corp.example/",
        ] {
            assert_eq!(check_rd(single, bad), Err(RdRefused), "{bad}");
        }
        let domain = s.provider_for_host("corp.example").expect("p");
        assert!(check_rd(domain, "https://wiki.corp.example/a").is_ok());
        assert!(check_rd(domain, "https://corp.example/").is_ok());
        assert!(check_rd(domain, "https://evilcorp.example/").is_err());
    }

    #[test]
    fn redirect_uris_per_mode() {
        let s = sample();
        let single = s.provider_for_host("single.example.com").expect("p");
        assert_eq!(
            redirect_uri(single, Some("other.example.com")),
            "https://single.example.com:8443/outpost.redoubt/callback"
        );
        let domain = s.provider_for_host("corp.example").expect("p");
        assert_eq!(
            redirect_uri(domain, Some("Wiki.corp.example")),
            "https://wiki.corp.example/outpost.redoubt/callback"
        );
        assert_eq!(
            redirect_uri(domain, Some("evil.example")),
            "https://auth.corp.example/outpost.redoubt/callback"
        );
    }

    #[test]
    fn authorize_url_carries_pkce_and_state() {
        let s = sample();
        let p = s.provider_for_host("app.example.com").expect("p");
        let random = LoginRandom::from_bytes(&[7; 96]);
        let state = new_state(
            p,
            "https://app.example.com/".into(),
            redirect_uri(p, None),
            random,
            1_000,
        );
        assert_eq!(state.exp, 1_000 + STATE_LIFETIME_MS);
        let url = authorize_url(&s.core_public_url, p, &state, "1.sealed");
        let parsed = url::Url::parse(&url).expect("url");
        assert_eq!(parsed.path(), "/oauth/authorize");
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "proxy-1");
        assert_eq!(
            q["redirect_uri"],
            "https://app.example.com/outpost.redoubt/callback"
        );
        assert_eq!(q["scope"], "openid profile email groups");
        assert_eq!(q["state"], "1.sealed");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], pkce_challenge(&state.verifier));
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn id_tokens_are_checked() {
        let issuers = vec!["https://id.example.com".to_owned()];
        let good = json!({"iss": "https://id.example.com", "aud": "proxy-1", "exp": 100,
            "nonce": "n1", "sub": "7", "preferred_username": "alice", "groups": ["a"],
            "sid": "s1", "auth_time": 50, "auth_time_ms": 50_123});
        let token = id_token(good.clone());
        let claims = check_id_token(&token, &issuers, "proxy-1", "n1", 90_000).expect("ok");
        let session = session_from_claims(claims, &token, 3600, 90_000).expect("session");
        assert_eq!(session.user_id, 7);
        assert_eq!(session.sid, "s1");
        assert_eq!(session.auth_time_ms, 50_123);
        assert_eq!(session.exp, 90 + 3600);
        assert_eq!(session.groups, vec!["a"]);
        assert_eq!(session.jwt.as_deref(), Some(token.as_str()));
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good.clone();
            c[k] = v;
            id_token(c)
        };
        let check = |t: &str| check_id_token(t, &issuers, "proxy-1", "n1", 90_000);
        assert!(matches!(
            check(&with("iss", json!("https://evil"))),
            Err(IdTokenError::Issuer(_))
        ));
        assert_eq!(
            check(&with("aud", json!("proxy-2"))),
            Err(IdTokenError::Audience)
        );
        assert!(check(&with("aud", json!(["x", "proxy-1"]))).is_ok());
        assert_eq!(check(&with("nonce", json!("n2"))), Err(IdTokenError::Nonce));
        assert_eq!(check(&with("exp", json!(20))), Err(IdTokenError::Expired));
        assert_eq!(
            check(&with("sub", json!("alice"))),
            Err(IdTokenError::Subject)
        );
        assert_eq!(check("a.b"), Err(IdTokenError::Malformed));
        assert_eq!(check("a.!!.c"), Err(IdTokenError::Malformed));
    }

    #[test]
    fn end_session_url_has_the_hint() {
        let s = sample();
        let p = s.provider_for_host("app.example.com").expect("p");
        let url = end_session_url(
            &s.core_public_url,
            p,
            Some("a.b.c"),
            "https://app.example.com/",
        );
        assert!(url.starts_with("https://id.example.com/oauth/end-session?client_id=proxy-1"));
        assert!(url.contains("id_token_hint=a.b.c"));
        assert!(url.contains("post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F"));
    }
}
