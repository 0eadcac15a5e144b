//! OAuth clients: OIDC providers (by their `client_id` setting), proxy providers (client id
//! `proxy-<id>`) and RAC providers (`rac-<id>`), the last two authenticated with the token of an
//! outpost that serves them. Which redirect
//! and post-logout URIs each may use, how each authenticates, and the settings checks the
//! provider API runs for the `oidc` kind.

use crate::auth::token;
use crate::model::{Application, Provider, ProviderKind, TokenKind};
use crate::store::{Store, StoreError};
use redoubt_outpost_proto::oidc::{
    PROXY_CALLBACK_PATH, proxy_provider_of_client, rac_provider_of_client,
};
use redoubt_outpost_proto::provider::{
    OidcClientType, OidcProviderSettings, ProxyMode, ProxyProviderSettings, RacProviderSettings,
};
use subtle::ConstantTimeEq;

/// A client's settings by kind.
#[derive(Debug, Clone)]
pub enum ClientKind {
    Oidc(OidcProviderSettings),
    Proxy(ProxyProviderSettings),
    /// A RAC outpost's sign-in: like a proxy provider in `proxy` mode on its external host.
    Rac(RacProviderSettings),
}

impl ClientKind {
    /// Whether the client is an outpost signing users in for itself (proxy or RAC), which
    /// authenticates with the token of an outpost serving its provider.
    pub fn is_outpost(&self) -> bool {
        matches!(self, Self::Proxy(_) | Self::Rac(_))
    }
}

/// A known client.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub provider: Provider,
    /// The application the provider serves; users need access to it.
    pub application: Option<Application>,
    pub kind: ClientKind,
}

/// Credentials a caller presented at the token, introspection or revocation endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<String>,
}

impl Client {
    /// Whether the client must prove possession with PKCE (no secret to authenticate with).
    pub fn is_public(&self) -> bool {
        matches!(&self.kind, ClientKind::Oidc(s) if s.client_type == OidcClientType::Public)
    }

    /// Whether `uri` is a registered redirect URI (exact match; for proxy providers the outpost
    /// callback on the external host, or on any host under the cookie domain in
    /// `forward_domain` mode).
    pub fn redirect_uri_allowed(&self, uri: &str) -> bool {
        match &self.kind {
            ClientKind::Oidc(settings) => settings.redirect_uris.iter().any(|r| r == uri),
            ClientKind::Proxy(settings) => proxy_callback_allowed(settings, uri),
            ClientKind::Rac(settings) => rac_callback_allowed(settings, uri),
        }
    }

    /// Whether users may be sent to `uri` after logout.
    pub fn post_logout_uri_allowed(&self, uri: &str) -> bool {
        match &self.kind {
            ClientKind::Oidc(settings) => {
                settings.post_logout_redirect_uris.iter().any(|r| r == uri)
            }
            ClientKind::Proxy(settings) => proxy_logout_allowed(settings, uri),
            ClientKind::Rac(settings) => same_origin(&settings.external_host, uri),
        }
    }

    /// Lifetime of access tokens, seconds.
    pub fn access_token_seconds(&self) -> i64 {
        let seconds = match &self.kind {
            ClientKind::Oidc(s) => s.access_token_validity_seconds,
            ClientKind::Proxy(s) => s.session_validity_seconds,
            ClientKind::Rac(s) => s.session_validity_seconds,
        };
        i64::try_from(seconds).unwrap_or(i64::MAX)
    }

    /// Lifetime of ID tokens, seconds (a proxy's session validity for proxy clients).
    pub fn id_token_seconds(&self) -> i64 {
        self.access_token_seconds()
    }

    /// Lifetime of refresh tokens, seconds.
    pub fn refresh_token_seconds(&self) -> i64 {
        let seconds = match &self.kind {
            ClientKind::Oidc(s) => s.refresh_token_validity_seconds,
            ClientKind::Proxy(s) => s.session_validity_seconds,
            ClientKind::Rac(s) => s.session_validity_seconds,
        };
        i64::try_from(seconds).unwrap_or(i64::MAX)
    }
}

/// Parts of an `http(s)` URL that matter for matching.
struct UrlParts {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    has_query: bool,
}

fn url_parts(uri: &str) -> Option<UrlParts> {
    let url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    Some(UrlParts {
        scheme: url.scheme().to_owned(),
        host: url.host_str()?.to_ascii_lowercase(),
        port: url.port_or_known_default(),
        path: url.path().to_owned(),
        has_query: url.query().is_some(),
    })
}

fn under_domain(host: &str, cookie_domain: &str) -> bool {
    let bare = cookie_domain.trim_start_matches('.').to_ascii_lowercase();
    !bare.is_empty() && (host == bare || host.ends_with(&format!(".{bare}")))
}

/// The proxy provider rule of the contract: `<external_host>/outpost.redoubt/callback`, or in
/// `forward_domain` mode that path on any host under the cookie domain, with the external host's
/// scheme.
pub fn proxy_callback_allowed(settings: &ProxyProviderSettings, uri: &str) -> bool {
    let Some(external) = url_parts(&settings.external_host) else {
        return false;
    };
    let Some(candidate) = url_parts(uri) else {
        return false;
    };
    if candidate.path != PROXY_CALLBACK_PATH || candidate.has_query {
        return false;
    }
    if candidate.scheme != external.scheme {
        return false;
    }
    if candidate.host == external.host && candidate.port == external.port {
        return true;
    }
    settings.mode == ProxyMode::ForwardDomain
        && settings
            .cookie_domain
            .as_deref()
            .is_some_and(|domain| under_domain(&candidate.host, domain))
}

/// Whether `a` and `b` are `http(s)` URLs with the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (url_parts(a), url_parts(b)) else {
        return false;
    };
    a.scheme == b.scheme && a.host == b.host && a.port == b.port
}

/// The RAC provider rule: exactly `<external_host>/outpost.redoubt/callback` (same scheme, host
/// and port, no query).
pub fn rac_callback_allowed(settings: &RacProviderSettings, uri: &str) -> bool {
    url_parts(uri).is_some_and(|candidate| {
        candidate.path == PROXY_CALLBACK_PATH
            && !candidate.has_query
            && same_origin(&settings.external_host, uri)
    })
}

/// Where a proxy provider may send users after logout: any URL on its external host, or under
/// its cookie domain.
pub fn proxy_logout_allowed(settings: &ProxyProviderSettings, uri: &str) -> bool {
    let (Some(external), Some(candidate)) = (url_parts(&settings.external_host), url_parts(uri))
    else {
        return false;
    };
    (candidate.scheme == external.scheme
        && candidate.host == external.host
        && candidate.port == external.port)
        || settings
            .cookie_domain
            .as_deref()
            .is_some_and(|domain| under_domain(&candidate.host, domain))
}

/// Looks up a client by id.
pub async fn find(store: &Store, client_id: &str) -> Result<Option<Client>, StoreError> {
    if client_id.is_empty() || client_id.len() > 255 {
        return Ok(None);
    }
    if let Some(provider_id) = proxy_provider_of_client(client_id) {
        let provider = match store.provider(provider_id).await {
            Ok(p) if p.kind == ProviderKind::Proxy => p,
            Ok(_) | Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(settings) =
            serde_json::from_value::<ProxyProviderSettings>(provider.settings.clone())
        else {
            return Ok(None);
        };
        let application = store.application_for_provider(provider.id).await?;
        return Ok(Some(Client {
            client_id: client_id.to_owned(),
            provider,
            application,
            kind: ClientKind::Proxy(settings),
        }));
    }
    if let Some(provider_id) = rac_provider_of_client(client_id) {
        let provider = match store.provider(provider_id).await {
            Ok(p) if p.kind == ProviderKind::Rac => p,
            Ok(_) | Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(settings) = serde_json::from_value::<RacProviderSettings>(provider.settings.clone())
        else {
            return Ok(None);
        };
        let application = store.application_for_provider(provider.id).await?;
        return Ok(Some(Client {
            client_id: client_id.to_owned(),
            provider,
            application,
            kind: ClientKind::Rac(settings),
        }));
    }
    for provider in store.oidc_providers().await? {
        let Ok(settings) =
            serde_json::from_value::<OidcProviderSettings>(provider.settings.clone())
        else {
            continue;
        };
        if settings.client_id == client_id {
            let application = store.application_for_provider(provider.id).await?;
            return Ok(Some(Client {
                client_id: client_id.to_owned(),
                provider,
                application,
                kind: ClientKind::Oidc(settings),
            }));
        }
    }
    Ok(None)
}

/// SHA-256 of a client secret, lowercase hex (the stored form).
pub fn secret_hash(secret: &str) -> String {
    crate::auth::token::hash(secret)
}

/// Whether `presented` authenticates as `client`. Confidential OIDC clients need their secret
/// (compared as SHA-256 in constant time); public clients need none (PKCE binds them); proxy
/// clients give the token of an outpost that serves their provider.
pub async fn authenticate(
    store: &Store,
    client: &Client,
    presented: &PresentedClient,
) -> Result<bool, StoreError> {
    if presented.client_id != client.client_id {
        return Ok(false);
    }
    match &client.kind {
        ClientKind::Oidc(settings) => match settings.client_type {
            OidcClientType::Public => Ok(presented.secret.is_none()),
            OidcClientType::Confidential => {
                let (Some(secret), Some(stored)) =
                    (&presented.secret, &settings.client_secret_sha256)
                else {
                    return Ok(false);
                };
                let hash = secret_hash(secret);
                Ok(bool::from(
                    hash.as_bytes()
                        .ct_eq(stored.to_ascii_lowercase().as_bytes()),
                ))
            }
        },
        ClientKind::Proxy(_) | ClientKind::Rac(_) => {
            let Some(secret) = &presented.secret else {
                return Ok(false);
            };
            let hash = token::hash(secret);
            let Some(record) = store.token_by_hash(&hash).await? else {
                return Ok(false);
            };
            if !token::hashes_equal(&record.secret_hash, &hash)
                || record.token.kind != TokenKind::Outpost
                || record.token.expires_at.is_some_and(|at| at <= store.now())
            {
                return Ok(false);
            }
            let Some(outpost_id) = record.token.outpost_id else {
                return Ok(false);
            };
            store.outpost_serves(outpost_id, client.provider.id).await
        }
    }
}

/// What the provider API must do with `oidc` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSettings {
    pub settings: serde_json::Value,
    /// A newly generated client secret, to show once.
    pub new_secret: Option<String>,
}

/// Why `oidc` settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsRefused {
    #[error("settings.client_id: `{0}` is already used by another OIDC provider")]
    ClientIdTaken(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness available")]
    Random,
}

/// Checks validated `oidc` settings against the other providers and fills in the secret hash:
/// a new confidential client (or one turning confidential) gets a generated secret; an update
/// keeps the stored hash; a public client has none.
pub async fn prepare_settings(
    store: &Store,
    settings: serde_json::Value,
    current: Option<&Provider>,
) -> Result<PreparedSettings, SettingsRefused> {
    let mut parsed: OidcProviderSettings =
        serde_json::from_value(settings).map_err(|e| SettingsRefused::Invalid(e.to_string()))?;
    for other in store.oidc_providers().await? {
        if current.is_some_and(|c| c.id == other.id) {
            continue;
        }
        if other.settings.get("client_id").and_then(|v| v.as_str()) == Some(&parsed.client_id) {
            return Err(SettingsRefused::ClientIdTaken(parsed.client_id));
        }
    }
    let stored_hash = current
        .and_then(|c| c.settings.get("client_secret_sha256"))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let mut new_secret = None;
    match parsed.client_type {
        OidcClientType::Public => parsed.client_secret_sha256 = None,
        OidcClientType::Confidential => match (current, stored_hash) {
            (Some(_), Some(hash)) => parsed.client_secret_sha256 = Some(hash),
            _ => {
                let secret =
                    crate::auth::token::random_base64url().map_err(|_| SettingsRefused::Random)?;
                parsed.client_secret_sha256 = Some(secret_hash(&secret));
                new_secret = Some(secret);
            }
        },
    }
    Ok(PreparedSettings {
        settings: serde_json::to_value(parsed)
            .map_err(|e| SettingsRefused::Invalid(e.to_string()))?,
        new_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(
        mode: ProxyMode,
        external: &str,
        cookie_domain: Option<&str>,
    ) -> ProxyProviderSettings {
        serde_json::from_value(serde_json::json!({
            "mode": match mode {
                ProxyMode::Proxy => "proxy",
                ProxyMode::ForwardSingle => "forward_single",
                ProxyMode::ForwardDomain => "forward_domain",
            },
            "external_host": external,
            "internal_host": "http://127.0.0.1:8080",
            "cookie_domain": cookie_domain,
        }))
        .expect("settings")
    }

    #[test]
    fn proxy_callbacks_follow_the_contract() {
        let single = proxy(ProxyMode::ForwardSingle, "https://app.example.com", None);
        assert!(proxy_callback_allowed(
            &single,
            "https://app.example.com/outpost.redoubt/callback"
        ));
        assert!(proxy_callback_allowed(
            &single,
            "https://app.example.com:443/outpost.redoubt/callback"
        ));
        assert!(!proxy_callback_allowed(
            &single,
            "http://app.example.com/outpost.redoubt/callback"
        ));
        assert!(!proxy_callback_allowed(
            &single,
            "https://evil.com/outpost.redoubt/callback"
        ));
        assert!(!proxy_callback_allowed(
            &single,
            "https://app.example.com/other"
        ));
        assert!(!proxy_callback_allowed(
            &single,
            "https://app.example.com/outpost.redoubt/callback?x=1"
        ));
        assert!(!proxy_callback_allowed(
            &single,
            "https://user@app.example.com/outpost.redoubt/callback"
        ));
        let domain = proxy(
            ProxyMode::ForwardDomain,
            "https://auth.example.com",
            Some("example.com"),
        );
        assert!(proxy_callback_allowed(
            &domain,
            "https://a.example.com/outpost.redoubt/callback"
        ));
        assert!(proxy_callback_allowed(
            &domain,
            "https://b.example.com:8443/outpost.redoubt/callback"
        ));
        assert!(!proxy_callback_allowed(
            &domain,
            "http://a.example.com/outpost.redoubt/callback"
        ));
        assert!(!proxy_callback_allowed(
            &domain,
            "https://aexample.com/outpost.redoubt/callback"
        ));
        assert!(!proxy_callback_allowed(
            &domain,
            "https://example.com.evil.org/outpost.redoubt/callback"
        ));
    }

    #[test]
    fn proxy_logout_targets_stay_on_known_hosts() {
        let domain = proxy(
            ProxyMode::ForwardDomain,
            "https://auth.example.com",
            Some(".example.com"),
        );
        assert!(proxy_logout_allowed(
            &domain,
            "https://auth.example.com/bye"
        ));
        assert!(proxy_logout_allowed(&domain, "https://x.example.com/"));
        assert!(!proxy_logout_allowed(&domain, "https://evil.org/"));
        assert!(!proxy_logout_allowed(&domain, "javascript:alert(1)"));
    }

    #[test]
    fn rac_callbacks_are_exact() {
        let settings: RacProviderSettings = serde_json::from_value(serde_json::json!({
            "external_host": "https://desk.example.com",
        }))
        .expect("settings");
        assert!(rac_callback_allowed(
            &settings,
            "https://desk.example.com/outpost.redoubt/callback"
        ));
        assert!(!rac_callback_allowed(
            &settings,
            "https://desk.example.com/outpost.redoubt/callback?x=1"
        ));
        assert!(!rac_callback_allowed(
            &settings,
            "http://desk.example.com/outpost.redoubt/callback"
        ));
        assert!(!rac_callback_allowed(
            &settings,
            "https://a.desk.example.com/outpost.redoubt/callback"
        ));
        assert!(!rac_callback_allowed(
            &settings,
            "https://desk.example.com/"
        ));
        assert!(same_origin(
            "https://desk.example.com",
            "https://desk.example.com/bye"
        ));
        assert!(!same_origin(
            "https://desk.example.com",
            "https://evil.org/"
        ));
    }

    #[test]
    fn secret_hash_is_hex_sha256() {
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
