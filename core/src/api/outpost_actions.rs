//! `/api/v1/outpost/`: what an outpost does on behalf of end users besides checking credentials:
//! change a password for a user who proves the old one (LDAP Password Modify), and record
//! events (RADIUS accounting). Each call is limited to the outpost's own providers.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, OutpostIdentity};
use super::outpost_facing::{failure_reason, provider_requires_mfa, served_provider};
use super::state::AppState;
use crate::auth::credentials::{CheckError, CredentialRequest};
use crate::model::{NewEvent, Outcome};
use axum::Json;
use axum::extract::State;
use redoubt_outpost_proto::credentials::{
    ChangePasswordRequest, ChangePasswordResponse, MAX_EVENTS_PER_REQUEST, OutpostEventsRequest,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Event actions an outpost may record; anything else is refused.
const OUTPOST_EVENT_ACTIONS: &[&str] = &[
    "radius_accounting",
    redoubt_outpost_proto::credentials::CACHED_LOGIN,
    redoubt_outpost_proto::credentials::PROXY_MISCONFIGURED,
    redoubt_outpost_proto::credentials::OFFLINE_REFUSAL,
];
/// Longest event id an outpost may give (128 random bits are 32 hex digits).
const MAX_EVENT_ID_BYTES: usize = 64;
/// Largest `detail` of one outpost event, serialized.
const MAX_EVENT_DETAIL_BYTES: usize = 4096;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(record_events))
}

/// Change a user's password: the old password (and TOTP code, if the provider asks for one) is
/// checked like a bind, with the same brute-force limit and events; then the new one is checked
/// against the password policy and set, which moves the user's credential epoch on so every
/// outpost drops cached binds. Failures come back with status 200 as `failure` or `rejected`.
#[utoipa::path(post, path = "/api/v1/outpost/credentials/password", tag = "outpost",
    request_body(content = Object, description = "ChangePasswordRequest: {provider_id, username, old_password, new_password, source_address?}"),
    responses((status = 200, description = "ChangePasswordResponse: {result: changed} | {result: failure, reason} | {result: rejected, message}"),
              (status = 403, body = super::error::Problem)))]
async fn change_password(
    identity: OutpostIdentity,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Json<ChangePasswordResponse>> {
    let (provider, application) =
        served_provider(&state, identity.outpost_id, body.provider_id).await?;
    if body.old_password.len() > super::validate::MAX_PASSWORD_BYTES {
        return Ok(Json(ChangePasswordResponse::Failure {
            reason: redoubt_outpost_proto::credentials::FailureReason::InvalidCredentials,
        }));
    }
    let actor = format!("outpost:{}", identity.outpost_id);
    let source = body.source_address.clone().unwrap_or_default();
    let request = CredentialRequest {
        username: &body.username,
        password: &body.old_password,
        totp_code: None,
        source_address: &source,
        require_mfa: provider_requires_mfa(provider.kind, &provider.settings),
        actor: &actor,
        application: Some(&application),
        context: serde_json::json!({ "provider": provider.id, "purpose": "password_change" }),
    };
    let verified = match state.checker.check(&request).await {
        Ok(verified) => verified,
        Err(CheckError::Failed(failure)) => {
            return Ok(Json(ChangePasswordResponse::Failure {
                reason: failure_reason(failure),
            }));
        }
        Err(CheckError::Store(error)) => return Err(error.into()),
    };
    if let Err(problem) = super::validate::password(&body.new_password) {
        return Ok(Json(ChangePasswordResponse::Rejected {
            message: problem.detail,
        }));
    }
    let hash = state.hash_password(body.new_password).await?;
    state
        .store
        .set_password_hash(verified.user.id, Some(&hash))
        .await?;
    state
        .store
        .record_event(&NewEvent {
            actor,
            action: "password_change",
            target: format!("user:{}", verified.user.username),
            source_address: source,
            outcome: Outcome::Success,
            detail: serde_json::json!({ "provider": provider.id, "by": "user" }),
        })
        .await?;
    Ok(Json(ChangePasswordResponse::Changed))
}

/// Record events from the outpost (RADIUS accounting start, stop and interim updates, logins
/// answered from an outpost's credential cache). Only known actions are accepted, for the
/// outpost's own providers, at most 500 per call. An event `id` is stored once: delivering a
/// batch again (its answer was lost) records nothing twice; `occurred_at` dates the event.
/// Every event names its user as `target` (the bare username, as credential checks do) and
/// carries `provider` and `protocol` (the provider's kind) in `detail`.
#[utoipa::path(post, path = "/api/v1/outpost/events", tag = "outpost",
    request_body(content = Object, description = "OutpostEventsRequest: {events: [{provider_id, action, username?, source_address?, detail, id?, occurred_at?}]}"),
    responses((status = 200, description = "{recorded: n, duplicates: n}"),
              (status = 400, body = super::error::Problem),
              (status = 403, body = super::error::Problem)))]
async fn record_events(
    identity: OutpostIdentity,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OutpostEventsRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    if body.events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "events: at most {MAX_EVENTS_PER_REQUEST} per request"
        )));
    }
    let mut checked = Vec::with_capacity(body.events.len());
    let mut served = std::collections::BTreeMap::new();
    for (i, event) in body.events.into_iter().enumerate() {
        let Some(action) = OUTPOST_EVENT_ACTIONS.iter().find(|a| **a == event.action) else {
            return Err(ApiError::validation(format!(
                "events[{i}].action: `{}` is not an outpost event; known: {}",
                event.action,
                OUTPOST_EVENT_ACTIONS.join(", ")
            )));
        };
        if let Some(id) = &event.id
            && (id.is_empty()
                || id.len() > MAX_EVENT_ID_BYTES
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(ApiError::validation(format!(
                "events[{i}].id: 1 to {MAX_EVENT_ID_BYTES} letters, digits or dashes"
            )));
        }
        let outpost_wide = event.provider_id == 0
            && event.action == redoubt_outpost_proto::credentials::PROXY_MISCONFIGURED;
        let protocol = if outpost_wide {
            None
        } else if let Some(kind) = served.get(&event.provider_id) {
            Some(*kind)
        } else {
            if !state
                .store
                .outpost_serves(identity.outpost_id, event.provider_id)
                .await?
            {
                return Err(ApiError::forbidden(format!(
                    "events[{i}].provider_id: provider {} is not served by this outpost",
                    event.provider_id
                )));
            }
            let kind = state.store.provider(event.provider_id).await?.kind.as_str();
            served.insert(event.provider_id, kind);
            Some(kind)
        };
        let mut detail = serde_json::Value::Object(event.detail);
        if detail.to_string().len() > MAX_EVENT_DETAIL_BYTES {
            return Err(ApiError::validation(format!(
                "events[{i}].detail: at most {MAX_EVENT_DETAIL_BYTES} bytes"
            )));
        }
        if !outpost_wide {
            detail["provider"] = serde_json::json!(event.provider_id);
        }
        if let Some(protocol) = protocol {
            detail["protocol"] = serde_json::json!(protocol);
        }
        checked.push((
            NewEvent {
                actor: format!("outpost:{}", identity.outpost_id),
                action,
                target: event.username.unwrap_or_default(),
                source_address: event.source_address.unwrap_or_default(),
                outcome: if *action == redoubt_outpost_proto::credentials::PROXY_MISCONFIGURED
                    || *action == redoubt_outpost_proto::credentials::OFFLINE_REFUSAL
                {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
                detail,
            },
            event.id,
            event.occurred_at,
        ));
    }
    let mut recorded = 0usize;
    for (event, id, occurred_at) in &checked {
        if state
            .store
            .record_outpost_event(event, id.as_deref(), *occurred_at)
            .await?
        {
            recorded += 1;
        }
    }
    Ok(Json(serde_json::json!({
        "recorded": recorded,
        "duplicates": checked.len() - recorded,
    })))
}
