//! `/api/v1/groups`: groups, nesting and membership.

use super::audit;
use super::dto::*;
use super::error::ApiResult;
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::state::AppState;
use super::validate;
use crate::model::{GroupPatch, NewGroup};
use crate::net::PeerAddr;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member))
}

/// List groups, searching by name.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(ListQuery),
    responses((status = 200, body = PageDto<GroupDto>)))]
async fn list_groups(
    _admin: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<PageDto<GroupDto>>> {
    let page = state.store.list_groups(&query.params()).await?;
    Ok(Json(PageDto::from_page(page, GroupDto::from)))
}

/// Create a group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = CreateGroup,
    responses((status = 201, body = GroupDto), (status = 409, body = super::error::Problem)))]
async fn create_group(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiJson(body): ApiJson<CreateGroup>,
) -> ApiResult<(StatusCode, Json<GroupDto>)> {
    validate::name("name", &body.name)?;
    let group = state
        .store
        .create_group(&NewGroup {
            name: body.name,
            parent_id: body.parent_id,
            is_superuser: body.is_superuser,
            attributes: body.attributes,
        })
        .await?;
    audit::record(
        &state,
        &admin.username,
        "group_create",
        group.name.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok((StatusCode::CREATED, Json(group.into())))
}

/// Read a group.
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = i64, Path, description = "group id")), responses((status = 200, body = GroupDto)))]
async fn get_group(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<GroupDto>> {
    Ok(Json(state.store.group(id).await?.into()))
}

/// Change a group.
#[utoipa::path(patch, path = "/api/v1/groups/{id}", tag = "groups", request_body = UpdateGroup,
    params(("id" = i64, Path, description = "group id")), responses((status = 200, body = GroupDto)))]
async fn update_group(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> ApiResult<Json<GroupDto>> {
    if let Some(name) = &body.name {
        validate::name("name", name)?;
    }
    let patch = GroupPatch {
        name: body.name,
        parent_id: body.parent_id,
        is_superuser: body.is_superuser,
        attributes: body.attributes,
    };
    let group = state.store.update_group(id, &patch).await?;
    audit::record(
        &state,
        &admin.username,
        "group_update",
        group.name.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok(Json(group.into()))
}

/// Delete a group; its child groups move to the top level.
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = i64, Path, description = "group id")), responses((status = 204)))]
async fn delete_group(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let group = state.store.group(id).await?;
    state.store.delete_group(id).await?;
    audit::record(
        &state,
        &admin.username,
        "group_delete",
        group.name,
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// List the direct members of a group.
#[utoipa::path(get, path = "/api/v1/groups/{id}/members", tag = "groups",
    params(("id" = i64, Path, description = "group id")), responses((status = 200, body = Vec<UserDto>)))]
async fn list_members(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<UserDto>>> {
    let users = state.store.group_members(id).await?;
    Ok(Json(users.into_iter().map(UserDto::from).collect()))
}

/// Add a user to a group.
#[utoipa::path(post, path = "/api/v1/groups/{id}/members", tag = "groups", request_body = AddMember,
    params(("id" = i64, Path, description = "group id")), responses((status = 204)))]
async fn add_member(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AddMember>,
) -> ApiResult<StatusCode> {
    state.store.add_group_member(id, body.user_id).await?;
    audit::record(
        &state,
        &admin.username,
        "group_member_add",
        format!("group:{id} user:{}", body.user_id),
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user from a group.
#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{user_id}", tag = "groups",
    params(("id" = i64, Path, description = "group id"), ("user_id" = i64, Path, description = "user id")),
    responses((status = 204)))]
async fn remove_member(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    state.store.remove_group_member(id, user_id).await?;
    audit::record(
        &state,
        &admin.username,
        "group_member_remove",
        format!("group:{id} user:{user_id}"),
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
