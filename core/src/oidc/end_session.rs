//! `/oauth/end-session` (OpenID Connect RP-Initiated Logout 1.0). Nothing changes on a GET, nor
//! on a POST without this browser's CSRF token: the user is shown a confirmation page whose
//! CSRF-protected button posts the request's parameters back (so a cross-site link or image
//! cannot sign anyone out). On the confirmed POST the browser's login session ends, and with a
//! valid `id_token_hint` (one we signed; expired is fine) the hint's `sid` too; the cookie is
//! cleared. The browser goes to `post_logout_redirect_uri` (with `state`) only if the client
//! registered it (proxy clients: a URL on their external host or under their cookie domain);
//! otherwise a signed-out page is shown.

use super::access;
use super::clients;
use super::request::{self, Params};
use crate::api::AppState;
use crate::web::html::{self, escape, hidden};
use crate::web::{Origin, WebError, cookies, csrf, csrf_token, login, session};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use redoubt_outpost_proto::oidc::END_SESSION_PATH;
use serde_json::Value;

/// `GET /oauth/end-session`.
pub async fn get(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    end_session(
        &state,
        &origin,
        &headers,
        query.unwrap_or_default().as_bytes(),
        false,
    )
    .await
}

/// `POST /oauth/end-session`.
pub async fn post(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    end_session(&state, &origin, &headers, &body, true).await
}

/// The user and session a verified ID token names.
fn hinted_session(claims: &Value) -> Option<(i64, String)> {
    let user_id = claims.get("sub")?.as_str()?.parse().ok()?;
    let sid = claims.get("sid")?.as_str()?.to_owned();
    Some((user_id, sid))
}

async fn end_session(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    input: &[u8],
    posted: bool,
) -> Result<Response, WebError> {
    let params = match Params::parse(input) {
        Ok(params) => params,
        Err(message) => {
            return Ok(html::error_page(
                StatusCode::BAD_REQUEST,
                "Sign-out request refused",
                &message,
            ));
        }
    };
    let hint = match params.get("id_token_hint") {
        Some(token) => access::verified_claims(state, token)
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
            .map(|(_, claims)| claims),
        None => None,
    };
    let hint_client = hint
        .as_ref()
        .and_then(|c| c.get("aud"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let (Some(from_hint), Some(given)) = (&hint_client, params.get("client_id"))
        && from_hint != given
    {
        return Ok(html::error_page(
            StatusCode::BAD_REQUEST,
            "Sign-out request refused",
            "The client_id does not match the ID token.",
        ));
    }
    let client_id = hint_client.or_else(|| params.get("client_id").map(str::to_owned));
    let client = match &client_id {
        Some(id) => clients::find(&state.store, id).await?,
        None => None,
    };
    let target = params.get("post_logout_redirect_uri").filter(|uri| {
        client
            .as_ref()
            .is_some_and(|c| c.post_logout_uri_allowed(uri))
    });
    let confirmed = posted
        && csrf::matches(
            cookies::get(headers, csrf::COOKIE, origin.secure).as_deref(),
            params.get(csrf::FIELD),
        );
    if !confirmed {
        let (token, cookie) = csrf_token(headers, origin.secure)?;
        let mut fields = String::new();
        for key in [
            "id_token_hint",
            "post_logout_redirect_uri",
            "state",
            "client_id",
        ] {
            if let Some(value) = params.get(key) {
                fields.push_str(&hidden(key, value));
            }
        }
        return Ok(html::respond(
            StatusCode::OK,
            html::page(
                "Sign out",
                &format!(
                    "<h1>Sign out?</h1><p>Do you want to sign out of Redoubt?</p>\
                     <form method=\"post\" action=\"{}\">{}{fields}\
                     <button type=\"submit\">Sign out</button></form>",
                    escape(END_SESSION_PATH),
                    hidden(csrf::FIELD, &token),
                ),
            ),
            &cookie.into_iter().collect::<Vec<_>>(),
        ));
    }
    login::end_session(state, headers, origin.secure).await?;
    if let Some((user_id, sid)) = hint.as_ref().and_then(hinted_session) {
        state.store.revoke_sessions(user_id, Some(&sid)).await?;
    }
    let clear = cookies::clear(session::COOKIE, origin.secure);
    match target {
        Some(uri) => {
            let mut pairs = Vec::new();
            if let Some(client_state) = params.get("state") {
                pairs.push(("state", client_state));
            }
            Ok(html::redirect(&request::with_query(uri, &pairs), &[clear]))
        }
        None => Ok(login::signed_out_page(origin.secure)),
    }
}
