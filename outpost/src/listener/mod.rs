//! The bounds every HTTP listener of the core and the outposts shares (API, HTTPS, metrics and
//! health, the proxy, RAC behind it), so a few slow or idle clients cannot starve everyone else:
//!
//! - at most `max_connections` open at once (further clients wait in the kernel backlog);
//! - per source ([`gate::source_key`]: an IPv4 address or an IPv6 /64) at most
//!   `unproven_per_source` connections that have not yet sent a complete request head; beyond
//!   it new connections from that source are closed at once. A connection stops counting the
//!   moment its first request head is complete, so crowds behind one address (outposts behind
//!   a NAT, users behind a reverse proxy) are never limited by it;
//! - a connection must finish its TLS handshake within `handshake_timeout` and its first
//!   request head within `handshake_timeout + header_timeout` of being accepted, whole (a byte
//!   now and then does not extend it), HTTP/1 and HTTP/2 alike;
//! - each later HTTP/1 request head (keep-alive) within `header_timeout` of the connection
//!   becoming idle (hyper's header-read timeout on the tokio timer);
//! - a connection without reads or writes for `idle_timeout` is closed (WebSockets included).
//!
//! [`HttpGuard`] holds the shared state of one listener group; [`HttpGuard::run`] is a whole
//! accept loop and [`HttpGuard::accept`] + [`HttpGuard::serve`] the parts for callers with their
//! own loop (the proxy's per-thread workers).

pub mod gate;
pub mod idle;

use gate::{SourceGate, Unproven};
use hyper::body::{Body, Incoming};
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use idle::IdleStream;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// The bounds of a listener (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub unproven_per_source: usize,
    pub header_timeout: Duration,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ListenerLimits {
    /// The defaults the settings document: 4096 connections, 256 unproven per source, 30 s for
    /// a request head, 10 s for a TLS handshake, 10 minutes idle.
    pub const DEFAULT: Self = Self {
        max_connections: 4096,
        unproven_per_source: 256,
        header_timeout: Duration::from_secs(30),
        handshake_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(600),
    };

    /// hyper's builder with these bounds: HTTP/1 header-read timeout on the tokio timer (each
    /// request head, keep-alive included), HTTP/2 on the same timer with keep-alive pings.
    pub fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout.max(Duration::from_millis(1)))
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(60)));
        builder
    }

    /// How long after accepting a connection its first request head must be complete.
    pub fn first_request_deadline(&self) -> Duration {
        self.handshake_timeout + self.header_timeout
    }
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A connection accepted by [`HttpGuard::accept`]: it holds a slot of the connection cap and,
/// until its first request, of its source's unproven cap.
#[derive(Debug)]
pub struct Admitted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    unproven: Unproven,
}

/// The shared state of the listeners of one server: connection cap, per-source gate, builder.
/// Clones share it.
#[derive(Clone)]
pub struct HttpGuard {
    limits: ListenerLimits,
    gate: SourceGate,
    permits: Arc<Semaphore>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    refused: Arc<AtomicU64>,
}

impl std::fmt::Debug for HttpGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGuard")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HttpGuard {
    /// A guard with `limits` and [`ListenerLimits::builder`].
    pub fn new(limits: ListenerLimits) -> Self {
        Self::with_builder(limits, limits.builder())
    }

    /// A guard serving with `builder` (which should start from [`ListenerLimits::builder`]).
    pub fn with_builder(limits: ListenerLimits, builder: auto::Builder<TokioExecutor>) -> Self {
        Self {
            limits,
            gate: SourceGate::new(limits.unproven_per_source),
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            builder: Arc::new(builder),
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The bounds.
    pub fn limits(&self) -> ListenerLimits {
        self.limits
    }

    /// Connections closed at once because their source held its unproven cap.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Waits for a free slot, then for a connection from a source under its unproven cap
    /// (connections from sources at the cap are closed at once).
    pub async fn accept(&self, listener: &TcpListener) -> Admitted {
        let permit = loop {
            match self.permits.clone().acquire_owned().await {
                Ok(permit) => break permit,
                // The semaphore is never closed; wait forever rather than spin.
                Err(_) => std::future::pending::<()>().await,
            }
        };
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Some(unproven) = self.gate.admit(peer.ip()) else {
                        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                        if refused.is_power_of_two() {
                            tracing::warn!(
                                %peer,
                                refused,
                                cap = self.limits.unproven_per_source,
                                "closing connections from a source holding too many without a request (limits.unproven_connections_per_source)"
                            );
                        }
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    return Admitted {
                        stream,
                        peer,
                        permit,
                        unproven,
                    };
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Serves one admitted connection (TLS first with `tls`) with `service` until it ends; on
    /// `stop` it finishes the requests in progress and closes.
    pub async fn serve<S, B>(
        &self,
        admitted: Admitted,
        tls: Option<TlsAcceptor>,
        service: S,
        stop: watch::Receiver<bool>,
    ) where
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        TokioExecutor: Http2ServerConnExec<S::Future, B>,
    {
        let Admitted {
            stream,
            peer,
            permit,
            unproven,
        } = admitted;
        let deadline = tokio::time::Instant::now() + self.limits.first_request_deadline();
        let stream = IdleStream::new(stream, self.limits.idle_timeout);
        let service = Proving {
            inner: service,
            unproven: unproven.clone(),
        };
        match tls {
            None => {
                self.drive(stream, service, peer, &unproven, deadline, stop)
                    .await
            }
            Some(acceptor) => {
                match tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => {
                        self.drive(tls, service, peer, &unproven, deadline, stop)
                            .await
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "a TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "a TLS handshake timed out"),
                }
            }
        }
        drop(permit);
    }

    async fn drive<I, S, B>(
        &self,
        io: I,
        service: Proving<S>,
        peer: SocketAddr,
        unproven: &Unproven,
        deadline: tokio::time::Instant,
        mut stop: watch::Receiver<bool>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        TokioExecutor: Http2ServerConnExec<S::Future, B>,
    {
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        let first_request = tokio::time::sleep_until(deadline);
        tokio::pin!(first_request);
        let mut waiting_for_first = true;
        let mut stopping = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "a connection ended with an error");
                    }
                    return;
                }
                () = &mut first_request, if waiting_for_first => {
                    if !unproven.is_proven() {
                        tracing::debug!(%peer, "no complete request in time: closing");
                        return;
                    }
                    waiting_for_first = false;
                }
                () = crate::module::stopped(&mut stop), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }

    /// Accepts from `listener` and serves each connection with the service `make` returns for
    /// its peer, until `stop`; then waits for the open connections to finish.
    pub async fn run<F, S, B>(
        &self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        make: F,
        stop: watch::Receiver<bool>,
    ) where
        F: Fn(SocketAddr) -> S,
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        TokioExecutor: Http2ServerConnExec<S::Future, B>,
    {
        let mut tasks = tokio::task::JoinSet::new();
        let mut stopping = stop.clone();
        loop {
            let admitted = tokio::select! {
                admitted = self.accept(&listener) => admitted,
                () = crate::module::stopped(&mut stopping) => break,
            };
            let service = make(admitted.peer);
            let guard = self.clone();
            let tls = tls.clone();
            let stop = stop.clone();
            tasks.spawn(async move { guard.serve(admitted, tls, service, stop).await });
            while tasks.try_join_next().is_some() {}
        }
        drop(listener);
        while tasks.join_next().await.is_some() {}
    }
}

/// A service that proves its connection when the first request head is complete.
struct Proving<S> {
    inner: S,
    unproven: Unproven,
}

impl<S, R> hyper::service::Service<R> for Proving<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: R) -> Self::Future {
        self.unproven.prove();
        self.inner.call(request)
    }
}
