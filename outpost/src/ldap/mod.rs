//! The LDAP outpost: a read-only directory for applications that speak LDAP, answered from
//! memory and kept current by the control channel; binds go through the core's credential
//! check and are cached as keyed hashes until the core pushes a change that could alter them.
//!
//! Layout: [`dn`] (DN parsing), [`view`] (the tree and its indexes), [`attributes`] and
//! [`rootdse`] (entry contents), [`filter`], [`prepared`] and [`search`] (matching),
//! [`encode`] (result entries straight to BER), [`bind`] (binds and
//! password changes), [`session`] (one connection's protocol logic, no I/O), [`server`] (the
//! tokio listeners and connection loop, StartTLS and LDAPS), [`metrics`].

pub mod attributes;
pub mod bind;
pub mod dn;
pub mod encode;
pub mod filter;
pub mod metrics;
pub mod prepared;
pub mod rootdse;
pub mod search;
pub mod server;
pub mod session;
pub mod view;

#[cfg(test)]
mod cost_tests;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fixtures;
#[cfg(test)]
mod fuzz_tests;

use crate::apply::ChangeSummary;
use crate::core_api::CoreApi;
use crate::credential_cache::CredentialCache;
use crate::lock_book::LockBook;
use crate::module::{ModuleContext, ProtocolModule};
use anyhow::Context;
use metrics::LdapMetrics;
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;
use view::DirectoryView;

/// What every connection shares.
pub struct Shared {
    view: RwLock<Arc<DirectoryView>>,
    pub cache: CredentialCache,
    /// Pairs the core locked; the cache never answers for them.
    pub locks: LockBook,
    pub core: CoreApi,
    /// Where cached binds are reported to the core.
    pub events: crate::event_queue::EventQueue,
    pub metrics: LdapMetrics,
    /// The server TLS configuration for LDAPS and StartTLS, if a certificate is configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Large search scans running on the blocking pool at once; more wait their turn (within
    /// their time limit), so heavy searches share the CPU and never take the async workers.
    pub scans: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    /// The directory as of the latest applied configuration.
    pub fn view(&self) -> Arc<DirectoryView> {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_view(&self, view: Arc<DirectoryView>) {
        let mut guard = self
            .view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.snapshot.revision <= view.snapshot.revision {
            *guard = view;
        }
    }
}

/// The LDAP protocol module.
pub struct LdapModule {
    shared: Arc<Shared>,
    /// The latest configuration, for the task that rebuilds the directory.
    latest: watch::Sender<Arc<ConfigSnapshot>>,
}

impl ProtocolModule for LdapModule {
    fn kind(&self) -> OutpostKind {
        OutpostKind::Ldap
    }

    fn apply(&self, config: Arc<ConfigSnapshot>, summary: &ChangeSummary) {
        self.shared.locks.record(&summary.locks);
        let evicted = self.shared.cache.apply(&config, summary);
        if evicted > 0 {
            tracing::debug!(evicted, "cached binds dropped after a change");
        }
        self.latest.send_replace(config);
    }
}

/// Starts the LDAP module: builds the directory, binds the listeners and serves.
pub async fn start(
    context: ModuleContext,
    config: Arc<ConfigSnapshot>,
) -> anyhow::Result<Arc<dyn ProtocolModule>> {
    let settings = &context.settings;
    let metrics = LdapMetrics::register(&context.registry).context("LDAP metrics")?;
    let tls = crate::tls::server_config(&settings.tls, &[])?;
    let view = Arc::new(build_view(config.clone(), &metrics));
    let shared = Arc::new(Shared {
        view: RwLock::new(view),
        cache: crate::credential_store::persistent_cache(&context),
        locks: LockBook::new(context.clock.clone()),
        core: context.core.clone(),
        events: context.events.clone(),
        metrics,
        tls,
        scans: Arc::new(tokio::sync::Semaphore::new(session::concurrent_scans())),
    });
    // Entries carried over from an earlier process count only if the directory held now still
    // agrees with them (same credential epoch, groups, active, provider served).
    shared.cache.apply(&config, &ChangeSummary::snapshot());
    server::listen(&context, shared.clone()).await?;
    let (latest, mut updates) = watch::channel(config);
    {
        let shared = shared.clone();
        let mut stop = context.stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = updates.changed() => if changed.is_err() { return },
                    () = crate::module::stopped(&mut stop) => return,
                }
                let snapshot = updates.borrow_and_update().clone();
                let metrics = shared.metrics.clone();
                let built =
                    tokio::task::spawn_blocking(move || build_view(snapshot, &metrics)).await;
                match built {
                    Ok(view) => shared.set_view(Arc::new(view)),
                    Err(error) => tracing::error!(%error, "rebuilding the LDAP directory failed"),
                }
            }
        });
    }
    Ok(Arc::new(LdapModule { shared, latest }))
}

fn build_view(snapshot: Arc<ConfigSnapshot>, metrics: &LdapMetrics) -> DirectoryView {
    let started = std::time::Instant::now();
    let view = DirectoryView::build(snapshot);
    metrics
        .view_build_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics
        .directory_entries
        .with_label_values(&["user"])
        .set(view.users().len() as i64);
    metrics
        .directory_entries
        .with_label_values(&["group"])
        .set(view.groups().len() as i64);
    if view.providers.is_empty() {
        tracing::warn!(
            "this LDAP outpost serves no LDAP provider: add one to the outpost in the core"
        );
    }
    view
}
