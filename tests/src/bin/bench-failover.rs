//! `bench-failover`: how fast outposts converge after core failures, with the release core as a
//! process and real outpost runtimes in this process (proxy outposts with their listeners off,
//! so 1,000 fit on one machine). Prints:
//! - the time from a core restart (`kill -9`, start again) to every one of 1,000 outposts at the
//!   latest revision, and from the restarted core's first ready answer;
//! - with `--postgres URL`: the time from the death of the replica an outpost uses to that
//!   outpost serving a new change made through the other replica (several rounds).
//!
//! Run with `scripts/bench-failover`. Not a test.

use anyhow::Context;
use redoubt_outpost::settings::{ListenSettings, OutpostSettings};
use redoubt_outpost::{RunningOutpost, StartOptions};
use redoubt_tests::core_process::CoreProcess;
use serde_json::json;
use std::time::{Duration, Instant};

const OUTPOSTS: usize = 1_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let postgres = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1).cloned());
    let outposts = args
        .iter()
        .position(|a| a == "--outposts")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(OUTPOSTS);
    restart_with_many_outposts(outposts).await?;
    match postgres {
        Some(url) => replica_death(&url).await?,
        None => println!("replica death: skipped (give --postgres postgres://... to measure it)"),
    }
    Ok(())
}

fn secret() -> String {
    redoubt_core::auth::token::generate().unwrap_or_else(|_| "x".repeat(48))
}

/// A proxy provider, an application and an outpost for it; returns the outpost's token.
async fn proxy_outpost(core: &CoreProcess, name: &str, settings: serde_json::Value) -> String {
    let provider = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": name, "kind": "proxy",
                   "settings": {"mode": "forward_single",
                                "external_host": format!("https://{name}.example.com")}}),
        )
        .await
        .expect(201);
    core.api
        .post(
            "/api/v1/applications",
            json!({"slug": name, "name": name, "provider_id": provider["id"]}),
        )
        .await
        .expect(201);
    let outpost = core
        .api
        .post(
            "/api/v1/outposts",
            json!({"name": name, "kind": "proxy", "provider_ids": [provider["id"]],
                   "settings": settings}),
        )
        .await
        .expect(201);
    outpost["token"].as_str().unwrap_or_default().to_owned()
}

/// An outpost runtime in this process with every listener but metrics off.
async fn outpost(
    url: &str,
    token: &str,
    state: &std::path::Path,
) -> anyhow::Result<RunningOutpost> {
    let settings = OutpostSettings {
        url: url.to_owned(),
        token: token.to_owned(),
        state_dir: state.to_owned(),
        log_level: "error".into(),
        listen: ListenSettings {
            metrics: "127.0.0.1:0".into(),
            http: String::new(),
            https: String::new(),
            ldap: String::new(),
            ldaps: String::new(),
            radius: String::new(),
            radius_accounting: String::new(),
        },
        core_failback_seconds: 1,
        ..OutpostSettings::default()
    };
    redoubt_outpost::start_with(settings, StartOptions::default()).await
}

async fn all_at(outposts: &[RunningOutpost], revision: i64, limit: Duration) -> anyhow::Result<()> {
    let wait =
        futures_util::future::join_all(outposts.iter().map(|o| o.wait_for_revision(revision)));
    tokio::time::timeout(limit, wait)
        .await
        .map(|_| ())
        .with_context(|| format!("not every outpost reached revision {revision} within {limit:?}"))
}

async fn restart_with_many_outposts(count: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("redoubt.db").display()
    );
    let admin = secret();
    let mut core = CoreProcess::start(&dir.path().join("core"), &database, &secret(), &admin).await;
    let token = proxy_outpost(&core, "fleet", json!({"expected_replicas": count})).await;
    let mut outposts = Vec::with_capacity(count);
    for i in 0..count {
        let state = dir.path().join(format!("outpost-{i}"));
        outposts.push(outpost(&core.url, &token, &state).await?);
    }
    all_at(&outposts, core.revision().await, Duration::from_secs(120)).await?;
    println!("{count} outposts connected to one core (SQLite)");
    for round in 1..=3 {
        let killed = Instant::now();
        core.restart().await;
        let ready = killed.elapsed();
        let started = Instant::now();
        // A change made the moment the core is back.
        core.api
            .post(
                "/api/v1/groups",
                json!({"name": format!("after-restart-{round}")}),
            )
            .await
            .expect(201);
        let revision = core.revision().await;
        all_at(&outposts, revision, Duration::from_secs(120)).await?;
        let converged = started.elapsed();
        println!(
            "restart {round}: core ready {:.2} s after kill -9; all {count} outposts at revision {revision} {:.2} s after it was ready ({:.2} s after the kill)",
            ready.as_secs_f64(),
            converged.as_secs_f64(),
            killed.elapsed().as_secs_f64()
        );
    }
    for o in outposts {
        o.stop().await;
    }
    Ok(())
}

async fn replica_death(server: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let name = format!("redoubt_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(server).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let mut url = url::Url::parse(server)?;
    url.set_path(&name);
    let result = replica_rounds(url.as_str()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    result
}

async fn replica_rounds(database: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (admin, key) = (secret(), secret());
    let mut cores = [
        CoreProcess::start(&dir.path().join("a"), database, &key, &admin).await,
        CoreProcess::start(&dir.path().join("b"), database, &key, &admin).await,
    ];
    let token = proxy_outpost(&cores[0], "pair", json!({"heartbeat_interval_seconds": 1})).await;
    let urls = format!("{},{}", cores[0].url, cores[1].url);
    let running = outpost(&urls, &token, &dir.path().join("outpost")).await?;
    all_at(
        std::slice::from_ref(&running),
        cores[0].revision().await,
        Duration::from_secs(30),
    )
    .await?;
    let mut times = Vec::new();
    for round in 0..5 {
        let current = current_endpoint(&running)
            .await
            .context("the endpoint in use")?;
        let victim = usize::from(current != cores[0].url);
        let survivor = 1 - victim;
        let killed = Instant::now();
        cores[victim].kill().await;
        cores[survivor]
            .api
            .post(
                "/api/v1/groups",
                json!({"name": format!("replica-round-{round}")}),
            )
            .await
            .expect(201);
        let revision = cores[survivor].revision().await;
        all_at(
            std::slice::from_ref(&running),
            revision,
            Duration::from_secs(60),
        )
        .await?;
        times.push(killed.elapsed());
        cores[victim].restart().await;
        // Back on its preferred replica before the next round.
        let preferred = cores[victim].url.clone();
        let back = Instant::now();
        while current_endpoint(&running).await.as_deref() != Some(preferred.as_str()) {
            anyhow::ensure!(
                back.elapsed() < Duration::from_secs(30),
                "no return to {preferred}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    times.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "replica death -> a change made through the other replica served by the outpost: median {:.0} ms, max {:.0} ms over {} rounds",
        ms(&times[times.len() / 2]),
        ms(times.last().unwrap_or(&Duration::ZERO)),
        times.len()
    );
    running.stop().await;
    Ok(())
}

/// The endpoint the outpost's metrics say it uses.
async fn current_endpoint(outpost: &RunningOutpost) -> Option<String> {
    let text = reqwest::get(format!("http://{}/metrics", outpost.metrics_addr))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| l.starts_with("redoubt_outpost_core_endpoint{"))
        .find(|l| l.ends_with(" 1"))
        .and_then(|l| l.split('"').nth(1))
        .map(str::to_owned)
}
