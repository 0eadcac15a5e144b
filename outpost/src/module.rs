//! The plug-in point for protocol types (LDAP, RADIUS, proxy, RAC). The runtime starts the
//! module of the outpost's kind when the first configuration arrives (from the core or the state
//! dir), then hands it every new configuration together with a summary of what changed, so it
//! can evict cached binds, end sessions, or rebind a listener without a restart.

use crate::apply::ChangeSummary;
use crate::core_api::CoreApi;
use crate::core_contact::CoreContact;
use crate::settings::OutpostSettings;
use redoubt_outpost_proto::clock::SharedClock;
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// A protocol served by an outpost.
pub trait ProtocolModule: Send + Sync {
    /// The outpost kind it serves.
    fn kind(&self) -> OutpostKind;

    /// Called after every applied snapshot or change set, in revision order. Must not block:
    /// hand heavy work to a task.
    fn apply(&self, config: Arc<ConfigSnapshot>, summary: &ChangeSummary);
}

/// The addresses a module's listeners are bound to, by name (`ldap`, `ldaps`, `radius`, ...).
pub type Listening = BTreeMap<&'static str, SocketAddr>;

/// What a module is started with.
#[derive(Clone)]
pub struct ModuleContext {
    pub settings: OutpostSettings,
    /// Calls to the core on behalf of end users.
    pub core: CoreApi,
    /// Where the module registers its metrics.
    pub registry: prometheus::Registry,
    /// Publish bound listener addresses here.
    pub listening: watch::Sender<Listening>,
    /// Turns true when the outpost stops: close listeners and end tasks.
    pub stop: watch::Receiver<bool>,
    /// The proxy module publishes its request handler here when it starts, for callers in the
    /// same process (the core's embedded outpost).
    #[cfg(feature = "proxy")]
    pub proxy_service: watch::Sender<Option<crate::proxy::ProxyService>>,
    /// Modules compiled in crates of their own (RAC), registered by the binary.
    pub external: Vec<ExternalModule>,
    /// This process's instance id, as the core lists it.
    pub instance_id: String,
    /// The time, for every decision that depends on the date.
    pub clock: SharedClock,
    /// When the core was last reached (RADIUS answers Status-Server only while it counts as
    /// reachable).
    pub contact: CoreContact,
    /// The on-disk queue of events for the core (accounting, cached logins).
    pub events: crate::event_queue::EventQueue,
    /// Tasks a module starts that must finish before the outpost counts as stopped (the
    /// credential cache's last write): [`crate::RunningOutpost::stop`] waits for them.
    pub background: BackgroundTasks,
}

/// Tasks the outpost waits for when it stops.
pub type BackgroundTasks = Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>;

/// What starting a module returns.
pub type StartFuture =
    Pin<Box<dyn Future<Output = anyhow::Result<Arc<dyn ProtocolModule>>> + Send>>;

/// A protocol module that lives in a crate of its own, so that what it links (the IronRDP
/// stack for RAC) stays out of every binary that does not register it (the core, which links
/// this crate for its embedded proxy outpost). The `redoubt-outpost` binary registers them.
#[derive(Clone, Copy)]
pub struct ExternalModule {
    /// The outpost kind it serves.
    pub kind: OutpostKind,
    /// Starts it with the first configuration.
    pub start: fn(ModuleContext, Arc<ConfigSnapshot>) -> StartFuture,
}

impl std::fmt::Debug for ExternalModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalModule")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl ModuleContext {
    /// Records that listener `name` is bound to `addr`.
    pub fn listening_on(&self, name: &'static str, addr: SocketAddr) {
        self.listening.send_modify(|map| {
            map.insert(name, addr);
        });
    }
}

/// Starts the module for `kind` with the first configuration; `Ok(None)` when this build has
/// none for that kind.
pub async fn start(
    kind: OutpostKind,
    context: ModuleContext,
    config: Arc<ConfigSnapshot>,
) -> anyhow::Result<Option<Arc<dyn ProtocolModule>>> {
    if let Some(external) = context.external.iter().find(|m| m.kind == kind) {
        let start = external.start;
        return Ok(Some(start(context, config).await?));
    }
    match kind {
        #[cfg(feature = "proxy")]
        OutpostKind::Proxy => Ok(Some(crate::proxy::start(context, config).await?)),
        #[cfg(feature = "ldap")]
        OutpostKind::Ldap => Ok(Some(crate::ldap::start(context, config).await?)),
        #[cfg(feature = "radius")]
        OutpostKind::Radius => Ok(Some(crate::radius::start(context, config).await?)),
        _ => Ok(None),
    }
}

/// Resolves when `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
