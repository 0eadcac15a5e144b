//! Prometheus metrics of the RADIUS module.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Every RADIUS metric.
#[derive(Debug, Clone)]
pub struct RadiusMetrics {
    /// `code`: access_request, accounting_request, status_server; `result`: accept, reject,
    /// challenge, ok.
    pub requests: IntCounterVec,
    /// `code` as above.
    pub duration: HistogramVec,
    /// `reason`: unknown_client, malformed, missing_message_authenticator,
    /// bad_message_authenticator, bad_authenticator, unsupported_code, busy, in_progress,
    /// core_unreachable, core_error, not_serving (Status-Server while the core is unreachable).
    pub dropped: IntCounterVec,
    /// Retransmissions answered with the cached reply.
    pub duplicates: IntCounter,
    /// `result`: hit, miss, offline.
    pub credential_cache: IntCounterVec,
    pub pending_challenges: IntGauge,
}

impl RadiusMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "redoubt_radius_requests_total",
                "RADIUS requests answered, by request code and result",
            ),
            &["code", "result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "redoubt_radius_request_duration_seconds",
                "Time from receiving a RADIUS request to sending the reply, by request code",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["code"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "redoubt_radius_dropped_total",
                "RADIUS datagrams dropped without an answer, by reason",
            ),
            &["reason"],
        )?;
        let duplicates = IntCounter::new(
            "redoubt_radius_duplicates_total",
            "Retransmitted RADIUS requests answered with the cached reply",
        )?;
        let credential_cache = IntCounterVec::new(
            Opts::new(
                "redoubt_radius_credential_cache_total",
                "Access-Requests by how the credential cache answered: hit (no core call), miss (core asked), offline (cached credentials used while the core was unreachable)",
            ),
            &["result"],
        )?;
        let pending_challenges = IntGauge::new(
            "redoubt_radius_pending_challenges",
            "Access-Challenges waiting for a one-time code",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(duplicates.clone()))?;
        registry.register(Box::new(credential_cache.clone()))?;
        registry.register(Box::new(pending_challenges.clone()))?;
        Ok(Self {
            requests,
            duration,
            dropped,
            duplicates,
            credential_cache,
            pending_challenges,
        })
    }
}
