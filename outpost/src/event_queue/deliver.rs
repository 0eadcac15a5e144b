//! Delivery: reads batches from the queue's cursor, posts them to the core, and moves the
//! cursor on only once the core answered, so a crash or a lost answer sends a batch again (the
//! core stores each event id once). While the core is unreachable it retries with backoff, and
//! at once when the control channel comes back.

use super::Shared;
use super::segments::{Batch, SegmentReader};
use crate::core_api::CoreApi;
use redoubt_outpost_proto::credentials::{
    MAX_EVENTS_PER_REQUEST, OutpostEvent, OutpostEventsRequest,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// First wait after a failed delivery.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest wait between deliveries while the core is unreachable.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Look at the queue this often even without a wake-up.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// What a batch of lines holds: the events that parse, and how many did not.
pub fn parse_batch(batch: &Batch) -> (Vec<OutpostEvent>, usize) {
    let mut events = Vec::with_capacity(batch.lines.len());
    let mut corrupt = 0;
    for line in &batch.lines {
        match serde_json::from_slice::<OutpostEvent>(line) {
            Ok(event) => events.push(event),
            Err(_) => corrupt += 1,
        }
    }
    (events, corrupt)
}

pub(super) async fn deliver_loop(
    reader: SegmentReader,
    shared: Arc<Shared>,
    core: CoreApi,
    mut connected: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut reader = Some(reader);
    let mut retry = FIRST_RETRY;
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(current) = reader.take() else { return };
        let head = shared.head.load(Ordering::Acquire);
        let read = tokio::task::spawn_blocking(move || {
            let batch = current.read(MAX_EVENTS_PER_REQUEST, head);
            (current, batch)
        })
        .await;
        let Ok((current, batch)) = read else { return };
        reader = Some(current);
        let batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, dir = %shared.dir.display(), "cannot read the event queue");
                if wait(&shared, &mut connected, &mut stop, MAX_RETRY, false).await {
                    return;
                }
                continue;
            }
        };
        let moved = batch
            .next
            .is_some_and(|next| reader.as_ref().is_some_and(|r| next != r.cursor()));
        if batch.lines.is_empty() {
            if moved && !commit(&mut reader, &batch, &shared).await {
                return;
            }
            if !moved && wait(&shared, &mut connected, &mut stop, IDLE_CHECK, true).await {
                return;
            }
            continue;
        }
        let (events, corrupt) = parse_batch(&batch);
        if corrupt > 0 {
            tracing::warn!(corrupt, "skipping unreadable events in the queue");
            shared
                .metrics
                .events
                .with_label_values(&["unreadable"])
                .inc_by(corrupt as u64);
        }
        let count = events.len() as u64;
        let result = if events.is_empty() {
            Ok(())
        } else {
            let request = OutpostEventsRequest { events };
            tokio::select! {
                result = core.record_events(&request) => result,
                // Not delivered as far as the queue knows: sent again after the restart.
                () = crate::module::stopped(&mut stop) => return,
            }
        };
        match result {
            Ok(()) => {
                shared
                    .metrics
                    .events
                    .with_label_values(&["delivered"])
                    .inc_by(count);
                retry = FIRST_RETRY;
            }
            Err(error) if error.is_refusal() => {
                tracing::error!(%error, events = count, "the core refused queued events; they are dropped");
                shared
                    .metrics
                    .events
                    .with_label_values(&["refused"])
                    .inc_by(count);
            }
            Err(error) => {
                tracing::warn!(%error, events = count, retry_in = ?retry, "queued events wait: the core is unreachable");
                if wait(&shared, &mut connected, &mut stop, retry, false).await {
                    return;
                }
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        }
        if !commit(&mut reader, &batch, &shared).await {
            return;
        }
    }
}

/// Moves the cursor past `batch`; false when the queue can no longer be used.
async fn commit(reader: &mut Option<SegmentReader>, batch: &Batch, shared: &Shared) -> bool {
    let (Some(mut current), Some(next)) = (reader.take(), batch.next) else {
        return false;
    };
    let done = tokio::task::spawn_blocking(move || {
        let freed = current.commit(next);
        (current, freed)
    })
    .await;
    let Ok((current, freed)) = done else {
        return false;
    };
    match freed {
        Ok(freed) => shared.sub_bytes(freed),
        Err(error) => {
            tracing::error!(%error, dir = %shared.dir.display(), "cannot record event delivery; events may be sent again")
        }
    }
    *reader = Some(current);
    true
}

/// Waits for new events (when `on_written`: not while backing off from a dead core), the
/// channel coming up, `limit`, or stop; true on stop.
async fn wait(
    shared: &Shared,
    connected: &mut watch::Receiver<bool>,
    stop: &mut watch::Receiver<bool>,
    limit: Duration,
    on_written: bool,
) -> bool {
    connected.borrow_and_update();
    let written = async {
        if on_written {
            shared.written.notified().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = written => false,
        () = tokio::time::sleep(limit) => false,
        changed = connected.changed() => {
            if changed.is_err() {
                // No channel state any more: fall back to the timer.
                tokio::time::sleep(limit).await;
            }
            false
        }
        () = crate::module::stopped(stop) => true,
    }
}
