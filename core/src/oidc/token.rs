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
use crate::model::{NewEvent, Outcome};
use crate::net::PeerAddr;
use crate::store::oidc::{AuthorizationCodeRow, CodeUse, RefreshUse};
use crate::web::Origin;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;

/// Whether a spent code may be exchanged by `client` with this `redirect_uri` and PKCE
/// `verifier` at `now`; the error is the description of an `invalid_grant`.
pub fn check_code(
    row: &AuthorizationCodeRow,
    client: &Client,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    now: i64,
) -> Result<(), &'static str> {
    if row.expires_at <= now {
        return Err("the code has expired");
    }
    if row.client_id != client.client_id {
        return Err("the code was issued to another client");
    }
    if redirect_uri != Some(row.redirect_uri.as_str()) {
        return Err("redirect_uri does not match the authorization request");
    }
    match (&row.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) if pkce::verify(challenge, verifier) => Ok(()),
        (Some(_), _) => Err("code_verifier does not match the code challenge"),
        (None, Some(_)) => {
            Err("code_verifier given but the authorization request had no code_challenge")
        }
        (None, None) if client.is_public() => Err("public clients must use PKCE"),
        (None, None) => Ok(()),
    }
}

/// The scope of a refreshed grant: the granted one, or a subset the client asks for.
pub fn narrowed_scope(granted: &str, asked: Option<&str>) -> Result<String, &'static str> {
    match asked {
        None => Ok(granted.to_owned()),
        Some(asked) if asked.split(' ').all(|s| claims::has_scope(granted, s)) => {
            Ok(asked.to_owned())
        }
        Some(_) => Err("a refresh cannot widen the scope"),
    }
}

/// Records (and logs) a replayed code or refresh token: a sign of a stolen token.
async fn reuse_event(state: &AppState, client: &Client, source: &str, kind: &str) {
    tracing::warn!(client_id = %client.client_id, kind, "a spent grant was presented again: every token issued from it is revoked");
    let event = NewEvent {
        actor: format!("client:{}", client.client_id),
        action: "oidc_grant_reuse",
        target: client.client_id.clone(),
        source_address: source.to_owned(),
        outcome: Outcome::Failure,
        detail: serde_json::json!({ "grant": kind, "provider_id": client.provider.id }),
    };
    if let Err(error) = state.store.record_event(&event).await {
        tracing::warn!(%error, "could not record a grant reuse event");
    }
}

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
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthFailure> {
    let source = peer.ip().to_string();
    let form = Params::parse(&body).map_err(|m| OAuthFailure::bad_request("invalid_request", m))?;
    let grant = match form.get("grant_type") {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        _ => "other",
    };
    let client = match authenticated_client(&state, &headers, &form).await {
        Ok(client) => client,
        Err(failure) => {
            state.metrics.token_request(grant, false);
            return Err(failure);
        }
    };
    let answer = match form.get("grant_type") {
        Some("authorization_code") => code_grant(&state, &origin, &client, &form, &source).await,
        Some("refresh_token") => refresh_grant(&state, &origin, &client, &form, &source).await,
        Some(_) => Err(OAuthFailure::bad_request(
            "unsupported_grant_type",
            "use authorization_code or refresh_token",
        )),
        None => Err(OAuthFailure::bad_request(
            "invalid_request",
            "grant_type is missing",
        )),
    };
    state.metrics.token_request(grant, answer.is_ok());
    answer
}

async fn code_grant(
    state: &AppState,
    origin: &Origin,
    client: &Client,
    form: &Params,
    source: &str,
) -> Result<Response, OAuthFailure> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthFailure::bad_request("invalid_request", "code is missing"))?;
    let family = crate::auth::token::random_base64url().map_err(|e| OAuthFailure::server(&e))?;
    let row = match state
        .store
        .use_authorization_code(&token::hash(code), &family)
        .await?
    {
        CodeUse::Fresh(row) => row,
        CodeUse::Reused => {
            reuse_event(state, client, source, "authorization_code").await;
            return Err(OAuthFailure::invalid_grant("the code was already used"));
        }
        CodeUse::Unknown => return Err(OAuthFailure::invalid_grant("unknown code")),
    };
    check_code(
        &row,
        client,
        form.get("redirect_uri"),
        form.get("code_verifier"),
        state.store.now(),
    )
    .map_err(OAuthFailure::invalid_grant)?;
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
    source: &str,
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
            reuse_event(state, client, source, "refresh_token").await;
            return Err(OAuthFailure::invalid_grant(
                "the refresh token was already used or revoked",
            ));
        }
        RefreshUse::Unknown => return Err(OAuthFailure::invalid_grant("unknown refresh token")),
    };
    if row.expires_at <= state.store.now() {
        return Err(OAuthFailure::invalid_grant("the refresh token has expired"));
    }
    let scope = narrowed_scope(&row.scope, form.get("scope"))
        .map_err(|m| OAuthFailure::bad_request("invalid_scope", m))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provider, ProviderKind};
    use crate::oidc::clients::ClientKind;

    fn client(id: &str, public: bool) -> Client {
        let settings = serde_json::json!({
            "client_id": id,
            "client_type": if public { "public" } else { "confidential" },
            "redirect_uris": ["https://app/cb"],
        });
        Client {
            client_id: id.into(),
            provider: Provider {
                id: 1,
                name: id.into(),
                kind: ProviderKind::Oidc,
                settings: settings.clone(),
                created_at: 0,
                updated_at: 0,
            },
            application: None,
            kind: ClientKind::Oidc(serde_json::from_value(settings).expect("settings")),
        }
    }

    fn row(challenge: Option<&str>) -> AuthorizationCodeRow {
        AuthorizationCodeRow {
            provider_id: 1,
            client_id: "app".into(),
            user_id: 7,
            redirect_uri: "https://app/cb".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: challenge.map(str::to_owned),
            session_id: "s".into(),
            auth_time_ms: 0,
            family_id: None,
            expires_at: 100,
        }
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn codes_are_bound_to_client_redirect_pkce_and_time() {
        let app = client("app", false);
        let cb = Some("https://app/cb");
        assert_eq!(check_code(&row(None), &app, cb, None, 99), Ok(()));
        assert!(
            check_code(&row(None), &app, cb, None, 100).is_err(),
            "expired"
        );
        assert!(check_code(&row(None), &client("other", false), cb, None, 0).is_err());
        assert!(check_code(&row(None), &app, Some("https://app/x"), None, 0).is_err());
        assert!(check_code(&row(None), &app, None, None, 0).is_err());
        assert!(check_code(&row(None), &app, cb, Some(VERIFIER), 0).is_err());
        assert_eq!(
            check_code(&row(Some(CHALLENGE)), &app, cb, Some(VERIFIER), 0),
            Ok(())
        );
        assert!(check_code(&row(Some(CHALLENGE)), &app, cb, None, 0).is_err());
        assert!(check_code(&row(Some(CHALLENGE)), &app, cb, Some(CHALLENGE), 0).is_err());
        let public = client("app", true);
        assert!(
            check_code(&row(None), &public, cb, None, 0).is_err(),
            "public needs PKCE"
        );
    }

    #[test]
    fn refreshes_may_narrow_but_not_widen() {
        assert_eq!(
            narrowed_scope("openid email", None).as_deref(),
            Ok("openid email")
        );
        assert_eq!(
            narrowed_scope("openid email", Some("openid")).as_deref(),
            Ok("openid")
        );
        assert!(narrowed_scope("openid", Some("openid groups")).is_err());
    }
}
