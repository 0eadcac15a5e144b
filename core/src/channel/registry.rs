//! The instances connected to this core replica. State lives in memory and is flushed to the
//! `outpost_instances` table in batches, so every replica (and the API) sees every instance
//! without one database write per heartbeat.

use crate::store::{InstanceRecord, Store};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// How often dirty instance states are written.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

type Key = (i64, String);

/// Connected instances of this replica.
#[derive(Debug, Default)]
pub struct InstanceRegistry {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    instances: HashMap<Key, InstanceRecord>,
    dirty: HashSet<Key>,
}

impl InstanceRegistry {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Records a new session.
    pub(crate) fn connect(&self, record: InstanceRecord) {
        let key = (record.outpost_id, record.instance_id.clone());
        self.with(|inner| {
            inner.instances.insert(key.clone(), record);
            inner.dirty.insert(key);
        });
    }

    /// Updates the last-seen time and, when given, the applied revision.
    pub(crate) fn seen(&self, outpost_id: i64, instance_id: &str, now: i64, applied: Option<i64>) {
        let key = (outpost_id, instance_id.to_owned());
        self.with(|inner| {
            if let Some(record) = inner.instances.get_mut(&key) {
                record.last_seen = now;
                if applied.is_some() {
                    record.applied_revision = applied;
                }
                inner.dirty.insert(key);
            }
        });
    }

    /// Marks a session closed; the record is dropped from memory after the next flush.
    pub(crate) fn disconnect(&self, outpost_id: i64, instance_id: &str, now: i64) {
        let key = (outpost_id, instance_id.to_owned());
        self.with(|inner| {
            if let Some(record) = inner.instances.get_mut(&key) {
                record.connected = false;
                record.last_seen = now;
                inner.dirty.insert(key);
            }
        });
    }

    /// Instances connected to this replica.
    pub fn connected(&self) -> usize {
        self.with(|inner| inner.instances.values().filter(|r| r.connected).count())
    }

    fn take_dirty(&self) -> Vec<InstanceRecord> {
        self.with(|inner| {
            let dirty: Vec<Key> = inner.dirty.drain().collect();
            let mut out = Vec::with_capacity(dirty.len());
            for key in dirty {
                if let Some(record) = inner.instances.get(&key) {
                    out.push(record.clone());
                    if !record.connected {
                        inner.instances.remove(&key);
                    }
                }
            }
            out
        })
    }

    /// Writes dirty states every [`FLUSH_INTERVAL`] until `stop`, then once more.
    pub(crate) async fn flush_loop(&self, store: Store, mut stop: watch::Receiver<bool>) {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(FLUSH_INTERVAL) => false,
                _ = super::session::stopped(&mut stop) => true,
            };
            let dirty = self.take_dirty();
            if let Err(error) = store.upsert_instances(&dirty).await {
                tracing::warn!(%error, count = dirty.len(), "recording outpost instances failed; will retry");
                self.with(|inner| {
                    for record in dirty {
                        let key = (record.outpost_id, record.instance_id.clone());
                        inner.instances.entry(key.clone()).or_insert(record);
                        inner.dirty.insert(key);
                    }
                });
            }
            if stopping {
                return;
            }
        }
    }
}
