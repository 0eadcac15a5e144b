//! `bench-core`: release-build figures of the core, printed against the goals of issue 2.
//! Run with `scripts/bench-core` (builds in release mode first). Not a test: it never fails on
//! a timing.
//!
//! Measures: time from start to ready on SQLite, idle RSS, p50/p99 of a user list request with
//! 10,000 users, and credential checks per second with the default Argon2id parameters.

use anyhow::{Context, bail};
use redoubt_tests::bench::{free_port, rss_mb, wait_ready};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let binary = std::env::args()
        .nth(1)
        .context("usage: bench-core <path to release redoubt-core>")?;
    let dir = tempfile::tempdir()?;
    let token = format!("rdt_bench{}", "x".repeat(40));
    let port = free_port()?;
    let metrics_port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&binary)
        .args(["serve", "--listen-http", &format!("127.0.0.1:{port}")])
        .args(["--listen-metrics", &format!("127.0.0.1:{metrics_port}")])
        .args(["--listen-https", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("REDOUBT_BOOTSTRAP_TOKEN", &token)
        .env("REDOUBT_BOOTSTRAP_PASSWORD", "bench-admin-password")
        .env("REDOUBT_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start the core")?;
    let client = reqwest::Client::new();
    let ready = wait_ready(&client, &url, "the core", started).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().context("pid")?;
    let idle_rss_mb = rss_mb(pid)?;

    // 10,000 users, 8 writers at a time.
    let fill = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            for i in (worker..10_000).step_by(8) {
                let body = json!({"username": format!("user{i:05}"), "name": format!("User {i}"), "email": format!("user{i}@example.com")});
                let r = client.post(format!("{url}/api/v1/users")).bearer_auth(&token).json(&body).send().await?;
                if !r.status().is_success() {
                    bail!("creating a user answered {}", r.status());
                }
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let fill_time = fill.elapsed();
    let filled_rss_mb = rss_mb(pid)?;
    let mut latencies = Vec::new();
    for i in 0..2000u32 {
        let page = 1 + (i % 200);
        let t = Instant::now();
        let r = client
            .get(format!("{url}/api/v1/users?page={page}&page_size=50"))
            .bearer_auth(&token)
            .send()
            .await?;
        let _ = r.bytes().await?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let search = Instant::now();
    client
        .get(format!("{url}/api/v1/users?search=user0999"))
        .bearer_auth(&token)
        .send()
        .await?
        .bytes()
        .await?;
    let search_time = search.elapsed();

    // Credential checks with the default Argon2id parameters.
    let api = |path: &str, body: Value| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        let path = path.to_owned();
        async move {
            let r = client
                .post(format!("{url}{path}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await?;
            anyhow::Ok(r.json::<Value>().await?)
        }
    };
    api(
        "/api/v1/users",
        json!({"username": "bench", "password": "bench-password-1"}),
    )
    .await?;
    let provider = api(
        "/api/v1/providers",
        json!({"name": "bench", "kind": "ldap", "settings": {"base_dn": "dc=bench"}}),
    )
    .await?;
    api(
        "/api/v1/applications",
        json!({"slug": "bench", "name": "Bench", "provider_id": provider["id"]}),
    )
    .await?;
    let outpost = api(
        "/api/v1/outposts",
        json!({"name": "bench", "kind": "ldap", "provider_ids": [provider["id"]]}),
    )
    .await?;
    let outpost_token = outpost["token"]
        .as_str()
        .context("outpost token")?
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let window = Duration::from_secs(5);
    let checks_started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cores * 2 {
        let (client, url, token) = (client.clone(), url.clone(), outpost_token.clone());
        let provider_id = provider["id"].clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while checks_started.elapsed() < window {
                let r: Value = client
                    .post(format!("{url}/api/v1/outpost/credentials/verify"))
                    .bearer_auth(&token)
                    .json(&json!({"provider_id": provider_id, "username": "bench", "password": "bench-password-1"}))
                    .send()
                    .await?
                    .json()
                    .await?;
                if r["result"] != "success" {
                    bail!("credential check failed: {r}");
                }
                n += 1;
            }
            Ok(n)
        }));
    }
    let mut checks = 0;
    for t in tasks {
        checks += t.await??;
    }
    let checks_per_second = checks as f64 / checks_started.elapsed().as_secs_f64();
    let busy_rss_mb = rss_mb(pid)?;
    child.kill().await.ok();

    println!("Redoubt core benchmark (release, SQLite, {cores} cores)");
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "figure", "measured", "goal", "ratio"
    );
    row("start to ready", ready.as_secs_f64() * 1000.0, 1000.0, "ms");
    row("idle RSS", idle_rss_mb, 40.0, "MB");
    row(
        "list users p50 (10,000 users, 50/page)",
        p50.as_secs_f64() * 1000.0,
        5.0,
        "ms",
    );
    row(
        "list users p99 (10,000 users, 50/page)",
        p99.as_secs_f64() * 1000.0,
        5.0,
        "ms",
    );
    println!(
        "{:<44} {:>9.1} ms",
        "search over 10,000 users",
        search_time.as_secs_f64() * 1000.0
    );
    println!(
        "{:<44} {:>9.1} s",
        "creating 10,000 users over the API",
        fill_time.as_secs_f64()
    );
    println!(
        "{:<44} {:>9.1} /s  (Argon2id m=19 MiB t=2 p=1)",
        "credential checks", checks_per_second
    );
    println!(
        "{:<44} {:>9.1} MB",
        "RSS after creating 10,000 users", filled_rss_mb
    );
    println!(
        "{:<44} {:>9.1} MB",
        "RSS after the credential-check load", busy_rss_mb
    );
    println!(
        "peer: authentik server+worker idle ~735 MiB -> {:.0}x less memory idle",
        735.0 * 1.048576 / idle_rss_mb
    );
    Ok(())
}

fn row(name: &str, measured: f64, goal: f64, unit: &str) {
    println!(
        "{name:<44} {measured:>9.2} {unit} {goal:>9.1} {unit} {:>7.2}x",
        goal / measured
    );
}
