//! `/api/v1/providers/{id}/rac/endpoints`: a RAC provider's endpoints as the administrator
//! sees them (whether credentials are set, the server key last seen) and their write-only
//! credentials. Credentials are sealed at once (`crate::rac::credentials`) and never returned.

use super::audit;
use super::dto::{RacEndpointDto, SetRacCredentials, rfc3339};
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiJson, ApiPath};
use super::state::AppState;
use crate::model::{Provider, ProviderKind};
use crate::net::PeerAddr;
use crate::rac::credentials;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use redoubt_outpost_proto::provider::{RacAuthMode, RacProviderSettings};
use redoubt_outpost_proto::rac::RdpCredentials;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest user or domain name accepted.
const MAX_NAME_BYTES: usize = 256;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rac_endpoints))
        .routes(routes!(set_rac_credentials, clear_rac_credentials))
}

/// The RAC provider `id` with its settings (404 if missing, 400 if not a RAC provider).
async fn rac_provider(state: &AppState, id: i64) -> ApiResult<(Provider, RacProviderSettings)> {
    let provider = state.store.provider(id).await?;
    if provider.kind != ProviderKind::Rac {
        return Err(ApiError::validation(format!(
            "provider `{}` is not a RAC provider",
            provider.name
        )));
    }
    let settings = serde_json::from_value(provider.settings.clone())
        .map_err(|e| ApiError::internal(&format!("stored RAC settings do not parse: {e}")))?;
    Ok((provider, settings))
}

/// A RAC provider's endpoints: whether credentials are set (never what they are) and the
/// server key fingerprint the last started connection reported.
#[utoipa::path(get, path = "/api/v1/providers/{id}/rac/endpoints", tag = "providers",
    params(("id" = i64, Path, description = "provider id")),
    responses((status = 200, body = Vec<RacEndpointDto>), (status = 404, body = super::error::Problem)))]
async fn list_rac_endpoints(
    _admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<RacEndpointDto>>> {
    let (provider, settings) = rac_provider(&state, id).await?;
    let with_credentials = state.store.rac_credential_slugs(provider.id).await?;
    let keys = state.store.rac_endpoint_keys(provider.id).await?;
    let endpoints = settings
        .endpoints
        .iter()
        .map(|endpoint| {
            let slug = endpoint.slug();
            let key = keys.iter().find(|k| k.endpoint_slug == slug);
            RacEndpointDto {
                has_credentials: with_credentials.contains(&slug),
                name: endpoint.name.clone(),
                host: endpoint.host.clone(),
                auth_mode: match endpoint.auth_mode {
                    RacAuthMode::Prompt => "prompt",
                    RacAuthMode::Static => "static",
                }
                .to_owned(),
                server_public_key_sha256: endpoint.server_public_key_sha256.clone(),
                last_server_key_sha256: key.map(|k| k.server_key_sha256.clone()),
                last_server_key_seen_at: key.map(|k| rfc3339(k.seen_at)),
                slug,
            }
        })
        .collect();
    Ok(Json(endpoints))
}

/// Set the credentials a `static` endpoint signs in with (write-only; replaces any).
#[utoipa::path(put, path = "/api/v1/providers/{id}/rac/endpoints/{slug}/credentials",
    tag = "providers", request_body = SetRacCredentials,
    params(("id" = i64, Path, description = "provider id"), ("slug" = String, Path, description = "endpoint slug")),
    responses((status = 204), (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem)))]
async fn set_rac_credentials(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath((id, slug)): ApiPath<(i64, String)>,
    ApiJson(body): ApiJson<SetRacCredentials>,
) -> ApiResult<StatusCode> {
    let (provider, settings) = rac_provider(&state, id).await?;
    if settings.endpoint(&slug).is_none() {
        return Err(ApiError::not_found("endpoint"));
    }
    if body.username.trim().is_empty() || body.username.len() > MAX_NAME_BYTES {
        return Err(ApiError::validation(format!(
            "username: must be 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    if body
        .domain
        .as_ref()
        .is_some_and(|d| d.len() > MAX_NAME_BYTES)
    {
        return Err(ApiError::validation(format!(
            "domain: must be at most {MAX_NAME_BYTES} bytes"
        )));
    }
    if body.password.is_empty() || body.password.len() > super::validate::MAX_PASSWORD_BYTES {
        return Err(ApiError::validation(format!(
            "password: must be 1 to {} bytes",
            super::validate::MAX_PASSWORD_BYTES
        )));
    }
    let value = RdpCredentials {
        username: body.username,
        domain: body.domain.filter(|d| !d.is_empty()),
        password: body.password,
    };
    let sealed = credentials::seal(&state.rac_sealer, provider.id, &slug, &value)
        .map_err(|e| ApiError::internal(&e))?;
    state
        .store
        .set_rac_credentials(provider.id, &slug, &sealed)
        .await?;
    audit::record(
        &state,
        &admin.username,
        "rac_credentials_set",
        format!("{}/{slug}", provider.name),
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Forget an endpoint's credentials.
#[utoipa::path(delete, path = "/api/v1/providers/{id}/rac/endpoints/{slug}/credentials",
    tag = "providers",
    params(("id" = i64, Path, description = "provider id"), ("slug" = String, Path, description = "endpoint slug")),
    responses((status = 204), (status = 404, body = super::error::Problem)))]
async fn clear_rac_credentials(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath((id, slug)): ApiPath<(i64, String)>,
) -> ApiResult<StatusCode> {
    let (provider, _) = rac_provider(&state, id).await?;
    state
        .store
        .clear_rac_credentials(provider.id, &slug)
        .await?;
    audit::record(
        &state,
        &admin.username,
        "rac_credentials_clear",
        format!("{}/{slug}", provider.name),
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
