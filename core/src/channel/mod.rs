//! The outpost control channel, core side: the WebSocket endpoint, the fan-out that turns new
//! revisions of the change log into pushed changes, and the registry of connected instances.
//!
//! A change reaches outposts like this: a write commits and appends to the change log; the
//! commit wakes this replica's fan-out directly, and (on PostgreSQL) a NOTIFY wakes the fan-out of
//! every other replica; each fan-out reads the new rows once, resolves them into wire items and
//! broadcasts the batch to its sessions, which filter it for their outpost and send it. The
//! change log is the truth: a session that misses a batch (lag) sends a snapshot instead.

mod batch;
mod convert;
mod registry;
mod session;
pub mod snapshot;

pub use registry::InstanceRegistry;
pub use session::channel_handler;

use crate::metrics::Metrics;
use crate::store::{Backend, CHANGE_CHANNEL, Store};
use batch::Batch;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Sessions setting up (hello to first sync) at once.
const SETUP_CONCURRENCY: usize = 32;
/// Most change rows resolved per batch.
const BATCH_LIMIT: i64 = 500;
/// A session further behind than this gets a snapshot instead of the changes.
pub(crate) const MAX_CATCH_UP: i64 = 2000;
/// Safety net: the fan-out looks for changes at least this often even without a wake-up.
const POLL_FALLBACK: Duration = Duration::from_secs(5);

/// Shared state of the control channel.
#[derive(Debug)]
pub struct ChannelHub {
    pub(crate) store: Store,
    pub(crate) metrics: Arc<Metrics>,
    pub registry: InstanceRegistry,
    batches: broadcast::Sender<Arc<Batch>>,
    pub(crate) stop: watch::Receiver<bool>,
    /// The database URL, for the PostgreSQL listener.
    database_url: String,
    /// Bounds how many sessions set up at once, so a herd of outposts reconnecting after a core
    /// restart queues instead of exhausting the database pool.
    pub(crate) setup: tokio::sync::Semaphore,
    /// Derives the session-cookie keys in proxy outposts' snapshots.
    pub keyring: crate::session_keys::SessionKeyring,
    /// The core's URL as browsers reach it (`external_url`), for proxy outposts' snapshots.
    pub public_url: Option<String>,
    /// The newest snapshot message of each outpost, encoded once for all its replicas.
    snapshots: std::sync::Mutex<std::collections::HashMap<i64, (i64, Arc<str>)>>,
}

impl ChannelHub {
    /// A hub over `store`; `stop` turning true ends sessions and loops.
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        database_url: String,
        keyring: crate::session_keys::SessionKeyring,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let (batches, _) = broadcast::channel(1024);
        Self {
            store,
            metrics,
            registry: InstanceRegistry::default(),
            batches,
            stop,
            database_url,
            keyring,
            public_url: None,
            setup: tokio::sync::Semaphore::new(SETUP_CONCURRENCY),
            snapshots: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Sets the core's URL as browsers reach it.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url;
        self
    }

    /// The encoded snapshot message of `outpost_id` at the current revision (or newer), built
    /// once and shared by every replica of the outpost that needs it.
    pub(crate) async fn snapshot_message(
        &self,
        outpost_id: i64,
    ) -> Result<(i64, Arc<str>), crate::store::StoreError> {
        let current = self.store.current_revision().await?;
        let cached = {
            let map = self
                .snapshots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.get(&outpost_id).cloned()
        };
        if let Some((revision, text)) = cached
            && revision >= current
        {
            return Ok((revision, text));
        }
        let snapshot = snapshot::build(
            &self.store,
            &self.keyring,
            self.public_url.as_deref(),
            outpost_id,
        )
        .await?;
        let revision = snapshot.revision;
        let message = redoubt_outpost_proto::control::CoreMessage::Snapshot(snapshot);
        let text: Arc<str> = serde_json::to_string(&message)
            .map_err(|e| crate::store::StoreError::Invalid(format!("encoding a snapshot: {e}")))?
            .into();
        let mut map = self
            .snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map
            .entry(outpost_id)
            .or_insert_with(|| (revision, text.clone()));
        if entry.0 < revision {
            *entry = (revision, text.clone());
        }
        Ok((revision, text))
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Batch>> {
        self.batches.subscribe()
    }

    /// Runs the fan-out and the registry flusher until stop.
    pub async fn run(self: Arc<Self>) {
        let flusher = {
            let hub = self.clone();
            tokio::spawn(async move {
                hub.registry
                    .flush_loop(hub.store.clone(), hub.stop.clone())
                    .await
            })
        };
        self.fan_out().await;
        let _ = flusher.await;
    }

    async fn fan_out(&self) {
        let mut stop = self.stop.clone();
        let mut last = loop {
            match self.store.current_revision().await {
                Ok(revision) => break revision,
                Err(error) => {
                    tracing::warn!(%error, "control channel: cannot read the current revision; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = session::stopped(&mut stop) => return,
                    }
                }
            }
        };
        let mut listener = self.listen().await;
        loop {
            tokio::select! {
                _ = self.store.changed() => {}
                notified = recv_notification(&mut listener) => {
                    if !notified {
                        // The listener broke: fall back to polling and try to listen again later.
                        listener = None;
                    }
                }
                _ = tokio::time::sleep(POLL_FALLBACK) => {
                    if listener.is_none() {
                        listener = self.listen().await;
                    }
                }
                _ = session::stopped(&mut stop) => return,
            }
            loop {
                match batch::read(&self.store, last, BATCH_LIMIT).await {
                    Ok(Some(batch)) => {
                        last = batch.to;
                        // No receivers is fine: nobody is connected to this replica.
                        let _ = self.batches.send(Arc::new(batch));
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "control channel: reading changes failed; will retry");
                        break;
                    }
                }
            }
        }
    }

    async fn listen(&self) -> Option<sqlx::postgres::PgListener> {
        if self.store.backend() != Backend::Postgres {
            return None;
        }
        let mut listener = match sqlx::postgres::PgListener::connect(&self.database_url).await {
            Ok(l) => l,
            Err(error) => {
                tracing::warn!(%error, "control channel: cannot LISTEN on PostgreSQL; polling instead");
                return None;
            }
        };
        match listener.listen(CHANGE_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "control channel: LISTEN failed; polling instead");
                None
            }
        }
    }
}

/// Waits for one notification; false when the listener failed. Pending forever without one.
async fn recv_notification(listener: &mut Option<sqlx::postgres::PgListener>) -> bool {
    match listener {
        Some(l) => l.try_recv().await.is_ok_and(|n| n.is_some()),
        None => std::future::pending().await,
    }
}
