//! `/-/health/live` (the process answers) and `/-/health/ready` (the database answers and holds
//! every migration), served on the HTTP and the metrics ports.

use super::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// How long readiness waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Always 200 while the process serves requests.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

/// 200 when the database answers and is migrated, else 503 with the reason.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let check = async {
        state
            .store
            .ping()
            .await
            .map_err(|_| "database unreachable")?;
        match state.store.is_migrated().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("database not migrated"),
            Err(_) => Err("database unreachable"),
        }
    };
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(Err(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unready", "reason": reason })),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unready", "reason": "database timed out" })),
        ),
    }
}
