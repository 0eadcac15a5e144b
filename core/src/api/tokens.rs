//! `/api/v1/tokens`: admin API tokens (outpost tokens are managed through their outpost), and
//! `/api/v1/auth/login`, which trades an administrator's password for a short-lived token.

use super::audit;
use super::dto::*;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson, ApiPath};
use super::state::AppState;
use crate::auth::credentials::{CheckError, CheckFailure, CredentialRequest};
use crate::auth::token;
use crate::model::TokenKind;
use crate::net::PeerAddr;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default lifetime of a token from `login`: 12 hours.
const LOGIN_TOKEN_SECONDS: u64 = 12 * 3600;
/// Longest lifetime of a token from `login`: 24 hours.
pub(crate) const MAX_LOGIN_TOKEN_SECONDS: u64 = 24 * 3600;
/// Longest lifetime of an admin API token, and the lifetime of one created without
/// `expires_in_seconds`: 365 days.
pub(crate) const MAX_API_TOKEN_SECONDS: u64 = 365 * 86_400;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(delete_token))
        .routes(routes!(login))
}

async fn is_superuser(state: &AppState, user_id: i64) -> ApiResult<bool> {
    Ok(state
        .store
        .effective_groups(user_id)
        .await?
        .iter()
        .any(|g| g.is_superuser))
}

/// The expiry `seconds` from `now`, refused above `max` with a problem naming the maximum.
fn expiry(now: i64, seconds: u64, max: u64, max_text: &str) -> Result<i64, ApiError> {
    if seconds == 0 || seconds > max {
        return Err(ApiError::validation(format!(
            "expires_in_seconds: must be from 1 to {max} ({max_text})"
        )));
    }
    i64::try_from(seconds)
        .ok()
        .and_then(|s| now.checked_add(s))
        .ok_or_else(|| ApiError::validation("expires_in_seconds: too large"))
}

/// List API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<ApiTokenDto>)))]
async fn list_tokens(
    _admin: Admin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ApiTokenDto>>> {
    let tokens = state.store.list_tokens(None).await?;
    Ok(Json(tokens.into_iter().map(ApiTokenDto::from).collect()))
}

/// Create an admin token; the secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = TokenCreated)))]
async fn create_token(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let user_id = body.user_id.unwrap_or(admin.user_id);
    let owner = state.store.user(user_id).await?;
    if !is_superuser(&state, user_id).await? {
        return Err(ApiError::validation(format!(
            "user_id: {} is not in a superuser group, so an admin token cannot act for them",
            owner.username
        )));
    }
    let secret = token::generate().map_err(|e| ApiError::internal(&e))?;
    let expires_at = Some(expiry(
        state.store.now(),
        body.expires_in_seconds.unwrap_or(MAX_API_TOKEN_SECONDS),
        MAX_API_TOKEN_SECONDS,
        "365 days",
    )?);
    let created = state
        .store
        .create_admin_token(
            user_id,
            &token::hash(&secret),
            &body.description,
            expires_at,
        )
        .await?;
    audit::record(
        &state,
        &admin.username,
        "token_create",
        format!("token:{}", created.id),
        &peer.ip().to_string(),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token: created.into(),
            secret,
        }),
    ))
}

/// Revoke a token at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "token id")), responses((status = 204)))]
async fn delete_token(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let existing = state.store.token(id).await?;
    if existing.kind == TokenKind::Outpost {
        return Err(ApiError::validation(
            "id: this is an outpost token; rotate it with POST /api/v1/outposts/{id}/rotate-token or delete the outpost",
        ));
    }
    state.store.delete_token(id).await?;
    audit::record(
        &state,
        &admin.username,
        "token_delete",
        format!("token:{id}"),
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Trade an administrator's password (and TOTP code) for an admin token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "tokens", request_body = LoginRequest,
    responses((status = 201, body = TokenCreated), (status = 401, body = super::error::Problem),
              (status = 429, body = super::error::Problem)))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    if body.password.len() > super::validate::MAX_PASSWORD_BYTES {
        return Err(ApiError::validation("password: too long"));
    }
    let source = peer.ip().to_string();
    let request = CredentialRequest {
        username: &body.username,
        password: &body.password,
        totp_code: body.totp_code.as_deref(),
        source_address: &source,
        require_mfa: true,
        actor: "api-login",
        application: None,
        context: serde_json::json!({}),
    };
    let verified = match state.checker.check(&request).await {
        Ok(verified) => verified,
        Err(CheckError::Failed(CheckFailure::RateLimited)) => {
            return Err(ApiError::rate_limited(
                "too many failed attempts; try again later",
            ));
        }
        Err(CheckError::Failed(CheckFailure::MfaRequired)) => {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                slug: "mfa-required",
                detail: "send the TOTP code in `totp_code`".into(),
            });
        }
        Err(CheckError::Failed(_)) => return Err(ApiError::unauthorized()),
        Err(CheckError::Store(e)) => return Err(e.into()),
    };
    if !verified.groups.iter().any(|g| g.is_superuser) {
        return Err(ApiError::forbidden(
            "only members of a superuser group may use the API",
        ));
    }
    let secret = token::generate().map_err(|e| ApiError::internal(&e))?;
    let expires_at = Some(expiry(
        state.store.now(),
        body.expires_in_seconds.unwrap_or(LOGIN_TOKEN_SECONDS),
        MAX_LOGIN_TOKEN_SECONDS,
        "24 hours",
    )?);
    let created = state
        .store
        .create_admin_token(verified.user.id, &token::hash(&secret), "login", expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token: created.into(),
            secret,
        }),
    ))
}
