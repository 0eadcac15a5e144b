//! Checking a token we issued, for UserInfo, introspection and revocation: the signature
//! (current or retained key), expiry, the `jti` record (not revoked), the user (exists,
//! active) and the login session (no revocation ends it).

use super::jwt;
use crate::api::AppState;
use crate::model::User;
use crate::store::StoreError;
use crate::web::session::Session;
use serde_json::Value;

/// An access token that is in force.
#[derive(Debug, Clone)]
pub struct ActiveAccessToken {
    pub jti: String,
    pub user: User,
    pub client_id: String,
    pub scope: String,
    pub sid: String,
    pub auth_time_ms: i64,
    pub iat: i64,
    pub exp: i64,
}

/// Whether the user's login session `sid` still stands.
pub async fn session_stands(
    state: &AppState,
    user: &User,
    sid: &str,
    auth_time_ms: i64,
) -> Result<bool, StoreError> {
    if !user.is_active {
        return Ok(false);
    }
    let session = Session {
        sid: sid.to_owned(),
        user_id: user.id,
        auth_time_ms,
        expires_at: i64::MAX,
    };
    Ok(!crate::web::session_revoked(&state.store, &session).await?)
}

/// The user `id`, if they exist.
pub async fn user(state: &AppState, id: i64) -> Result<Option<User>, StoreError> {
    match state.store.user(id).await {
        Ok(user) => Ok(Some(user)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The verified claims of a JWT we signed (any retained key), ignoring expiry.
pub async fn verified_claims(
    state: &AppState,
    token: &str,
) -> Result<Option<(Value, Value)>, super::keys::KeyError> {
    let keys = state.web.keys.verifying_keys().await?;
    Ok(jwt::verify(token, &keys)
        .ok()
        .map(|verified| (verified.header, verified.claims)))
}

/// `token` as an access token in force, or `None`.
pub async fn check(
    state: &AppState,
    token: &str,
) -> Result<Option<ActiveAccessToken>, super::keys::KeyError> {
    let Some((header, claims)) = verified_claims(state, token).await? else {
        return Ok(None);
    };
    if header.get("typ").and_then(Value::as_str) != Some("at+jwt") {
        return Ok(None);
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    let (Some(jti), Some(sub), Some(client_id), Some(sid), Some(auth_time_ms), Some(exp)) = (
        text("jti"),
        text("sub"),
        text("client_id"),
        text("sid"),
        number("auth_time_ms"),
        number("exp"),
    ) else {
        return Ok(None);
    };
    if exp <= state.store.now() {
        return Ok(None);
    }
    let Some(record) = state.store.access_token(&jti).await? else {
        return Ok(None);
    };
    let Ok(user_id) = sub.parse::<i64>() else {
        return Ok(None);
    };
    if record.revoked_at.is_some() || record.user_id != user_id || record.client_id != client_id {
        return Ok(None);
    }
    let Some(user) = user(state, user_id).await? else {
        return Ok(None);
    };
    if !session_stands(state, &user, &sid, auth_time_ms).await? {
        return Ok(None);
    }
    Ok(Some(ActiveAccessToken {
        jti,
        user,
        client_id,
        scope: text("scope").unwrap_or_default(),
        sid,
        auth_time_ms,
        iat: number("iat").unwrap_or_default(),
        exp,
    }))
}
