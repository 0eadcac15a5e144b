//! What an operator sees of an outpost on its metrics port: `/metrics`, `/-/health/live` and
//! `/-/health/ready` (ready once a configuration is loaded, from the core or the state dir).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use redoubt_outpost_proto::config::ConfigSnapshot;
use std::sync::Arc;
use tokio::sync::watch;

/// The outpost's own metrics. Protocol modules register theirs in [`OutpostMetrics::registry`].
#[derive(Debug, Clone)]
pub struct OutpostMetrics {
    pub registry: Registry,
    pub info: IntGaugeVec,
    pub connected: IntGauge,
    pub applied_revision: IntGauge,
    pub last_update: IntGauge,
    pub reconnects: IntCounter,
    pub messages: IntCounterVec,
    /// The core endpoint in use (1) among those configured (0).
    pub core_endpoint: IntGaugeVec,
    /// Times the outpost moved to another core endpoint.
    pub endpoint_switches: IntCounter,
}

impl OutpostMetrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let info = IntGaugeVec::new(
            Opts::new(
                "redoubt_outpost_info",
                "The outpost this process serves (value is always 1)",
            ),
            &["outpost", "kind", "version"],
        )?;
        let connected = IntGauge::new(
            "redoubt_outpost_channel_connected",
            "Whether the control channel to the core is up",
        )?;
        let applied_revision = IntGauge::new(
            "redoubt_outpost_applied_revision",
            "The configuration revision this outpost has applied",
        )?;
        let last_update = IntGauge::new(
            "redoubt_outpost_last_update_timestamp_seconds",
            "When the configuration last changed, in seconds since the epoch",
        )?;
        let reconnects = IntCounter::new(
            "redoubt_outpost_reconnects_total",
            "Times the control channel came up again after it had been up before",
        )?;
        let messages = IntCounterVec::new(
            Opts::new(
                "redoubt_outpost_messages_received_total",
                "Control-channel messages from the core",
            ),
            &["type"],
        )?;
        let core_endpoint = IntGaugeVec::new(
            Opts::new(
                "redoubt_outpost_core_endpoint",
                "Core endpoints from REDOUBT_URL (one per address when a name resolves to several): 1 for the one in use",
            ),
            &["endpoint"],
        )?;
        let endpoint_switches = IntCounter::new(
            "redoubt_outpost_core_endpoint_switches_total",
            "Times the outpost moved to another core endpoint (failover or return to its preferred one)",
        )?;
        registry.register(Box::new(core_endpoint.clone()))?;
        registry.register(Box::new(endpoint_switches.clone()))?;
        registry.register(Box::new(info.clone()))?;
        registry.register(Box::new(connected.clone()))?;
        registry.register(Box::new(applied_revision.clone()))?;
        registry.register(Box::new(last_update.clone()))?;
        registry.register(Box::new(reconnects.clone()))?;
        registry.register(Box::new(messages.clone()))?;
        Ok(Self {
            registry,
            info,
            connected,
            applied_revision,
            last_update,
            reconnects,
            messages,
            core_endpoint,
            endpoint_switches,
        })
    }

    fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[derive(Clone)]
struct ObserveState {
    metrics: Arc<OutpostMetrics>,
    config: watch::Receiver<Option<Arc<ConfigSnapshot>>>,
}

/// The metrics and health application.
pub fn router(
    metrics: Arc<OutpostMetrics>,
    config: watch::Receiver<Option<Arc<ConfigSnapshot>>>,
) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route(
            "/-/health/live",
            get(|| async { (StatusCode::OK, "{\"status\":\"live\"}") }),
        )
        .route("/-/health/ready", get(ready))
        .with_state(ObserveState { metrics, config })
}

async fn render(State(state): State<ObserveState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn ready(State(state): State<ObserveState>) -> (StatusCode, axum::Json<serde_json::Value>) {
    match state.config.borrow().as_ref() {
        Some(snapshot) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "ready", "revision": snapshot.revision })),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "status": "unready",
                "reason": "no configuration yet: the core has not answered and the state dir holds none"
            })),
        ),
    }
}
