//! The proxy outpost: single sign-on in front of web applications, as the reverse proxy itself
//! (`proxy` mode) or as the forward-auth service of nginx, Traefik, Caddy or Envoy
//! (`forward_single`, `forward_domain`). Sessions are stateless: an encrypted cookie sealed with
//! keys from the core, plus the revocations the core pushes, so any replica serves any user and
//! a restart logs nobody out.
//!
//! Layout: [`state`] (what a configuration means: providers by host, keys, revocation index),
//! [`session`] (sealing cookies and login state), [`forward`] (the original URL per reverse
//! proxy), [`decide`] (may this request pass), [`login`] (start, callback and sign-out
//! decisions), [`headers`], [`pages`] (error pages), [`header_auth`] (Bearer/Basic for API
//! clients), [`memo`] (opened cookies per thread), [`upstream`] (proxy mode), [`service`] ([`ProxyService`]: requests to responses),
//! [`server`] (the listeners), [`metrics`], [`body`].

pub mod body;
pub mod decide;
pub mod forward;
pub mod header_auth;
pub mod headers;
pub mod login;
pub mod memo;
pub mod metrics;
pub mod misconfig;
pub mod pages;
pub mod server;
pub mod service;
pub mod session;
pub mod state;
pub mod trusted;
pub mod upstream;

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fixtures;
#[cfg(test)]
mod fuzz_tests;

use crate::apply::ChangeSummary;
use crate::module::{ModuleContext, ProtocolModule};
use anyhow::Context;
use metrics::ProxyMetrics;
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use service::Shared;
pub use service::{InProcessApp, Peer, ProxyService};
use state::{ProxyState, Warning};
use std::sync::{Arc, Mutex};

/// The proxy protocol module.
pub struct ProxyModule {
    shared: Arc<Shared>,
    core_urls: Vec<String>,
    /// The warnings last logged, so a change set does not repeat them.
    warned: Mutex<Vec<Warning>>,
}

impl ProxyModule {
    fn install(&self, config: &ConfigSnapshot, summary: &ChangeSummary) {
        let before = self.shared.state().revocations.len();
        let (state, warnings) = ProxyState::build(config, &self.core_urls);
        let metrics = &self.shared.metrics;
        let after = state.revocations.len();
        if !summary.snapshot && after > before {
            metrics.revocations.inc_by((after - before) as u64);
        }
        metrics.revocations_held.set(after as i64);
        self.log_warnings(warnings, state.providers.len());
        self.shared.set_state(state);
    }

    fn log_warnings(&self, warnings: Vec<Warning>, providers: usize) {
        let mut warned = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *warned == warnings {
            return;
        }
        for warning in &warnings {
            tracing::warn!("{}", warning.0);
        }
        if providers == 0 {
            tracing::warn!(
                "this proxy outpost serves no proxy provider: add one to the outpost in the core"
            );
        }
        *warned = warnings;
    }
}

impl ProtocolModule for ProxyModule {
    fn kind(&self) -> OutpostKind {
        OutpostKind::Proxy
    }

    fn apply(&self, config: Arc<ConfigSnapshot>, summary: &ChangeSummary) {
        self.install(&config, summary);
    }
}

/// The module, its service and the HTTPS configuration (when one is set), without listeners.
#[allow(clippy::type_complexity)]
fn build(
    context: &ModuleContext,
    config: &ConfigSnapshot,
) -> anyhow::Result<(
    Arc<ProxyModule>,
    ProxyService,
    Option<Arc<rustls::ServerConfig>>,
)> {
    let settings = &context.settings;
    let metrics = ProxyMetrics::register(&context.registry).context("proxy metrics")?;
    let tls = crate::tls::server_config(&settings.tls, &[b"h2", b"http/1.1"])?;
    let verified = crate::tls::client_config(&settings.ca_file, false)
        .context("the TLS configuration for upstreams")?;
    let unverified =
        crate::tls::unverified_client_config().context("the TLS configuration for upstreams")?;
    let core_urls = settings.core_urls();
    let shared = Arc::new(Shared::new(
        ProxyState::default(),
        context.core.clone(),
        context.events.clone(),
        metrics,
        verified,
        unverified,
        context.clock.clone(),
        trusted::TrustedProxies::parse(&settings.proxy.trusted_proxies)?,
    ));
    let module = Arc::new(ProxyModule {
        shared: shared.clone(),
        core_urls,
        warned: Mutex::new(Vec::new()),
    });
    module.install(config, &ChangeSummary::snapshot());
    let service = ProxyService::new(shared);
    Ok((module, service, tls))
}

/// Starts the proxy module: builds the state, binds the listeners (unless `listen.http` is
/// empty) and publishes the [`ProxyService`] for in-process callers.
pub async fn start(
    context: ModuleContext,
    config: Arc<ConfigSnapshot>,
) -> anyhow::Result<Arc<dyn ProtocolModule>> {
    let (module, service, tls) = build(&context, &config)?;
    server::listen(&context, service.clone(), tls).await?;
    context.proxy_service.send_replace(Some(service));
    Ok(module)
}

/// Starts the sign-in machinery and listeners for a module that serves its own pages behind
/// them (RAC): `app` answers signed-in requests; the returned module must be handed every
/// configuration (it keeps the providers, keys and revocations current).
pub async fn start_with_app(
    context: &ModuleContext,
    config: &ConfigSnapshot,
    app: Arc<dyn InProcessApp>,
) -> anyhow::Result<(Arc<ProxyModule>, ProxyService)> {
    let (module, service, tls) = build(context, config)?;
    service.set_app(app);
    server::listen(context, service.clone(), tls).await?;
    Ok((module, service))
}
