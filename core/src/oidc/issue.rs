//! Issuing tokens for a grant: an ES256 JWT access token (recorded by `jti` so it can be
//! revoked), an ES256 ID token, and a fresh refresh token (stored as SHA-256) in the grant's
//! family.

use super::claims::{self, AccessTokenInput, IdTokenInput, SessionInfo};
use super::clients::{Client, ClientKind};
use super::error::OAuthFailure;
use super::jwt;
use crate::api::AppState;
use crate::auth::token;
use crate::model::{Group, User};
use crate::store::oidc::NewRefreshToken;
use redoubt_outpost_proto::oidc::{TokenResponse, UpstreamBasicAuth};

/// What a grant established.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub issuer: &'a str,
    pub client: &'a Client,
    pub user: &'a User,
    pub groups: &'a [Group],
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub sid: &'a str,
    pub auth_time_ms: i64,
    pub family_id: &'a str,
}

/// Signs and records the tokens of `grant`.
pub async fn issue(state: &AppState, grant: &Grant<'_>) -> Result<TokenResponse, OAuthFailure> {
    let now = state.store.now();
    let key = state.web.keys.current().await?;
    let session = SessionInfo {
        sid: grant.sid,
        auth_time_ms: grant.auth_time_ms,
    };
    let jti = crate::auth::token::random_base64url().map_err(|e| OAuthFailure::server(&e))?;
    let access_lifetime = grant.client.access_token_seconds();
    let access_claims = claims::access_token(&AccessTokenInput {
        issuer: grant.issuer,
        client_id: &grant.client.client_id,
        user_id: grant.user.id,
        scope: grant.scope,
        jti: &jti,
        session: session.clone(),
        now,
        lifetime: access_lifetime,
    });
    let access_token = jwt::sign(&access_claims, &key.kid, "at+jwt", &key.pair)
        .map_err(|e| OAuthFailure::server(&e))?;
    state
        .store
        .add_access_token(
            &jti,
            grant.family_id,
            grant.client.provider.id,
            &grant.client.client_id,
            grant.user.id,
            now.saturating_add(access_lifetime),
        )
        .await?;
    let id_claims = claims::id_token(&IdTokenInput {
        issuer: grant.issuer,
        client_id: &grant.client.client_id,
        user: grant.user,
        groups: grant.groups,
        scope: grant.scope,
        nonce: grant.nonce,
        session,
        now,
        lifetime: grant.client.id_token_seconds(),
        at_hash: Some(jwt::at_hash(&access_token)),
    });
    let id_token =
        jwt::sign(&id_claims, &key.kid, "JWT", &key.pair).map_err(|e| OAuthFailure::server(&e))?;
    let refresh = crate::auth::token::random_base64url().map_err(|e| OAuthFailure::server(&e))?;
    state
        .store
        .add_refresh_token(&NewRefreshToken {
            token_hash: &token::hash(&refresh),
            family_id: grant.family_id,
            provider_id: grant.client.provider.id,
            client_id: &grant.client.client_id,
            user_id: grant.user.id,
            scope: grant.scope,
            nonce: grant.nonce,
            session_id: grant.sid,
            auth_time_ms: grant.auth_time_ms,
            expires_at: now.saturating_add(grant.client.refresh_token_seconds()),
        })
        .await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: u64::try_from(access_lifetime).unwrap_or(0),
        id_token: Some(id_token),
        refresh_token: Some(refresh),
        scope: Some(grant.scope.to_owned()),
        upstream_basic_auth: upstream_basic_auth(grant.client, grant.user),
    })
}

/// For a proxy client whose provider sets `basic_auth`: the user's credentials for the upstream,
/// from their attributes (`None` when the password attribute is missing or not text).
fn upstream_basic_auth(client: &Client, user: &User) -> Option<UpstreamBasicAuth> {
    let ClientKind::Proxy(settings) = &client.kind else {
        return None;
    };
    let basic = settings.basic_auth.as_ref()?;
    let text = |name: &str| {
        user.attributes
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let username = match &basic.username_attribute {
        Some(attribute) => text(attribute)?,
        None => user.username.clone(),
    };
    let Some(password) = text(&basic.password_attribute) else {
        tracing::info!(
            user = %user.username,
            attribute = %basic.password_attribute,
            "no upstream password for the user: the attribute is missing or not text"
        );
        return None;
    };
    Some(UpstreamBasicAuth { username, password })
}
