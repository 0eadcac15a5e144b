//! `bench-queue`: the outpost's on-disk event queue. Prints durable enqueues per second (each
//! record fsynced before its caller is answered, as an Accounting-Response waits) with many
//! concurrent senders, beside the same records appended with one fsync each (what a queue
//! without group commit would do on this disk), and the bytes 10,000 accounting records take
//! on disk. Run with `scripts/bench-queue`. Not a test.

use redoubt_outpost::core_api::CoreApi;
use redoubt_outpost::event_queue::{self, QUEUE_DIR};
use redoubt_outpost_proto::clock::SystemClock;
use redoubt_outpost_proto::credentials::OutpostEvent;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Records per measurement.
const RECORDS: usize = 10_000;
/// Concurrent senders (NAS requests in flight).
const SENDERS: usize = 256;
/// Records for the one-fsync-each baseline (slow by design).
const BASELINE_RECORDS: usize = 1_000;

/// A typical Accounting-Request stop record, as the RADIUS outpost queues it.
fn record(n: usize) -> OutpostEvent {
    let detail = serde_json::json!({
        "status": "stop",
        "session_id": format!("{n:016x}"),
        "nas_identifier": "switch-17.example.net",
        "nas_ip_address": "10.20.30.40",
        "calling_station_id": "00-11-22-33-44-55",
        "called_station_id": "AA-BB-CC-DD-EE-FF:corp",
        "framed_ip_address": "10.8.0.9",
        "session_time": 3600,
        "input_octets": 123_456_789u64,
        "output_octets": 987_654_321u64,
        "input_packets": 120_000,
        "output_packets": 240_000,
        "terminate_cause": 1,
    });
    OutpostEvent {
        provider_id: 3,
        action: "radius_accounting".into(),
        username: Some(format!("user{:05}", n % 50_000)),
        source_address: Some("10.20.30.40".into()),
        detail: detail.as_object().cloned().unwrap_or_default(),
        id: None,
        occurred_at: None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let state = tempfile::tempdir_in(&dir)?;
    println!(
        "event queue in {} ({} records, {SENDERS} concurrent senders)",
        state.path().display(),
        RECORDS
    );
    // Nothing listens on port 9: delivery waits, so the queue holds every record.
    let core = CoreApi::new(reqwest::Client::new(), "http://127.0.0.1:9", "bench");
    let (_connected_tx, connected) = watch::channel(false);
    let (stop_tx, stop) = watch::channel(false);
    let started = event_queue::start(
        state.path(),
        1 << 30,
        core,
        Arc::new(SystemClock),
        &prometheus::Registry::new(),
        connected,
        stop,
    )?;
    let queue = started.queue;
    let began = Instant::now();
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let queue = queue.clone();
        senders.push(tokio::spawn(async move {
            let mut failed = 0usize;
            for n in (s..RECORDS).step_by(SENDERS) {
                if queue.enqueue_durable(record(n)).await.is_err() {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for sender in senders {
        failed += sender.await?;
    }
    let elapsed = began.elapsed().as_secs_f64();
    anyhow::ensure!(failed == 0, "{failed} records were refused");
    let grouped = RECORDS as f64 / elapsed;
    let queue_dir = state.path().join(QUEUE_DIR);
    let mut bytes = 0u64;
    for entry in std::fs::read_dir(&queue_dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(".log") {
            bytes += entry.metadata()?.len();
        }
    }
    let _ = stop_tx.send(true);
    for task in started.tasks {
        let _ = task.await;
    }

    // Baseline: the same lines, one write and one fsync each.
    let baseline_path = state.path().join("baseline.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&baseline_path)?;
    let lines: Vec<Vec<u8>> = (0..BASELINE_RECORDS)
        .map(|n| {
            let mut line = serde_json::to_vec(&record(n)).unwrap_or_default();
            line.push(b'\n');
            line
        })
        .collect();
    let began = Instant::now();
    for line in &lines {
        file.write_all(line)?;
        file.sync_data()?;
    }
    let single = BASELINE_RECORDS as f64 / began.elapsed().as_secs_f64();

    println!(
        "durable enqueue, group commit:      {grouped:>10.0} records/s ({elapsed:.2} s for {RECORDS})"
    );
    println!("durable append, one fsync each:     {single:>10.0} records/s");
    println!(
        "ratio group commit / fsync each:    {:>10.1}x",
        grouped / single
    );
    println!(
        "on disk per 10,000 records:         {:>10.2} MiB ({:.0} bytes per record)",
        bytes as f64 / (1 << 20) as f64 * (10_000.0 / RECORDS as f64),
        bytes as f64 / RECORDS as f64
    );
    Ok(())
}
