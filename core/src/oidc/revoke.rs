//! `/oauth/revoke` (RFC 7009). A client revokes its own tokens: a refresh token revokes its
//! whole family (the access tokens issued with it too); an access token is revoked by `jti`
//! and stays on record until it would have expired. Unknown tokens and tokens of other clients
//! get the same `200` (nothing to tell an attacker).

use super::access;
use super::error::OAuthFailure;
use super::request::Params;
use super::token::authenticated_client;
use crate::api::AppState;
use crate::auth::token;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// `POST /oauth/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, OAuthFailure> {
    let form = Params::parse(&body).map_err(|m| OAuthFailure::bad_request("invalid_request", m))?;
    let caller = authenticated_client(&state, &headers, &form).await?;
    let presented = form
        .get("token")
        .ok_or_else(|| OAuthFailure::bad_request("invalid_request", "token is missing"))?;
    if presented.matches('.').count() == 2 {
        if let Some((_, claims)) = access::verified_claims(&state, presented).await?
            && claims.get("client_id").and_then(Value::as_str) == Some(&caller.client_id)
            && let Some(jti) = claims.get("jti").and_then(Value::as_str)
        {
            state.store.revoke_access_token(jti).await?;
        }
        return Ok(StatusCode::OK);
    }
    if let Some(row) = state.store.refresh_token(&token::hash(presented)).await?
        && row.client_id == caller.client_id
    {
        state.store.revoke_token_family(&row.family_id).await?;
    }
    Ok(StatusCode::OK)
}
