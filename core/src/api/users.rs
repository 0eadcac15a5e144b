//! `/api/v1/users`: users, their passwords and TOTP devices.

use super::audit;
use super::dto::*;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::state::AppState;
use super::validate;
use crate::auth::credentials::totp_seal_context;
use crate::auth::totp;
use crate::model::{NewUser, UserPatch};
use crate::net::PeerAddr;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_password, clear_password))
        .routes(routes!(list_totp, enroll_totp))
        .routes(routes!(delete_totp))
}

/// List users, searching username, name and email.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListQuery),
    responses((status = 200, body = PageDto<UserDto>)))]
async fn list_users(
    _admin: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<PageDto<UserDto>>> {
    let page = state.store.list_users(&query.params()).await?;
    Ok(Json(PageDto::from_page(page, UserDto::from)))
}

/// Create a user, optionally with a password.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserDto), (status = 409, body = super::error::Problem)))]
async fn create_user(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserDto>)> {
    validate::username(&body.username)?;
    validate::email(&body.email)?;
    let hash = match body.password {
        Some(password) => {
            validate::password(&password)?;
            Some(state.hash_password(password).await?)
        }
        None => None,
    };
    let new = NewUser {
        username: body.username,
        name: body.name,
        email: body.email,
        is_active: body.is_active.unwrap_or(true),
        attributes: body.attributes,
    };
    let user = state.store.create_user(&new, hash.as_deref()).await?;
    audit::record(
        &state,
        &admin.username,
        "user_create",
        user.username.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Read a user with their direct groups.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = UserDto), (status = 404, body = super::error::Problem)))]
async fn get_user(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<UserDto>> {
    let user = state.store.user(id).await?;
    let groups = state.store.user_groups(id).await?;
    let mut dto = UserDto::from(user);
    dto.groups = Some(
        groups
            .into_iter()
            .map(|g| GroupRef {
                id: g.id,
                name: g.name,
            })
            .collect(),
    );
    Ok(Json(dto))
}

/// Change a user; absent fields stay as they are.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUser,
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = UserDto)))]
async fn update_user(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserDto>> {
    if let Some(username) = &body.username {
        validate::username(username)?;
    }
    if let Some(email) = &body.email {
        validate::email(email)?;
    }
    let patch = UserPatch {
        username: body.username,
        name: body.name,
        email: body.email,
        is_active: body.is_active,
        attributes: body.attributes,
    };
    let user = state.store.update_user(id, &patch).await?;
    audit::record(
        &state,
        &admin.username,
        "user_update",
        user.username.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok(Json(user.into()))
}

/// Delete a user with their memberships, devices and tokens.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "user id")), responses((status = 204)))]
async fn delete_user(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    if id == admin.user_id {
        return Err(ApiError::validation(
            "id: you cannot delete the user your token acts for",
        ));
    }
    let user = state.store.user(id).await?;
    state.store.delete_user(id).await?;
    audit::record(
        &state,
        &admin.username,
        "user_delete",
        user.username,
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a user's password.
#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", request_body = SetPassword,
    params(("id" = i64, Path, description = "user id")), responses((status = 204)))]
async fn set_password(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SetPassword>,
) -> ApiResult<StatusCode> {
    validate::password(&body.password)?;
    let user = state.store.user(id).await?;
    let hash = state.hash_password(body.password).await?;
    state.store.set_password_hash(id, Some(&hash)).await?;
    audit::record(
        &state,
        &admin.username,
        "password_set",
        user.username,
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user's password: they can no longer log in with one.
#[utoipa::path(delete, path = "/api/v1/users/{id}/password", tag = "users",
    params(("id" = i64, Path, description = "user id")), responses((status = 204)))]
async fn clear_password(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let user = state.store.user(id).await?;
    state.store.set_password_hash(id, None).await?;
    audit::record(
        &state,
        &admin.username,
        "password_clear",
        user.username,
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// List a user's TOTP devices.
#[utoipa::path(get, path = "/api/v1/users/{id}/totp", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = Vec<TotpDeviceDto>)))]
async fn list_totp(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<TotpDeviceDto>>> {
    state.store.user(id).await?;
    let devices = state.store.totp_devices(id).await?;
    Ok(Json(devices.into_iter().map(TotpDeviceDto::from).collect()))
}

/// Enrol a TOTP device; the secret and otpauth URI are shown only in this answer.
#[utoipa::path(post, path = "/api/v1/users/{id}/totp", tag = "users", request_body = EnrollTotp,
    params(("id" = i64, Path, description = "user id")),
    responses((status = 201, body = TotpEnrollment)))]
async fn enroll_totp(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<EnrollTotp>,
) -> ApiResult<(StatusCode, Json<TotpEnrollment>)> {
    let name = body.name.unwrap_or_else(|| "authenticator".to_owned());
    validate::name("name", &name)?;
    let user = state.store.user(id).await?;
    let secret = totp::generate_secret().map_err(|e| ApiError::internal(&e))?;
    let sealed = state
        .sealer
        .seal(&secret, &totp_seal_context(id))
        .map_err(|e| ApiError::internal(&e))?;
    let device = state.store.add_totp_device(id, &name, &sealed).await?;
    audit::record(
        &state,
        &admin.username,
        "totp_enroll",
        user.username.clone(),
        &peer.ip().to_string(),
    )
    .await;
    let account = if user.email.is_empty() {
        user.username
    } else {
        user.email
    };
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrollment {
            device: device.into(),
            secret: totp::encode_secret(&secret),
            otpauth_uri: totp::otpauth_uri("Redoubt", &account, &secret),
        }),
    ))
}

/// Remove a TOTP device.
#[utoipa::path(delete, path = "/api/v1/users/{id}/totp/{device_id}", tag = "users",
    params(("id" = i64, Path, description = "user id"), ("device_id" = i64, Path, description = "device id")),
    responses((status = 204)))]
async fn delete_totp(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath((id, device_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let user = state.store.user(id).await?;
    state.store.delete_totp_device(id, device_id).await?;
    audit::record(
        &state,
        &admin.username,
        "totp_remove",
        user.username,
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
