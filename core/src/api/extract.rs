//! Request extractors: JSON, query and path with problem+json rejections, and the caller's
//! identity from its bearer token.

use super::error::ApiError;
use super::state::AppState;
use crate::auth::token;
use crate::model::{ApiToken, TokenKind};
use axum::extract::{FromRef, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

/// `axum::Json` whose rejection is a problem document.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` whose rejection is a problem document.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejection is a problem document.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An administrator, through an admin token.
    Admin {
        token: ApiToken,
        user_id: i64,
        username: String,
    },
    /// The service identity of one outpost.
    Outpost { token: ApiToken, outpost_id: i64 },
}

impl Principal {
    /// The actor name recorded in events.
    pub fn actor(&self) -> String {
        match self {
            Self::Admin { username, .. } => username.clone(),
            Self::Outpost { outpost_id, .. } => format!("outpost:{outpost_id}"),
        }
    }
}

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let secret = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let hash = token::hash(secret);
        let record = state
            .store
            .token_by_hash(&hash)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if !token::hashes_equal(&record.secret_hash, &hash) {
            return Err(ApiError::unauthorized());
        }
        let now = state.store.now();
        if record.token.expires_at.is_some_and(|at| at <= now) || !record.owner_active {
            return Err(ApiError::unauthorized());
        }
        if let Err(error) = state.store.touch_token(&record.token).await {
            tracing::debug!(%error, "could not stamp token use");
        }
        match (
            record.token.kind,
            record.token.user_id,
            record.token.outpost_id,
        ) {
            (TokenKind::Admin, Some(user_id), _) => Ok(Self::Admin {
                token: record.token,
                user_id,
                username: record.owner_username.unwrap_or_default(),
            }),
            (TokenKind::Outpost, _, Some(outpost_id)) => Ok(Self::Outpost {
                token: record.token,
                outpost_id,
            }),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// An administrator; outpost tokens get 403.
#[derive(Debug, Clone)]
pub struct Admin {
    pub user_id: i64,
    pub username: String,
    pub token_id: i64,
}

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Admin {
                token,
                user_id,
                username,
            } => Ok(Self {
                user_id,
                username,
                token_id: token.id,
            }),
            Principal::Outpost { .. } => Err(ApiError::forbidden(
                "outpost tokens may only call the outpost endpoints under /api/v1/outpost/",
            )),
        }
    }
}

/// An outpost's service identity; admin tokens get 403 (they are not an outpost).
#[derive(Debug, Clone)]
pub struct OutpostIdentity {
    pub outpost_id: i64,
    /// The token the outpost authenticated with (sessions end when it is revoked).
    pub token_id: i64,
}

impl<S> FromRequestParts<S> for OutpostIdentity
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Outpost { outpost_id, token } => Ok(Self {
                outpost_id,
                token_id: token.id,
            }),
            Principal::Admin { .. } => {
                Err(ApiError::forbidden("this endpoint is for outpost tokens"))
            }
        }
    }
}
