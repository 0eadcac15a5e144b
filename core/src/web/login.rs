//! `/login` and `/logout`. Step one asks for username and password and runs the shared
//! credential check (actor `login`, the TCP peer as source address, so the brute-force limits
//! are the same as for outposts and every attempt is an event). When the user has TOTP, step two
//! asks for the code; the half-done login travels as a short-lived sealed token in a hidden
//! field (user name and expiry, never the password).

use super::html::{self, alert, escape, hidden};
use super::{Origin, WebError, cookies, csrf, csrf_token, next, session, start_session};
use crate::api::AppState;
use crate::auth::credentials::{CheckError, CheckFailure, CredentialRequest};
use crate::net::PeerAddr;
use crate::oidc::request::Params;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

/// How long the code step may take, seconds.
const PENDING_SECONDS: i64 = 300;
/// What sealed half-done logins are bound to.
const PENDING_CONTEXT: &[u8] = b"redoubt login pending v1";
/// The actor of login-page credential checks.
pub const ACTOR: &str = "login";

fn login_form(csrf: &str, next: &str, username: &str, error: Option<&str>) -> String {
    login_form_with(csrf, next, username, error, "")
}

fn login_form_with(
    csrf: &str,
    next: &str,
    username: &str,
    error: Option<&str>,
    notice: &str,
) -> String {
    let error = error.map(alert).unwrap_or_default();
    let described = if error.is_empty() {
        ""
    } else {
        " aria-describedby=\"error\""
    };
    html::page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1>{notice}{error}<form method=\"post\" action=\"/login\">{}{}\
             <label for=\"username\">Username</label>\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required \
             autocapitalize=\"none\" spellcheck=\"false\" value=\"{}\"{described}>\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required{described}>\
             <button type=\"submit\">Sign in</button></form>",
            hidden(csrf::FIELD, csrf),
            hidden("next", next),
            escape(username),
        ),
    )
}

fn code_form(csrf: &str, next: &str, pending: &str, error: Option<&str>) -> String {
    let error = error.map(alert).unwrap_or_default();
    html::page(
        "Enter your code",
        &format!(
            "<h1>Two-factor authentication</h1>{error}\
             <p id=\"hint\">Enter the six-digit code from your authenticator app.</p>\
             <form method=\"post\" action=\"/login\">{}{}{}\
             <label for=\"code\">Code</label>\
             <input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" \
             maxlength=\"6\" autocomplete=\"one-time-code\" required autofocus \
             aria-describedby=\"hint\">\
             <button type=\"submit\">Verify</button></form>",
            hidden(csrf::FIELD, csrf),
            hidden("next", next),
            hidden("pending", pending),
        ),
    )
}

fn seal_pending(state: &AppState, username: &str) -> Result<String, WebError> {
    let expires = state.store.now() + PENDING_SECONDS;
    state
        .web
        .sessions
        .seal(format!("{expires}|{username}").as_bytes(), PENDING_CONTEXT)
        .map_err(|e| WebError::Internal(e.to_string()))
}

/// The user name of a half-done login, if the token is genuine and fresh.
fn open_pending(state: &AppState, token: &str) -> Option<String> {
    let plain = state.web.sessions.open(token, PENDING_CONTEXT).ok()?;
    let text = String::from_utf8(plain).ok()?;
    let (expires, username) = text.split_once('|')?;
    (expires.parse::<i64>().ok()? > state.store.now()).then(|| username.to_owned())
}

/// `GET /login`: the form.
pub async fn show(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let next = next::or_default(params.get("next"));
    let (token, cookie) = csrf_token(&headers, origin.secure)?;
    let notice = match super::current_session(&state, &headers, origin.secure).await? {
        Some((_, user)) => format!(
            "<p class=\"notice\" role=\"status\">You are signed in as <strong>{}</strong>. \
             <a href=\"{}\">Continue</a>, or sign in again below.</p>",
            escape(&user.username),
            escape(next)
        ),
        None => String::new(),
    };
    Ok(html::respond(
        StatusCode::OK,
        login_form_with(&token, next, "", None, &notice),
        &cookie.into_iter().collect::<Vec<_>>(),
    ))
}

/// `POST /login`: either step.
pub async fn submit(
    State(state): State<AppState>,
    origin: Origin,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let (token, new_cookie) = csrf_token(&headers, origin.secure)?;
    let set: Vec<String> = new_cookie.into_iter().collect();
    let Ok(form) = Params::parse(&body) else {
        return Ok(html::respond(
            StatusCode::BAD_REQUEST,
            login_form(
                &token,
                next::DEFAULT,
                "",
                Some("The form could not be read."),
            ),
            &set,
        ));
    };
    let next = next::or_default(form.get("next")).to_owned();
    let username = form.get("username").unwrap_or_default();
    if !csrf::matches(
        cookies::get(&headers, csrf::COOKIE, origin.secure).as_deref(),
        form.get(csrf::FIELD),
    ) {
        return Ok(html::respond(
            StatusCode::FORBIDDEN,
            login_form(
                &token,
                &next,
                username,
                Some("The form expired or was sent from another site. Please sign in again."),
            ),
            &set,
        ));
    }
    let source = peer.ip().to_string();
    if let Some(pending) = form.get("pending") {
        let Some(username) = open_pending(&state, pending) else {
            return Ok(html::respond(
                StatusCode::BAD_REQUEST,
                login_form(
                    &token,
                    &next,
                    "",
                    Some("The sign-in took too long. Please start again."),
                ),
                &set,
            ));
        };
        let request = CredentialRequest {
            username: &username,
            password: "",
            totp_code: Some(form.get("code").unwrap_or_default()),
            source_address: &source,
            require_mfa: true,
            actor: ACTOR,
            application: None,
            context: json!({ "step": "totp" }),
        };
        let started = std::time::Instant::now();
        let result = state.checker.check_second_factor(&request).await;
        state
            .metrics
            .observe_check("login", &result, started.elapsed());
        return match result {
            Ok(verified) => finish(&state, &origin, verified.user.id, &next, set),
            Err(CheckError::Failed(failure)) => Ok(html::respond(
                failure_status(failure),
                code_form(&token, &next, pending, Some(failure_message(failure))),
                &set,
            )),
            Err(error) => Err(error.into()),
        };
    }
    let password = form.get("password").unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        return Ok(html::respond(
            StatusCode::BAD_REQUEST,
            login_form(
                &token,
                &next,
                username,
                Some("Enter your username and password."),
            ),
            &set,
        ));
    }
    let request = CredentialRequest {
        username,
        password,
        totp_code: None,
        source_address: &source,
        require_mfa: true,
        actor: ACTOR,
        application: None,
        context: json!({ "step": "password" }),
    };
    let started = std::time::Instant::now();
    let result = state.checker.check(&request).await;
    state
        .metrics
        .observe_check("login", &result, started.elapsed());
    match result {
        Ok(verified) => finish(&state, &origin, verified.user.id, &next, set),
        Err(CheckError::Failed(CheckFailure::MfaRequired)) => {
            let pending = seal_pending(&state, username)?;
            Ok(html::respond(
                StatusCode::OK,
                code_form(&token, &next, &pending, None),
                &set,
            ))
        }
        Err(CheckError::Failed(failure)) => Ok(html::respond(
            failure_status(failure),
            login_form(&token, &next, username, Some(failure_message(failure))),
            &set,
        )),
        Err(error) => Err(error.into()),
    }
}

fn failure_status(failure: CheckFailure) -> StatusCode {
    match failure {
        CheckFailure::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        CheckFailure::AccessDenied => StatusCode::FORBIDDEN,
        CheckFailure::InvalidCredentials | CheckFailure::MfaRequired => StatusCode::UNAUTHORIZED,
    }
}

fn failure_message(failure: CheckFailure) -> &'static str {
    match failure {
        CheckFailure::RateLimited => {
            "Too many failed attempts. Wait a few minutes before trying again."
        }
        CheckFailure::AccessDenied => "You may not use this application.",
        CheckFailure::InvalidCredentials | CheckFailure::MfaRequired => {
            "The username, password or code is not correct."
        }
    }
}

fn finish(
    state: &AppState,
    origin: &Origin,
    user_id: i64,
    next: &str,
    mut set: Vec<String>,
) -> Result<Response, WebError> {
    let (_, cookie) = start_session(state, user_id, origin.secure)?;
    set.push(cookie);
    Ok(html::redirect(next, &set))
}

/// `POST /logout`: ends this browser's login session.
pub async fn logout(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Params::parse(&body).unwrap_or_default();
    if !csrf::matches(
        cookies::get(&headers, csrf::COOKIE, origin.secure).as_deref(),
        form.get(csrf::FIELD),
    ) {
        return Ok(html::error_page(
            StatusCode::FORBIDDEN,
            "Not signed out",
            "The form expired or was sent from another site. Reload the page and try again.",
        ));
    }
    end_session(&state, &headers, origin.secure).await?;
    Ok(signed_out_page(origin.secure))
}

/// Revokes the session of this request, if it has one.
pub async fn end_session(
    state: &AppState,
    headers: &HeaderMap,
    secure: bool,
) -> Result<(), WebError> {
    if let Some(value) = cookies::get(headers, session::COOKIE, secure)
        && let Ok(session) = session::Session::open(&state.web.sessions, &value, state.store.now())
    {
        state
            .store
            .revoke_sessions(session.user_id, Some(&session.sid))
            .await?;
    }
    Ok(())
}

/// The confirmation after a sign-out, clearing the cookie.
pub fn signed_out_page(secure: bool) -> Response {
    html::respond(
        StatusCode::OK,
        html::page(
            "Signed out",
            "<h1>You are signed out</h1><p class=\"notice\" role=\"status\">Your session has ended.</p>\
             <p><a href=\"/login\">Sign in again</a></p>",
        ),
        &[cookies::clear(session::COOKIE, secure)],
    )
}
