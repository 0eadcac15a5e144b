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
        let request = OutpostEventsRequest { events };
        let result = if request.events.is_empty() {
            Ok(())
        } else {
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
                // One bad event (a provider no longer served, say) must not cost the others
                // their delivery: send them one by one, dropping only what is refused.
                let OutpostEventsRequest { events } = request;
                let mut refused = 0u64;
                let mut delivered = 0u64;
                let mut unreachable = false;
                for event in events {
                    let single = OutpostEventsRequest {
                        events: vec![event],
                    };
                    match core.record_events(&single).await {
                        Ok(()) => delivered += 1,
                        Err(error) if error.is_refusal() => {
                            tracing::error!(%error, "the core refused a queued event; it is dropped");
                            refused += 1;
                        }
                        Err(_) => {
                            unreachable = true;
                            break;
                        }
                    }
                }
                let metrics = &shared.metrics.events;
                metrics.with_label_values(&["delivered"]).inc_by(delivered);
                metrics.with_label_values(&["refused"]).inc_by(refused);
                if unreachable {
                    // Sent again whole later; the core stores the delivered ones once.
                    if wait(&shared, &mut connected, &mut stop, retry, false).await {
                        return;
                    }
                    retry = (retry * 2).min(MAX_RETRY);
                    continue;
                }
                tracing::warn!(error = %error, refused, delivered, "a batch of queued events was refused; the rest was delivered one by one");
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

#[cfg(test)]
mod tests {
    use crate::core_api::{CoreApi, EVENTS_PATH};
    use crate::event_queue::{QUEUE_DIR, segments::SegmentReader, start};
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::{Json, Router, extract::State};
    use redoubt_outpost_proto::clock::ManualClock;
    use redoubt_outpost_proto::credentials::{OutpostEvent, OutpostEventsRequest};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::sync::watch;

    type Received = Arc<Mutex<Vec<(i64, String)>>>;

    /// A core that refuses any batch holding provider 99 (403) and stores the others.
    async fn record(
        State(received): State<Received>,
        Json(body): Json<OutpostEventsRequest>,
    ) -> (StatusCode, Json<serde_json::Value>) {
        if body.events.iter().any(|e| e.provider_id == 99) {
            return (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({"detail": "provider 99 is not served by this outpost"})),
            );
        }
        let mut stored = received.lock().expect("lock");
        for event in &body.events {
            stored.push((event.provider_id, event.id.clone().unwrap_or_default()));
        }
        (
            StatusCode::OK,
            Json(serde_json::json!({"recorded": body.events.len()})),
        )
    }

    fn event(provider_id: i64) -> OutpostEvent {
        OutpostEvent {
            provider_id,
            action: "radius_accounting".into(),
            username: Some("alice".into()),
            source_address: None,
            detail: Default::default(),
            id: None,
            occurred_at: None,
        }
    }

    #[tokio::test]
    async fn a_refused_event_costs_only_itself_and_delivered_ones_are_not_sent_again() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let received = Received::default();
        let app = Router::new()
            .route(EVENTS_PATH, post(record))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = prometheus::Registry::new();
        let (_connected_tx, connected) = watch::channel(true);
        let (stop_tx, stop) = watch::channel(false);
        let started = start(
            dir.path(),
            1 << 20,
            CoreApi::new(reqwest::Client::new(), &url, "token"),
            Arc::new(ManualClock::new(1_800_000_000)),
            &registry,
            connected,
            stop,
        )
        .expect("start");
        // Queued together (the single-threaded test runtime runs the writer only once all three
        // wait), so they are written, read and sent as one batch.
        let queue = &started.queue;
        let (a, b, c) = tokio::join!(
            queue.enqueue_durable(event(1)),
            queue.enqueue_durable(event(99)),
            queue.enqueue_durable(event(2)),
        );
        assert_eq!((a, b, c), (Ok(()), Ok(()), Ok(())));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while received.lock().expect("lock").len() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "two events delivered within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stored = received.lock().expect("lock").clone();
        let mut providers: Vec<i64> = stored.iter().map(|(p, _)| *p).collect();
        providers.sort_unstable();
        assert_eq!(providers, [1, 2]);
        assert!(stored.iter().all(|(_, id)| id.len() == 32));
        let _ = stop_tx.send(true);
        for task in started.tasks {
            task.await.expect("task ends");
        }
        // The cursor is past all three: a restarted queue sends nothing again.
        let reader = SegmentReader::open(&dir.path().join(QUEUE_DIR)).expect("reopen");
        assert!(reader.read(10, 1).expect("read").lines.is_empty());
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .expect("metrics");
        assert!(
            text.contains("redoubt_outpost_events_total{result=\"refused\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("redoubt_outpost_events_total{result=\"delivered\"} 2\n"),
            "{text}"
        );
    }
}
