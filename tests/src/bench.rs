//! Helpers shared by the benchmark binaries (`bench-core`, `bench-channel`): free ports, process
//! memory, and waiting for a started process to answer ready.

use anyhow::{Context, bail};
use std::time::{Duration, Instant};

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
