//! Browser sessions from the administrator's side: end every session of a user ("sign out
//! everywhere"), and rotate the keys proxy outposts seal session cookies with.

use super::audit;
use super::dto::SessionKeysRotated;
use super::error::ApiResult;
use super::extract::{Admin, ApiPath};
use super::state::AppState;
use crate::net::PeerAddr;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(revoke_user_sessions))
        .routes(routes!(rotate_session_keys))
}

/// End every session of a user now: core login sessions and proxy sessions on every outpost
/// replica (pushed over the control channel). Tokens issued to applications stop refreshing.
#[utoipa::path(post, path = "/api/v1/users/{id}/sessions/revoke", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 204, description = "every session of the user has ended"),
              (status = 404, body = super::error::Problem)))]
async fn revoke_user_sessions(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let user = state.store.user(id).await?;
    state.store.revoke_sessions(id, None).await?;
    audit::record(
        &state,
        &admin.username,
        "user_sessions_revoke",
        user.username,
        &peer.ip().to_string(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a new generation of the keys proxy outposts seal session cookies with. Outposts seal new
/// cookies with it at once; cookies sealed with the previous generation keep working (and are
/// re-sealed on use), those of older generations end.
#[utoipa::path(post, path = "/api/v1/session-keys/rotate", tag = "outposts",
    responses((status = 200, body = SessionKeysRotated)))]
async fn rotate_session_keys(
    admin: Admin,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
) -> ApiResult<Json<SessionKeysRotated>> {
    // Make sure a first generation exists, so the rotation always leaves one to fall back on.
    state.store.session_key_generations().await?;
    let generation = state.store.rotate_session_keys().await?;
    audit::record(
        &state,
        &admin.username,
        "session_keys_rotate",
        generation.to_string(),
        &peer.ip().to_string(),
    )
    .await;
    Ok(Json(SessionKeysRotated { generation }))
}
