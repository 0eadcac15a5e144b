//! `/api/v1/outposts`: outposts, their providers and their tokens.

use super::audit;
use super::dto::*;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::providers::parse_kind;
use super::state::AppState;
use super::validate;
use crate::auth::token;
use crate::net::PeerAddr;
use crate::store::outposts::OutpostFields;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_outposts, create_outpost))
        .routes(routes!(get_outpost, update_outpost, delete_outpost))
        .routes(routes!(rotate_token))
        .routes(routes!(list_instances))
}

fn settings_object(settings: Option<Value>) -> Result<Value, ApiError> {
    match settings {
        None => Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(ApiError::validation("settings: must be a JSON object")),
    }
}

/// List outposts, searching by name.
#[utoipa::path(get, path = "/api/v1/outposts", tag = "outposts", params(ListQuery),
    responses((status = 200, body = PageDto<OutpostDto>)))]
async fn list_outposts(
    _admin: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<PageDto<OutpostDto>>> {
    let page = state.store.list_outposts(&query.params()).await?;
    Ok(Json(PageDto::from_page(page, OutpostDto::from)))
}

/// Create an outpost with its service identity; the token is in this answer only.
#[utoipa::path(post, path = "/api/v1/outposts", tag = "outposts", request_body = CreateOutpost,
    responses((status = 201, body = OutpostCreated), (status = 409, body = super::error::Problem)))]
async fn create_outpost(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiJson(body): ApiJson<CreateOutpost>,
) -> ApiResult<(StatusCode, Json<OutpostCreated>)> {
    validate::name("name", &body.name)?;
    let kind = parse_kind(&body.kind)?;
    if !kind.has_outposts() {
        return Err(ApiError::validation(format!(
            "kind: `{kind}` providers are served by the core itself; outposts are proxy, ldap, \
             radius or rac"
        )));
    }
    let settings = settings_object(body.settings)?;
    let secret = token::generate().map_err(|e| ApiError::internal(&e))?;
    let fields = OutpostFields {
        name: &body.name,
        kind,
        settings: &settings,
        provider_ids: &body.provider_ids,
    };
    let outpost = state
        .store
        .create_outpost(&fields, &token::hash(&secret))
        .await?;
    audit::record(
        &state,
        &admin.username,
        "outpost_create",
        outpost.name.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(OutpostCreated {
            outpost: outpost.into(),
            token: secret,
        }),
    ))
}

/// Read an outpost.
#[utoipa::path(get, path = "/api/v1/outposts/{id}", tag = "outposts",
    params(("id" = i64, Path, description = "outpost id")), responses((status = 200, body = OutpostDto)))]
async fn get_outpost(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<OutpostDto>> {
    Ok(Json(state.store.outpost(id).await?.into()))
}

/// Change an outpost's name, providers or settings.
#[utoipa::path(patch, path = "/api/v1/outposts/{id}", tag = "outposts", request_body = UpdateOutpost,
    params(("id" = i64, Path, description = "outpost id")), responses((status = 200, body = OutpostDto)))]
async fn update_outpost(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateOutpost>,
) -> ApiResult<Json<OutpostDto>> {
    let current = state.store.outpost(id).await?;
    let name = body.name.unwrap_or(current.name);
    validate::name("name", &name)?;
    let settings = match body.settings {
        Some(s) => settings_object(Some(s))?,
        None => current.settings,
    };
    let provider_ids = body.provider_ids.unwrap_or(current.provider_ids);
    let fields = OutpostFields {
        name: &name,
        kind: current.kind,
        settings: &settings,
        provider_ids: &provider_ids,
    };
    let outpost = state.store.update_outpost(id, &fields).await?;
    audit::record(
        &state,
        &admin.username,
        "outpost_update",
        outpost.name.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok(Json(outpost.into()))
}

/// Delete an outpost and its token.
#[utoipa::path(delete, path = "/api/v1/outposts/{id}", tag = "outposts",
    params(("id" = i64, Path, description = "outpost id")), responses((status = 204)))]
async fn delete_outpost(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let outpost = state.store.outpost(id).await?;
    state.store.delete_outpost(id).await?;
    audit::record(
        &state,
        &admin.username,
        "outpost_delete",
        outpost.name,
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the outpost's token; the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/outposts/{id}/rotate-token", tag = "outposts",
    params(("id" = i64, Path, description = "outpost id")),
    responses((status = 200, body = OutpostTokenRotated)))]
async fn rotate_token(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<OutpostTokenRotated>> {
    let outpost = state.store.outpost(id).await?;
    let secret = token::generate().map_err(|e| ApiError::internal(&e))?;
    state
        .store
        .rotate_outpost_token(id, &token::hash(&secret))
        .await?;
    audit::record(
        &state,
        &admin.username,
        "outpost_token_rotate",
        outpost.name,
        &peer.ip().to_string(),
    )
    .await;
    Ok(Json(OutpostTokenRotated { token: secret }))
}

/// How far back instances are listed: a day.
const INSTANCE_HISTORY_SECONDS: i64 = 86_400;

/// The instances of an outpost seen in the last day: version, revision, health.
#[utoipa::path(get, path = "/api/v1/outposts/{id}/instances", tag = "outposts",
    params(("id" = i64, Path, description = "outpost id")),
    responses((status = 200, body = Vec<InstanceDto>)))]
async fn list_instances(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<InstanceDto>>> {
    let outpost = state.store.outpost(id).await?;
    let now = state.store.now();
    let revision = state.store.current_revision().await?;
    let heartbeat = i64::try_from(
        redoubt_outpost_proto::control::heartbeat_period(
            outpost
                .settings
                .get("heartbeat_interval_seconds")
                .and_then(Value::as_u64),
        )
        .as_secs(),
    )
    .unwrap_or(i64::MAX);
    let records = state
        .store
        .outpost_instances(id, now - INSTANCE_HISTORY_SECONDS)
        .await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| {
                // Its replica records it every second while the session lasts; a replica that
                // died records nothing more, so an instance not heard within the heartbeat
                // timeout (three heartbeats, as the session itself) is shown disconnected on
                // every replica.
                let connected = r.connected && now - r.last_seen <= heartbeat * 3 + 1;
                // Healthy: heard within 1.5 heartbeats (plus the registry's flush interval).
                let healthy = connected && now - r.last_seen <= heartbeat * 3 / 2 + 1;
                InstanceDto {
                    outdated: r.software_version != crate::VERSION,
                    up_to_date: r.applied_revision == Some(revision),
                    healthy,
                    instance_id: r.instance_id,
                    hostname: r.hostname,
                    version: r.software_version,
                    build: r.build,
                    protocol_version: r.protocol_version,
                    applied_revision: r.applied_revision,
                    remote_address: r.remote_address,
                    connected,
                    connected_at: rfc3339(r.connected_at),
                    last_seen: rfc3339(r.last_seen),
                }
            })
            .collect(),
    ))
}
