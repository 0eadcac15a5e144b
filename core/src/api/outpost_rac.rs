//! `/api/v1/outpost/rac/`: what a RAC outpost asks the core, for its own providers only. The
//! endpoints a user may open, a grant per connection (re-checking the user, their login session,
//! the application binding and the endpoint's groups, counting the limits across every replica
//! and handing out the endpoint's credentials in `static` mode), reports of what became of a
//! connection, and lease renewals that also tell the outpost which connections must end now.
//!
//! A refused grant is a problem document (403, or 409 for `limit_reached` and `no_credentials`)
//! whose `type` ends with `/rac-<reason>` and whose `reason` member is the
//! [`GrantRefusal`] in snake_case.

use super::error::{ApiError, ApiResult, PROBLEM_BASE};
use super::extract::{ApiJson, OutpostIdentity};
use super::state::AppState;
use crate::model::{Group, NewEvent, Outcome};
use crate::rac::access::{Standing, lease_verdict, may_open};
use crate::rac::check::{ServedProvider, served_provider, standing};
use crate::rac::credentials;
use crate::store::StoreError;
use crate::store::rac::{NewRacConnection, RacConnection, RacEnd, RacLimit};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use redoubt_outpost_proto::provider::RacAuthMode;
use redoubt_outpost_proto::rac::{
    EndReason, GrantRefusal, LEASE_SECONDS, RacConnectionEvent, RacConnectionReport,
    RacEndpointsRequest, RacEndpointsResponse, RacGrant, RacGrantRequest, RacLeaseEnd,
    RacLeaseRequest, RacLeaseResponse, RacUser,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most connection ids one lease renewal may list.
const MAX_LEASES_PER_REQUEST: usize = 10_000;
/// Longest free text kept from a report (`detail`).
const MAX_DETAIL_CHARS: usize = 1024;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rac_endpoints))
        .routes(routes!(rac_grant))
        .routes(routes!(rac_report))
        .routes(routes!(rac_leases))
}

/// The snake_case name of a refusal (as serde writes it).
pub(crate) fn refusal_label(reason: GrantRefusal) -> &'static str {
    match reason {
        GrantRefusal::UnknownEndpoint => "unknown_endpoint",
        GrantRefusal::NotInGroup => "not_in_group",
        GrantRefusal::SessionEnded => "session_ended",
        GrantRefusal::LimitReached => "limit_reached",
        GrantRefusal::NoCredentials => "no_credentials",
    }
}

/// A failed RAC call: a refusal the outpost shows the user, or any other API error.
#[derive(Debug)]
pub(crate) enum RacFailure {
    Refused {
        reason: GrantRefusal,
        detail: String,
    },
    Api(ApiError),
}

impl RacFailure {
    fn refused(reason: GrantRefusal, detail: impl Into<String>) -> Self {
        Self::Refused {
            reason,
            detail: detail.into(),
        }
    }
}

impl From<ApiError> for RacFailure {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<StoreError> for RacFailure {
    fn from(error: StoreError) -> Self {
        Self::Api(error.into())
    }
}

impl IntoResponse for RacFailure {
    fn into_response(self) -> Response {
        let (reason, detail) = match self {
            Self::Api(error) => return error.into_response(),
            Self::Refused { reason, detail } => (reason, detail),
        };
        let status = match reason {
            GrantRefusal::LimitReached | GrantRefusal::NoCredentials => StatusCode::CONFLICT,
            GrantRefusal::UnknownEndpoint
            | GrantRefusal::NotInGroup
            | GrantRefusal::SessionEnded => StatusCode::FORBIDDEN,
        };
        let label = refusal_label(reason);
        let body = json!({
            "type": format!("{PROBLEM_BASE}rac-{label}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "reason": label,
        });
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// Who, where and what an event is about.
struct EventContext<'a> {
    outpost_id: i64,
    /// The user's name, or `user:<id>` when they are gone.
    target: String,
    source: &'a str,
    detail: serde_json::Value,
}

async fn record(
    state: &AppState,
    action: &'static str,
    outcome: Outcome,
    context: EventContext<'_>,
) {
    let event = NewEvent {
        actor: format!("outpost:{}", context.outpost_id),
        action,
        target: context.target,
        source_address: context.source.to_owned(),
        outcome,
        detail: context.detail,
    };
    if let Err(error) = state.store.record_event(&event).await {
        tracing::warn!(%error, action, "could not record event");
    }
}

/// The user's name for events.
async fn target_of(state: &AppState, user_id: i64) -> String {
    match state.store.user(user_id).await {
        Ok(user) => user.username,
        Err(_) => format!("user:{user_id}"),
    }
}

fn not_served(provider_id: i64) -> RacFailure {
    RacFailure::refused(
        GrantRefusal::UnknownEndpoint,
        format!("provider {provider_id} is not a RAC provider this outpost serves"),
    )
}

/// The endpoints of one of the calling outpost's RAC providers that a user may open now.
#[utoipa::path(post, path = "/api/v1/outpost/rac/endpoints", tag = "outpost",
    request_body(content = Object, description = "RacEndpointsRequest: {provider_id, user: {user_id, sid, auth_time_ms}}"),
    responses((status = 200, description = "RacEndpointsResponse: {endpoints: [slug]}"),
              (status = 403, description = "problem+json with `reason`: unknown_endpoint (not this outpost's provider) or session_ended")))]
async fn rac_endpoints(
    identity: OutpostIdentity,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RacEndpointsRequest>,
) -> Result<Json<RacEndpointsResponse>, RacFailure> {
    let Some(served) = served_provider(&state.store, identity.outpost_id, body.provider_id).await?
    else {
        return Err(not_served(body.provider_id));
    };
    let (user, standing) = standing(&state.store, &body.user).await?;
    let Some(user) = user.filter(|_| standing == Standing::Valid) else {
        return Err(RacFailure::refused(
            GrantRefusal::SessionEnded,
            "the user is disabled or gone, or the login session was ended",
        ));
    };
    let groups = state.store.effective_groups(user.id).await?;
    let endpoints = served
        .settings
        .endpoints
        .iter()
        .filter(|e| may_open(served.application.as_ref(), &groups, e).is_ok())
        .map(|e| e.slug())
        .collect();
    Ok(Json(RacEndpointsResponse { endpoints }))
}

/// Let a user open an endpoint now: checks access, counts the limits across every replica,
/// records the connection and returns its id, expiry and (in `static` mode) the credentials.
#[utoipa::path(post, path = "/api/v1/outpost/rac/grants", tag = "outpost",
    request_body(content = Object, description = "RacGrantRequest: {provider_id, endpoint, user: {user_id, sid, auth_time_ms}, client_address?, instance_id}"),
    responses((status = 200, description = "RacGrant: {connection_id, expires_at, credentials?}"),
              (status = 403, description = "problem+json, `reason`: unknown_endpoint, not_in_group or session_ended"),
              (status = 409, description = "problem+json, `reason`: limit_reached or no_credentials")))]
async fn rac_grant(
    identity: OutpostIdentity,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RacGrantRequest>,
) -> Result<Json<RacGrant>, RacFailure> {
    if body.instance_id.is_empty() || body.instance_id.len() > 128 {
        return Err(ApiError::validation("instance_id: must be 1 to 128 characters").into());
    }
    if body.endpoint.len() > 64 {
        return Err(ApiError::validation("endpoint: must be at most 64 characters").into());
    }
    // An address longer than any IPv6 text with a port is not one; keep it out of the log.
    let source = body
        .client_address
        .as_deref()
        .filter(|a| a.len() <= 64)
        .unwrap_or_default()
        .to_owned();
    let result = grant(&state, identity.outpost_id, &body, &source).await;
    let mut detail = json!({
        "provider": body.provider_id,
        "endpoint": body.endpoint,
        "instance": body.instance_id,
    });
    let (action, outcome) = match &result {
        Ok(granted) => {
            detail["connection"] = json!(granted.connection_id);
            ("rac_connection_granted", Outcome::Success)
        }
        Err(RacFailure::Refused {
            reason,
            detail: why,
        }) => {
            detail["reason"] = json!(refusal_label(*reason));
            detail["detail"] = json!(why);
            ("rac_connection_denied", Outcome::Failure)
        }
        Err(RacFailure::Api(_)) => return result.map(Json),
    };
    let context = EventContext {
        outpost_id: identity.outpost_id,
        target: target_of(&state, body.user.user_id).await,
        source: &source,
        detail,
    };
    record(&state, action, outcome, context).await;
    result.map(Json)
}

/// The decision behind [`rac_grant`], without the event.
async fn grant(
    state: &AppState,
    outpost_id: i64,
    body: &RacGrantRequest,
    client_address: &str,
) -> Result<RacGrant, RacFailure> {
    let Some(served) = served_provider(&state.store, outpost_id, body.provider_id).await? else {
        return Err(not_served(body.provider_id));
    };
    let Some(endpoint) = served.settings.endpoint(&body.endpoint) else {
        return Err(RacFailure::refused(
            GrantRefusal::UnknownEndpoint,
            format!("the provider has no endpoint `{}`", body.endpoint),
        ));
    };
    let (user, standing) = standing(&state.store, &body.user).await?;
    let Some(user) = user.filter(|_| standing == Standing::Valid) else {
        return Err(RacFailure::refused(
            GrantRefusal::SessionEnded,
            "the user is disabled or gone, or the login session was ended",
        ));
    };
    let groups = state.store.effective_groups(user.id).await?;
    if let Err(denial) = may_open(served.application.as_ref(), &groups, endpoint) {
        return Err(RacFailure::refused(
            GrantRefusal::NotInGroup,
            denial.detail(),
        ));
    }
    let slug = endpoint.slug();
    let credentials = match endpoint.auth_mode {
        RacAuthMode::Prompt => None,
        RacAuthMode::Static => Some(endpoint_credentials(state, &served, &slug).await?),
    };
    let now = state.store.now();
    let lease = i64::try_from(LEASE_SECONDS).unwrap_or(60);
    let expires_at = now.saturating_add(
        i64::try_from(served.settings.connection_expiry_seconds).unwrap_or(i64::MAX),
    );
    let new = NewRacConnection {
        provider_id: served.provider.id,
        endpoint_slug: &slug,
        user_id: user.id,
        session_id: &body.user.sid,
        auth_time_ms: body.user.auth_time_ms,
        outpost_id,
        instance_id: &body.instance_id,
        client_address,
        lease_until: now.saturating_add(lease),
        expires_at,
        endpoint_limit: endpoint.maximum_connections,
        user_limit: served.settings.maximum_connections_per_user,
    };
    match state.store.open_rac_connection(&new).await? {
        Ok(connection_id) => Ok(RacGrant {
            connection_id,
            expires_at,
            credentials,
        }),
        Err(RacLimit::Endpoint) => Err(RacFailure::refused(
            GrantRefusal::LimitReached,
            "the endpoint has as many open connections as it allows",
        )),
        Err(RacLimit::User) => Err(RacFailure::refused(
            GrantRefusal::LimitReached,
            "the user has as many open connections as the provider allows",
        )),
    }
}

/// The unsealed credentials of a `static` endpoint.
async fn endpoint_credentials(
    state: &AppState,
    served: &ServedProvider,
    slug: &str,
) -> Result<redoubt_outpost_proto::rac::RdpCredentials, RacFailure> {
    let Some(sealed) = state
        .store
        .rac_credentials(served.provider.id, slug)
        .await?
    else {
        return Err(RacFailure::refused(
            GrantRefusal::NoCredentials,
            "the endpoint signs in with stored credentials and none are set",
        ));
    };
    credentials::open(&state.rac_sealer, served.provider.id, slug, &sealed).map_err(|error| {
        tracing::warn!(provider = served.provider.id, endpoint = slug, %error,
            "stored RAC credentials do not open");
        RacFailure::refused(
            GrantRefusal::NoCredentials,
            "the stored credentials do not open under this secret key; set them again",
        )
    })
}

/// Whether `text` is a SHA-256 in hex.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_DETAIL_CHARS).collect()
}

/// Report what became of a granted connection: started, failed or ended (each an audit event;
/// failed and ended free its slot). Repeated reports change nothing.
#[utoipa::path(post, path = "/api/v1/outpost/rac/reports", tag = "outpost",
    request_body(content = Object, description = "RacConnectionReport: {connection_id, state: started|failed|ended, ...}"),
    responses((status = 204), (status = 404, body = super::error::Problem)))]
async fn rac_report(
    identity: OutpostIdentity,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RacConnectionReport>,
) -> ApiResult<StatusCode> {
    let connection = match state.store.rac_connection(&body.connection_id).await? {
        Some(c) if c.outpost_id == identity.outpost_id => c,
        _ => return Err(ApiError::not_found("connection")),
    };
    let mut detail = json!({
        "provider": connection.provider_id,
        "endpoint": connection.endpoint_slug,
        "connection": connection.id,
    });
    let (action, outcome) = match &body.what {
        RacConnectionEvent::Started {
            security,
            server_key_sha256,
            width,
            height,
        } => {
            if security.len() > 16 || !security.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ApiError::validation(
                    "security: must be a short word (nla, tls)",
                ));
            }
            if !is_sha256_hex(server_key_sha256) {
                return Err(ApiError::validation(
                    "server_key_sha256: must be 64 hexadecimal digits",
                ));
            }
            let key = server_key_sha256.to_ascii_lowercase();
            if !state
                .store
                .mark_rac_connection_started(&connection, &key)
                .await?
            {
                return Ok(StatusCode::NO_CONTENT);
            }
            detail["security"] = json!(security);
            detail["server_key_sha256"] = json!(key);
            detail["width"] = json!(width);
            detail["height"] = json!(height);
            ("rac_connection_started", Outcome::Success)
        }
        RacConnectionEvent::Failed {
            reason,
            detail: why,
        } => {
            let end = RacEnd {
                reason: reason.label(),
                bytes_from_server: 0,
                bytes_to_browser: 0,
            };
            if !state.store.end_rac_connection(&connection.id, end).await? {
                return Ok(StatusCode::NO_CONTENT);
            }
            detail["reason"] = json!(reason.label());
            detail["detail"] = json!(clip(why));
            ("rac_connection_failed", Outcome::Failure)
        }
        RacConnectionEvent::Ended {
            reason,
            duration_seconds,
            bytes_from_server,
            bytes_to_browser,
            clipboard_transfers,
        } => {
            let end = RacEnd {
                reason: reason.label(),
                bytes_from_server: *bytes_from_server,
                bytes_to_browser: *bytes_to_browser,
            };
            if !state.store.end_rac_connection(&connection.id, end).await? {
                return Ok(StatusCode::NO_CONTENT);
            }
            detail["reason"] = json!(reason.label());
            detail["duration_seconds"] = json!(duration_seconds);
            detail["bytes_from_server"] = json!(bytes_from_server);
            detail["bytes_to_browser"] = json!(bytes_to_browser);
            detail["clipboard_transfers"] = json!(clipboard_transfers);
            ("rac_connection_ended", Outcome::Success)
        }
    };
    let context = EventContext {
        outpost_id: identity.outpost_id,
        target: target_of(&state, connection.user_id).await,
        source: &connection.client_address,
        detail,
    };
    record(&state, action, outcome, context).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Renew the leases of an outpost instance's live connections; the answer lists those that must
/// end now, with why (revoked: user disabled or gone, or session ended; denied: access lost;
/// removed: endpoint or provider gone, or the core does not know the connection; expired).
#[utoipa::path(post, path = "/api/v1/outpost/rac/leases", tag = "outpost",
    request_body(content = Object, description = "RacLeaseRequest: {instance_id, connection_ids}"),
    responses((status = 200, description = "RacLeaseResponse: {end: [{connection_id, reason}]}"),
              (status = 400, body = super::error::Problem)))]
async fn rac_leases(
    identity: OutpostIdentity,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RacLeaseRequest>,
) -> ApiResult<Json<RacLeaseResponse>> {
    if body.connection_ids.len() > MAX_LEASES_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "connection_ids: at most {MAX_LEASES_PER_REQUEST} per request"
        )));
    }
    let ids: Vec<String> = body
        .connection_ids
        .iter()
        .filter(|id| id.len() <= 64)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let held = state
        .store
        .held_rac_connections(identity.outpost_id, &body.instance_id, &ids)
        .await?;
    let mut end: Vec<RacLeaseEnd> = body
        .connection_ids
        .iter()
        .filter(|id| !held.iter().any(|c| &c.id == *id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|id| RacLeaseEnd {
            connection_id: id.clone(),
            reason: EndReason::Removed,
        })
        .collect();
    let mut judge = LeaseJudge::new(&state, identity.outpost_id);
    let mut keep = Vec::with_capacity(held.len());
    for connection in &held {
        match judge.verdict(connection).await? {
            Some(reason) => end.push(RacLeaseEnd {
                connection_id: connection.id.clone(),
                reason,
            }),
            None => keep.push(connection.id.as_str()),
        }
    }
    let lease = i64::try_from(LEASE_SECONDS).unwrap_or(60);
    state
        .store
        .renew_rac_leases(&keep, state.store.now().saturating_add(lease))
        .await?;
    Ok(Json(RacLeaseResponse { end }))
}

/// Judges live connections, looking each provider and each user's groups up once.
struct LeaseJudge<'a> {
    state: &'a AppState,
    outpost_id: i64,
    providers: BTreeMap<i64, Option<ServedProvider>>,
    groups: BTreeMap<i64, Vec<Group>>,
}

impl<'a> LeaseJudge<'a> {
    fn new(state: &'a AppState, outpost_id: i64) -> Self {
        Self {
            state,
            outpost_id,
            providers: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }

    async fn verdict(
        &mut self,
        connection: &RacConnection,
    ) -> Result<Option<EndReason>, StoreError> {
        let store = &self.state.store;
        if !self.providers.contains_key(&connection.provider_id) {
            let served = served_provider(store, self.outpost_id, connection.provider_id).await?;
            self.providers.insert(connection.provider_id, served);
        }
        let served = self
            .providers
            .get(&connection.provider_id)
            .and_then(Option::as_ref);
        let endpoint = served.and_then(|s| {
            s.settings
                .endpoint(&connection.endpoint_slug)
                .map(|e| (s, e))
        });
        let Some((served, endpoint)) = endpoint else {
            return Ok(Some(EndReason::Removed));
        };
        let user = RacUser {
            user_id: connection.user_id,
            sid: connection.session_id.clone(),
            auth_time_ms: connection.auth_time_ms,
        };
        let (_, standing) = standing(store, &user).await?;
        if standing == Standing::Ended {
            return Ok(Some(EndReason::Revoked));
        }
        let groups = match self.groups.entry(connection.user_id) {
            std::collections::btree_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(store.effective_groups(connection.user_id).await?)
            }
        };
        let access = may_open(served.application.as_ref(), groups, endpoint);
        let expired = store.now() >= connection.expires_at;
        Ok(lease_verdict(true, standing, access, expired))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_labels_match_serde() {
        for reason in [
            GrantRefusal::UnknownEndpoint,
            GrantRefusal::NotInGroup,
            GrantRefusal::SessionEnded,
            GrantRefusal::LimitReached,
            GrantRefusal::NoCredentials,
        ] {
            assert_eq!(
                serde_json::to_value(reason).expect("json"),
                json!(refusal_label(reason))
            );
        }
    }

    #[test]
    fn sha256_hex_is_checked() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
        assert!(!is_sha256_hex("abc"));
    }
}
