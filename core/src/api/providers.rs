//! `/api/v1/providers`: protocol providers with settings validated for their kind.

use super::audit;
use super::dto::*;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::provider_checks::{check_references, unbound_warnings};
use super::state::AppState;
use super::validate;
use crate::model::ProviderKind;
use crate::net::PeerAddr;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use redoubt_outpost_proto::provider::{
    LdapProviderSettings, OidcProviderSettings, ProxyProviderSettings, RacProviderSettings,
    RadiusProviderSettings,
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
        ProviderKind::Oidc => check(settings, OidcProviderSettings::validate),
    }
}

/// Fills the secret settings `new` leaves out with the current ones, so reading a provider
/// (secrets left out) and sending its settings back keeps them.
fn keep_secrets(kind: ProviderKind, current: &Value, new: &mut Value) {
    let Some(new) = new.as_object_mut() else {
        return;
    };
    for key in secret_settings(kind) {
        if !new.contains_key(*key)
            && let Some(value) = current.get(*key)
        {
            new.insert((*key).to_owned(), value.clone());
        }
    }
}

/// For `oidc` providers: client ids stay unique and the client secret is generated (on create,
/// or when a client turns confidential) and kept as a hash; the secret is returned once.
async fn prepare_oidc(
    state: &AppState,
    kind: ProviderKind,
    settings: Value,
    current: Option<&crate::model::Provider>,
) -> Result<(Value, Option<String>), ApiError> {
    use crate::oidc::clients::{SettingsRefused, prepare_settings};
    if kind != ProviderKind::Oidc {
        return Ok((settings, None));
    }
    match prepare_settings(&state.store, settings, current).await {
        Ok(prepared) => Ok((prepared.settings, prepared.new_secret)),
        Err(SettingsRefused::Store(e)) => Err(e.into()),
        Err(SettingsRefused::Random) => Err(ApiError::internal(&"no randomness available")),
        Err(refused) => Err(ApiError::validation(refused.to_string())),
    }
}

/// List providers, searching by name. Secret settings (a RADIUS shared secret) are left out.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers", params(ListQuery),
    responses((status = 200, body = PageDto<ProviderDto>)))]
async fn list_providers(
    _admin: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<PageDto<ProviderDto>>> {
    let page = state.store.list_providers(&query.params()).await?;
    Ok(Json(PageDto::from_page(page, ProviderDto::redacted)))
}

/// Create a provider. Settings by kind: ldap `{base_dn, search_group_id?, uid_start_number?,
/// gid_start_number?, mfa?, require_tls_for_bind?}`; radius `{shared_secret, client_networks,
/// mfa?, require_message_authenticator?, reply_rules?}`; proxy `{mode, external_host, internal_host?, ...}`;
/// rac `{connection_expiry_seconds?, endpoints?}`; oidc `{client_id, client_type?
/// (confidential|public), redirect_uris, post_logout_redirect_uris?,
/// access_token_validity_seconds?, refresh_token_validity_seconds?}`: a confidential client's
/// secret is generated and returned once, as `client_secret`. Groups the settings name must
/// exist (400 naming the field). An LDAP or RADIUS provider is bound to no application yet, so
/// the answer's `warnings` says how to bind it.
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
    check_references(&state.store, kind, &settings).await?;
    let (settings, client_secret) = prepare_oidc(&state, kind, settings, None).await?;
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
    let warnings = unbound_warnings(&state.store, &[provider.id]).await?;
    let mut dto = ProviderDto::from(provider);
    dto.client_secret = client_secret;
    dto.warnings = warnings;
    Ok((StatusCode::CREATED, Json(dto)))
}

/// Read a provider. Secret settings (a RADIUS shared secret) are shown only with
/// `?reveal=secrets`.
#[utoipa::path(get, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = i64, Path, description = "provider id"), RevealQuery),
    responses((status = 200, body = ProviderDto)))]
async fn get_provider(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<RevealQuery>,
) -> ApiResult<Json<ProviderDto>> {
    Ok(Json(ProviderDto::revealing(
        state.store.provider(id).await?,
        query.secrets(),
    )))
}

/// Change a provider's name or replace its settings. Secret settings left out of the new
/// settings (as a redacted read shows them) keep their current values. The answer shows secret
/// settings only with `?reveal=secrets`. Groups the settings name must exist (400 naming the
/// field); `warnings` says when an LDAP or RADIUS provider is still bound to no application.
#[utoipa::path(patch, path = "/api/v1/providers/{id}", tag = "providers", request_body = UpdateProvider,
    params(("id" = i64, Path, description = "provider id"), RevealQuery),
    responses((status = 200, body = ProviderDto)))]
async fn update_provider(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<RevealQuery>,
    ApiJson(body): ApiJson<UpdateProvider>,
) -> ApiResult<Json<ProviderDto>> {
    let current = state.store.provider(id).await?;
    let name = body.name.unwrap_or_else(|| current.name.clone());
    validate::name("name", &name)?;
    let (settings, client_secret) = match body.settings {
        Some(mut settings) => {
            keep_secrets(current.kind, &current.settings, &mut settings);
            let settings = validate_settings(current.kind, settings)?;
            check_references(&state.store, current.kind, &settings).await?;
            prepare_oidc(&state, current.kind, settings, Some(&current)).await?
        }
        None => (current.settings.clone(), None),
    };
    let provider = state.store.update_provider(id, &name, &settings).await?;
    if provider.kind == ProviderKind::Rac
        && let Ok(parsed) = serde_json::from_value::<RacProviderSettings>(settings)
    {
        // Credentials of endpoints removed or renamed would otherwise linger (and reopen for
        // a later endpoint of the same slug).
        let slugs: Vec<String> = parsed.endpoints.iter().map(|e| e.slug()).collect();
        state
            .store
            .prune_rac_credentials(provider.id, &slugs)
            .await?;
    }
    audit::record(
        &state,
        &admin.username,
        "provider_update",
        provider.name.clone(),
        &peer.ip().to_string(),
    )
    .await;
    let warnings = unbound_warnings(&state.store, &[provider.id]).await?;
    let mut dto = ProviderDto::revealing(provider, query.secrets());
    dto.client_secret = client_secret;
    dto.warnings = warnings;
    Ok(Json(dto))
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
