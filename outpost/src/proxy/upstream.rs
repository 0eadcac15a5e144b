//! Proxy mode's upstream side: pooled HTTP/1.1 clients (TLS verified with the system roots plus
//! `REDOUBT_CA_FILE`, or not verified when a provider says `internal_host_verify_tls: false`),
//! bodies streamed both ways, hop-by-hop headers and the outpost's own cookies dropped, identity
//! and forwarded headers set (`trusted`), WebSocket upgrades joined end to end, and upstream failures turned into 502/504 pages.

use super::body::ProxyBody;
use super::headers::{
    add_identity, remove_hop_by_hop, strip_cookies, strip_identity, wants_upgrade,
};
use super::metrics::Outcome;
use super::pages;
use super::session::Session;
use super::state::ProviderView;
use super::trusted::{TrustedProxies, set_forwarded};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A boxed error from a request body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What is sent upstream.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;
type HttpClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// Longest wait for a TCP connection to the upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The two upstream clients (verifying and not).
pub struct Upstreams {
    verified: HttpClient,
    unverified: HttpClient,
    trusted: Arc<TrustedProxies>,
}

impl Upstreams {
    /// Builds both clients; `verified` trusts `roots` (system roots plus the CA file).
    /// `trusted` are the reverse proxies whose forwarded headers are believed.
    pub fn new(
        verified: Arc<rustls::ClientConfig>,
        unverified: Arc<rustls::ClientConfig>,
        trusted: Arc<TrustedProxies>,
    ) -> Self {
        Self {
            verified: client(verified),
            unverified: client(unverified),
            trusted,
        }
    }

    /// Sends `request` to `provider`'s upstream and streams the answer back.
    pub async fn forward(
        &self,
        provider: &ProviderView,
        mut request: Request<UpstreamBody>,
        session: Option<&Session>,
        client: SocketAddr,
        https: bool,
    ) -> (Response<ProxyBody>, Outcome, Option<f64>) {
        let (Some(target), Some(upstream)) = (
            provider.upstream_target.as_ref(),
            provider.upstream.as_deref(),
        ) else {
            return (
                pages::page(
                    StatusCode::BAD_GATEWAY,
                    "No upstream",
                    "This proxy provider has no usable internal host.",
                ),
                Outcome::UpstreamError,
                None,
            );
        };
        let Some(uri) = target.uri(request.uri().path_and_query()) else {
            return (
                pages::page(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The request path cannot be forwarded.",
                ),
                Outcome::Refused,
                None,
            );
        };
        let original_host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                request
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            });
        let upgrade = request.version() == Version::HTTP_11 && wants_upgrade(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        parts.extensions = http::Extensions::new();
        parts.version = Version::HTTP_11;
        let headers = &mut parts.headers;
        remove_hop_by_hop(headers, upgrade);
        strip_identity(headers);
        if let Some(session) = session {
            add_identity(headers, session, provider.settings.authentik_headers);
        }
        set_forwarded(
            headers,
            client.ip(),
            https,
            original_host.as_deref(),
            &self.trusted,
        );
        // The session and login-state cookies are the outpost's, never the application's.
        let state_prefix = super::login::state_cookie_name(provider.id, "");
        strip_cookies(headers, |name| {
            name == provider.cookie_name || name.starts_with(&state_prefix)
        });
        headers.insert(header::HOST, target.host.clone());
        parts.uri = uri;
        let outgoing = Request::from_parts(parts, body);
        let http = if provider.settings.internal_host_verify_tls {
            &self.verified
        } else {
            &self.unverified
        };
        let timeout = Duration::from_secs(provider.settings.upstream_timeout_seconds.max(1));
        let started = Instant::now();
        let answer = tokio::time::timeout(timeout, http.request(outgoing)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let mut response = match answer {
            Err(_) => {
                tracing::warn!(
                    provider = provider.id,
                    upstream,
                    "the upstream did not answer in time"
                );
                return (
                    pages::page(
                        StatusCode::GATEWAY_TIMEOUT,
                        "The application did not answer",
                        &format!(
                            "The application behind this address did not answer within {} seconds.",
                            timeout.as_secs()
                        ),
                    ),
                    Outcome::UpstreamTimeout,
                    Some(elapsed),
                );
            }
            Ok(Err(error)) => {
                tracing::warn!(provider = provider.id, upstream, error = %error_chain(&error), "the upstream failed");
                return (
                    pages::page(
                        StatusCode::BAD_GATEWAY,
                        "The application cannot be reached",
                        "The application behind this address cannot be reached right now.",
                    ),
                    Outcome::UpstreamError,
                    Some(elapsed),
                );
            }
            Ok(Ok(response)) => response,
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return (
                    pages::page(
                        StatusCode::BAD_GATEWAY,
                        "Unexpected protocol switch",
                        "The application switched protocols without being asked to.",
                    ),
                    Outcome::UpstreamError,
                    Some(elapsed),
                );
            };
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let provider_id = provider.id;
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client_io, upstream_io)) => {
                        let mut client_io = TokioIo::new(client_io);
                        let mut upstream_io = TokioIo::new(upstream_io);
                        if let Err(error) =
                            tokio::io::copy_bidirectional(&mut client_io, &mut upstream_io).await
                        {
                            tracing::debug!(provider = provider_id, %error, "an upgraded connection ended");
                        }
                    }
                    Err(error) => {
                        tracing::debug!(provider = provider_id, %error, "a protocol switch failed");
                    }
                }
            });
            let (mut parts, _) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers, true);
            return (
                Response::from_parts(parts, ProxyBody::empty()),
                Outcome::Allowed,
                Some(elapsed),
            );
        }
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers, false);
        (
            Response::from_parts(parts, ProxyBody::Upstream(body)),
            Outcome::Allowed,
            Some(elapsed),
        )
    }
}

fn client(tls: Arc<rustls::ClientConfig>) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    // hyper-rustls sets ALPN (http/1.1 only) itself and refuses a configuration that has one.
    let mut tls = (*tls).clone();
    tls.alpn_protocols.clear();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}

/// Boxes any request body for the upstream client.
pub fn box_body<B>(body: B) -> UpstreamBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    UnsyncBoxBody::new(body.map_err(Into::into))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
