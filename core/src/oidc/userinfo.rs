//! `/oauth/userinfo` (GET and POST): the claims of the access token's scope for its user.
//! The token comes as `Authorization: Bearer`, or as `access_token` in a POST form body.

use super::access;
use super::claims;
use super::error::{OAuthFailure, no_store};
use super::request::Params;
use crate::api::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::response::Response;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

async fn answer(state: &AppState, token: Option<&str>) -> Result<Response, OAuthFailure> {
    let Some(token) = token else {
        return Err(OAuthFailure::invalid_token());
    };
    let Some(active) = access::check(state, token).await? else {
        return Err(OAuthFailure::invalid_token());
    };
    let groups = state.store.effective_groups(active.user.id).await?;
    Ok(no_store(claims::identity(
        &active.user,
        &groups,
        &active.scope,
    )))
}

/// `GET /oauth/userinfo`.
pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, OAuthFailure> {
    answer(&state, bearer(&headers)).await
}

/// `POST /oauth/userinfo`.
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthFailure> {
    let form = Params::parse(&body).unwrap_or_default();
    let token = bearer(&headers).or(form.get("access_token"));
    answer(&state, token).await
}
