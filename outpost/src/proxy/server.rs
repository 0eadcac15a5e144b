//! The proxy listeners: plain HTTP on `listen.http` and, with a certificate (`tls.cert_file`,
//! `tls.key_file`), HTTPS on `listen.https`, served by one single-threaded runtime per CPU; HTTP/1.1 and HTTP/2 (h2c, or ALPN over TLS) through
//! hyper-util's auto builder, with upgrades (WebSocket). Bounded: at most [`MAX_CONNECTIONS`]
//! open, request heads bounded by [`MAX_HEADER_BYTES`] (431 beyond), a header-read timeout, idle
//! connections closed, TLS handshakes under a timeout. Bodies are never buffered here.

use super::service::{Peer, ProxyService};
use crate::module::ModuleContext;
use anyhow::Context;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

/// Most connections open at once (further clients wait in the kernel backlog).
pub const MAX_CONNECTIONS: usize = 8192;
/// Largest request head: HTTP/2 header lists beyond it get 431. HTTP/1 heads are read into a
/// buffer of at most this size and parsed after each read, so heads beyond twice this size always
/// get 431 and those between once and twice may.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Longest wait for a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection with no traffic for this long is closed (WebSockets included).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most listener threads.
const MAX_WORKERS: usize = 64;
/// Most concurrent HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 256;

/// Binds `listen.http` (unless empty) and, with a certificate, `listen.https`, and serves them
/// until the outpost stops, on one thread per CPU: each runs its own single-threaded runtime
/// that accepts from both listeners and keeps its own upstream connections, so a request never
/// hops between threads (the way nginx workers run).
pub async fn listen(
    context: &ModuleContext,
    service: ProxyService,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> anyhow::Result<()> {
    let settings = &context.settings.listen;
    let mut listeners: Vec<(std::net::TcpListener, Option<TlsAcceptor>)> = Vec::new();
    if settings.http.trim().is_empty() {
        tracing::info!("proxy HTTP listener off (listen.http is empty)");
    } else {
        let listener = TcpListener::bind(settings.http.trim())
            .await
            .with_context(|| format!("cannot listen on {} (listen.http)", settings.http))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "proxy HTTP listening");
        listeners.push((listener.into_std()?, None));
        context.listening_on("http", addr);
    }
    match (tls, settings.https.trim()) {
        (_, "") => tracing::info!("proxy HTTPS listener off (listen.https is empty)"),
        (Some(tls), https) => {
            let listener = TcpListener::bind(https)
                .await
                .with_context(|| format!("cannot listen on {https} (listen.https)"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "proxy HTTPS listening");
            listeners.push((listener.into_std()?, Some(TlsAcceptor::from(tls))));
            context.listening_on("https", addr);
        }
        (None, _) => tracing::info!(
            "proxy HTTPS listener off: no certificate configured (tls.cert_file, tls.key_file)"
        ),
    }
    if listeners.is_empty() {
        return Ok(());
    }
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let builder = Arc::new(builder());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    for worker in 0..workers {
        let mut mine = Vec::with_capacity(listeners.len());
        for (listener, tls) in &listeners {
            mine.push((listener.try_clone()?, tls.clone()));
        }
        let service = service.with_own_pool();
        let builder = builder.clone();
        let limit = limit.clone();
        let stop = context.stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot build a proxy worker runtime")?;
        std::thread::Builder::new()
            .name(format!("redoubt-proxy-{worker}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let mut loops = tokio::task::JoinSet::new();
                    for (listener, tls) in mine {
                        match TcpListener::from_std(listener) {
                            Ok(listener) => {
                                loops.spawn(accept_loop(
                                    listener,
                                    service.clone(),
                                    builder.clone(),
                                    limit.clone(),
                                    tls,
                                    stop.clone(),
                                ));
                            }
                            Err(error) => {
                                tracing::error!(%error, "a proxy worker cannot use its listener");
                            }
                        }
                    }
                    while loops.join_next().await.is_some() {}
                });
            })
            .context("cannot start a proxy worker thread")?;
    }
    Ok(())
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(60)));
    builder
}

async fn accept_loop(
    listener: TcpListener,
    service: ProxyService,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limit: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = crate::module::stopped(&mut stop) => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a proxy connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = crate::module::stopped(&mut stop) => return,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = IdleStream::new(stream, IDLE_TIMEOUT);
            let serve = async {
                match tls {
                    None => serve(&builder, stream, service, peer, false).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls_stream)) => {
                                serve(&builder, tls_stream, service, peer, true).await;
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "a TLS handshake failed");
                            }
                            Err(_) => tracing::debug!(%peer, "a TLS handshake timed out"),
                        }
                    }
                }
            };
            tokio::select! {
                () = serve => {}
                () = crate::module::stopped(&mut stop) => {}
            }
        });
    }
}

async fn serve<S>(
    builder: &auto::Builder<TokioExecutor>,
    stream: S,
    service: ProxyService,
    addr: SocketAddr,
    https: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = Peer { addr, https };
    let handler = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(service.handle_from(request, peer).await) }
    });
    if let Err(error) = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), handler)
        .await
    {
        tracing::debug!(%addr, %error, "a proxy connection ended with an error");
    }
}

/// A stream closed after `idle` without reads or writes. The timer is re-armed lazily (only
/// when it fires), so busy connections pay one clock read per operation, not a timer reset.
struct IdleStream<S> {
    inner: S,
    idle: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> IdleStream<S> {
    fn new(inner: S, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    fn expired(&mut self, cx: &mut TaskContext<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = self.last + self.idle;
            if deadline <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                self.last = Instant::now();
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.last = Instant::now();
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.last = Instant::now();
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
