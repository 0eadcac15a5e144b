//! What an operator sees of an outpost on its metrics port: `/metrics`, `/-/health/live` and
//! `/-/health/ready`. Ready says whether the outpost is `connected`, `degraded` or
//! `disconnected` (see [`crate::core_contact`]): 200 while a configuration is held (connected or
//! degraded: it serves), 503 when disconnected (nothing to serve). The same state is the gauge
//! `redoubt_outpost_core_status{state}`, computed when scraped.

use crate::core_contact::{CoreContact, CoreStatus, core_reachable, heartbeat_period};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
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

/// Where the outpost's core status is read: the contact record and the held configuration.
#[derive(Debug, Clone)]
pub struct StatusSource {
    pub contact: CoreContact,
    pub config: watch::Receiver<Option<Arc<ConfigSnapshot>>>,
}

impl StatusSource {
    /// The status as of now.
    pub fn status(&self) -> CoreStatus {
        let config = self.config.borrow();
        let period = heartbeat_period(config.as_deref());
        let reachable = core_reachable(self.contact.get(), std::time::Instant::now(), period);
        CoreStatus::of(reachable, config.is_some())
    }
}

/// `redoubt_outpost_core_status{state}`: 1 for the current state, 0 for the others, computed at
/// each scrape (so a host that serves the registry itself, like the core for its embedded
/// outpost, sees it current too).
struct CoreStatusCollector {
    gauge: IntGaugeVec,
    source: StatusSource,
}

impl Collector for CoreStatusCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let status = self.source.status();
        for state in CoreStatus::ALL {
            self.gauge
                .with_label_values(&[state.as_str()])
                .set(i64::from(state == status));
        }
        self.gauge.collect()
    }
}

/// Registers `redoubt_outpost_core_status` in `registry`.
pub fn register_core_status(
    registry: &Registry,
    source: StatusSource,
) -> Result<(), prometheus::Error> {
    let gauge = IntGaugeVec::new(
        Opts::new(
            "redoubt_outpost_core_status",
            "1 for the outpost's state: connected (the core reached within a heartbeat period), degraded (serving held configuration and cached credentials without the core), disconnected (nothing to serve)",
        ),
        &["state"],
    )?;
    registry.register(Box::new(CoreStatusCollector { gauge, source }))
}

#[derive(Clone)]
struct ObserveState {
    metrics: Arc<OutpostMetrics>,
    source: StatusSource,
}

/// The metrics and health application.
pub fn router(metrics: Arc<OutpostMetrics>, source: StatusSource) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route(
            "/-/health/live",
            get(|| async { (StatusCode::OK, "{\"status\":\"live\"}") }),
        )
        .route("/-/health/ready", get(ready))
        .with_state(ObserveState { metrics, source })
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
    let status = state.source.status();
    let revision = state.source.config.borrow().as_ref().map(|s| s.revision);
    let body = match status {
        CoreStatus::Connected => serde_json::json!({
            "status": status.as_str(),
            "revision": revision,
        }),
        CoreStatus::Degraded => serde_json::json!({
            "status": status.as_str(),
            "revision": revision,
            "reason": "the core has not been reached within a heartbeat period: serving the held configuration and cached credentials",
        }),
        CoreStatus::Disconnected => serde_json::json!({
            "status": status.as_str(),
            "reason": "no configuration yet: the core has not answered and the state dir holds none",
        }),
    };
    let code = if status.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body))
}
