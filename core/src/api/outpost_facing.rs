//! `/api/v1/outpost/`: what an outpost's own token may call. Least privilege: an outpost reads
//! its own record and providers, and checks credentials for its own providers; nothing else.

use super::dto::*;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, OutpostIdentity};
use super::state::AppState;
use crate::auth::credentials::{CheckError, CheckFailure, CredentialRequest};
use crate::model::ProviderKind;
use axum::Json;
use axum::extract::State;
use redoubt_outpost_proto::credentials::{
    FailureReason, VerifiedUser, VerifyCredentialsRequest, VerifyCredentialsResponse,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(outpost_self))
        .routes(routes!(outpost_config))
        .routes(routes!(verify_credentials))
}

/// The calling outpost's own record and providers.
#[utoipa::path(get, path = "/api/v1/outpost/self", tag = "outpost",
    responses((status = 200, body = OutpostSelf), (status = 403, body = super::error::Problem)))]
async fn outpost_self(
    identity: OutpostIdentity,
    State(state): State<AppState>,
) -> ApiResult<Json<OutpostSelf>> {
    let revision = state.store.current_revision().await?;
    let outpost = state.store.outpost(identity.outpost_id).await?;
    let mut providers = Vec::with_capacity(outpost.provider_ids.len());
    for id in &outpost.provider_ids {
        providers.push(state.store.provider(*id).await?.into());
    }
    Ok(Json(OutpostSelf {
        outpost: outpost.into(),
        providers,
        revision,
    }))
}

/// The calling outpost's whole configuration at a revision (the same document a control-channel
/// snapshot carries): its record, its providers with their applications and, for LDAP and RADIUS
/// outposts, the directory. Password hashes are never included.
#[utoipa::path(get, path = "/api/v1/outpost/config", tag = "outpost",
    responses((status = 200, description = "ConfigSnapshot {revision, config}"),
              (status = 403, body = super::error::Problem)))]
async fn outpost_config(
    identity: OutpostIdentity,
    State(state): State<AppState>,
) -> ApiResult<Json<redoubt_outpost_proto::config::ConfigSnapshot>> {
    Ok(Json(
        crate::channel::snapshot::build(
            &state.store,
            &state.hub.keyring,
            state.hub.public_url.as_deref(),
            identity.outpost_id,
        )
        .await?,
    ))
}

/// Does the provider ask users with TOTP for a code?
pub(super) fn provider_requires_mfa(kind: ProviderKind, settings: &serde_json::Value) -> bool {
    match kind {
        ProviderKind::Ldap | ProviderKind::Radius => settings
            .get("mfa")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true),
        ProviderKind::Proxy | ProviderKind::Rac | ProviderKind::Oidc => true,
    }
}

/// Verify a user's credentials for one of the calling outpost's providers. Failures come back
/// as `{"result":"failure","reason":...}` with status 200: the call itself succeeded.
#[utoipa::path(post, path = "/api/v1/outpost/credentials/verify", tag = "outpost",
    request_body(content = Object, description = "VerifyCredentialsRequest: {provider_id, username, password, totp_code?, source_address?, details?}"),
    responses((status = 200, description = "VerifyCredentialsResponse: {result: success, user} or {result: failure, reason}"),
              (status = 403, body = super::error::Problem)))]
async fn verify_credentials(
    identity: OutpostIdentity,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VerifyCredentialsRequest>,
) -> ApiResult<Json<VerifyCredentialsResponse>> {
    if body.password.len() > super::validate::MAX_PASSWORD_BYTES {
        return Ok(Json(VerifyCredentialsResponse::Failure {
            reason: FailureReason::InvalidCredentials,
        }));
    }
    let (provider, application) =
        served_provider(&state, identity.outpost_id, body.provider_id).await?;
    let actor = format!("outpost:{}", identity.outpost_id);
    let source = body.source_address.clone().unwrap_or_default();
    let request = CredentialRequest {
        username: &body.username,
        password: &body.password,
        totp_code: body.totp_code.as_deref(),
        source_address: &source,
        require_mfa: provider_requires_mfa(provider.kind, &provider.settings),
        actor: &actor,
        application: Some(&application),
        context: check_context(provider.id, provider.kind.as_str(), &body.details),
    };
    let started = std::time::Instant::now();
    let result = state.checker.check(&request).await;
    state
        .metrics
        .observe_credential_check(&result, started.elapsed());
    let response = match result {
        Ok(verified) => VerifyCredentialsResponse::Success {
            user: VerifiedUser {
                id: verified.user.id,
                username: verified.user.username,
                name: verified.user.name,
                email: verified.user.email,
                groups: verified.groups.into_iter().map(|g| g.name).collect(),
                attributes: verified.user.attributes,
                used_totp: verified.used_totp,
            },
        },
        Err(CheckError::Failed(failure)) => VerifyCredentialsResponse::Failure {
            reason: failure_reason(failure),
        },
        Err(CheckError::Store(error)) => return Err(error.into()),
    };
    Ok(Json(response))
}

/// What the credential-check event records besides the verdict: the provider, its protocol and,
/// when small enough, the details the outpost gave (RADIUS NAS address and identifier, ...),
/// named as the events outposts record themselves name them (`provider`, `protocol`, `client`).
fn check_context(
    provider_id: i64,
    protocol: &str,
    details: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut context = serde_json::json!({ "provider": provider_id, "protocol": protocol });
    if !details.is_empty()
        && serde_json::to_string(details).map_or(0, |s| s.len())
            <= redoubt_outpost_proto::credentials::MAX_DETAIL_BYTES
    {
        context["client"] = serde_json::Value::Object(details.clone());
    }
    context
}

/// The reason code the outpost-facing API reports for a failed check.
pub(super) fn failure_reason(failure: CheckFailure) -> FailureReason {
    match failure {
        CheckFailure::InvalidCredentials => FailureReason::InvalidCredentials,
        CheckFailure::MfaRequired => FailureReason::MfaRequired,
        CheckFailure::AccessDenied => FailureReason::AccessDenied,
        CheckFailure::RateLimited => FailureReason::RateLimited,
    }
}

/// The provider `provider_id` and its application, if the outpost serves that provider (else 403)
/// and the provider is bound to an application (else 400).
pub(super) async fn served_provider(
    state: &AppState,
    outpost_id: i64,
    provider_id: i64,
) -> ApiResult<(crate::model::Provider, crate::model::Application)> {
    if !state.store.outpost_serves(outpost_id, provider_id).await? {
        return Err(ApiError::forbidden(format!(
            "provider_id: provider {provider_id} is not served by this outpost"
        )));
    }
    let provider = state.store.provider(provider_id).await?;
    let application = state.store.application_for_provider(provider.id).await?;
    let Some(application) = application else {
        return Err(ApiError::validation(format!(
            "provider `{}` is not bound to an application; bind it to one so access can be decided",
            provider.name
        )));
    };
    Ok((provider, application))
}
