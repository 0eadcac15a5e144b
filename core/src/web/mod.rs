//! The browser-facing pages of the core: login (password, then a TOTP code when the user has
//! one), logout and the self-service account page (change password, enrol TOTP). Server-rendered
//! HTML that works without JavaScript; every form is CSRF-protected (double-submit cookie).
//!
//! The login session is the sealed `redoubt_session` cookie ([`session`]); the OIDC provider
//! (`crate::oidc`) reads the same session at its authorization endpoint.

pub mod account;
pub mod cookies;
pub mod csrf;
pub mod html;
pub mod login;
pub mod next;
pub mod session;

use crate::api::AppState;
use crate::auth::seal::Sealer;
use crate::model::User;
use crate::oidc::keys::KeyManager;
use crate::store::{Store, StoreError};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use session::Session;
use std::convert::Infallible;

/// What the pages and the OIDC provider share: keys and settings.
#[derive(Clone, Debug)]
pub struct WebContext {
    /// Seals session cookies and half-done logins.
    pub sessions: Sealer,
    /// The OIDC signing keys.
    pub keys: KeyManager,
    /// `external_url` from the settings; empty: derived from each request.
    pub external_url: String,
    /// How long a login lasts, seconds.
    pub session_seconds: i64,
}

/// Marks requests that arrived on the HTTPS listener (the HTTPS router adds it).
#[derive(Debug, Clone, Copy)]
pub struct Https;

/// The public base URL a request was made against, and whether it is HTTPS.
#[derive(Debug, Clone)]
pub struct Origin {
    /// e.g. `https://id.example.com` (no trailing slash); the OIDC issuer.
    pub base: String,
    pub secure: bool,
}

/// Whether a `Host` header value looks like `host[:port]` (no path, no userinfo).
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

impl Origin {
    /// The origin from the configured external URL, or from the `Host` header and the listener.
    pub fn resolve(external_url: &str, headers: &HeaderMap, https: bool) -> Self {
        let configured = external_url.trim().trim_end_matches('/');
        if !configured.is_empty() {
            return Self {
                base: configured.to_owned(),
                secure: configured.starts_with("https://"),
            };
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| plausible_host(h))
            .unwrap_or("localhost");
        let scheme = if https { "https" } else { "http" };
        Self {
            base: format!("{scheme}://{host}"),
            secure: https,
        }
    }
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let https =
            parts.extensions.get::<Https>().is_some() || parts.uri.scheme_str() == Some("https");
        Ok(Self::resolve(
            &state.web.external_url,
            &parts.headers,
            https,
        ))
    }
}

/// A failure while serving a page.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "page failed");
        match self {
            Self::Store(StoreError::Unavailable(_)) => html::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The identity service cannot reach its database. Try again in a moment.",
            ),
            _ => html::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The request could not be completed. Try again; if it keeps failing, tell your administrator.",
            ),
        }
    }
}

impl From<crate::auth::credentials::CheckError> for WebError {
    fn from(error: crate::auth::credentials::CheckError) -> Self {
        match error {
            crate::auth::credentials::CheckError::Store(e) => Self::Store(e),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Whether a revocation ends this session.
pub async fn session_revoked(store: &Store, session: &Session) -> Result<bool, StoreError> {
    store
        .session_revoked(session.user_id, &session.sid, session.auth_time_ms)
        .await
}

/// The valid login session of this request (`secure`: its `__Host-` cookie), with its user.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
    secure: bool,
) -> Result<Option<(Session, User)>, StoreError> {
    let Some(value) = cookies::get(headers, session::COOKIE, secure) else {
        return Ok(None);
    };
    let Ok(session) = Session::open(&state.web.sessions, &value, state.store.now()) else {
        return Ok(None);
    };
    let user = match state.store.user(session.user_id).await {
        Ok(user) => user,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    if !user.is_active || session_revoked(&state.store, &session).await? {
        return Ok(None);
    }
    Ok(Some((session, user)))
}

/// Starts a new login session for `user_id`; returns it and its `Set-Cookie` value.
pub fn start_session(
    state: &AppState,
    user_id: i64,
    secure: bool,
) -> Result<(Session, String), WebError> {
    let session = Session {
        sid: session::new_sid().map_err(|e| WebError::Internal(e.to_string()))?,
        user_id,
        auth_time_ms: state.store.now_ms(),
        expires_at: state.store.now().saturating_add(state.web.session_seconds),
    };
    let sealed = session
        .seal(&state.web.sessions)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let cookie = cookies::set(session::COOKIE, &sealed, state.web.session_seconds, secure);
    Ok((session, cookie))
}

/// The CSRF token of this browser, and a `Set-Cookie` value when a new one had to be made.
pub fn csrf_token(headers: &HeaderMap, secure: bool) -> Result<(String, Option<String>), WebError> {
    if let Some(token) = cookies::get(headers, csrf::COOKIE, secure).filter(|t| t.len() >= 32) {
        return Ok((token, None));
    }
    let token =
        crate::auth::token::random_base64url().map_err(|e| WebError::Internal(e.to_string()))?;
    let cookie = cookies::set(csrf::COOKIE, &token, 12 * 3600, secure);
    Ok((token, Some(cookie)))
}

/// The routes of the login and account pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            redoubt_outpost_proto::oidc::LOGIN_PATH,
            get(login::show).post(login::submit),
        )
        .route("/logout", post(login::logout))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/account/totp", post(account::start_totp))
        .route("/account/totp/confirm", post(account::confirm_totp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn origin_prefers_the_configured_url() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("id.example:9000"));
        let derived = Origin::resolve("", &headers, false);
        assert_eq!(derived.base, "http://id.example:9000");
        assert!(!derived.secure);
        let configured = Origin::resolve("https://id.example.com/", &headers, false);
        assert_eq!(configured.base, "https://id.example.com");
        assert!(configured.secure);
        headers.insert("host", HeaderValue::from_static("evil/path"));
        assert_eq!(
            Origin::resolve("", &headers, true).base,
            "https://localhost"
        );
    }
}
