//! Helpers shared by the benchmark binaries: free ports, process memory, waiting for a started
//! process to answer ready, and a release core and outposts started as processes.

use anyhow::{Context, bail};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A port that was free a moment ago (the benchmarks start real binaries that bind it).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Resident memory of `pid` in MB, from `/proc/<pid>/status`.
pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1000.0)
}

/// Polls `base/-/health/ready` until it answers 200, for at most 30 s; returns how long it took
/// from `started`. A benchmark measures start-up this way; tests never poll.
pub async fn wait_ready(
    client: &reqwest::Client,
    base: &str,
    what: &str,
    started: Instant,
) -> anyhow::Result<Duration> {
    loop {
        if client
            .get(format!("{base}/-/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("{what} did not become ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The core's REST API with the bootstrap token.
#[derive(Clone)]
pub struct BenchApi {
    pub client: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl BenchApi {
    /// POSTs `body` to `path`; an error names the status and the core's answer.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!("POST {path} answered {status}: {}", response.text().await?);
        }
        Ok(response.json().await.unwrap_or(Value::Null))
    }
}

/// A release core running as a process with SQLite in its data dir; killed on drop.
pub struct BenchCore {
    pub process: Child,
    pub api: BenchApi,
}

/// Starts `binary` (`redoubt-core`) on free loopback ports with SQLite in `data_dir` and an
/// admin bootstrap token, and waits until it is ready.
pub async fn start_core(binary: &Path, data_dir: &Path) -> anyhow::Result<BenchCore> {
    let token = format!("rdt_bench{}", "z".repeat(40));
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let process = Command::new(binary)
        .args(["serve", "--listen-http", &format!("127.0.0.1:{port}")])
        .args(["--listen-metrics", &format!("127.0.0.1:{}", free_port()?)])
        .args(["--listen-https", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .env("REDOUBT_BOOTSTRAP_TOKEN", &token)
        .env("REDOUBT_BOOTSTRAP_PASSWORD", "bench-admin-password")
        .env("REDOUBT_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start the core")?;
    let api = BenchApi {
        client: reqwest::Client::new(),
        url,
        token,
    };
    wait_ready(&api.client, &api.url, "the core", Instant::now()).await?;
    Ok(BenchCore { process, api })
}

/// Starts `binary` (`redoubt-outpost run`) for `token` with its state in `state`, metrics on a
/// free port and `listen` as extra `REDOUBT_LISTEN__*` variables; returns the process and the
/// metrics address (`127.0.0.1:port`).
pub fn start_outpost(
    binary: &Path,
    core_url: &str,
    token: &str,
    state: &Path,
    listen: &[(&str, String)],
) -> anyhow::Result<(Child, String)> {
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let mut command = Command::new(binary);
    command
        .arg("run")
        .env("REDOUBT_URL", core_url)
        .env("REDOUBT_TOKEN", token)
        .env("REDOUBT_STATE_DIR", state)
        .env("REDOUBT_LISTEN__METRICS", &metrics)
        .env("REDOUBT_LOG_LEVEL", "warn");
    for (name, value) in listen {
        command.env(format!("REDOUBT_LISTEN__{name}"), value);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start the outpost")?;
    Ok((child, metrics))
}
