//! The RAC outpost module: remote desktops in the browser. A user signs in through the same
//! single sign-on as the proxy outpost (the proxy's sign-in, cookies and revocations, with the
//! RAC pages as an in-process app), picks a desktop, and the outpost holds the RDP connection
//! (IronRDP), decodes it, and sends tiles to a small JavaScript client over a WebSocket. It lives
//! in a crate of its own so that the IronRDP stack never reaches the core's binary (which links
//! the outpost runtime for its embedded proxy outpost).
//!
//! Layout: sans-IO [`keymap`], [`input`], [`tiles`], [`encode`], [`pacing`], [`clipboard`],
//! [`ticket`], [`registry`], [`state`]; I/O [`connect`] (to the RDP server), [`session`] (one
//! connection's loop), [`connection`] (the WebSocket, the grant, the reports), [`app`] (the
//! pages), [`pages`] (HTML), [`metrics`].

pub mod app;
pub mod clipboard;
pub mod connect;
pub mod connection;
pub mod encode;
pub mod input;
pub mod keymap;
pub mod metrics;
pub mod pacing;
pub mod pages;
pub mod rdp_clipboard;
pub mod reactivation;
pub mod registry;
pub mod session;
pub mod state;
pub mod ticket;
pub mod tiles;

#[cfg(test)]
mod fuzz_tests;

use redoubt_outpost::apply::ChangeSummary;
use redoubt_outpost::core_api::CoreApi;
use redoubt_outpost::module::{ExternalModule, ModuleContext, ProtocolModule, StartFuture};
use redoubt_outpost::proxy::state::ProxyState;
use redoubt_outpost::proxy::{ProxyModule, ProxyService};
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use redoubt_outpost_proto::rac::{
    EndReason, LEASE_RENEW_SECONDS, LEASES_PATH, RacLeaseRequest, RacLeaseResponse,
};
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// The RAC module, for [`redoubt_outpost::start_with`].
pub const MODULE: ExternalModule = ExternalModule {
    kind: OutpostKind::Rac,
    start: start_module,
};

/// Connections one outpost holds at most (each costs a decoded desktop in memory).
pub const DEFAULT_MAX_SESSIONS: usize = 200;

/// What the pages, the connections and the module share.
pub struct Shared {
    state: RwLock<Arc<state::RacState>>,
    proxy: std::sync::OnceLock<ProxyService>,
    pub core: CoreApi,
    pub metrics: Arc<metrics::RacMetrics>,
    pub registry: registry::Registry,
    pub spent: ticket::SpentTickets,
    pub instance_id: String,
    /// The time tickets are issued and redeemed by.
    pub clock: redoubt_outpost_proto::clock::SharedClock,
    pub max_sessions: usize,
    /// Where the RDP side of connections runs (IronRDP's futures are not `Send`): pinned local
    /// tasks on one thread per core.
    pub rdp: tokio_util::task::LocalPoolHandle,
    /// Wakes the lease task at once (a change may have ended someone's access).
    recheck: Notify,
}

impl Shared {
    /// The RAC providers as of the latest configuration.
    pub fn state(&self) -> Arc<state::RacState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The sign-in state (keys, revocations) as of the latest configuration.
    pub fn proxy_state(&self) -> Arc<ProxyState> {
        self.proxy
            .get()
            .map(ProxyService::state)
            .unwrap_or_default()
    }
}

/// The RAC protocol module.
pub struct RacModule {
    shared: Arc<Shared>,
    proxy: Arc<ProxyModule>,
}

impl ProtocolModule for RacModule {
    fn kind(&self) -> OutpostKind {
        OutpostKind::Rac
    }

    fn apply(&self, config: Arc<ConfigSnapshot>, summary: &ChangeSummary) {
        self.proxy.apply(config.clone(), summary);
        let state = Arc::new(state::RacState::build(&config));
        {
            let mut guard = self
                .shared
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if guard.revision <= state.revision {
                *guard = state.clone();
            }
        }
        let proxy_state = self.shared.proxy_state();
        let revoked = self.shared.registry.end_where(EndReason::Revoked, |h| {
            proxy_state
                .revocations
                .ends(h.user_id, &h.sid, h.auth_time_ms)
        });
        let removed = self.shared.registry.end_where(EndReason::Removed, |h| {
            state.endpoint(h.provider_id, &h.endpoint).is_none()
        });
        if revoked + removed > 0 {
            tracing::info!(
                revoked,
                removed,
                "ended remote-desktop connections after a configuration change"
            );
        }
        if !summary.snapshot || !self.shared.registry.is_empty() {
            self.shared.recheck.notify_one();
        }
    }
}

fn start_module(context: ModuleContext, config: Arc<ConfigSnapshot>) -> StartFuture {
    Box::pin(async move {
        let module: Arc<dyn ProtocolModule> = start(context, config).await?;
        Ok(module)
    })
}

/// Starts the RAC module: the sign-in machinery and listeners with the RAC pages behind them,
/// and the lease task.
pub async fn start(
    context: ModuleContext,
    config: Arc<ConfigSnapshot>,
) -> anyhow::Result<Arc<RacModule>> {
    let metrics = Arc::new(metrics::RacMetrics::register(&context.registry)?);
    let shared = Arc::new(Shared {
        state: RwLock::new(Arc::new(state::RacState::build(&config))),
        proxy: std::sync::OnceLock::new(),
        core: context.core.clone(),
        metrics,
        registry: registry::Registry::default(),
        spent: ticket::SpentTickets::default(),
        instance_id: context.instance_id.clone(),
        clock: context.clock.clone(),
        max_sessions: DEFAULT_MAX_SESSIONS,
        rdp: tokio_util::task::LocalPoolHandle::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        ),
        recheck: Notify::new(),
    });
    let app = Arc::new(app::RacApp {
        shared: shared.clone(),
    });
    let (proxy, service) = redoubt_outpost::proxy::start_with_app(&context, &config, app).await?;
    let _ = shared.proxy.set(service);
    tokio::spawn(leases(shared.clone(), context.stop.clone()));
    Ok(Arc::new(RacModule { shared, proxy }))
}

/// Renews the leases of live connections every [`LEASE_RENEW_SECONDS`] (and at once after a
/// change), ending those the core says must end; ends every connection when the outpost stops.
async fn leases(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let period = std::time::Duration::from_secs(LEASE_RENEW_SECONDS);
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shared.recheck.notified() => {}
            () = redoubt_outpost::module::stopped(&mut stop) => {
                shared.registry.end_where(EndReason::OutpostStop, |_| true);
                return;
            }
        }
        let ids = shared.registry.ids();
        if ids.is_empty() {
            continue;
        }
        let request = RacLeaseRequest {
            instance_id: shared.instance_id.clone(),
            connection_ids: ids,
        };
        match shared
            .core
            .post_json::<_, RacLeaseResponse>(LEASES_PATH, &request)
            .await
        {
            Ok(answer) => {
                for end in answer.end {
                    shared.registry.end(&end.connection_id, end.reason);
                }
            }
            Err(error) => tracing::debug!(%error, "cannot renew remote-desktop leases"),
        }
    }
}
