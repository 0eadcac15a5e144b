//! `/oauth/token`: the `authorization_code` grant (single-use code, exact redirect URI, PKCE)
//! and the `refresh_token` grant (rotated on every use; reuse of a rotated token revokes its
//! family). Tokens stop being issued once the user is disabled or the login session revoked.

use super::access::{session_stands, user};
use super::client_auth::{self, Unreadable};
use super::clients::{self, Client};
use super::error::{OAuthFailure, no_store};
use super::issue::{Grant, issue};
use super::request::Params;
use super::{claims, pkce};
use crate::api::AppState;
use crate::auth::credentials::has_application_access;
use crate::auth::token;
use crate::store::oidc::{CodeUse, RefreshUse};
use crate::web::Origin;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

/// Reads and authenticates the calling client.
pub async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Client, OAuthFailure> {
    let presented = match client_auth::read(headers, form) {
        Ok(presented) => presented,
        Err(Unreadable::Missing) | Err(Unreadable::Invalid) => {
            return Err(OAuthFailure::invalid_client());
        }
    };
    let Some(client) = clients::find(&state.store, &presented.client_id).await? else {
        return Err(OAuthFailure::invalid_client());
    };
    if !clients::authenticate(&state.store, &client, &presented).await? {
        return Err(OAuthFailure::invalid_client());
    }
    Ok(client)
}

/// `POST /oauth/token`.
pub async fn token(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthFailure> {
    let form = Params::parse(&body).map_err(|m| OAuthFailure::bad_request("invalid_request", m))?;
    let client = authenticated_client(&state, &headers, &form).await?;
    match form.get("grant_type") {
        Some("authorization_code") => code_grant(&state, &origin, &client, &form).await,
        Some("refresh_token") => refresh_grant(&state, &origin, &client, &form).await,
        Some(_) => Err(OAuthFailure::bad_request(
            "unsupported_grant_type",
            "use authorization_code or refresh_token",
        )),
        None => Err(OAuthFailure::bad_request(
            "invalid_request",
            "grant_type is missing",
        )),
    }
}

async fn code_grant(
    state: &AppState,
    origin: &Origin,
    client: &Client,
    form: &Params,
) -> Result<Response, OAuthFailure> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthFailure::bad_request("invalid_request", "code is missing"))?;
    let family = super::random_token().map_err(|e| OAuthFailure::server(&e))?;
    let row = match state
        .store
        .use_authorization_code(&token::hash(code), &family)
        .await?
    {
        CodeUse::Fresh(row) => row,
        CodeUse::Reused => {
            tracing::warn!(client_id = %client.client_id, "authorization code reused: tokens issued from it revoked");
            return Err(OAuthFailure::invalid_grant("the code was already used"));
        }
        CodeUse::Unknown => return Err(OAuthFailure::invalid_grant("unknown code")),
    };
    if row.expires_at <= state.store.now() {
        return Err(OAuthFailure::invalid_grant("the code has expired"));
    }
    if row.client_id != client.client_id {
        return Err(OAuthFailure::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if form.get("redirect_uri") != Some(row.redirect_uri.as_str()) {
        return Err(OAuthFailure::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&row.code_challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce::verify(challenge, verifier) => {}
        (Some(_), _) => {
            return Err(OAuthFailure::invalid_grant(
                "code_verifier does not match the code challenge",
            ));
        }
        (None, Some(_)) => {
            return Err(OAuthFailure::invalid_grant(
                "code_verifier given but the authorization request had no code_challenge",
            ));
        }
        (None, None) if client.is_public() => {
            return Err(OAuthFailure::invalid_grant("public clients must use PKCE"));
        }
        (None, None) => {}
    }
    let Some(user) = user(state, row.user_id).await? else {
        return Err(OAuthFailure::invalid_grant("the user no longer exists"));
    };
    if !session_stands(state, &user, &row.session_id, row.auth_time_ms).await? {
        return Err(OAuthFailure::invalid_grant(
            "the login session has ended or the user is disabled",
        ));
    }
    let groups = state.store.effective_groups(user.id).await?;
    let response = issue(
        state,
        &Grant {
            issuer: &origin.base,
            client,
            user: &user,
            groups: &groups,
            scope: &row.scope,
            nonce: row.nonce.as_deref(),
            sid: &row.session_id,
            auth_time_ms: row.auth_time_ms,
            family_id: &family,
        },
    )
    .await?;
    Ok(no_store(response))
}

async fn refresh_grant(
    state: &AppState,
    origin: &Origin,
    client: &Client,
    form: &Params,
) -> Result<Response, OAuthFailure> {
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthFailure::bad_request("invalid_request", "refresh_token is missing"))?;
    let hash = token::hash(presented);
    // A token of another client is refused without touching it.
    match state.store.refresh_token(&hash).await? {
        Some(row) if row.client_id == client.client_id => {}
        _ => return Err(OAuthFailure::invalid_grant("unknown refresh token")),
    }
    let row = match state.store.use_refresh_token(&hash).await? {
        RefreshUse::Fresh(row) => row,
        RefreshUse::Reused => {
            tracing::warn!(client_id = %client.client_id, "refresh token reused: its family is revoked");
            return Err(OAuthFailure::invalid_grant(
                "the refresh token was already used or revoked",
            ));
        }
        RefreshUse::Unknown => return Err(OAuthFailure::invalid_grant("unknown refresh token")),
    };
    if row.expires_at <= state.store.now() {
        return Err(OAuthFailure::invalid_grant("the refresh token has expired"));
    }
    let scope = match form.get("scope") {
        None => row.scope.clone(),
        Some(asked) => {
            if asked.split(' ').any(|s| !claims::has_scope(&row.scope, s)) {
                return Err(OAuthFailure::bad_request(
                    "invalid_scope",
                    "a refresh cannot widen the scope",
                ));
            }
            asked.to_owned()
        }
    };
    let Some(user) = user(state, row.user_id).await? else {
        return Err(OAuthFailure::invalid_grant("the user no longer exists"));
    };
    if !session_stands(state, &user, &row.session_id, row.auth_time_ms).await? {
        state.store.revoke_token_family(&row.family_id).await?;
        return Err(OAuthFailure::invalid_grant(
            "the login session has ended or the user is disabled",
        ));
    }
    let groups = state.store.effective_groups(user.id).await?;
    if let Some(application) = &client.application
        && !has_application_access(application, &groups)
    {
        state.store.revoke_token_family(&row.family_id).await?;
        return Err(OAuthFailure::invalid_grant(
            "the user may no longer use this application",
        ));
    }
    let response = issue(
        state,
        &Grant {
            issuer: &origin.base,
            client,
            user: &user,
            groups: &groups,
            scope: &scope,
            nonce: None,
            sid: &row.session_id,
            auth_time_ms: row.auth_time_ms,
            family_id: &row.family_id,
        },
    )
    .await?;
    Ok(no_store(response))
}
