//! Prometheus metrics of the proxy module. The label values are fixed enums and every series is
//! resolved once at start, so the hot path only increments atomics.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// What a request was (`mode` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Proxy,
    Nginx,
    Traefik,
    Caddy,
    Envoy,
    Start,
    Callback,
    SignOut,
    Ping,
    Other,
}

impl Mode {
    const ALL: [Mode; 10] = [
        Self::Proxy,
        Self::Nginx,
        Self::Traefik,
        Self::Caddy,
        Self::Envoy,
        Self::Start,
        Self::Callback,
        Self::SignOut,
        Self::Ping,
        Self::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Nginx => "nginx",
            Self::Traefik => "traefik",
            Self::Caddy => "caddy",
            Self::Envoy => "envoy",
            Self::Start => "start",
            Self::Callback => "callback",
            Self::SignOut => "sign_out",
            Self::Ping => "ping",
            Self::Other => "other",
        }
    }
}

/// How a request ended (`result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed with a session (or a token).
    Allowed,
    /// Passed without login (skip path).
    Skipped,
    /// Not logged in: 401 or a redirect to the login.
    Unauthenticated,
    /// A login step or sign-out redirected as it should.
    Redirected,
    /// Refused input: bad return URL, bad or expired state, forwarded URL unknown.
    Refused,
    /// No provider for the host, or an unknown outpost path.
    NotFound,
    /// The upstream could not be reached or failed.
    UpstreamError,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The outpost cannot answer (no session keys, the core unreachable).
    Unavailable,
    /// Answered (ping).
    Ok,
}

impl Outcome {
    const ALL: [Outcome; 10] = [
        Self::Allowed,
        Self::Skipped,
        Self::Unauthenticated,
        Self::Redirected,
        Self::Refused,
        Self::NotFound,
        Self::UpstreamError,
        Self::UpstreamTimeout,
        Self::Unavailable,
        Self::Ok,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Skipped => "skipped",
            Self::Unauthenticated => "unauthenticated",
            Self::Redirected => "redirected",
            Self::Refused => "refused",
            Self::NotFound => "not_found",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::Unavailable => "unavailable",
            Self::Ok => "ok",
        }
    }
}

/// How a login ended (`result` label of `redoubt_proxy_logins_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    Success,
    /// Bad, expired or foreign state, or a missing state cookie.
    BadState,
    /// The core refused the login or the code.
    Refused,
    /// The ID token did not check out.
    BadToken,
    /// The core could not be reached.
    CoreUnavailable,
}

impl LoginResult {
    const ALL: [LoginResult; 5] = [
        Self::Success,
        Self::BadState,
        Self::Refused,
        Self::BadToken,
        Self::CoreUnavailable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::BadState => "bad_state",
            Self::Refused => "refused",
            Self::BadToken => "bad_token",
            Self::CoreUnavailable => "core_unavailable",
        }
    }
}

const REJECT_REASONS: [&str; 5] = ["malformed", "unknown_key", "forged", "expired", "revoked"];

/// Every proxy metric.
#[derive(Debug, Clone)]
pub struct ProxyMetrics {
    requests: Vec<IntCounter>,
    durations: Vec<Histogram>,
    pub upstream_duration: Histogram,
    logins: Vec<IntCounter>,
    /// Revocations received from the core.
    pub revocations: IntCounter,
    /// Revocations in force now.
    pub revocations_held: IntGauge,
    rejected: Vec<IntCounter>,
    /// `Authorization` header checks by result (`bearer_ok`, ...).
    pub header_auth: IntCounterVec,
}

impl ProxyMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "redoubt_proxy_requests_total",
                "Proxy outpost requests by mode (proxy, the forward-auth flavour, or the outpost endpoint) and result",
            ),
            &["mode", "result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "redoubt_proxy_request_duration_seconds",
                "Time to answer a request (to the response headers), by mode",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["mode"],
        )?;
        let upstream_duration = Histogram::with_opts(
            HistogramOpts::new(
                "redoubt_proxy_upstream_duration_seconds",
                "Time from sending a request upstream to its response headers (proxy mode)",
            )
            .buckets(vec![
                0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 10.0, 30.0,
            ]),
        )?;
        let logins = IntCounterVec::new(
            Opts::new(
                "redoubt_proxy_logins_total",
                "Logins completed at the callback, by result",
            ),
            &["result"],
        )?;
        let revocations = IntCounter::new(
            "redoubt_proxy_session_revocations_total",
            "Session revocations received from the core",
        )?;
        let revocations_held = IntGauge::new(
            "redoubt_proxy_session_revocations",
            "Session revocations in force",
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "redoubt_proxy_sessions_rejected_total",
                "Session cookies not accepted, by reason (malformed, unknown_key, forged, expired, revoked)",
            ),
            &["reason"],
        )?;
        let header_auth = IntCounterVec::new(
            Opts::new(
                "redoubt_proxy_header_auth_total",
                "Authorization headers checked for API clients, by scheme and result",
            ),
            &["scheme", "result"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(revocations_held.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(header_auth.clone()))?;
        let mut request_series = Vec::new();
        for mode in Mode::ALL {
            for outcome in Outcome::ALL {
                request_series.push(requests.with_label_values(&[mode.label(), outcome.label()]));
            }
        }
        Ok(Self {
            requests: request_series,
            durations: Mode::ALL
                .iter()
                .map(|m| duration.with_label_values(&[m.label()]))
                .collect(),
            upstream_duration,
            logins: LoginResult::ALL
                .iter()
                .map(|r| logins.with_label_values(&[r.label()]))
                .collect(),
            revocations,
            revocations_held,
            rejected: REJECT_REASONS
                .iter()
                .map(|r| rejected.with_label_values(&[r]))
                .collect(),
            header_auth,
        })
    }

    /// Counts a finished request.
    pub fn request(&self, mode: Mode, outcome: Outcome, seconds: f64) {
        let m = Mode::ALL.iter().position(|x| *x == mode).unwrap_or(0);
        let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
        if let Some(c) = self.requests.get(m * Outcome::ALL.len() + o) {
            c.inc();
        }
        if let Some(h) = self.durations.get(m) {
            h.observe(seconds);
        }
    }

    /// Counts a login.
    pub fn login(&self, result: LoginResult) {
        let i = LoginResult::ALL
            .iter()
            .position(|x| *x == result)
            .unwrap_or(0);
        if let Some(c) = self.logins.get(i) {
            c.inc();
        }
    }

    /// Counts a refused cookie.
    pub fn rejected(&self, reason: &str) {
        if let Some(i) = REJECT_REASONS.iter().position(|r| *r == reason)
            && let Some(c) = self.rejected.get(i)
        {
            c.inc();
        }
    }
}
