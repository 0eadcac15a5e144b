//! Discovery (OpenID Connect Discovery 1.0) and the JWKS. The issuer is the configured
//! `external_url`, or the scheme and `Host` of the request. Signing is ES256 only: ring, the one
//! crypto provider of the project, cannot generate RSA keys.

use super::error::OAuthFailure;
use super::jwt::ALGORITHM;
use super::request::SUPPORTED_SCOPES;
use crate::api::AppState;
use crate::web::Origin;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use redoubt_outpost_proto::oidc as paths;
use serde_json::{Value, json};

/// The discovery document for `issuer`.
pub fn document(issuer: &str) -> Value {
    let url = |path: &str| format!("{issuer}{path}");
    json!({
        "issuer": issuer,
        "authorization_endpoint": url(paths::AUTHORIZE_PATH),
        "token_endpoint": url(paths::TOKEN_PATH),
        "userinfo_endpoint": url(paths::USERINFO_PATH),
        "jwks_uri": url(paths::JWKS_PATH),
        "introspection_endpoint": url(paths::INTROSPECT_PATH),
        "revocation_endpoint": url(paths::REVOKE_PATH),
        "end_session_endpoint": url(paths::END_SESSION_PATH),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SUPPORTED_SCOPES,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "auth_time_ms", "nonce", "sid",
            "at_hash", "preferred_username", "name", "email", "email_verified", "groups"
        ],
        "prompt_values_supported": ["none", "login"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
}

/// `GET /.well-known/openid-configuration`.
pub async fn configuration(origin: Origin) -> Response {
    axum::Json(document(&origin.base)).into_response()
}

/// `GET /oauth/jwks`: the current key and the retired ones still in their retention period.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, OAuthFailure> {
    let set = state.web.keys.jwks().await?;
    let mut response = axum::Json(set).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
