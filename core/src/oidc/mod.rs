//! The OpenID Connect provider of the core (OIDC Core 1.0, RFC 6749, RFC 7636 PKCE, RFC 7662
//! introspection, RFC 7009 revocation, RP-initiated logout 1.0). Endpoint paths are the
//! contract in `redoubt_outpost_proto::oidc`.
//!
//! The decisions are pure and unit-tested: [`request`] checks authorization requests,
//! [`clients`] matches redirect URIs and authenticates clients, [`pkce`], [`claims`] and
//! [`jwt`] build and check tokens. The handlers ([`authorize`], [`token`], [`userinfo`],
//! [`introspect`], [`revoke`], [`end_session`], [`discovery`]) are thin layers that read the
//! store and the login session (`crate::web`). Signing keys: [`keys`]; the admin rotation
//! endpoint: [`admin`].

pub mod access;
pub mod admin;
pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod clients;
pub mod discovery;
pub mod end_session;
pub mod error;
pub mod introspect;
pub mod issue;
pub mod jwt;
pub mod keys;
pub mod pkce;
pub mod request;
pub mod revoke;
pub mod token;
pub mod userinfo;

use crate::api::AppState;
use axum::Router;
use axum::http::{Method, header};
use axum::routing::{get, post};
use redoubt_outpost_proto::oidc as paths;
use tower_http::cors::{Any, CorsLayer};

/// The provider's routes (the key rotation lives in the REST API, see [`admin`]). The endpoints
/// browser applications call directly (discovery, JWKS, token, UserInfo, revocation) answer
/// cross-origin requests from any origin, without cookies: public clients in the browser
/// authenticate with PKCE and bearer tokens, never with ambient credentials.
pub fn router() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(3600));
    let cross_origin = Router::new()
        .route(paths::DISCOVERY_PATH, get(discovery::configuration))
        .route(paths::JWKS_PATH, get(discovery::jwks))
        .route(paths::TOKEN_PATH, post(token::token))
        .route(
            paths::USERINFO_PATH,
            get(userinfo::userinfo).post(userinfo::userinfo_post),
        )
        .route(paths::REVOKE_PATH, post(revoke::revoke))
        .layer(cors);
    Router::new()
        .route(
            paths::AUTHORIZE_PATH,
            get(authorize::get).post(authorize::post),
        )
        .route(paths::INTROSPECT_PATH, post(introspect::introspect))
        .route(
            paths::END_SESSION_PATH,
            get(end_session::get).post(end_session::post),
        )
        .merge(cross_origin)
}
