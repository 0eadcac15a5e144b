//! `POST /api/v1/oidc/keys/rotate`: an administrator makes a new signing key current. The
//! previous keys stay in the JWKS for the retention period, so tokens they signed still verify.

use crate::api::dto::SigningKeyRotated;
use crate::api::extract::Admin;
use crate::api::{ApiError, ApiResult, AppState, audit};
use crate::net::PeerAddr;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module (part of the REST API and its OpenAPI document).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rotate_keys))
}

/// Rotate the OIDC signing key: a new ES256 key signs from now on; retired keys stay published
/// in the JWKS for 31 days.
#[utoipa::path(post, path = "/api/v1/oidc/keys/rotate", tag = "oidc",
    responses((status = 200, body = SigningKeyRotated), (status = 401, body = crate::api::error::Problem)))]
async fn rotate_keys(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
) -> ApiResult<Json<SigningKeyRotated>> {
    let kid = state.web.keys.rotate().await.map_err(|e| match e {
        crate::oidc::keys::KeyError::Store(store) => ApiError::from(store),
        other => ApiError::internal(&other),
    })?;
    audit::record(
        &state,
        &admin.username,
        "oidc_key_rotate",
        kid.clone(),
        &peer.ip().to_string(),
    )
    .await;
    Ok(Json(SigningKeyRotated {
        kid,
        algorithm: crate::oidc::jwt::ALGORITHM.to_owned(),
    }))
}
