//! `/oauth/introspect` (RFC 7662). The caller authenticates as a confidential or proxy client.
//! Access tokens are active while signed by a published key, unexpired, not revoked, their user
//! active and their login session standing; refresh tokens likewise while current, and only
//! for the client they were issued to. When the caller is a proxy client the token's user must
//! also be allowed to use that proxy provider's application, and it is told the user's whole
//! profile (name, email, groups) for the identity headers, whatever the token's scope.

use super::access::{self, session_stands};
use super::claims;
use super::clients::{Client, ClientKind};
use super::error::{OAuthFailure, no_store};
use super::request::Params;
use super::token::authenticated_client;
use crate::api::AppState;
use crate::auth::credentials::has_application_access;
use crate::auth::token;
use crate::model::User;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use redoubt_outpost_proto::oidc::IntrospectionResponse;

/// The claims a proxy client is told about a token's user.
const PROXY_SCOPE: &str = "openid profile email groups";

fn inactive() -> IntrospectionResponse {
    IntrospectionResponse {
        active: false,
        client_id: None,
        scope: None,
        exp: None,
        iat: None,
        token_type: None,
        identity: None,
    }
}

/// What an active token describes.
struct Described {
    user: User,
    client_id: String,
    scope: String,
    sid: String,
    auth_time_ms: i64,
    iat: i64,
    exp: i64,
    token_type: &'static str,
}

async fn describe(
    state: &AppState,
    caller: &Client,
    presented: &str,
) -> Result<Option<Described>, OAuthFailure> {
    if presented.matches('.').count() == 2 {
        return Ok(access::check(state, presented).await?.map(|t| Described {
            user: t.user,
            client_id: t.client_id,
            scope: t.scope,
            sid: t.sid,
            auth_time_ms: t.auth_time_ms,
            iat: t.iat,
            exp: t.exp,
            token_type: "Bearer",
        }));
    }
    let Some(row) = state.store.refresh_token(&token::hash(presented)).await? else {
        return Ok(None);
    };
    if row.client_id != caller.client_id
        || row.rotated_at.is_some()
        || row.revoked_at.is_some()
        || row.expires_at <= state.store.now()
    {
        return Ok(None);
    }
    let Some(user) = access::user(state, row.user_id).await? else {
        return Ok(None);
    };
    if !session_stands(state, &user, &row.session_id, row.auth_time_ms).await? {
        return Ok(None);
    }
    Ok(Some(Described {
        user,
        client_id: row.client_id,
        scope: row.scope,
        sid: row.session_id,
        auth_time_ms: row.auth_time_ms,
        iat: row.created_at,
        exp: row.expires_at,
        token_type: "refresh_token",
    }))
}

/// `POST /oauth/introspect`.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthFailure> {
    let form = Params::parse(&body).map_err(|m| OAuthFailure::bad_request("invalid_request", m))?;
    let caller = authenticated_client(&state, &headers, &form).await?;
    if caller.is_public() {
        return Err(OAuthFailure::invalid_client());
    }
    let presented = form
        .get("token")
        .ok_or_else(|| OAuthFailure::bad_request("invalid_request", "token is missing"))?;
    let Some(described) = describe(&state, &caller, presented).await? else {
        return Ok(no_store(inactive()));
    };
    let groups = state.store.effective_groups(described.user.id).await?;
    if caller.kind.is_outpost() {
        let allowed = caller
            .application
            .as_ref()
            .is_some_and(|app| has_application_access(app, &groups));
        if !allowed {
            return Ok(no_store(inactive()));
        }
    }
    // A proxy sets identity headers for its application whatever scope the token was issued
    // with, so it sees the whole profile (of a user allowed to use that application).
    let claim_scope = match caller.kind {
        ClientKind::Proxy(_) | ClientKind::Rac(_) => PROXY_SCOPE,
        ClientKind::Oidc(_) => described.scope.as_str(),
    };
    let mut identity = claims::identity(&described.user, &groups, claim_scope);
    identity.sid = Some(described.sid);
    identity.auth_time = Some(described.auth_time_ms.div_euclid(1000));
    identity.auth_time_ms = Some(described.auth_time_ms);
    Ok(no_store(IntrospectionResponse {
        active: true,
        client_id: Some(described.client_id),
        scope: Some(described.scope),
        exp: Some(described.exp),
        iat: Some(described.iat),
        token_type: Some(described.token_type.to_owned()),
        identity: Some(identity),
    }))
}
