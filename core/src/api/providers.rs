//! `/api/v1/providers`: protocol providers with settings validated for their kind.

use super::audit;
use super::dto::*;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::state::AppState;
use super::validate;
use crate::model::ProviderKind;
use crate::net::PeerAddr;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use redoubt_outpost_proto::provider::{
    LdapProviderSettings, ProxyProviderSettings, RacProviderSettings, RadiusProviderSettings,
};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, update_provider, delete_provider))
}

/// Parses a kind name, naming the field on error.
pub fn parse_kind(kind: &str) -> Result<ProviderKind, ApiError> {
    kind.parse()
        .map_err(|e| ApiError::validation(format!("kind: {e}")))
}

/// Checks `settings` for `kind` and returns them normalised (defaults filled in).
pub fn validate_settings(kind: ProviderKind, settings: Value) -> Result<Value, ApiError> {
    fn check<T>(
        settings: Value,
        validate: impl Fn(&T) -> Result<(), redoubt_outpost_proto::provider::SettingsError>,
    ) -> Result<Value, ApiError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let parsed: T = serde_json::from_value(settings)
            .map_err(|e| ApiError::validation(format!("settings: {e}")))?;
        validate(&parsed).map_err(|e| ApiError::validation(e.to_string()))?;
        serde_json::to_value(parsed).map_err(|e| ApiError::internal(&e))
    }
    match kind {
        ProviderKind::Ldap => check(settings, LdapProviderSettings::validate),
        ProviderKind::Radius => check(settings, RadiusProviderSettings::validate),
        ProviderKind::Proxy => check(settings, ProxyProviderSettings::validate),
        ProviderKind::Rac => check(settings, RacProviderSettings::validate),
    }
}

/// List providers, searching by name.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers", params(ListQuery),
    responses((status = 200, body = PageDto<ProviderDto>)))]
async fn list_providers(
    _admin: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<PageDto<ProviderDto>>> {
    let page = state.store.list_providers(&query.params()).await?;
    Ok(Json(PageDto::from_page(page, ProviderDto::from)))
}

/// Create a provider. Settings by kind: ldap `{base_dn, search_group_id?, uid_start_number?,
/// gid_start_number?, mfa?, require_tls_for_bind?}`; radius `{shared_secret, client_networks,
/// mfa?, require_message_authenticator?, reply_rules?}`; proxy `{mode, external_host, internal_host?, ...}`;
/// rac `{connection_expiry_seconds?, endpoints?}`.
#[utoipa::path(post, path = "/api/v1/providers", tag = "providers", request_body = CreateProvider,
    responses((status = 201, body = ProviderDto), (status = 400, body = super::error::Problem)))]
async fn create_provider(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiJson(body): ApiJson<CreateProvider>,
) -> ApiResult<(StatusCode, Json<ProviderDto>)> {
    validate::name("name", &body.name)?;
    let kind = parse_kind(&body.kind)?;
    let settings = validate_settings(kind, body.settings)?;
    let provider = state
        .store
        .create_provider(&body.name, kind, &settings)
        .await?;
    audit::record(
        &state,
        &admin.username,
        "provider_create",
        provider.name.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok((StatusCode::CREATED, Json(provider.into())))
}

/// Read a provider.
#[utoipa::path(get, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = i64, Path, description = "provider id")), responses((status = 200, body = ProviderDto)))]
async fn get_provider(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ProviderDto>> {
    Ok(Json(state.store.provider(id).await?.into()))
}

/// Change a provider's name or replace its settings.
#[utoipa::path(patch, path = "/api/v1/providers/{id}", tag = "providers", request_body = UpdateProvider,
    params(("id" = i64, Path, description = "provider id")), responses((status = 200, body = ProviderDto)))]
async fn update_provider(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateProvider>,
) -> ApiResult<Json<ProviderDto>> {
    let current = state.store.provider(id).await?;
    let name = body.name.unwrap_or(current.name);
    validate::name("name", &name)?;
    let settings = match body.settings {
        Some(settings) => validate_settings(current.kind, settings)?,
        None => current.settings,
    };
    let provider = state.store.update_provider(id, &name, &settings).await?;
    audit::record(
        &state,
        &admin.username,
        "provider_update",
        provider.name.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok(Json(provider.into()))
}

/// Delete a provider.
#[utoipa::path(delete, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = i64, Path, description = "provider id")), responses((status = 204)))]
async fn delete_provider(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let provider = state.store.provider(id).await?;
    state.store.delete_provider(id).await?;
    audit::record(
        &state,
        &admin.username,
        "provider_delete",
        provider.name,
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
