//! `bench-channel`: simulated outposts against one release core. Prints the core's RSS with
//! 1,000 and 10,000 connected instances and the time from a committed change to each instance's
//! acknowledgement with 1,000 instances. Run with `scripts/bench-channel`. Not a test.

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use redoubt_outpost_proto::control::{CoreMessage, OutpostMessage};
use redoubt_tests::bench::{free_port, rss_mb, wait_ready};
use redoubt_tests::channel::hello;
use serde_json::json;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Barrier, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Set when the measurements are done and the core is stopped on purpose.
static FINISHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let binary = std::env::args()
        .nth(1)
        .context("usage: bench-channel <release redoubt-core>")?;
    let dir = tempfile::tempdir()?;
    let token = format!("rdt_bench{}", "y".repeat(40));
    let port = free_port()?;
    let metrics_port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(&binary)
        .args(["serve", "--listen-http", &format!("127.0.0.1:{port}")])
        .args(["--listen-metrics", &format!("127.0.0.1:{metrics_port}")])
        .args(["--listen-https", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("REDOUBT_BOOTSTRAP_TOKEN", &token)
        .env("REDOUBT_BOOTSTRAP_PASSWORD", "bench-admin-password")
        .env("REDOUBT_LOG_LEVEL", "warn")
        .env("REDOUBT_LIMITS__MAX_CONNECTIONS", "20000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start the core")?;
    let client = reqwest::Client::new();
    wait_ready(&client, &url, "the core", Instant::now()).await?;
    let pid = child.id().context("pid")?;
    let post = |path: &str, body: serde_json::Value| {
        let (client, url, token, path) =
            (client.clone(), url.clone(), token.clone(), path.to_owned());
        async move {
            let r = client
                .post(format!("{url}{path}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await?;
            anyhow::Ok(r.json::<serde_json::Value>().await?)
        }
    };
    let provider = post("/api/v1/providers", json!({"name": "wifi", "kind": "radius", "settings": {"shared_secret": "0123456789abcdef", "client_networks": ["10.0.0.0/8"]}})).await?;
    post(
        "/api/v1/applications",
        json!({"slug": "wifi", "name": "Wi-Fi", "provider_id": provider["id"]}),
    )
    .await?;
    let outpost = post("/api/v1/outposts", json!({"name": "radius", "kind": "radius", "provider_ids": [provider["id"]], "settings": {"expected_replicas": 10000}})).await?;
    let outpost_token = outpost["token"].as_str().context("token")?.to_owned();
    let baseline_rss = rss_mb(pid)?;
    let outpost_rss = real_outpost_rss(&binary, &url, &post).await?;

    // Each simulated instance: hello, apply the snapshot, ack; then ack every change set and
    // report when it saw each revision.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(i64, Instant)>();
    let mut total = 0usize;
    let mut rows = Vec::new();
    for target in [1_000usize, 10_000] {
        let ready = Arc::new(Barrier::new(target - total + 1));
        for i in total..target {
            let (url, token, seen, ready) = (
                url.clone(),
                outpost_token.clone(),
                seen_tx.clone(),
                ready.clone(),
            );
            tokio::spawn(async move {
                if let Err(error) = simulated_instance(&url, &token, i, seen, ready).await
                    && !FINISHED.load(std::sync::atomic::Ordering::SeqCst)
                {
                    eprintln!("instance {i}: {error:#}");
                }
            });
            if i % 200 == 199 {
                tokio::task::yield_now().await;
            }
        }
        tokio::time::timeout(Duration::from_secs(300), ready.wait())
            .await
            .with_context(|| {
                format!("not all {target} simulated instances got their configuration within 5 min")
            })?;
        total = target;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = rss_mb(pid)?;
        rows.push((target, rss));
        if target == 1_000 {
            // Change-to-ack latency with 1,000 instances, over 20 changes.
            let mut samples = Vec::new();
            for n in 0..20 {
                while seen_rx.try_recv().is_ok() {}
                let committed = Instant::now();
                post("/api/v1/users", json!({"username": format!("bench{n}")})).await?;
                let mut got = 0;
                let mut last = Duration::ZERO;
                while got < target {
                    let (_, at) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                        .await
                        .context("instances did not all see the change within 10 s")?
                        .context("channel closed")?;
                    let latency = at.saturating_duration_since(committed);
                    samples.push(latency);
                    last = last.max(latency);
                    got += 1;
                }
                println!(
                    "change {n:>2}: last of {target} instances acknowledged after {:.1} ms",
                    last.as_secs_f64() * 1000.0
                );
            }
            samples.sort();
            let p50 = samples[samples.len() / 2];
            let p99 = samples[samples.len() * 99 / 100];
            let max = samples[samples.len() - 1];
            println!(
                "change -> instance ack, 1,000 instances x 20 changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 < 1000 ms, ratio {:.1}x)",
                p50.as_secs_f64() * 1000.0,
                p99.as_secs_f64() * 1000.0,
                max.as_secs_f64() * 1000.0,
                1.0 / p99.as_secs_f64()
            );
        }
    }
    println!("core RSS: {baseline_rss:.1} MB with no outposts");
    for (n, rss) in rows {
        println!("core RSS: {rss:.1} MB with {n} connected instances");
    }
    println!("goal: 10,000 instances under 300 MB");
    println!(
        "real redoubt-outpost (LDAP, 100 users) idle RSS: {outpost_rss:.1} MB (goal under 20 MB, ratio {:.1}x)",
        20.0 / outpost_rss
    );
    FINISHED.store(true, std::sync::atomic::Ordering::SeqCst);
    child.kill().await.ok();
    Ok(())
}

/// Starts the release `redoubt-outpost` next to the core binary as an LDAP outpost with 100 users
/// in its directory, waits until it is ready and idle, and returns its RSS.
async fn real_outpost_rss<F, Fut>(core_binary: &str, url: &str, post: &F) -> anyhow::Result<f64>
where
    F: Fn(&str, serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<serde_json::Value>>,
{
    for i in 0..100 {
        post(
            "/api/v1/users",
            json!({"username": format!("dir{i:03}"), "email": format!("dir{i}@example.com")}),
        )
        .await?;
    }
    let provider = post(
        "/api/v1/providers",
        json!({"name": "dir", "kind": "ldap", "settings": {"base_dn": "dc=example,dc=com"}}),
    )
    .await?;
    post(
        "/api/v1/applications",
        json!({"slug": "dir", "name": "Directory", "provider_id": provider["id"]}),
    )
    .await?;
    let outpost = post(
        "/api/v1/outposts",
        json!({"name": "ldap", "kind": "ldap", "provider_ids": [provider["id"]]}),
    )
    .await?;
    let token = outpost["token"].as_str().context("token")?.to_owned();
    let outpost_binary = std::path::Path::new(core_binary).with_file_name("redoubt-outpost");
    let state = tempfile::tempdir()?;
    let metrics_port = free_port()?;
    let mut child = tokio::process::Command::new(&outpost_binary)
        .arg("run")
        .env("REDOUBT_URL", url)
        .env("REDOUBT_TOKEN", &token)
        .env("REDOUBT_STATE_DIR", state.path())
        .env(
            "REDOUBT_LISTEN__METRICS",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("REDOUBT_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", outpost_binary.display()))?;
    let client = reqwest::Client::new();
    let metrics = format!("http://127.0.0.1:{metrics_port}");
    wait_ready(&client, &metrics, "the outpost", Instant::now()).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = rss_mb(child.id().context("pid")?)?;
    child.kill().await.ok();
    Ok(rss)
}

async fn simulated_instance(
    url: &str,
    token: &str,
    i: usize,
    seen: mpsc::UnboundedSender<(i64, Instant)>,
    ready: Arc<Barrier>,
) -> anyhow::Result<()> {
    let mut request =
        format!("{}/api/v1/outpost/ws", url.replacen("http", "ws", 1)).into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let hello = OutpostMessage::Hello(hello(&format!("sim-{i}"), None));
    socket
        .send(Message::text(serde_json::to_string(&hello)?))
        .await?;
    let mut ready = Some(ready);
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let revision = match serde_json::from_str::<CoreMessage>(&text)? {
            CoreMessage::Welcome { .. } => continue,
            CoreMessage::Snapshot(s) => s.revision,
            CoreMessage::Changes(c) => {
                let _ = seen.send((c.revision, Instant::now()));
                c.revision
            }
        };
        socket
            .send(Message::text(serde_json::to_string(
                &OutpostMessage::Ack { revision },
            )?))
            .await?;
        if let Some(ready) = ready.take() {
            ready.wait().await;
        }
    }
    Ok(())
}
