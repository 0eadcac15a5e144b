//! The core's OpenID Connect endpoints as outposts (and tests) address them, and the wire bodies
//! the proxy outpost reads. Any relying party can use the same endpoints through discovery at
//! [`DISCOVERY_PATH`].
//!
//! A proxy provider is an OIDC client of the core with client id [`proxy_client_id`]; its
//! outposts authenticate at the token and introspection endpoints with HTTP Basic, the client id
//! as user name and their own outpost token as password, so no client secret is ever shipped.
//! Its redirect URI is `<external_host>/outpost.redoubt/callback` (any host under the cookie
//! domain in `forward_domain` mode). A RAC provider is a client the same way, with client id
//! [`rac_client_id`] and redirect URI `<external_host>/outpost.redoubt/callback`.

use serde::{Deserialize, Serialize};

/// OpenID Provider configuration (discovery).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The JSON Web Key Set.
pub const JWKS_PATH: &str = "/oauth/jwks";
/// Authorization endpoint (browser).
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// Token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// UserInfo endpoint.
pub const USERINFO_PATH: &str = "/oauth/userinfo";
/// Token introspection (RFC 7662).
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
/// Token revocation (RFC 7009).
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// RP-initiated logout (browser).
pub const END_SESSION_PATH: &str = "/oauth/end-session";
/// The login page (browser).
pub const LOGIN_PATH: &str = "/login";
/// Prefix of every path the proxy outpost answers itself.
pub const OUTPOST_PATH_PREFIX: &str = "/outpost.redoubt/";
/// The proxy outpost's OAuth callback, relative to an external host.
pub const PROXY_CALLBACK_PATH: &str = "/outpost.redoubt/callback";

/// The OAuth client id of a proxy provider.
pub fn proxy_client_id(provider_id: i64) -> String {
    format!("proxy-{provider_id}")
}

/// The proxy provider a client id names, if it names one.
pub fn proxy_provider_of_client(client_id: &str) -> Option<i64> {
    client_id
        .strip_prefix("proxy-")?
        .parse()
        .ok()
        .filter(|id: &i64| *id > 0)
}

/// The OAuth client id of a RAC provider (its outposts sign users in exactly like a proxy
/// provider's, with their outpost token as the client secret).
pub fn rac_client_id(provider_id: i64) -> String {
    format!("rac-{provider_id}")
}

/// The RAC provider a client id names, if it names one.
pub fn rac_provider_of_client(client_id: &str) -> Option<i64> {
    client_id
        .strip_prefix("rac-")?
        .parse()
        .ok()
        .filter(|id: &i64| *id > 0)
}

/// A successful token response (RFC 6749 section 5.1, OIDC Core section 3.1.3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Redoubt extension, only for a proxy client whose provider sets `basic_auth`: the HTTP
    /// Basic credentials the outpost sends the upstream, read from the user's attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_basic_auth: Option<UpstreamBasicAuth>,
}

/// HTTP Basic credentials for a proxy provider's upstream. `Debug` hides the password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamBasicAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for UpstreamBasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An OAuth error response (RFC 6749 section 5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The claims of an ID token and of a UserInfo response that Redoubt issues. `sub` is the user
/// id as a decimal string; `groups` is present with the `groups` scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityClaims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The core login session (present in ID tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user logged in, Unix seconds (present in ID tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// When the user logged in, Unix milliseconds (Redoubt-specific; compared with revocations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time_ms: Option<i64>,
}

/// An introspection response (RFC 7662 section 2.2); inactive tokens carry only `active`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(flatten)]
    pub identity: Option<IdentityClaims>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_client_ids_round_trip() {
        assert_eq!(proxy_client_id(12), "proxy-12");
        assert_eq!(proxy_provider_of_client("proxy-12"), Some(12));
        assert_eq!(proxy_provider_of_client("proxy-0"), None);
        assert_eq!(proxy_provider_of_client("proxy-x"), None);
        assert_eq!(proxy_provider_of_client("grafana"), None);
        assert_eq!(rac_client_id(7), "rac-7");
        assert_eq!(rac_provider_of_client("rac-7"), Some(7));
        assert_eq!(rac_provider_of_client("rac--7"), None);
        assert_eq!(rac_provider_of_client("proxy-7"), None);
    }
}
