//! `/oauth/authorize` (GET and POST form): checks the request ([`super::request`]), sends
//! browsers without a login session to `/login` (and back), checks the user may use the
//! client's application, and redirects to the client with a single-use code (60 s, stored as
//! SHA-256, bound to client, redirect URI, PKCE challenge, nonce and the login session).

use super::clients;
use super::request::{self, Params, Prompt, Refusal};
use crate::api::AppState;
use crate::auth::credentials::has_application_access;
use crate::auth::token;
use crate::model::{NewEvent, Outcome};
use crate::net::PeerAddr;
use crate::store::oidc::NewAuthorizationCode;
use crate::web::{Origin, WebError, current_session, html};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use redoubt_outpost_proto::oidc::{AUTHORIZE_PATH, LOGIN_PATH};
use serde_json::json;

/// Lifetime of an authorization code, seconds.
pub const CODE_SECONDS: i64 = 60;

/// `GET /oauth/authorize`.
pub async fn get(
    State(state): State<AppState>,
    origin: Origin,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    authorize(
        &state,
        &origin,
        peer,
        &headers,
        query.unwrap_or_default().as_bytes(),
    )
    .await
}

/// `POST /oauth/authorize` (form-encoded, same parameters).
pub async fn post(
    State(state): State<AppState>,
    origin: Origin,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    authorize(&state, &origin, peer, &headers, &body).await
}

fn refused_page(message: &str) -> Response {
    html::error_page(StatusCode::BAD_REQUEST, "Sign-in request refused", message)
}

fn error_redirect(
    origin: &Origin,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", &origin.base));
    html::redirect(&request::with_query(redirect_uri, &pairs), &[])
}

async fn authorize(
    state: &AppState,
    origin: &Origin,
    peer: PeerAddr,
    headers: &HeaderMap,
    input: &[u8],
) -> Result<Response, WebError> {
    let params = match Params::parse(input) {
        Ok(params) => params,
        Err(message) => return Ok(refused_page(&message)),
    };
    let client = match params.get("client_id") {
        Some(id) => clients::find(&state.store, id).await?,
        None => None,
    };
    let request = match request::validate(&params, client.as_ref()) {
        Ok(request) => request,
        Err(Refusal::Page(message)) => return Ok(refused_page(&message)),
        Err(Refusal::Redirect {
            redirect_uri,
            state: client_state,
            error,
            description,
        }) => {
            return Ok(error_redirect(
                origin,
                &redirect_uri,
                client_state.as_deref(),
                error,
                &description,
            ));
        }
    };
    let Some(client) = client else {
        return Ok(refused_page("Unknown client."));
    };
    let Some(application) = &client.application else {
        return Ok(refused_page(&format!(
            "The provider “{}” is not bound to an application, so nobody may use it yet. \
             An administrator has to bind it to one.",
            client.provider.name
        )));
    };
    let redirect_err = |error: &str, description: &str| {
        error_redirect(
            origin,
            &request.redirect_uri,
            request.state.as_deref(),
            error,
            description,
        )
    };
    let session = current_session(state, headers, origin.secure).await?;
    let login_url = || {
        // Without prompt and max_age, so the fresh login satisfies the request (no loop).
        let back = format!(
            "{AUTHORIZE_PATH}?{}",
            params.to_query_without(&["prompt", "max_age"])
        );
        let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        format!("{LOGIN_PATH}?next={next}")
    };
    let (session, user) = match (session, request.prompt) {
        (None, Prompt::None) => {
            return Ok(redirect_err("login_required", "the user is not signed in"));
        }
        (None, _) | (Some(_), Prompt::Login) => return Ok(html::redirect(&login_url(), &[])),
        (Some((session, user)), _) => {
            let too_old = request.max_age.is_some_and(|max| {
                state.store.now_ms() - session.auth_time_ms > max.saturating_mul(1000)
            });
            if too_old {
                return Ok(html::redirect(&login_url(), &[]));
            }
            (session, user)
        }
    };
    let groups = state.store.effective_groups(user.id).await?;
    if !has_application_access(application, &groups) {
        let _ = state
            .store
            .record_event(&NewEvent {
                actor: "oidc".into(),
                action: "oidc_authorize",
                target: user.username.clone(),
                source_address: peer.ip().to_string(),
                outcome: Outcome::Failure,
                detail: json!({"reason": "not_in_bound_group", "application": application.slug, "client_id": client.client_id}),
            })
            .await;
        return Ok(redirect_err(
            "access_denied",
            "the user may not use this application",
        ));
    }
    let code =
        crate::auth::token::random_base64url().map_err(|e| WebError::Internal(e.to_string()))?;
    state
        .store
        .add_authorization_code(&NewAuthorizationCode {
            code_hash: &token::hash(&code),
            provider_id: client.provider.id,
            client_id: &client.client_id,
            user_id: user.id,
            redirect_uri: &request.redirect_uri,
            scope: &request.scope,
            nonce: request.nonce.as_deref(),
            code_challenge: request.code_challenge.as_deref(),
            session_id: &session.sid,
            auth_time_ms: session.auth_time_ms,
            expires_at: state.store.now() + CODE_SECONDS,
        })
        .await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(client_state) = request.state.as_deref() {
        pairs.push(("state", client_state));
    }
    pairs.push(("iss", &origin.base));
    Ok(html::redirect(
        &request::with_query(&request.redirect_uri, &pairs),
        &[],
    ))
}
