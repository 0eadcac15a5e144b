//! The Redoubt outpost: one binary for every outpost type. The runtime authenticates with the
//! outpost's token, learns its identity and type from the core, keeps the configuration current
//! over the control channel (persisting it for starts without the core), reports health and
//! metrics, and hands every change to the protocol module of its type.
//!
//! [`start`] runs an outpost in-process (the binary and the integration tests both use it).

pub mod apply;
pub mod backoff;
pub mod core_api;
pub mod core_contact;
pub mod credential_cache;
pub mod credential_check;
pub mod credential_store;
pub mod endpoints;
pub mod event_queue;
pub mod fetch;
#[cfg(feature = "fuzzing")]
pub mod fuzz_api;
#[cfg(test)]
mod fuzzing;
#[cfg(feature = "ldap")]
pub mod ldap;
pub mod listener;
pub mod lock_book;
pub mod module;
pub mod observe;
#[cfg(feature = "proxy")]
pub mod proxy;
#[cfg(feature = "radius")]
pub mod radius;
pub mod runtime;
pub mod settings;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod unbound;

use anyhow::Context;
use observe::OutpostMetrics;
use redoubt_outpost_proto::clock::{SharedClock, SystemClock};
use redoubt_outpost_proto::config::ConfigSnapshot;
use runtime::Runtime;
use settings::OutpostSettings;
use state::StateStore;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The software version reported to the core.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A running outpost.
#[derive(Debug)]
pub struct RunningOutpost {
    /// Where `/metrics` and the health endpoints answer.
    pub metrics_addr: SocketAddr,
    /// This process's instance id, as the core lists it.
    pub instance_id: String,
    config: watch::Receiver<Option<Arc<ConfigSnapshot>>>,
    connected: watch::Receiver<bool>,
    status: observe::StatusSource,
    listening: watch::Receiver<module::Listening>,
    #[cfg(feature = "proxy")]
    proxy_service: watch::Receiver<Option<proxy::ProxyService>>,
    registry: prometheus::Registry,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    background: module::BackgroundTasks,
}

impl RunningOutpost {
    /// The configuration being served, if any.
    pub fn config(&self) -> Option<Arc<ConfigSnapshot>> {
        self.config.borrow().clone()
    }

    /// Whether the control channel is up.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Connected, degraded or disconnected, as `/-/health/ready` says.
    pub fn core_status(&self) -> core_contact::CoreStatus {
        self.status.status()
    }

    /// Waits until the applied revision is at least `revision`.
    pub async fn wait_for_revision(&self, revision: i64) -> Arc<ConfigSnapshot> {
        let mut config = self.config.clone();
        loop {
            if let Some(snapshot) = config.borrow_and_update().clone()
                && snapshot.revision >= revision
            {
                return snapshot;
            }
            if config.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until the control channel is `up` (or down).
    pub async fn wait_connected(&self, up: bool) {
        let mut connected = self.connected.clone();
        let _ = connected.wait_for(|c| *c == up).await;
    }

    /// Waits until the protocol module's listener `name` (`ldap`, `ldaps`, `radius`, ...) is
    /// bound, and returns its address.
    pub async fn listening(&self, name: &str) -> SocketAddr {
        let mut listening = self.listening.clone();
        loop {
            if let Some(addr) = listening.borrow_and_update().get(name) {
                return *addr;
            }
            if listening.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The proxy module's request handler, once a proxy outpost's module has started (`None`
    /// before that and for other kinds). The core's embedded outpost forwards requests to it.
    #[cfg(feature = "proxy")]
    pub fn proxy_service(&self) -> Option<proxy::ProxyService> {
        self.proxy_service.borrow().clone()
    }

    /// Watches the proxy module's request handler (`None` until it starts).
    #[cfg(feature = "proxy")]
    pub fn proxy_service_watch(&self) -> watch::Receiver<Option<proxy::ProxyService>> {
        self.proxy_service.clone()
    }

    /// Waits until the proxy module has started and returns its request handler.
    #[cfg(feature = "proxy")]
    pub async fn wait_proxy_service(&self) -> proxy::ProxyService {
        let mut service = self.proxy_service.clone();
        loop {
            if let Some(service) = service.borrow_and_update().clone() {
                return service;
            }
            if service.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The registry of the outpost's metrics (the runtime's and its module's), for a host
    /// process that serves them itself (the core's embedded outpost).
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// Stops gracefully: closes the channel and the metrics server.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let background = std::mem::take(
            &mut *self
                .background
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in background {
            let _ = task.await;
        }
    }
}

/// Starts an outpost: binds the metrics listener, then runs the runtime in the background.
pub async fn start(settings: OutpostSettings) -> anyhow::Result<RunningOutpost> {
    start_with(settings, StartOptions::default()).await
}

/// What an outpost is started with beyond its settings: what cannot come from a file or the
/// environment.
#[derive(Clone)]
pub struct StartOptions {
    /// Protocol modules from other crates (the binary registers RAC this way).
    pub modules: Vec<module::ExternalModule>,
    /// Where every decision that depends on the date reads the time (cookie and ticket expiry,
    /// offline credential windows, event times). The wall clock outside tests; the core's
    /// embedded outpost and the test harness pass the core's own clock.
    pub clock: SharedClock,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            modules: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("modules", &self.modules)
            .finish_non_exhaustive()
    }
}

/// Most connections open at once on the metrics and health listener.
const METRICS_MAX_CONNECTIONS: usize = 256;
/// An idle connection to the metrics and health listener is closed after this long.
const METRICS_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// [`start`] with [`StartOptions`].
pub async fn start_with(
    settings: OutpostSettings,
    options: StartOptions,
) -> anyhow::Result<RunningOutpost> {
    let StartOptions {
        modules: external,
        clock,
    } = options;
    settings.validate()?;
    let tls = tls::client_config(&settings.ca_file, settings.danger_insecure)?;
    let metrics = Arc::new(OutpostMetrics::new()?);
    let listener = tokio::net::TcpListener::bind(&settings.listen.metrics)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (listen.metrics)",
                settings.listen.metrics
            )
        })?;
    let metrics_addr = listener.local_addr()?;
    let metrics_limits = settings
        .limits
        .listener(METRICS_MAX_CONNECTIONS, METRICS_IDLE_TIMEOUT);
    let (config_tx, config_rx) = watch::channel(None);
    let (connected_tx, connected_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let instance_id = random_id();
    let endpoints = Arc::new(endpoints::CoreEndpoints::new(
        settings.core_urls(),
        tls.clone(),
        endpoints::seed_of(&instance_id),
    )?);
    endpoints.resolve().await;
    let hostname = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let state = StateStore::new(
        &settings.state_dir,
        &settings.core_urls(),
        settings.token.trim(),
    );
    let contact = core_contact::CoreContact::default();
    let core = core_api::CoreApi::with_endpoints(endpoints.clone(), &settings.token)
        .with_contact(contact.clone());
    let queue = event_queue::start(
        &settings.state_dir,
        settings.event_queue_max_bytes,
        core.clone(),
        clock.clone(),
        &metrics.registry,
        connected_rx.clone(),
        stop_rx.clone(),
    )?;
    let background: module::BackgroundTasks = Arc::default();
    let (listening_tx, listening_rx) = watch::channel(module::Listening::new());
    #[cfg(feature = "proxy")]
    let (proxy_service_tx, proxy_service_rx) = watch::channel(None);
    let status = observe::StatusSource {
        contact: contact.clone(),
        config: config_rx.clone(),
    };
    observe::register_core_status(&metrics.registry, status.clone())?;
    let unbound = unbound::UnboundReport::register(&metrics.registry)?;
    let module_context = module::ModuleContext {
        settings: settings.clone(),
        core,
        contact: contact.clone(),
        registry: metrics.registry.clone(),
        listening: listening_tx,
        stop: stop_rx.clone(),
        #[cfg(feature = "proxy")]
        proxy_service: proxy_service_tx,
        external,
        instance_id: instance_id.clone(),
        clock: clock.clone(),
        events: queue.queue,
        background: background.clone(),
    };
    let runtime = Arc::new(Runtime {
        endpoints,
        tls,
        state,
        metrics: metrics.clone(),
        config: config_tx,
        connected: connected_tx,
        module: tokio::sync::Mutex::new(runtime::ModuleSlot::Waiting),
        module_context,
        instance_id: instance_id.clone(),
        hostname,
        settings,
    });
    tracing::info!(%metrics_addr, version = VERSION, "Redoubt outpost starting");
    let registry = metrics.registry.clone();
    let observe = {
        let app = observe::router(metrics, status.clone());
        let stop = stop_rx.clone();
        let guard = listener::HttpGuard::new(metrics_limits);
        tokio::spawn(async move {
            guard
                .run(
                    listener,
                    None,
                    move |_| hyper_util::service::TowerToHyperService::new(app.clone()),
                    stop,
                )
                .await;
        })
    };
    let follow = tokio::spawn(follow_core(config_rx.clone(), unbound, stop_rx.clone()));
    let run = tokio::spawn(runtime.run(stop_rx));
    let mut tasks = vec![run, observe, follow];
    tasks.extend(queue.tasks);
    Ok(RunningOutpost {
        metrics_addr,
        instance_id,
        config: config_rx,
        connected: connected_rx,
        status,
        listening: listening_rx,
        #[cfg(feature = "proxy")]
        proxy_service: proxy_service_rx,
        registry,
        stop: stop_tx,
        tasks,
        background,
    })
}

/// Reports unbound providers in each new configuration.
async fn follow_core(
    mut config: watch::Receiver<Option<Arc<ConfigSnapshot>>>,
    unbound: unbound::UnboundReport,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = config.changed() => {
                if changed.is_err() {
                    return;
                }
                let snapshot = config.borrow_and_update().clone();
                if let Some(snapshot) = snapshot {
                    unbound.observe(&snapshot);
                }
            }
            () = module::stopped(&mut stop) => return,
        }
    }
}

/// 128 random bits in hex.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = std::process::id()
            .to_le_bytes()
            .repeat(4)
            .try_into()
            .unwrap_or([0; 16]);
    }
    data_encoding::HEXLOWER.encode(&bytes)
}
