//! Prometheus metrics of the core, served on the metrics port (`/metrics`).

use crate::auth::credentials::{CheckError, CheckFailure, VerifiedUser};
use crate::store::Store;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every metric of the core, in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    credential_checks: IntCounterVec,
    credential_duration: HistogramVec,
    objects: IntGaugeVec,
    database_up: IntGauge,
    /// Outpost instances connected to this replica.
    pub outposts_connected: IntGauge,
    /// Time from sending a revision to an outpost to its acknowledgement.
    pub push_latency: Histogram,
    outpost_replicas: IntGaugeVec,
    token_requests: IntCounterVec,
    session_revocations: IntGauge,
    rac_connections: IntGauge,
    /// The embedded outpost's registry, rendered after the core's own metrics.
    embedded: std::sync::OnceLock<Registry>,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "redoubt_build_info",
                "Build of the running core (value is always 1)",
            ),
            &["version", "protocol_version"],
        )?;
        build_info
            .with_label_values(&[
                crate::VERSION,
                &redoubt_outpost_proto::PROTOCOL_VERSION.to_string(),
            ])
            .set(1);
        let http_requests = IntCounterVec::new(
            Opts::new(
                "redoubt_http_requests_total",
                "HTTP requests answered, by route and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "redoubt_http_request_duration_seconds",
                "Time to answer HTTP requests",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let credential_checks = IntCounterVec::new(
            Opts::new(
                "redoubt_credential_checks_total",
                "Credential checks (outpost verifications and API logins), by result",
            ),
            &["source", "result"],
        )?;
        let credential_duration = HistogramVec::new(
            HistogramOpts::new(
                "redoubt_credential_check_duration_seconds",
                "Time to check credentials, including password hashing",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["source"],
        )?;
        let objects = IntGaugeVec::new(
            Opts::new("redoubt_objects", "Objects in the store, by kind"),
            &["kind"],
        )?;
        let database_up = IntGauge::new(
            "redoubt_database_up",
            "Whether the database answered the last scrape",
        )?;
        let outposts_connected = IntGauge::new(
            "redoubt_outposts_connected",
            "Outpost instances connected to this core replica",
        )?;
        let push_latency = Histogram::with_opts(
            HistogramOpts::new(
                "redoubt_outpost_push_latency_seconds",
                "Time from pushing a revision to an outpost instance to its acknowledgement",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let outpost_replicas = IntGaugeVec::new(
            Opts::new(
                "redoubt_outpost_replicas",
                "Instances of each outpost: expected (settings.expected_replicas) and connected",
            ),
            &["outpost", "state"],
        )?;
        let token_requests = IntCounterVec::new(
            Opts::new(
                "redoubt_oidc_token_requests_total",
                "Requests to the OIDC token endpoint, by grant and result",
            ),
            &["grant", "result"],
        )?;
        let session_revocations = IntGauge::new(
            "redoubt_session_revocations",
            "Session revocations in force (pushed to every proxy outpost)",
        )?;
        let rac_connections = IntGauge::new(
            "redoubt_rac_leased_connections",
            "RAC connections granted and not ended whose lease holds, across every outpost replica",
        )?;
        registry.register(Box::new(token_requests.clone()))?;
        registry.register(Box::new(session_revocations.clone()))?;
        registry.register(Box::new(rac_connections.clone()))?;
        registry.register(Box::new(outposts_connected.clone()))?;
        registry.register(Box::new(push_latency.clone()))?;
        registry.register(Box::new(outpost_replicas.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(credential_checks.clone()))?;
        registry.register(Box::new(credential_duration.clone()))?;
        registry.register(Box::new(objects.clone()))?;
        registry.register(Box::new(database_up.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            credential_checks,
            credential_duration,
            objects,
            database_up,
            outposts_connected,
            push_latency,
            outpost_replicas,
            token_requests,
            session_revocations,
            rac_connections,
            embedded: std::sync::OnceLock::new(),
        })
    }

    /// Counts one credential check by the outposts.
    pub fn observe_credential_check(
        &self,
        result: &Result<VerifiedUser, CheckError>,
        elapsed: Duration,
    ) {
        self.observe_check("outpost", result, elapsed);
    }

    /// Counts one credential check from `source`.
    pub fn observe_check(
        &self,
        source: &str,
        result: &Result<VerifiedUser, CheckError>,
        elapsed: Duration,
    ) {
        let label = match result {
            Ok(_) => "success",
            Err(CheckError::Failed(CheckFailure::InvalidCredentials)) => "invalid_credentials",
            Err(CheckError::Failed(CheckFailure::MfaRequired)) => "mfa_required",
            Err(CheckError::Failed(CheckFailure::AccessDenied)) => "access_denied",
            Err(CheckError::Failed(CheckFailure::RateLimited)) => "rate_limited",
            Err(CheckError::Store(_)) => "error",
        };
        self.credential_checks
            .with_label_values(&[source, label])
            .inc();
        self.credential_duration
            .with_label_values(&[source])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one token request.
    pub fn token_request(&self, grant: &str, issued: bool) {
        self.token_requests
            .with_label_values(&[grant, if issued { "issued" } else { "refused" }])
            .inc();
    }

    /// Adds the embedded outpost's metrics (`redoubt_outpost_*`, `redoubt_proxy_*`) to the
    /// core's exposition.
    pub fn attach_embedded(&self, registry: Registry) {
        let _ = self.embedded.set(registry);
    }

    /// The text exposition, after refreshing the object counts from `store`.
    pub async fn render(&self, store: &Store) -> String {
        let counts = async {
            Ok::<_, crate::store::StoreError>([
                ("user", store.count_users().await?),
                ("group", store.count_groups().await?),
                ("application", store.count_applications().await?),
                ("provider", store.count_providers().await?),
                ("outpost", store.count_outposts().await?),
                (
                    "session_revocation",
                    store.count_session_revocations().await?,
                ),
                ("rac_connection", store.count_open_rac_connections().await?),
            ])
        };
        match tokio::time::timeout(Duration::from_secs(2), counts).await {
            Ok(Ok(counts)) => {
                self.database_up.set(1);
                for (kind, count) in counts {
                    if kind == "session_revocation" {
                        self.session_revocations.set(count);
                    } else if kind == "rac_connection" {
                        self.rac_connections.set(count);
                    } else {
                        self.objects.with_label_values(&[kind]).set(count);
                    }
                }
            }
            _ => self.database_up.set(0),
        }
        // Healthy instances: heard within 1.5 default heartbeats (plus the flush interval).
        let since = store.now() - 16;
        if let Ok(Ok(replicas)) =
            tokio::time::timeout(Duration::from_secs(2), store.outpost_replica_counts(since)).await
        {
            self.outpost_replicas.reset();
            for (name, expected, connected) in replicas {
                self.outpost_replicas
                    .with_label_values(&[&name, "expected"])
                    .set(expected);
                self.outpost_replicas
                    .with_label_values(&[&name, "connected"])
                    .set(connected);
            }
        }
        let mut families = self.registry.gather();
        if let Some(embedded) = self.embedded.get() {
            let own: std::collections::HashSet<String> =
                families.iter().map(|f| f.name().to_owned()).collect();
            families.extend(
                embedded
                    .gather()
                    .into_iter()
                    .filter(|f| !own.contains(f.name())),
            );
        }
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::warn!(%error, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Middleware counting and timing every HTTP request by its route template.
pub async fn track_http(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics
        .http_requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}
