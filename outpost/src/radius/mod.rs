//! The RADIUS outpost: network gear (switches, Wi-Fi controllers, VPN concentrators) sends
//! Access-Requests, answered through the core's credential check with the warm cache in front;
//! BlastRADIUS mitigations on by default (Message-Authenticator required on requests, always
//! first on replies); MFA in one request or by challenge; reply attributes by group;
//! accounting recorded as core events.
//!
//! Layout: [`packet`] and [`attributes`] (the wire format), [`authenticator`] (the shared-secret
//! cryptography), [`clients`] (source address to provider), [`config`] (the snapshot's RADIUS
//! view), [`request`] (admission, no I/O), [`access`] (authentication), [`challenge`] (pending
//! MFA challenges), [`reply`] (Access-Accept attributes), [`duplicates`] (retransmissions),
//! [`accounting`] (accounting records as events), [`server`] (the UDP loops), [`udp_socket`]
//! (receive buffer, kernel drops), [`metrics`].

pub mod access;
pub mod accounting;
pub mod attributes;
pub mod authenticator;
pub mod challenge;
pub mod clients;
pub mod config;
pub mod duplicates;
pub mod metrics;
pub mod packet;
pub mod reply;
pub mod request;
pub mod server;
pub mod udp_socket;

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
use challenge::Challenges;
use config::RadiusConfig;
use duplicates::ReplyCache;
use metrics::RadiusMetrics;
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use request::DropReason;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What every request shares.
pub struct Shared {
    config: RwLock<Arc<RadiusConfig>>,
    pub cache: CredentialCache,
    /// Pairs the core locked; the cache never answers for them.
    pub locks: LockBook,
    pub core: CoreApi,
    pub metrics: RadiusMetrics,
    pub challenges: Challenges,
    pub replies: ReplyCache,
    /// When the core was last reached: Status-Server is answered only while it counts as
    /// reachable.
    pub contact: crate::core_contact::CoreContact,
    /// Accounting records and cached logins, on their way to the core.
    pub events: crate::event_queue::EventQueue,
    /// The time, for accounting records without an Event-Timestamp.
    pub clock: redoubt_outpost_proto::clock::SharedClock,
    drop_log: server::DropLog,
}

impl Shared {
    /// The configuration as of the latest applied snapshot.
    pub fn config(&self) -> Arc<RadiusConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_config(&self, config: RadiusConfig) {
        let mut guard = self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.snapshot.revision <= config.snapshot.revision {
            *guard = Arc::new(config);
        }
    }

    /// Counts a dropped datagram and, now and then, says so in the log.
    pub fn dropped(&self, reason: DropReason, source: SocketAddr) {
        self.metrics
            .dropped
            .with_label_values(&[reason.label()])
            .inc();
        if self.drop_log.due(reason) {
            match reason {
                DropReason::InProgress | DropReason::Malformed => {
                    tracing::debug!(%source, "{}", reason.explain());
                }
                _ => tracing::warn!(%source, "{}", reason.explain()),
            }
        }
    }
}

/// The RADIUS protocol module.
pub struct RadiusModule {
    shared: Arc<Shared>,
}

impl ProtocolModule for RadiusModule {
    fn kind(&self) -> OutpostKind {
        OutpostKind::Radius
    }

    fn apply(&self, config: Arc<ConfigSnapshot>, summary: &ChangeSummary) {
        self.shared.locks.record(&summary.locks);
        let evicted = self.shared.cache.apply(&config, summary);
        if evicted > 0 {
            tracing::debug!(evicted, "cached credentials dropped after a change");
        }
        let announce = summary.outpost || summary.snapshot || !summary.providers.is_empty();
        self.shared
            .set_config(RadiusConfig::build(config, announce));
    }
}

/// Starts the RADIUS module: binds the listeners and serves.
pub async fn start(
    context: ModuleContext,
    config: Arc<ConfigSnapshot>,
) -> anyhow::Result<Arc<dyn ProtocolModule>> {
    let metrics = RadiusMetrics::register(&context.registry).context("RADIUS metrics")?;
    let cache = crate::credential_store::persistent_cache(&context);
    // Entries carried over from an earlier process count only if the directory held now still
    // agrees with them (same credential epoch, groups, active, provider served).
    cache.apply(&config, &ChangeSummary::snapshot());
    let shared = Arc::new(Shared {
        config: RwLock::new(Arc::new(RadiusConfig::build(config, true))),
        cache,
        locks: LockBook::new(context.clock.clone()),
        core: context.core.clone(),
        events: context.events.clone(),
        clock: context.clock.clone(),
        metrics,
        challenges: Challenges::default(),
        replies: ReplyCache::default(),
        contact: context.contact.clone(),
        drop_log: server::DropLog::default(),
    });
    server::listen(&context, shared.clone()).await?;
    {
        let shared = shared.clone();
        let mut stop = context.stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = crate::module::stopped(&mut stop) => return,
                }
                shared
                    .metrics
                    .pending_challenges
                    .set(shared.challenges.len() as i64);
            }
        });
    }
    Ok(Arc::new(RadiusModule { shared }))
}
