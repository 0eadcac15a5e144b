//! The outpost's one queue of events for the core (RADIUS accounting, logins answered from the
//! credential cache): bounded, on disk in `<state dir>/events/`, fsynced, surviving restarts,
//! and delivered at least once.
//!
//! Each event gets a random 128-bit id and the time it happened when it is queued; the core
//! stores an id once, so a batch sent again after a lost answer is recorded once. Writes are
//! group-committed: everything that arrives while one fsync runs goes to disk with the next one,
//! so many concurrent RADIUS Accounting-Requests cost a few fsyncs, and each gets its answer
//! only once its record is durable ([`EventQueue::enqueue_durable`]). A full queue (the core
//! away for long) refuses new events and counts them; the NAS then keeps and retries its record.
//!
//! Layout: [`segments`] (the files), [`deliver`] (the task that sends to the core).

pub mod deliver;
pub mod segments;

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use redoubt_outpost_proto::clock::SharedClock;
use redoubt_outpost_proto::credentials::OutpostEvent;
use segments::SegmentWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// The directory of the queue inside the state dir.
pub const QUEUE_DIR: &str = "events";
/// Events waiting for the writer at most; more are refused at once.
const CHANNEL_CAPACITY: usize = 65_536;
/// Most events written with one fsync.
const MAX_GROUP: usize = 4096;

/// Why an event was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue holds `max_bytes` already: the core has been away for long.
    #[error(
        "the event queue is full (event_queue_max_bytes); the core has been unreachable for long"
    )]
    Full,
    /// The disk refused the write.
    #[error("the event queue cannot write to the state dir")]
    Io,
    /// The outpost is stopping, or too many events wait for the disk.
    #[error("the event queue is not taking events")]
    Closed,
}

impl QueueError {
    fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Io => "io_error",
            Self::Closed => "closed",
        }
    }
}

/// The queue's metrics.
#[derive(Debug, Clone)]
pub struct QueueMetrics {
    /// `redoubt_outpost_events_total{result}`: queued, delivered, refused by the core.
    pub events: IntCounterVec,
    /// `redoubt_outpost_events_dropped_total{reason}`: never queued (full, disk error, closed).
    pub dropped: IntCounterVec,
    /// `redoubt_outpost_event_queue_bytes`: bytes on disk.
    pub bytes: IntGauge,
}

impl QueueMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let events = IntCounterVec::new(
            Opts::new(
                "redoubt_outpost_events_total",
                "Events for the core by what became of them (queued, delivered, refused by the core)",
            ),
            &["result"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "redoubt_outpost_events_dropped_total",
                "Events never queued: the queue was full, the disk refused, or the outpost was stopping",
            ),
            &["reason"],
        )?;
        let bytes = IntGauge::new(
            "redoubt_outpost_event_queue_bytes",
            "Bytes the event queue holds on disk",
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        Ok(Self {
            events,
            dropped,
            bytes,
        })
    }
}

/// What the writer and the delivery task share.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    max_bytes: u64,
    /// Bytes the segments hold.
    bytes: AtomicU64,
    /// The segment the writer appends to.
    head: AtomicU64,
    /// Woken when events were written.
    written: Notify,
    metrics: QueueMetrics,
}

impl Shared {
    fn set_bytes(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::Release);
        self.show_bytes(bytes);
    }

    fn add_bytes(&self, added: u64) {
        let total = self.bytes.fetch_add(added, Ordering::AcqRel) + added;
        self.show_bytes(total);
    }

    fn sub_bytes(&self, freed: u64) {
        let before = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(freed))
            })
            .unwrap_or(0);
        self.show_bytes(before.saturating_sub(freed));
    }

    fn show_bytes(&self, bytes: u64) {
        self.metrics
            .bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

struct Pending {
    line: Vec<u8>,
    done: oneshot::Sender<Result<(), QueueError>>,
}

/// The handle that queues events; cheap to clone.
#[derive(Clone)]
pub struct EventQueue {
    sender: mpsc::Sender<Pending>,
    clock: SharedClock,
    metrics: QueueMetrics,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue").finish_non_exhaustive()
    }
}

/// A started queue: the handle and the tasks to wait for at shutdown.
pub struct StartedQueue {
    pub queue: EventQueue,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Opens the queue in `state_dir` and starts its writer and its delivery to `core`, until
/// `stop`. `connected` (the control channel's state) wakes a delivery waiting out a backoff the
/// moment the core is back.
pub fn start(
    state_dir: &Path,
    max_bytes: u64,
    core: crate::core_api::CoreApi,
    clock: SharedClock,
    registry: &Registry,
    connected: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<StartedQueue> {
    let dir = state_dir.join(QUEUE_DIR);
    let metrics = QueueMetrics::register(registry)?;
    let writer = SegmentWriter::open(&dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the event queue in {}: {e}; make the state dir (REDOUBT_STATE_DIR) writable by the outpost",
            dir.display()
        )
    })?;
    let reader = segments::SegmentReader::open(&dir)
        .map_err(|e| anyhow::anyhow!("cannot read the event queue in {}: {e}", dir.display()))?;
    let shared = Arc::new(Shared {
        bytes: AtomicU64::new(0),
        head: AtomicU64::new(writer.head()),
        written: Notify::new(),
        max_bytes,
        metrics: metrics.clone(),
        dir,
    });
    shared.set_bytes(segments::bytes_on_disk(&shared.dir).unwrap_or(0));
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    let write = tokio::spawn(write_loop(writer, receiver, shared.clone(), stop.clone()));
    let deliver = tokio::spawn(deliver::deliver_loop(reader, shared, core, connected, stop));
    Ok(StartedQueue {
        queue: EventQueue {
            sender,
            clock,
            metrics,
        },
        tasks: vec![write, deliver],
    })
}

/// 128 random bits in hex.
fn event_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(data_encoding::HEXLOWER.encode(&bytes))
}

impl EventQueue {
    /// Queues `event` (giving it an id and, if it has none, the current time) and resolves
    /// once it is on disk.
    pub async fn enqueue_durable(&self, event: OutpostEvent) -> Result<(), QueueError> {
        let done = self.enqueue(event)?;
        done.await.unwrap_or(Err(QueueError::Closed))
    }

    /// Queues `event` without waiting for the disk: for audit events whose request has been
    /// answered already. A refusal is counted in the metrics either way.
    pub fn enqueue_nowait(&self, event: OutpostEvent) {
        let _ = self.enqueue(event);
    }

    fn enqueue(
        &self,
        mut event: OutpostEvent,
    ) -> Result<oneshot::Receiver<Result<(), QueueError>>, QueueError> {
        if event.id.is_none() {
            event.id = event_id();
        }
        if event.occurred_at.is_none() {
            event.occurred_at = Some(self.clock.now());
        }
        let mut line = serde_json::to_vec(&event).map_err(|_| QueueError::Io)?;
        line.push(b'\n');
        let (done, wait) = oneshot::channel();
        if self.sender.try_send(Pending { line, done }).is_err() {
            self.metrics
                .dropped
                .with_label_values(&[QueueError::Closed.label()])
                .inc();
            return Err(QueueError::Closed);
        }
        Ok(wait)
    }
}

/// Takes what waits, writes it with one fsync, answers each, wakes delivery; again until stop
/// (events already waiting are still written then).
async fn write_loop(
    mut writer: SegmentWriter,
    mut receiver: mpsc::Receiver<Pending>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut stopping = false;
    loop {
        let first = if stopping {
            receiver.try_recv().ok()
        } else {
            tokio::select! {
                first = receiver.recv() => first,
                () = crate::module::stopped(&mut stop) => {
                    stopping = true;
                    receiver.close();
                    receiver.try_recv().ok()
                }
            }
        };
        let Some(first) = first else { return };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(pending) => group.push(pending),
                Err(_) => break,
            }
        }
        let mut bytes = Vec::new();
        let mut accepted = Vec::with_capacity(group.len());
        let mut held = shared.bytes.load(Ordering::Acquire);
        for pending in group {
            let len = pending.line.len() as u64;
            if held + len > shared.max_bytes {
                shared
                    .metrics
                    .dropped
                    .with_label_values(&[QueueError::Full.label()])
                    .inc();
                let _ = pending.done.send(Err(QueueError::Full));
                continue;
            }
            held += len;
            bytes.extend_from_slice(&pending.line);
            accepted.push(pending.done);
        }
        if accepted.is_empty() {
            continue;
        }
        let written_len = bytes.len() as u64;
        let written = tokio::task::spawn_blocking(move || {
            let result = writer.append(&bytes);
            (writer, result)
        })
        .await;
        let Ok((back, result)) = written else {
            tracing::error!("the event queue writer failed; events are no longer queued");
            return;
        };
        writer = back;
        let outcome = match result {
            Ok(()) => {
                shared.head.store(writer.head(), Ordering::Release);
                shared.add_bytes(written_len);
                shared
                    .metrics
                    .events
                    .with_label_values(&["queued"])
                    .inc_by(accepted.len() as u64);
                shared.written.notify_one();
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, dir = %shared.dir.display(), "cannot write events to the queue; check the state dir's disk");
                shared
                    .metrics
                    .dropped
                    .with_label_values(&[QueueError::Io.label()])
                    .inc_by(accepted.len() as u64);
                Err(QueueError::Io)
            }
        };
        for done in accepted {
            let _ = done.send(outcome);
        }
    }
}

/// A queue in a directory of its own under the system temp dir, delivering to `core`, that
/// never stops; for unit tests of the modules and the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn for_tests(core: crate::core_api::CoreApi) -> EventQueue {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let (connected_tx, connected) = watch::channel(false);
    let (stop_tx, stop) = watch::channel(false);
    std::mem::forget((connected_tx, stop_tx));
    start(
        &dir,
        1 << 20,
        core,
        Arc::new(redoubt_outpost_proto::clock::ManualClock::new(
            1_800_000_000,
        )),
        &Registry::new(),
        connected,
        stop,
    )
    .expect("queue")
    .queue
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::clock::ManualClock;

    fn event(n: usize) -> OutpostEvent {
        OutpostEvent {
            provider_id: 1,
            action: "radius_accounting".into(),
            username: Some(format!("user{n}")),
            source_address: None,
            detail: Default::default(),
            id: None,
            occurred_at: None,
        }
    }

    #[tokio::test]
    async fn events_get_ids_and_times_and_a_full_queue_refuses() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::new();
        let (_connected_tx, connected) = watch::channel(false);
        let (stop_tx, stop) = watch::channel(false);
        // A core nobody listens on: delivery keeps waiting, the queue fills.
        let core = crate::core_api::CoreApi::new(reqwest::Client::new(), "http://127.0.0.1:1", "t");
        let started = start(
            dir.path(),
            600,
            core,
            Arc::new(ManualClock::new(1_800_000_000)),
            &registry,
            connected,
            stop,
        )
        .expect("start");
        let mut results = Vec::new();
        for n in 0..10 {
            results.push(started.queue.enqueue_durable(event(n)).await);
        }
        assert_eq!(results[0], Ok(()));
        assert!(results.contains(&Err(QueueError::Full)), "{results:?}");
        let text =
            std::fs::read_to_string(dir.path().join(QUEUE_DIR).join(format!("{:020}.log", 1)))
                .expect("segment");
        let first: OutpostEvent =
            serde_json::from_str(text.lines().next().expect("a line")).expect("json");
        assert_eq!(first.occurred_at, Some(1_800_000_000));
        assert_eq!(first.id.as_ref().map(String::len), Some(32));
        assert!(text.len() <= 600);
        let _ = stop_tx.send(true);
        for task in started.tasks {
            task.await.expect("task ends");
        }
    }
}
