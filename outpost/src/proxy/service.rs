//! [`ProxyService`]: one HTTP request in, one response out. Routes `/outpost.redoubt/*` to the
//! endpoints (forward auth per reverse proxy, login start and callback, sign-out, ping) and
//! everything else to proxy mode. The decisions live in [`super::decide`], [`super::login`] and
//! [`super::forward`]; this file reads the request, calls the core when a login completes or a
//! header must be checked, and writes the response. The listener and the core (for its embedded
//! outpost) both call [`ProxyService::handle`].

use super::body::ProxyBody;
use super::decide::{self, Caller, Check, Verdict};
use super::forward::{self, Flavour, host_of_authority};
use super::header_auth::{Credentials, HeaderAuth, HeaderVerdict};
use super::headers::{CookieScope, add_identity, find_cookie, set_cookie};
use super::login;
use super::memo;
use super::metrics::{LoginResult, Mode, Outcome, ProxyMetrics};
use super::pages;
use super::session::{self, Session};
use super::state::{ProviderApp, ProviderView, ProxyState, Scheme};
use super::upstream::{BoxError, UpstreamBody, Upstreams, box_body};
use crate::core_api::{CoreApi, CoreCallError};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use redoubt_outpost_proto::clock::SharedClock;
use redoubt_outpost_proto::credentials::{OutpostEvent, PROXY_MISCONFIGURED};
use redoubt_outpost_proto::oidc::{OUTPOST_PATH_PREFIX, TOKEN_PATH, TokenResponse};
use redoubt_outpost_proto::provider::ProxyMode;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;
use subtle::ConstantTimeEq;

/// Longest query string of an outpost endpoint.
const MAX_QUERY_LEN: usize = 8 * 1024;

/// Answers the signed-in requests of providers whose application lives in the outpost itself
/// (RAC): the sign-in, cookies and revocations stay the proxy's, only what a signed-in user
/// sees is the app's.
pub trait InProcessApp: Send + Sync {
    /// Answers `request` from `session`'s user for `provider`.
    fn handle(
        &self,
        request: Request<UpstreamBody>,
        provider: Arc<ProviderView>,
        session: Arc<Session>,
        peer: Peer,
    ) -> Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>>;
}

/// What every request shares.
pub struct Shared {
    state: RwLock<Arc<ProxyState>>,
    /// The in-process application of RAC providers, once the RAC module installed it.
    app: OnceLock<Arc<dyn InProcessApp>>,
    pub core: CoreApi,
    /// Where misconfiguration reports go to the core.
    pub events: crate::event_queue::EventQueue,
    pub metrics: ProxyMetrics,
    pub header_auth: HeaderAuth,
    /// When each reverse-proxy misconfiguration was last reported.
    misconfig: super::misconfig::MisconfigReports,
    /// TLS towards upstreams: verifying (system roots and the CA file) and not.
    tls_verified: Arc<rustls::ClientConfig>,
    tls_unverified: Arc<rustls::ClientConfig>,
    /// The time cookies, login states and sessions are judged by.
    clock: SharedClock,
    /// Reverse proxies whose forwarded headers are believed (`proxy.trusted_proxies`).
    trusted_proxies: Arc<super::trusted::TrustedProxies>,
}

impl Shared {
    /// Everything needed to start serving.
    pub fn new(
        state: ProxyState,
        core: CoreApi,
        events: crate::event_queue::EventQueue,
        metrics: ProxyMetrics,
        tls_verified: Arc<rustls::ClientConfig>,
        tls_unverified: Arc<rustls::ClientConfig>,
        clock: SharedClock,
        trusted_proxies: super::trusted::TrustedProxies,
    ) -> Self {
        Self {
            state: RwLock::new(Arc::new(state)),
            app: OnceLock::new(),
            core,
            events,
            metrics,
            header_auth: HeaderAuth::new(),
            misconfig: super::misconfig::MisconfigReports::default(),
            tls_verified,
            tls_unverified,
            clock,
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }

    /// Unix milliseconds now, from the injected clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The state as of the latest applied configuration.
    pub fn state(&self) -> Arc<ProxyState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Swaps in a newer state (older revisions are ignored).
    pub fn set_state(&self, state: ProxyState) {
        let mut guard = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.revision <= state.revision {
            *guard = Arc::new(state);
        }
    }
}

/// How the client reached the outpost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether the client connected over TLS.
    pub https: bool,
}

/// The proxy outpost as a function from requests to responses. Cheap to clone; clones share
/// one pool of upstream connections ([`ProxyService::with_own_pool`] makes one with its own, for
/// a listener thread).
#[derive(Clone)]
pub struct ProxyService {
    shared: Arc<Shared>,
    upstreams: Arc<Upstreams>,
}

impl std::fmt::Debug for ProxyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyService").finish_non_exhaustive()
    }
}

fn redirect(location: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn status(code: StatusCode) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = code;
    response
}

/// The `Host` of a request: the URI's authority (HTTP/2, absolute form), else the header.
fn request_authority<B>(request: &Request<B>) -> Option<&str> {
    request.uri().authority().map(|a| a.as_str()).or_else(|| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    })
}

/// The request without its body: what the endpoints that only read the head are given, so their
/// futures stay `Send` whatever the body type (axum's is not `Sync`).
fn without_body<B>(request: Request<B>) -> Request<()> {
    let (parts, _) = request.into_parts();
    Request::from_parts(parts, ())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let query = query?;
    if query.len() > MAX_QUERY_LEN {
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn cookie_scope(provider: &ProviderView) -> CookieScope<'_> {
    CookieScope {
        domain: provider.cookie_domain.as_deref(),
        path: "/",
        secure: provider.scheme == Scheme::Https,
    }
}

impl ProxyService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        let upstreams = Arc::new(Upstreams::new(
            shared.tls_verified.clone(),
            shared.tls_unverified.clone(),
            shared.trusted_proxies.clone(),
        ));
        Self { shared, upstreams }
    }

    /// Installs the application that answers signed-in requests to RAC providers (once).
    pub fn set_app(&self, app: Arc<dyn InProcessApp>) {
        let _ = self.shared.app.set(app);
    }

    /// The state as of the latest applied configuration (providers, keys, revocations).
    pub fn state(&self) -> Arc<ProxyState> {
        self.shared.state()
    }

    /// The same service with its own pool of upstream connections, so a listener thread's
    /// requests never wait on another thread's connections.
    pub fn with_own_pool(&self) -> Self {
        Self::new(self.shared.clone())
    }

    /// Whether a request to `authority` (the `Host`) belongs to a provider this outpost serves
    /// in proxy mode, i.e. whether a host process embedding the outpost should hand every
    /// request for that host to it. Requests under `/outpost.redoubt/` always belong to it.
    pub fn routes_host(&self, authority: &str) -> bool {
        let Some(host) = host_of_authority(authority) else {
            return false;
        };
        self.shared
            .state()
            .provider_for_host(&host)
            .is_some_and(|p| p.settings.mode == ProxyMode::Proxy)
    }

    /// Answers `request` from `client`. The connection counts as HTTPS when the request URI
    /// says so; use [`ProxyService::handle_from`] to say it explicitly.
    pub async fn handle<B>(&self, request: Request<B>, client: SocketAddr) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
        self.handle_from(
            request,
            Peer {
                addr: client,
                https,
            },
        )
        .await
    }

    /// Answers `request` from `peer`.
    pub async fn handle_from<B>(&self, request: Request<B>, peer: Peer) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let state = self.shared.state();
        let (mode, outcome, response) = self.route(&state, request, peer).await;
        self.shared
            .metrics
            .request(mode, outcome, started.elapsed().as_secs_f64());
        response
    }

    async fn route<B>(
        &self,
        state: &ProxyState,
        request: Request<B>,
        peer: Peer,
    ) -> (Mode, Outcome, Response<ProxyBody>)
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let Some(endpoint) = request.uri().path().strip_prefix(OUTPOST_PATH_PREFIX) else {
            return self.proxy(state, request, peer).await;
        };
        match endpoint {
            "ping" => (Mode::Ping, Outcome::Ok, status(StatusCode::NO_CONTENT)),
            "start" => self.start(state, &request),
            "callback" => self.callback(state, &without_body(request)).await,
            "sign_out" => self.sign_out(state, &request),
            _ => {
                let flavour = match endpoint.strip_prefix("auth/") {
                    Some("nginx") => Some(Flavour::Nginx),
                    Some("traefik") => Some(Flavour::Traefik),
                    Some("caddy") => Some(Flavour::Caddy),
                    // Envoy appends the original path to the endpoint's.
                    Some(e) if e == "envoy" || e.starts_with("envoy/") => Some(Flavour::Envoy),
                    _ => None,
                };
                match flavour {
                    Some(f) => {
                        self.forward_auth(state, &without_body(request), f, peer)
                            .await
                    }
                    None => (
                        Mode::Other,
                        Outcome::NotFound,
                        pages::page(
                            StatusCode::NOT_FOUND,
                            "Not found",
                            "This outpost has no such endpoint.",
                        ),
                    ),
                }
            }
        }
    }

    /// Checks the session cookie (and, when allowed, an `Authorization` header).
    async fn authenticate(
        &self,
        state: &ProxyState,
        provider: &ProviderView,
        headers: &HeaderMap,
        client: SocketAddr,
    ) -> Result<Check, Response<ProxyBody>> {
        let now = self.shared.now_ms();
        let cookie = find_cookie(headers, &provider.cookie_name);
        let check = match cookie.and_then(|c| memo::recall(state.revision, provider.id, c)) {
            Some(session) => decide::still_good(state, session, false, now),
            None => {
                let check = decide::check_session(state, provider, cookie, now);
                if let (
                    Some(cookie),
                    Check::Session {
                        session,
                        reseal: false,
                    },
                ) = (cookie, &check)
                {
                    memo::remember(state.revision, provider.id, cookie, session.clone());
                }
                check
            }
        };
        let Check::Anonymous(why) = &check else {
            return Ok(check);
        };
        if let Some(reason) = why.label() {
            self.shared.metrics.rejected(reason);
        }
        if !provider.settings.accept_header_auth {
            return Ok(check);
        }
        let Some(credentials) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| Credentials::parse(v.as_bytes()))
        else {
            return Ok(check);
        };
        let scheme = HeaderAuth::scheme_label(&credentials);
        let (verdict, cached) = self
            .shared
            .header_auth
            .check(
                &self.shared.core,
                provider.id,
                &provider.client_id,
                &credentials,
                client.ip(),
                now,
            )
            .await;
        let result = match &verdict {
            HeaderVerdict::Accepted(_) if cached => "cached",
            HeaderVerdict::Accepted(_) => "accepted",
            HeaderVerdict::Refused => "refused",
            HeaderVerdict::Unavailable => "unavailable",
        };
        self.shared
            .metrics
            .header_auth
            .with_label_values(&[scheme, result])
            .inc();
        match verdict {
            HeaderVerdict::Accepted(identity)
                if !state.revocations.ends(
                    identity.user_id,
                    &identity.sid,
                    identity.auth_time_ms,
                ) =>
            {
                Ok(Check::Session {
                    session: identity,
                    reseal: false,
                })
            }
            HeaderVerdict::Accepted(_) | HeaderVerdict::Refused => {
                let mut response = pages::page(
                    StatusCode::UNAUTHORIZED,
                    "Not authorized",
                    "The credentials in the Authorization header were not accepted.",
                );
                let challenge = if scheme == "basic" {
                    "Basic realm=\"Redoubt\", charset=\"UTF-8\""
                } else {
                    "Bearer"
                };
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
                Err(response)
            }
            HeaderVerdict::Unavailable => Err(pages::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot check credentials",
                "The identity service cannot be reached right now; try again shortly.",
            )),
        }
    }

    /// Reports a reverse-proxy misconfiguration to the core's event log (through the event queue), at
    /// most once a minute per flavour, host and reason; returns whether it was reported, so the
    /// caller logs it too.
    fn misconfigured(&self, flavour: Flavour, host: &str, reason: &str, peer: Peer) -> bool {
        let key = format!("{}|{host}|{reason}", flavour.as_str());
        if !self.shared.misconfig.due(&key, Instant::now()) {
            return false;
        }
        let mut detail = serde_json::Map::new();
        detail.insert("reverse_proxy".into(), flavour.as_str().into());
        detail.insert(
            "reason".into(),
            reason.chars().take(300).collect::<String>().into(),
        );
        if !host.is_empty() {
            detail.insert(
                "host".into(),
                host.chars().take(255).collect::<String>().into(),
            );
        }
        self.shared.events.enqueue_nowait(OutpostEvent {
            provider_id: 0,
            action: PROXY_MISCONFIGURED.to_owned(),
            username: None,
            source_address: Some(peer.addr.ip().to_string()),
            detail,
            id: None,
            occurred_at: None,
        });
        true
    }

    /// A fresh session cookie for a session opened with an older key.
    fn reseal(
        &self,
        state: &ProxyState,
        provider: &ProviderView,
        session: &Session,
    ) -> Option<HeaderValue> {
        let nonce = random::<24>()?;
        let value = session::seal_session(&state.keys, &provider.session_aad, session, nonce)?;
        set_cookie(
            &provider.cookie_name,
            &value,
            cookie_scope(provider),
            (session.exp - self.shared.now_ms().div_euclid(1000)).max(0),
        )
    }

    async fn forward_auth<B>(
        &self,
        state: &ProxyState,
        request: &Request<B>,
        flavour: Flavour,
        peer: Peer,
    ) -> (Mode, Outcome, Response<ProxyBody>) {
        let mode = match flavour {
            Flavour::Nginx => Mode::Nginx,
            Flavour::Traefik => Mode::Traefik,
            Flavour::Caddy => Mode::Caddy,
            Flavour::Envoy => Mode::Envoy,
        };
        let after = if flavour == Flavour::Envoy {
            let prefix_len = OUTPOST_PATH_PREFIX.len() + "auth/envoy".len();
            let path = request.uri().path().get(prefix_len..).unwrap_or_default();
            match request.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path.to_owned(),
            }
        } else {
            String::new()
        };
        let original = match forward::reconstruct(
            flavour,
            request.headers(),
            request_authority(request),
            &after,
        ) {
            Ok(original) => original,
            Err(error) => {
                let reason = error.to_string();
                if self.misconfigured(flavour, "", &reason, peer) {
                    tracing::warn!(
                        flavour = flavour.as_str(),
                        client = %peer.addr,
                        %error,
                        "a forward-auth request does not say which URL the user opened; check the reverse proxy's configuration (reported once a minute)"
                    );
                }
                return (
                    mode,
                    Outcome::Refused,
                    pages::bad_forward(&error.to_string()),
                );
            }
        };
        let Some(provider) = state.provider_for_host(&original.host) else {
            if self.misconfigured(
                flavour,
                &original.host,
                "no proxy provider of this outpost serves the host",
                peer,
            ) {
                tracing::warn!(
                    flavour = flavour.as_str(),
                    host = %original.host,
                    "a forward-auth request for a host no proxy provider of this outpost serves (reported once a minute)"
                );
            }
            return (mode, Outcome::NotFound, pages::unknown_host(&original.host));
        };
        let check = match self
            .authenticate(state, provider, request.headers(), peer.addr)
            .await
        {
            Ok(check) => check,
            Err(response) => return (mode, Outcome::Unauthenticated, response),
        };
        let verdict = decide::decide(
            provider,
            check,
            Caller::Forward(flavour),
            &original.path_and_query,
        );
        match verdict {
            Verdict::Allow { session, reseal } => {
                let mut response = status(StatusCode::OK);
                let outcome = match &session {
                    Some(session) => {
                        add_identity(
                            response.headers_mut(),
                            session,
                            provider.settings.authentik_headers,
                        );
                        if reseal && let Some(cookie) = self.reseal(state, provider, session) {
                            response.headers_mut().insert(header::SET_COOKIE, cookie);
                        }
                        Outcome::Allowed
                    }
                    None => Outcome::Skipped,
                };
                (mode, outcome, response)
            }
            Verdict::Unauthorized => (
                mode,
                Outcome::Unauthenticated,
                status(StatusCode::UNAUTHORIZED),
            ),
            Verdict::Login => {
                // In forward_domain mode the endpoints answer on every host of the domain.
                let start_origin = if provider.settings.mode == ProxyMode::ForwardDomain {
                    original.origin()
                } else {
                    provider.origin.clone()
                };
                let location = decide::start_url(&start_origin, &original.to_url());
                (mode, Outcome::Unauthenticated, redirect(&location))
            }
        }
    }

    async fn proxy<B>(
        &self,
        state: &ProxyState,
        request: Request<B>,
        peer: Peer,
    ) -> (Mode, Outcome, Response<ProxyBody>)
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let authority = request_authority(&request).unwrap_or_default();
        let host = host_of_authority(authority).unwrap_or_else(|| authority.to_owned());
        let provider = match state.provider_for_host(&host) {
            Some(p) if p.settings.mode == ProxyMode::Proxy => p.clone(),
            _ => return (Mode::Proxy, Outcome::NotFound, pages::unknown_host(&host)),
        };
        let check = match self
            .authenticate(state, &provider, request.headers(), peer.addr)
            .await
        {
            Ok(check) => check,
            Err(response) => return (Mode::Proxy, Outcome::Unauthenticated, response),
        };
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let verdict = decide::decide(&provider, check, Caller::Proxy, path_and_query);
        match verdict {
            Verdict::Allow {
                session: Some(session),
                reseal,
            } if provider.app == ProviderApp::Rac => {
                let Some(app) = self.shared.app.get() else {
                    return (
                        Mode::Proxy,
                        Outcome::Unavailable,
                        pages::page(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "Not ready",
                            "This outpost is still starting; try again in a moment.",
                        ),
                    );
                };
                let (parts, body) = request.into_parts();
                let incoming = Request::from_parts(parts, box_body(body));
                let mut response = app
                    .handle(incoming, provider.clone(), session.clone(), peer)
                    .await;
                if reseal && let Some(cookie) = self.reseal(state, &provider, &session) {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                }
                (Mode::Proxy, Outcome::Allowed, response)
            }
            Verdict::Allow { session, reseal } => {
                let (parts, body) = request.into_parts();
                let outgoing = Request::from_parts(parts, box_body(body));
                let (mut response, outcome, upstream_seconds) = self
                    .upstreams
                    .forward(
                        &provider,
                        outgoing,
                        session.as_deref(),
                        peer.addr,
                        peer.https,
                    )
                    .await;
                if let Some(seconds) = upstream_seconds {
                    self.shared.metrics.upstream_duration.observe(seconds);
                }
                if reseal
                    && let Some(session) = &session
                    && let Some(cookie) = self.reseal(state, &provider, session)
                {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                }
                let outcome = match (outcome, &session) {
                    (Outcome::Allowed, None) => Outcome::Skipped,
                    (o, _) => o,
                };
                (Mode::Proxy, outcome, response)
            }
            Verdict::Unauthorized => (
                Mode::Proxy,
                Outcome::Unauthenticated,
                status(StatusCode::UNAUTHORIZED),
            ),
            Verdict::Login => {
                let original = format!("{}{path_and_query}", provider.origin);
                let location = decide::start_url(&provider.origin, &original);
                (Mode::Proxy, Outcome::Unauthenticated, redirect(&location))
            }
        }
    }

    /// The provider an endpoint request is for, by `Host`, then `X-Forwarded-Host`, then the
    /// host of `X-Original-URL`; with the authority that matched.
    fn endpoint_provider<'s, B>(
        state: &'s ProxyState,
        request: &Request<B>,
    ) -> Result<(&'s Arc<ProviderView>, String), String> {
        let headers = request.headers();
        let forwarded = headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or_default().trim().to_owned());
        let original = headers
            .get("x-original-url")
            .and_then(|v| v.to_str().ok())
            .and_then(|u| u.split_once("://"))
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default().to_owned());
        let direct = request_authority(request).map(str::to_owned);
        let mut first = None;
        for authority in [direct, forwarded, original].into_iter().flatten() {
            if let Some(host) = host_of_authority(&authority) {
                if let Some(provider) = state.provider_for_host(&host) {
                    return Ok((provider, authority));
                }
                first.get_or_insert(host);
            }
        }
        Err(first.unwrap_or_default())
    }

    fn start<B>(
        &self,
        state: &ProxyState,
        request: &Request<B>,
    ) -> (Mode, Outcome, Response<ProxyBody>) {
        let mode = Mode::Start;
        let (provider, authority) = match Self::endpoint_provider(state, request) {
            Ok(found) => found,
            Err(host) => return (mode, Outcome::NotFound, pages::unknown_host(&host)),
        };
        if state.keys.is_empty() {
            return (mode, Outcome::Unavailable, no_keys());
        }
        let rd = match query_param(request.uri().query(), "rd") {
            None => format!("{}/", provider.origin),
            Some(rd) => match login::check_rd(provider, &rd) {
                Ok(rd) => rd,
                Err(login::RdRefused) => {
                    tracing::warn!(
                        provider = provider.id,
                        rd = %rd.chars().take(200).collect::<String>(),
                        "refused a login return URL outside the provider's hosts"
                    );
                    return (
                        mode,
                        Outcome::Refused,
                        pages::page_with_link(
                            StatusCode::BAD_REQUEST,
                            "Return address refused",
                            "After signing in, this outpost only returns to the application's own address; the requested return address is elsewhere.",
                            Some((&format!("{}/", provider.origin), "Open the application")),
                        ),
                    );
                }
            },
        };
        let (Some(bytes), Some(nonce)) = (random::<96>(), random::<24>()) else {
            return (mode, Outcome::Unavailable, no_randomness());
        };
        let redirect_uri = login::redirect_uri(provider, Some(&authority));
        let login_state = login::new_state(
            provider,
            rd,
            redirect_uri,
            login::LoginRandom::from_bytes(&bytes),
            self.shared.now_ms(),
        );
        let Some(sealed) = session::seal_state(&state.keys, &login_state, nonce) else {
            return (mode, Outcome::Unavailable, no_keys());
        };
        let mut response = redirect(&login::authorize_url(
            &state.core_public_url,
            provider,
            &login_state,
            &sealed,
        ));
        if let Some(cookie) = set_cookie(
            &login::state_cookie_name(provider.id, &login_state.binding),
            &login_state.binding,
            CookieScope {
                domain: None,
                path: redoubt_outpost_proto::oidc::PROXY_CALLBACK_PATH,
                secure: provider.scheme == Scheme::Https,
            },
            login::STATE_LIFETIME_MS / 1000,
        ) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        (mode, Outcome::Redirected, response)
    }

    async fn callback<B>(
        &self,
        state: &ProxyState,
        request: &Request<B>,
    ) -> (Mode, Outcome, Response<ProxyBody>) {
        let mode = Mode::Callback;
        let metrics = &self.shared.metrics;
        let (provider, _) = match Self::endpoint_provider(state, request) {
            Ok(found) => found,
            Err(host) => return (mode, Outcome::NotFound, pages::unknown_host(&host)),
        };
        let query = request.uri().query();
        let now = self.shared.now_ms();
        let home = format!("{}/", provider.origin);
        let bad_state = |why: &str| {
            tracing::info!(provider = provider.id, why, "a login callback was refused");
            metrics.login(LoginResult::BadState);
            (
                mode,
                Outcome::Refused,
                pages::page_with_link(
                    StatusCode::BAD_REQUEST,
                    "This sign-in cannot be completed",
                    "The sign-in link has expired, was already used, or was opened in another browser. Start again from the application.",
                    Some((&home, "Open the application")),
                ),
            )
        };
        let Some(sealed) = query_param(query, "state") else {
            return bad_state("no state");
        };
        let login_state = match session::open_state(&state.keys, provider.id, &sealed, now) {
            Ok(s) => s,
            Err(error) => return bad_state(error.label()),
        };
        let cookie_name = login::state_cookie_name(provider.id, &login_state.binding);
        let bound = find_cookie(request.headers(), &cookie_name).is_some_and(|value| {
            bool::from(value.as_bytes().ct_eq(login_state.binding.as_bytes()))
        });
        if !bound {
            return bad_state("the state cookie is missing or does not match");
        }
        let retry = || Some((login_state.rd.as_str(), "Try again"));
        if let Some(error) = query_param(query, "error") {
            tracing::info!(provider = provider.id, error = %error.chars().take(100).collect::<String>(), "the core refused a login");
            metrics.login(LoginResult::Refused);
            return (
                mode,
                Outcome::Refused,
                pages::page_with_link(
                    StatusCode::FORBIDDEN,
                    "Sign-in refused",
                    &format!(
                        "The identity service did not sign you in ({}).",
                        error.chars().take(100).collect::<String>()
                    ),
                    retry(),
                ),
            );
        }
        let Some(code) = query_param(query, "code") else {
            return bad_state("no code");
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", &code)
            .append_pair("redirect_uri", &login_state.redirect_uri)
            .append_pair("code_verifier", &login_state.verifier)
            .append_pair("client_id", &provider.client_id)
            .finish();
        let tokens: Result<TokenResponse, CoreCallError> = self
            .shared
            .core
            .post_oauth_form(TOKEN_PATH, &provider.client_id, form)
            .await;
        let tokens = match tokens {
            Ok(tokens) => tokens,
            Err(error) => {
                let unreachable = error.is_unreachable();
                tracing::warn!(provider = provider.id, %error, "exchanging a login code at the core failed");
                metrics.login(if unreachable {
                    LoginResult::CoreUnavailable
                } else {
                    LoginResult::Refused
                });
                let (code, message) = if unreachable {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The identity service cannot be reached right now.",
                    )
                } else {
                    (
                        StatusCode::BAD_GATEWAY,
                        "The identity service did not complete the sign-in.",
                    )
                };
                return (
                    mode,
                    Outcome::Unavailable,
                    pages::page_with_link(code, "Sign-in failed", message, retry()),
                );
            }
        };
        let checked = tokens
            .id_token
            .as_deref()
            .ok_or(login::IdTokenError::Missing)
            .and_then(|token| {
                let claims = login::check_id_token(
                    token,
                    &state.issuers,
                    &provider.client_id,
                    &login_state.nonce,
                    now,
                )?;
                login::session_from_claims(
                    claims,
                    token,
                    provider.settings.session_validity_seconds,
                    now,
                )
            });
        let session = match checked {
            Ok(mut session) => {
                if provider.settings.basic_auth.is_some() {
                    session.upstream_authorization = tokens
                        .upstream_basic_auth
                        .as_ref()
                        .map(login::upstream_authorization);
                }
                session
            }
            Err(error) => {
                tracing::warn!(provider = provider.id, %error, "the core's ID token was not accepted");
                metrics.login(LoginResult::BadToken);
                return (
                    mode,
                    Outcome::Refused,
                    pages::page_with_link(
                        StatusCode::BAD_GATEWAY,
                        "Sign-in failed",
                        "The identity service's answer could not be used.",
                        retry(),
                    ),
                );
            }
        };
        let Some(nonce) = random::<24>() else {
            return (mode, Outcome::Unavailable, no_randomness());
        };
        let Some(value) =
            session::seal_session(&state.keys, &provider.session_aad, &session, nonce)
        else {
            return (mode, Outcome::Unavailable, no_keys());
        };
        let mut response = redirect(&login_state.rd);
        let headers = response.headers_mut();
        if let Some(cookie) = set_cookie(
            &provider.cookie_name,
            &value,
            cookie_scope(provider),
            session.exp - session.iat,
        ) {
            headers.append(header::SET_COOKIE, cookie);
        }
        if let Some(cookie) = set_cookie(
            &cookie_name,
            "",
            CookieScope {
                domain: None,
                path: redoubt_outpost_proto::oidc::PROXY_CALLBACK_PATH,
                secure: provider.scheme == Scheme::Https,
            },
            0,
        ) {
            headers.append(header::SET_COOKIE, cookie);
        }
        tracing::info!(provider = provider.id, user = session.user_id, "logged in");
        metrics.login(LoginResult::Success);
        (mode, Outcome::Redirected, response)
    }

    fn sign_out<B>(
        &self,
        state: &ProxyState,
        request: &Request<B>,
    ) -> (Mode, Outcome, Response<ProxyBody>) {
        let mode = Mode::SignOut;
        let (provider, _) = match Self::endpoint_provider(state, request) {
            Ok(found) => found,
            Err(host) => return (mode, Outcome::NotFound, pages::unknown_host(&host)),
        };
        let session = match decide::check_session(
            state,
            provider,
            find_cookie(request.headers(), &provider.cookie_name),
            self.shared.now_ms(),
        ) {
            Check::Session { session, .. } => Some(session),
            Check::Anonymous(_) => None,
        };
        // Nothing changes here (a GET a cross-site page can trigger): the core asks the user to
        // confirm, then revokes the login session, which ends this cookie's session through
        // the `SessionsRevoked` change every proxy outpost receives.
        let response = redirect(&login::end_session_url(
            &state.core_public_url,
            provider,
            session.as_ref().and_then(|s| s.jwt.as_deref()),
            &format!("{}/", provider.origin),
        ));
        (mode, Outcome::Redirected, response)
    }
}

fn random<const N: usize>() -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes)
}

fn no_keys() -> Response<ProxyBody> {
    pages::page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is not available yet",
        "This outpost has not received its session keys from the identity service yet.",
    )
}

fn no_randomness() -> Response<ProxyBody> {
    pages::page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is not available",
        "The system's random number generator failed.",
    )
}
