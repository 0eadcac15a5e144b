//! Prometheus metrics of the LDAP module.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Every LDAP metric.
#[derive(Debug, Clone)]
pub struct LdapMetrics {
    /// `op`: bind, search, compare, whoami, passwd, starttls, write, extended, abandon, unbind;
    /// `result`: the LDAP result code name.
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub connections: IntGauge,
    pub connections_total: IntCounter,
    /// `reason`: limit, idle, protocol.
    pub connections_refused: IntCounterVec,
    /// `result`: hit, miss, offline.
    pub bind_cache: IntCounterVec,
    pub entries_returned: IntCounter,
    pub directory_entries: IntGaugeVec,
    pub view_build_seconds: Histogram,
}

impl LdapMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "redoubt_ldap_requests_total",
                "LDAP operations by type and result",
            ),
            &["op", "result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "redoubt_ldap_request_duration_seconds",
                "Time to answer an LDAP operation, by type",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["op"],
        )?;
        let connections = IntGauge::new("redoubt_ldap_connections", "LDAP connections open now")?;
        let connections_total = IntCounter::new(
            "redoubt_ldap_connections_total",
            "LDAP connections accepted",
        )?;
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "redoubt_ldap_connections_closed_total",
                "LDAP connections closed by the server, by reason",
            ),
            &["reason"],
        )?;
        let bind_cache = IntCounterVec::new(
            Opts::new(
                "redoubt_ldap_bind_cache_total",
                "Binds by how the credential cache answered: hit (no core call), miss (core asked), offline (cached bind used while the core was unreachable)",
            ),
            &["result"],
        )?;
        let entries_returned = IntCounter::new(
            "redoubt_ldap_search_entries_total",
            "Entries returned by searches",
        )?;
        let directory_entries = IntGaugeVec::new(
            Opts::new(
                "redoubt_ldap_directory_entries",
                "Entries in the in-memory directory, by kind",
            ),
            &["kind"],
        )?;
        let view_build_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "redoubt_ldap_directory_build_seconds",
                "Time to rebuild the in-memory directory after a change",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connections_total.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(bind_cache.clone()))?;
        registry.register(Box::new(entries_returned.clone()))?;
        registry.register(Box::new(directory_entries.clone()))?;
        registry.register(Box::new(view_build_seconds.clone()))?;
        Ok(Self {
            requests,
            duration,
            connections,
            connections_total,
            connections_refused,
            bind_cache,
            entries_returned,
            directory_entries,
            view_build_seconds,
        })
    }
}
