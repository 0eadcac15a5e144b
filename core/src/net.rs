//! The core's listeners, all bounded by the shared [`redoubt_outpost::listener::HttpGuard`]
//! (connection cap, unproven connections per source, whole-head and TLS handshake timeouts,
//! idle timeout; `limits.*`): the API on `listen.http` and `listen.https`, metrics and health on
//! `listen.metrics` with a guard of their own so they stay answerable while the API is
//! crowded. Each request carries the client's address as `ConnectInfo<PeerAddr>`.

use crate::config::LimitSettings;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::service::TowerToHyperService;
use redoubt_outpost::listener::{HttpGuard, ListenerLimits};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// The client address of a connection, for `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl PeerAddr {
    /// The client's IP address.
    pub fn ip(&self) -> std::net::IpAddr {
        self.0.ip()
    }
}

/// The listener bounds `limits` describe, with `max_connections` and `idle_timeout`.
pub fn listener_limits(
    limits: &LimitSettings,
    max_connections: usize,
    idle_timeout: Duration,
) -> ListenerLimits {
    ListenerLimits {
        max_connections,
        unproven_per_source: limits.unproven_connections_per_source,
        header_timeout: Duration::from_secs(limits.header_timeout_seconds.max(1)),
        handshake_timeout: Duration::from_secs(limits.tls_handshake_timeout_seconds.max(1)),
        idle_timeout,
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) under `guard` until `stop` turns true, then
/// drains the open connections.
pub async fn serve(
    guard: HttpGuard,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    stop: watch::Receiver<bool>,
) {
    guard
        .run(
            listener,
            tls,
            move |peer| {
                TowerToHyperService::new(
                    app.clone()
                        .layer(axum::Extension(ConnectInfo(PeerAddr(peer)))),
                )
            },
            stop,
        )
        .await;
}
