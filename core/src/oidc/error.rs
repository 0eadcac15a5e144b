//! OAuth error answers of the JSON endpoints (RFC 6749 section 5.2): a status, an `error` code
//! and a description, never cached; `401 invalid_client` carries a `WWW-Authenticate`
//! challenge.

use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use redoubt_outpost_proto::oidc::OAuthError;

/// An OAuth error to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthFailure {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// `WWW-Authenticate` value, for 401 answers.
    pub challenge: Option<&'static str>,
}

impl OAuthFailure {
    /// `400` with `error`.
    pub fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            challenge: None,
        }
    }

    /// `invalid_grant`: the code or refresh token is unknown, spent, expired or not this
    /// client's.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_grant", description)
    }

    /// `401 invalid_client`.
    pub fn invalid_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "client authentication failed".into(),
            challenge: Some("Basic realm=\"redoubt\""),
        }
    }

    /// `401 invalid_token` for bearer-token endpoints.
    pub fn invalid_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_token",
            description: "the access token is invalid, expired or revoked".into(),
            challenge: Some("Bearer error=\"invalid_token\""),
        }
    }

    /// A failure on our side.
    pub fn server(error: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%error, "OIDC endpoint failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "the request could not be completed".into(),
            challenge: None,
        }
    }
}

impl From<StoreError> for OAuthFailure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::warn!(%error, "OIDC endpoint: database unavailable");
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    error: "temporarily_unavailable",
                    description: "the database cannot be reached".into(),
                    challenge: None,
                }
            }
            other => Self::server(&other),
        }
    }
}

impl From<super::keys::KeyError> for OAuthFailure {
    fn from(error: super::keys::KeyError) -> Self {
        match error {
            super::keys::KeyError::Store(e) => e.into(),
            other => Self::server(&other),
        }
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(OAuthError {
                error: self.error.to_owned(),
                error_description: Some(self.description),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// A JSON answer that must not be cached (tokens, introspection).
pub fn no_store<T: serde::Serialize>(body: T) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
