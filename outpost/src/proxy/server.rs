//! The proxy listeners: plain HTTP on `listen.http` and, with a certificate (`tls.cert_file`,
//! `tls.key_file`), HTTPS on `listen.https`, served by one single-threaded runtime per CPU;
//! HTTP/1.1 and HTTP/2 (h2c, or ALPN over TLS) through hyper-util's auto builder, with upgrades
//! (WebSocket). Bounded by the shared [`crate::listener::HttpGuard`] (`limits.*`: connection cap,
//! unproven connections per source, whole-head and TLS handshake timeouts, idle connections
//! closed) and request heads of at most [`MAX_HEADER_BYTES`] (431 beyond). Bodies are never
//! buffered here.

use super::service::{Peer, ProxyService};
use crate::listener::HttpGuard;
use crate::module::ModuleContext;
use anyhow::Context;
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// Largest request head: HTTP/2 header lists beyond it get 431. HTTP/1 heads are read into a
/// buffer of at most this size and parsed after each read, so heads beyond twice this size always
/// get 431 and those between once and twice may.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// A connection with no traffic for this long is closed (WebSockets included).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
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
    let limits = context
        .settings
        .limits
        .listener(context.settings.limits.max_connections, IDLE_TIMEOUT);
    let guard = HttpGuard::with_builder(limits, builder(limits));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    for worker in 0..workers {
        let mut mine = Vec::with_capacity(listeners.len());
        for (listener, tls) in &listeners {
            mine.push((listener.try_clone()?, tls.clone()));
        }
        let service = service.with_own_pool();
        let guard = guard.clone();
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
                                    guard.clone(),
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

fn builder(limits: crate::listener::ListenerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = limits.builder();
    builder.http1().max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_STREAMS);
    builder
}

async fn accept_loop(
    listener: TcpListener,
    service: ProxyService,
    guard: HttpGuard,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let https = tls.is_some();
    loop {
        let admitted = tokio::select! {
            admitted = guard.accept(&listener) => admitted,
            () = crate::module::stopped(&mut stop) => return,
        };
        let peer = Peer {
            addr: admitted.peer,
            https,
        };
        let service = service.clone();
        let handler = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let service = service.clone();
            async move { Ok::<_, Infallible>(service.handle_from(request, peer).await) }
        });
        let guard = guard.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move { guard.serve(admitted, tls, handler, stop).await });
    }
}
