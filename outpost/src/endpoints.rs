//! The core's addresses. `REDOUBT_URL` may list several core replicas, comma-separated, and a
//! host name that resolves to several addresses counts as one endpoint per address (the URL,
//! its `Host` and TLS name unchanged, the connection pinned to that address).
//!
//! Every outpost instance prefers one endpoint, picked from its random instance id, so a fleet
//! spreads over the replicas. The control channel and every REST call go to the *current*
//! endpoint; when it cannot be reached the next one is tried at once, and only a whole round of
//! failures waits for the backoff ([`Rotation`], pure). While the current endpoint is not the
//! preferred one, the runtime checks now and then whether the preferred one is back and returns
//! to it, so load spreads again after a replica recovers.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Longest wait for a TCP connection to one endpoint: a dead replica must not hold up the
/// failover to a live one for long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one whole REST request (a credential check costs an Argon2id verification).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One way to reach the core.
#[derive(Clone)]
pub struct Endpoint {
    /// The base URL as configured (no trailing slash).
    pub base_url: String,
    /// The address connections are pinned to, when the host name resolved to several.
    pub addr: Option<SocketAddr>,
    /// An HTTP client that connects to this endpoint (pinned when `addr` is set).
    pub http: reqwest::Client,
}

impl Endpoint {
    /// How the endpoint is named in logs and metrics: the URL, plus the address when pinned.
    pub fn label(&self) -> String {
        match self.addr {
            Some(addr) => format!("{} ({addr})", self.base_url),
            None => self.base_url.clone(),
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// Why the endpoint list could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot build the HTTP client for {url}: {cause}")]
    Client { url: String, cause: String },
}

/// The endpoints and which one is in use; shared by the runtime and every [`crate::core_api::CoreApi`].
pub struct CoreEndpoints {
    urls: Vec<String>,
    /// How clients for resolved addresses are built (`None`: a fixed endpoint, never resolved).
    tls: Option<Arc<rustls::ClientConfig>>,
    list: RwLock<Arc<Vec<Endpoint>>>,
    current: AtomicUsize,
    /// Picks the preferred endpoint: the same instance prefers the same one.
    seed: u64,
}

impl std::fmt::Debug for CoreEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreEndpoints")
            .field("endpoints", &self.all())
            .field("current", &self.current.load(Ordering::Relaxed))
            .finish()
    }
}

impl CoreEndpoints {
    /// The endpoints of `urls` (already validated), before any name is resolved: one per URL.
    /// `seed` picks the preferred one (the runtime passes a hash of its instance id).
    pub fn new(
        urls: Vec<String>,
        tls: Arc<rustls::ClientConfig>,
        seed: u64,
    ) -> Result<Self, EndpointError> {
        let list = urls
            .iter()
            .map(|url| endpoint(url, None, &tls))
            .collect::<Result<Vec<_>, _>>()?;
        let endpoints = Self {
            urls,
            tls: Some(tls),
            list: RwLock::new(Arc::new(list)),
            current: AtomicUsize::new(0),
            seed,
        };
        endpoints
            .current
            .store(endpoints.preferred(), Ordering::Relaxed);
        Ok(endpoints)
    }

    /// One fixed endpoint with a client of the caller's (tests and tools); never resolved.
    pub fn single(http: reqwest::Client, base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            urls: vec![base_url.clone()],
            tls: None,
            list: RwLock::new(Arc::new(vec![Endpoint {
                base_url,
                addr: None,
                http,
            }])),
            current: AtomicUsize::new(0),
            seed: 0,
        }
    }

    /// The configured URLs, in order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Every endpoint, in order.
    pub fn all(&self) -> Arc<Vec<Endpoint>> {
        self.list
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The index of the endpoint this instance prefers.
    pub fn preferred(&self) -> usize {
        let len = self.all().len().max(1);
        usize::try_from(self.seed % u64::try_from(len).unwrap_or(1)).unwrap_or(0)
    }

    /// The index of the endpoint in use.
    pub fn current_index(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// The endpoint in use.
    pub fn current(&self) -> Endpoint {
        let all = self.all();
        let index = self.current_index() % all.len().max(1);
        all.get(index)
            .or_else(|| all.first())
            .cloned()
            .unwrap_or_else(|| Endpoint {
                base_url: String::new(),
                addr: None,
                http: reqwest::Client::new(),
            })
    }

    /// Makes endpoint `index` the one in use.
    pub fn set_current(&self, index: usize) {
        self.current.store(index, Ordering::Relaxed);
    }

    /// Resolves every URL's host again: a name with several addresses becomes one endpoint per
    /// address. Keeps the current endpoint if it still exists. Resolution failures keep the URL
    /// as one unpinned endpoint (connecting will say what is wrong).
    pub async fn resolve(&self) {
        let Some(tls) = &self.tls else {
            return;
        };
        let mut list = Vec::new();
        for url in &self.urls {
            let addrs = resolve_host(url).await;
            let built = if addrs.len() > 1 {
                addrs
                    .into_iter()
                    .map(|addr| endpoint(url, Some(addr), tls))
                    .collect::<Result<Vec<_>, _>>()
            } else {
                endpoint(url, None, tls).map(|e| vec![e])
            };
            match built {
                Ok(mut endpoints) => list.append(&mut endpoints),
                Err(error) => tracing::warn!(%error, "keeping the previous endpoints"),
            }
        }
        if list.is_empty() {
            return;
        }
        let before = self.current();
        let same = |e: &Endpoint| e.base_url == before.base_url && e.addr == before.addr;
        let keep = list.iter().position(same);
        let changed = {
            let old = self.all();
            old.len() != list.len()
                || old
                    .iter()
                    .zip(&list)
                    .any(|(a, b)| a.base_url != b.base_url || a.addr != b.addr)
        };
        if changed {
            tracing::info!(
                endpoints = %list.iter().map(Endpoint::label).collect::<Vec<_>>().join(", "),
                "core endpoints"
            );
        }
        *self
            .list
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(list);
        match keep {
            Some(index) => self.set_current(index),
            None => self.set_current(self.preferred()),
        }
    }

    /// Calls `call` with the current endpoint and, when `unreachable` says the endpoint could not
    /// be reached, with each other endpoint in turn (the first that answers becomes current).
    pub async fn with_failover<T, E, F, Fut>(
        &self,
        unreachable: impl Fn(&E) -> bool,
        call: F,
    ) -> Result<T, E>
    where
        F: Fn(Endpoint) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let all = self.all();
        let start = self.current_index();
        let mut last = None;
        for step in 0..all.len().max(1) {
            let index = (start + step) % all.len().max(1);
            let Some(endpoint) = all.get(index).cloned() else {
                break;
            };
            match call(endpoint).await {
                Err(error) if unreachable(&error) => last = Some(error),
                other => {
                    if step > 0 {
                        self.set_current(index);
                    }
                    return other;
                }
            }
        }
        match last {
            Some(error) => Err(error),
            None => call(self.current()).await,
        }
    }
}

/// An endpoint for `url`, pinned to `addr` when given.
fn endpoint(
    url: &str,
    addr: Option<SocketAddr>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Endpoint, EndpointError> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured((**tls).clone())
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT);
    if let (Some(addr), Some(host)) = (addr, host_of(url)) {
        builder = builder.resolve(&host, addr);
    }
    let http = builder.build().map_err(|e| EndpointError::Client {
        url: url.to_owned(),
        cause: e.to_string(),
    })?;
    Ok(Endpoint {
        base_url: url.to_owned(),
        addr,
        http,
    })
}

/// The host of `url` (without brackets for IPv6 literals).
pub fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
}

/// The distinct addresses `url`'s host resolves to (empty when it does not resolve, or when it
/// is an address already).
async fn resolve_host(url: &str) -> Vec<SocketAddr> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let Some(host) = parsed.host_str() else {
        return Vec::new();
    };
    if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return Vec::new();
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let lookup = tokio::net::lookup_host((host.to_owned(), port));
    let Ok(Ok(found)) = tokio::time::timeout(CONNECT_TIMEOUT, lookup).await else {
        return Vec::new();
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in found {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    addrs
}

/// What the control channel does after an attempt: which endpoint next, and whether to wait.
/// Pure; the runtime owns one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Endpoints that failed since the last successful session.
    failed_in_round: usize,
}

/// When to make the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// At once (another endpoint, or the first retry after a session was lost).
    Now,
    /// After the backoff: every endpoint failed in this round.
    Backoff,
}

impl Rotation {
    /// A fresh rotation.
    pub fn new() -> Self {
        Self { failed_in_round: 0 }
    }

    /// A session on the current endpoint was welcomed: the round starts over.
    pub fn succeeded(&mut self) {
        self.failed_in_round = 0;
    }

    /// A session that was up has been lost (the core closed it or restarted): try again at once
    /// on the same endpoint, since a new attempt may well work.
    pub fn lost(&self) -> Next {
        Next::Now
    }

    /// An attempt on endpoint `current` of `len` failed: returns the endpoint to try next and
    /// when. The next endpoint is tried at once until all of them failed in this round; then
    /// the round starts over after the backoff.
    pub fn failed(&mut self, current: usize, len: usize) -> (usize, Next) {
        let len = len.max(1);
        self.failed_in_round = self.failed_in_round.saturating_add(1);
        let next = (current + 1) % len;
        if self.failed_in_round >= len {
            self.failed_in_round = 0;
            (next, Next::Backoff)
        } else {
            (next, Next::Now)
        }
    }
}

impl Default for Rotation {
    fn default() -> Self {
        Self::new()
    }
}

/// A stable 64-bit seed from an instance id (FNV-1a), so an instance keeps its preference.
pub fn seed_of(instance_id: &str) -> u64 {
    instance_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_endpoint_backs_off_after_each_failure() {
        let mut rotation = Rotation::new();
        assert_eq!(rotation.failed(0, 1), (0, Next::Backoff));
        assert_eq!(rotation.failed(0, 1), (0, Next::Backoff));
        assert_eq!(rotation.lost(), Next::Now);
    }

    #[test]
    fn several_endpoints_are_tried_in_turn_before_backing_off() {
        let mut rotation = Rotation::new();
        assert_eq!(rotation.failed(1, 3), (2, Next::Now));
        assert_eq!(rotation.failed(2, 3), (0, Next::Now));
        assert_eq!(rotation.failed(0, 3), (1, Next::Backoff));
        // A new round.
        assert_eq!(rotation.failed(1, 3), (2, Next::Now));
        rotation.succeeded();
        assert_eq!(rotation.failed(2, 3), (0, Next::Now));
    }

    #[test]
    fn instances_spread_over_endpoints() {
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            let seed = seed_of(&format!("{i:032x}"));
            counts[usize::try_from(seed % 3).expect("small")] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(seed_of("abc"), seed_of("abc"));
    }

    #[test]
    fn host_of_strips_ipv6_brackets() {
        assert_eq!(host_of("https://[::1]:9443").as_deref(), Some("::1"));
        assert_eq!(
            host_of("https://core.example.com").as_deref(),
            Some("core.example.com")
        );
    }

    #[tokio::test]
    async fn a_name_with_several_addresses_is_several_endpoints() {
        // `localhost` resolves to 127.0.0.1 and, on most hosts, ::1; IP literals stay as they are.
        let tls = crate::tls::client_config("", false).expect("tls");
        let endpoints = CoreEndpoints::new(
            vec!["http://127.0.0.1:1".into(), "http://localhost:2".into()],
            tls,
            0,
        )
        .expect("endpoints");
        endpoints.resolve().await;
        let all = endpoints.all();
        let expected = 1 + resolve_host("http://localhost:2").await.len().max(1);
        assert_eq!(all.len(), expected);
        assert_eq!(all[0].base_url, "http://127.0.0.1:1");
        assert!(all[0].addr.is_none());
        if expected > 2 {
            assert!(all[1..].iter().all(|e| e.addr.is_some()));
        }
    }
}
