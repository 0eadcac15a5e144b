//! `/api/v1/applications`: applications and the groups bound to them.

use super::audit;
use super::dto::*;
use super::error::ApiResult;
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::provider_checks::unbound_warnings;
use super::state::AppState;
use super::validate;
use crate::model::{ApplicationPatch, NewApplication};
use crate::net::PeerAddr;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_applications, create_application))
        .routes(routes!(
            get_application,
            update_application,
            delete_application
        ))
        .routes(routes!(bind_group))
        .routes(routes!(unbind_group))
}

/// List applications, searching slug and name.
#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", params(ListQuery),
    responses((status = 200, body = PageDto<ApplicationDto>)))]
async fn list_applications(
    _admin: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<PageDto<ApplicationDto>>> {
    let page = state.store.list_applications(&query.params()).await?;
    Ok(Json(PageDto::from_page(page, ApplicationDto::from)))
}

/// Create an application.
#[utoipa::path(post, path = "/api/v1/applications", tag = "applications",
    request_body = CreateApplication,
    responses((status = 201, body = ApplicationDto), (status = 409, body = super::error::Problem)))]
async fn create_application(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiJson(body): ApiJson<CreateApplication>,
) -> ApiResult<(StatusCode, Json<ApplicationDto>)> {
    validate::slug(&body.slug)?;
    validate::name("name", &body.name)?;
    validate::launch_url(&body.launch_url)?;
    let app = state
        .store
        .create_application(&NewApplication {
            slug: body.slug,
            name: body.name,
            launch_url: body.launch_url,
            provider_id: body.provider_id,
        })
        .await?;
    audit::record(
        &state,
        &admin.username,
        "application_create",
        app.slug.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok((StatusCode::CREATED, Json(app.into())))
}

/// Read an application.
#[utoipa::path(get, path = "/api/v1/applications/{id}", tag = "applications",
    params(("id" = i64, Path, description = "application id")),
    responses((status = 200, body = ApplicationDto)))]
async fn get_application(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ApplicationDto>> {
    Ok(Json(state.store.application(id).await?.into()))
}

/// Change an application. When this moves or detaches its provider and leaves an LDAP or
/// RADIUS provider bound to no application, `warnings` says so and how to fix it.
#[utoipa::path(patch, path = "/api/v1/applications/{id}", tag = "applications",
    request_body = UpdateApplication, params(("id" = i64, Path, description = "application id")),
    responses((status = 200, body = ApplicationDto)))]
async fn update_application(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateApplication>,
) -> ApiResult<Json<ApplicationDto>> {
    if let Some(slug) = &body.slug {
        validate::slug(slug)?;
    }
    if let Some(name) = &body.name {
        validate::name("name", name)?;
    }
    if let Some(url) = &body.launch_url {
        validate::launch_url(url)?;
    }
    let before = state.store.application(id).await?;
    let patch = ApplicationPatch {
        slug: body.slug,
        name: body.name,
        launch_url: body.launch_url,
        provider_id: body.provider_id,
    };
    let app = state.store.update_application(id, &patch).await?;
    let unbound: Vec<i64> = before
        .provider_id
        .filter(|old| app.provider_id != Some(*old))
        .into_iter()
        .collect();
    let warnings = unbound_warnings(&state.store, &unbound).await?;
    audit::record(
        &state,
        &admin.username,
        "application_update",
        app.slug.clone(),
        &peer.ip().to_string(),
    )
    .await;
    let mut dto = ApplicationDto::from(app);
    dto.warnings = warnings;
    Ok(Json(dto))
}

/// Delete an application. 204, or 200 with `warnings` when this leaves its LDAP or RADIUS
/// provider bound to no application.
#[utoipa::path(delete, path = "/api/v1/applications/{id}", tag = "applications",
    params(("id" = i64, Path, description = "application id")),
    responses((status = 204), (status = 200, body = WarningsDto)))]
async fn delete_application(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    let app = state.store.application(id).await?;
    state.store.delete_application(id).await?;
    let unbound: Vec<i64> = app.provider_id.into_iter().collect();
    let warnings = unbound_warnings(&state.store, &unbound).await?;
    audit::record(
        &state,
        &admin.username,
        "application_delete",
        app.slug,
        &peer.ip().to_string(),
    )
    .await;
    if warnings.is_empty() {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Ok((StatusCode::OK, Json(WarningsDto { warnings })).into_response())
    }
}

/// Allow a group to use an application (no bound group means everyone may).
#[utoipa::path(post, path = "/api/v1/applications/{id}/groups", tag = "applications",
    request_body = BindGroup, params(("id" = i64, Path, description = "application id")),
    responses((status = 204)))]
async fn bind_group(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<BindGroup>,
) -> ApiResult<StatusCode> {
    state
        .store
        .bind_application_group(id, body.group_id)
        .await?;
    audit::record(
        &state,
        &admin.username,
        "application_bind",
        format!("application:{id} group:{}", body.group_id),
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a group binding.
#[utoipa::path(delete, path = "/api/v1/applications/{id}/groups/{group_id}", tag = "applications",
    params(("id" = i64, Path, description = "application id"), ("group_id" = i64, Path, description = "group id")),
    responses((status = 204)))]
async fn unbind_group(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath((id, group_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    state.store.unbind_application_group(id, group_id).await?;
    audit::record(
        &state,
        &admin.username,
        "application_unbind",
        format!("application:{id} group:{group_id}"),
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
