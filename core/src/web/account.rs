//! `/account`: who is signed in, changing the password (current, new, confirmation; the
//! current one goes through the shared credential check) and enrolling a TOTP authenticator
//! (QR code, `otpauth://` URI and base32 secret; saved only after a correct code).
//!
//! Either change revokes every session of the user (the store does that); this browser then
//! gets a fresh session so the user stays signed in here.

use super::html::{self, alert, escape, hidden};
use super::{Origin, WebError, cookies, csrf, csrf_token, current_session, start_session};
use crate::api::AppState;
use crate::api::validate::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
use crate::auth::credentials::{CheckError, CheckFailure, CredentialRequest, totp_seal_context};
use crate::auth::totp;
use crate::model::User;
use crate::net::PeerAddr;
use crate::oidc::request::Params;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

/// What sealed enrolment secrets are bound to (with the user and session).
fn enrol_context(user_id: i64, sid: &str) -> Vec<u8> {
    format!("redoubt totp enrolment v1:{user_id}:{sid}").into_bytes()
}

/// Messages on the account page.
enum Message<'a> {
    None,
    Notice(&'a str),
    Error(&'a str),
}

fn account_page(user: &User, devices: usize, csrf_value: &str, message: Message<'_>) -> String {
    let banner = match message {
        Message::None => String::new(),
        Message::Notice(text) => {
            format!("<p class=\"notice\" role=\"status\">{}</p>", escape(text))
        }
        Message::Error(text) => alert(text),
    };
    let csrf_field = hidden(csrf::FIELD, csrf_value);
    let totp_state = if devices == 0 {
        "You have no authenticator app set up.".to_owned()
    } else {
        format!("Authenticator apps set up: {devices}.")
    };
    html::page(
        "Your account",
        &format!(
            "<h1>Your account</h1>{banner}\
             <p>Signed in as <strong id=\"username\">{}</strong>{}{}.</p>\
             <form method=\"post\" action=\"/logout\">{csrf_field}\
             <button type=\"submit\" class=\"secondary\">Sign out</button></form>\
             <section aria-labelledby=\"pw\"><h2 id=\"pw\">Change password</h2>\
             <form method=\"post\" action=\"/account/password\">{csrf_field}\
             <input type=\"text\" name=\"username\" autocomplete=\"username\" value=\"{}\" hidden>\
             <label for=\"current_password\">Current password</label>\
             <input id=\"current_password\" name=\"current_password\" type=\"password\" \
             autocomplete=\"current-password\" required>\
             <label for=\"new_password\">New password (at least {MIN_PASSWORD_CHARS} characters)</label>\
             <input id=\"new_password\" name=\"new_password\" type=\"password\" \
             autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_CHARS}\" required>\
             <label for=\"confirm_password\">Repeat the new password</label>\
             <input id=\"confirm_password\" name=\"confirm_password\" type=\"password\" \
             autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_CHARS}\" required>\
             <button type=\"submit\">Change password</button></form></section>\
             <section aria-labelledby=\"mfa\"><h2 id=\"mfa\">Two-factor authentication</h2>\
             <p>{totp_state}</p>\
             <form method=\"post\" action=\"/account/totp\">{csrf_field}\
             <button type=\"submit\">Set up an authenticator app</button></form></section>",
            escape(&user.username),
            if user.name.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&user.name))
            },
            if user.email.is_empty() {
                String::new()
            } else {
                format!(", {}", escape(&user.email))
            },
            escape(&user.username),
        ),
    )
}

fn enrol_page(
    csrf_value: &str,
    uri: &str,
    secret_b32: &str,
    pending: &str,
    error: Option<&str>,
) -> String {
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default();
    let qr = qr
        .split_once("?>")
        .map_or(qr.as_str(), |(_, svg)| svg)
        .trim()
        .to_owned();
    html::page(
        "Set up an authenticator app",
        &format!(
            "<h1>Set up an authenticator app</h1>{}\
             <p>Scan this code with your authenticator app, or enter the key by hand.</p>\
             <div class=\"qr\" role=\"img\" aria-label=\"QR code of the setup link\">{qr}</div>\
             <p>Key: <code id=\"secret\">{}</code></p>\
             <p>Setup link: <code id=\"otpauth\">{}</code></p>\
             <form method=\"post\" action=\"/account/totp/confirm\">{}{}\
             <label for=\"code\">Code shown by the app</label>\
             <input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" \
             maxlength=\"6\" autocomplete=\"one-time-code\" required>\
             <button type=\"submit\">Confirm</button></form>\
             <p><a href=\"/account\">Cancel</a></p>",
            error.map(alert).unwrap_or_default(),
            escape(secret_b32),
            escape(uri),
            hidden(csrf::FIELD, csrf_value),
            hidden("pending", pending),
        ),
    )
}

/// A signed-in POST: the session and user, the form, and the CSRF token; or the response to
/// send instead.
struct Posted {
    session: super::session::Session,
    user: User,
    form: Params,
    csrf: String,
    set: Vec<String>,
}

async fn posted(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Result<Posted, Response>, WebError> {
    let Some((session, user)) = current_session(state, headers, origin.secure).await? else {
        return Ok(Err(html::redirect("/login?next=%2Faccount", &[])));
    };
    let (token, cookie) = csrf_token(headers, origin.secure)?;
    let form = Params::parse(body).unwrap_or_default();
    if !csrf::matches(
        cookies::get(headers, csrf::COOKIE, origin.secure).as_deref(),
        form.get(csrf::FIELD),
    ) {
        return Ok(Err(html::error_page(
            StatusCode::FORBIDDEN,
            "Not saved",
            "The form expired or was sent from another site. Reload the account page and try again.",
        )));
    }
    Ok(Ok(Posted {
        session,
        user,
        form,
        csrf: token,
        set: cookie.into_iter().collect(),
    }))
}

async fn render_account(
    state: &AppState,
    status: StatusCode,
    user: &User,
    csrf_value: &str,
    message: Message<'_>,
    set: &[String],
) -> Result<Response, WebError> {
    let devices = state.store.totp_devices(user.id).await?.len();
    Ok(html::respond(
        status,
        account_page(user, devices, csrf_value, message),
        set,
    ))
}

/// `GET /account`.
pub async fn show(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some((_, user)) = current_session(&state, &headers, origin.secure).await? else {
        return Ok(html::redirect("/login?next=%2Faccount", &[]));
    };
    let (token, cookie) = csrf_token(&headers, origin.secure)?;
    let set: Vec<String> = cookie.into_iter().collect();
    render_account(&state, StatusCode::OK, &user, &token, Message::None, &set).await
}

/// `POST /account/password`.
pub async fn change_password(
    State(state): State<AppState>,
    origin: Origin,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let p = match posted(&state, &origin, &headers, &body).await? {
        Ok(p) => p,
        Err(response) => return Ok(response),
    };
    let current = p.form.get("current_password").unwrap_or_default();
    let new = p.form.get("new_password").unwrap_or_default();
    let refuse = |text: &'static str, status: StatusCode| {
        render_account(
            &state,
            status,
            &p.user,
            &p.csrf,
            Message::Error(text),
            &p.set,
        )
    };
    if new != p.form.get("confirm_password").unwrap_or_default() {
        return refuse("The new passwords do not match.", StatusCode::BAD_REQUEST).await;
    }
    if new.chars().count() < MIN_PASSWORD_CHARS || new.len() > MAX_PASSWORD_BYTES {
        return refuse(
            "The new password must be at least 8 characters (and at most 1024 bytes).",
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let source = peer.ip().to_string();
    let check = state
        .checker
        .check(&CredentialRequest {
            username: &p.user.username,
            password: current,
            totp_code: None,
            source_address: &source,
            require_mfa: false,
            actor: super::login::ACTOR,
            application: None,
            context: json!({ "step": "password_change" }),
        })
        .await;
    match check {
        Ok(_) => {}
        Err(CheckError::Failed(CheckFailure::RateLimited)) => {
            return refuse(
                "Too many failed attempts. Wait a few minutes before trying again.",
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
        }
        Err(CheckError::Failed(_)) => {
            return refuse(
                "The current password is not correct.",
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
        Err(error) => return Err(error.into()),
    }
    let hash = state
        .hasher
        .hash_async(new.to_owned())
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    state
        .store
        .set_password_hash(p.user.id, Some(&hash))
        .await?;
    record(&state, &p.user, "password_change", &source).await;
    let mut set = p.set.clone();
    set.push(renew(&state, &origin, &p)?);
    render_account(
        &state,
        StatusCode::OK,
        &p.user,
        &p.csrf,
        Message::Notice("Your password has been changed. Other sessions have been signed out."),
        &set,
    )
    .await
}

/// A fresh session for this browser, after the store revoked every session of the user (it
/// does so on password and TOTP changes): the new login time is later than the revocation.
fn renew(state: &AppState, origin: &Origin, p: &Posted) -> Result<String, WebError> {
    let (_, cookie) = start_session(state, p.user.id, origin.secure)?;
    Ok(cookie)
}

async fn record(state: &AppState, user: &User, action: &'static str, source: &str) {
    if let Err(error) = state
        .store
        .record_event(&crate::model::NewEvent {
            actor: user.username.clone(),
            action,
            target: user.username.clone(),
            source_address: source.to_owned(),
            outcome: crate::model::Outcome::Success,
            detail: json!({ "via": "account_page" }),
        })
        .await
    {
        tracing::warn!(%error, action, "could not record an account event");
    }
}

/// `POST /account/totp`: a new secret to scan.
pub async fn start_totp(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let p = match posted(&state, &origin, &headers, &body).await? {
        Ok(p) => p,
        Err(response) => return Ok(response),
    };
    let secret = totp::generate_secret().map_err(|e| WebError::Internal(e.to_string()))?;
    let pending = state
        .web
        .sessions
        .seal(&secret, &enrol_context(p.user.id, &p.session.sid))
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let uri = totp::otpauth_uri("Redoubt", &p.user.username, &secret);
    Ok(html::respond(
        StatusCode::OK,
        enrol_page(&p.csrf, &uri, &totp::encode_secret(&secret), &pending, None),
        &p.set,
    ))
}

/// `POST /account/totp/confirm`: saves the authenticator once a code from it checks out.
pub async fn confirm_totp(
    State(state): State<AppState>,
    origin: Origin,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let p = match posted(&state, &origin, &headers, &body).await? {
        Ok(p) => p,
        Err(response) => return Ok(response),
    };
    let pending = p.form.get("pending").unwrap_or_default();
    let Ok(secret) = state
        .web
        .sessions
        .open(pending, &enrol_context(p.user.id, &p.session.sid))
    else {
        return render_account(
            &state,
            StatusCode::BAD_REQUEST,
            &p.user,
            &p.csrf,
            Message::Error("The setup expired. Please start again."),
            &p.set,
        )
        .await;
    };
    let code = p.form.get("code").unwrap_or_default();
    let Some(step) = totp::verify(&secret, code, state.store.now()) else {
        let uri = totp::otpauth_uri("Redoubt", &p.user.username, &secret);
        return Ok(html::respond(
            StatusCode::BAD_REQUEST,
            enrol_page(
                &p.csrf,
                &uri,
                &totp::encode_secret(&secret),
                pending,
                Some("That code is not correct. Check the time on your device and try again."),
            ),
            &p.set,
        ));
    };
    let sealed = state
        .sealer
        .seal(&secret, &totp_seal_context(p.user.id))
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let device = state
        .store
        .add_totp_device(p.user.id, "Authenticator app", &sealed)
        .await?;
    // The code just shown may not log anyone in again.
    state.store.consume_totp_step(device.id, step).await?;
    let source = peer.ip().to_string();
    record(&state, &p.user, "totp_enroll", &source).await;
    let mut set = p.set.clone();
    set.push(renew(&state, &origin, &p)?);
    render_account(
        &state,
        StatusCode::OK,
        &p.user,
        &p.csrf,
        Message::Notice("Your authenticator app is set up. Other sessions have been signed out."),
        &set,
    )
    .await
}
