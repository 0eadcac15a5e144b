//! Helpers shared by the benchmark binaries: free ports, process memory and CPU time, waiting
//! for a started process to answer ready, a release core and outposts started as processes,
//! and figures read from Prometheus text (counters, histogram quantiles).

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

/// Resident memory of `pid` in MiB, from `/proc/<pid>/status`.
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    Ok(rss_mb(pid)? * 1000.0 / 1024.0)
}

/// Memory of `pid` in MiB that no other process shares (`Private_Clean` + `Private_Dirty` from
/// `/proc/<pid>/smaps_rollup`): what a forked process costs on top of its parent.
pub fn private_mib(pid: u32) -> anyhow::Result<f64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    let kb: f64 = rollup
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Private_Clean:")
                .or_else(|| l.strip_prefix("Private_Dirty:"))
        })
        .filter_map(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .sum();
    Ok(kb / 1024.0)
}

/// CPU time (user + system) `pid` has used so far, in seconds, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces), from field 3 (state) on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("stat without a command")?
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .context("stat field")
    };
    // utime and stime are fields 14 and 15 (indices 11 and 12 here), in USER_HZ (100/s).
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// The children of every thread of `pid` (a process forked by a thread other than the main one
/// is listed only under that thread's `children`).
pub fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            found.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// The value of the unlabelled sample `name` in Prometheus text, 0 when absent.
pub fn prometheus_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The cumulative buckets (`le`, count) of the unlabelled histogram `name` in Prometheus text,
/// in order of `le` (`+Inf` last).
pub fn prometheus_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let (le, rest) = l.strip_prefix(&prefix)?.split_once("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, rest.trim().parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The `q` quantile (0..1) of the observations between two snapshots of the same histogram's
/// buckets, interpolated linearly inside its bucket as Prometheus's `histogram_quantile` does;
/// `None` without observations. Past the last finite bucket it answers that bucket's bound.
pub fn bucket_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let counts: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let old = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, n)| *n);
            (*le, n - old)
        })
        .collect();
    let total = counts.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (le, count) in &counts {
        if *count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let inside = count - lower.1;
            let fraction = if inside > 0.0 {
                (rank - lower.1) / inside
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * fraction);
        }
        lower = (*le, *count);
    }
    Some(lower.0)
}

/// The `q` quantile (0..1) of `samples` (sorted here), nearest rank; `None` when empty.
pub fn quantile(samples: &mut [Duration], q: f64) -> Option<Duration> {
    samples.sort_unstable();
    let last = samples.len().checked_sub(1)?;
    let rank = ((q * samples.len() as f64).ceil() as usize).saturating_sub(1);
    samples.get(rank.min(last)).copied()
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
    /// PUTs `body` to `path`; an error names the status and the core's answer.
    pub async fn put(&self, path: &str, body: Value) -> anyhow::Result<()> {
        let response = self
            .client
            .put(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!("PUT {path} answered {status}: {}", response.text().await?);
        }
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# TYPE x histogram\n\
        x_bucket{le=\"0.001\"} 10\n\
        x_bucket{le=\"0.005\"} 90\n\
        x_bucket{le=\"0.01\"} 100\n\
        x_bucket{le=\"+Inf\"} 100\n\
        x_sum 0.3\nx_count 100\ny_total 42\n";

    #[test]
    fn reads_counters_and_histogram_quantiles() {
        assert_eq!(prometheus_value(METRICS, "y_total"), 42.0);
        assert_eq!(prometheus_value(METRICS, "z_total"), 0.0);
        let buckets = prometheus_buckets(METRICS, "x");
        assert_eq!(buckets.len(), 4);
        let p50 = bucket_quantile(&[], &buckets, 0.5).expect("answer");
        assert!((p50 - 0.003).abs() < 1e-9, "{p50}");
        let p99 = bucket_quantile(&[], &buckets, 0.99).expect("answer");
        assert!((p99 - 0.0095).abs() < 1e-9, "{p99}");
        assert_eq!(bucket_quantile(&buckets, &buckets, 0.5), None);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(quantile(&mut samples, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(
            quantile(&mut samples, 0.99),
            Some(Duration::from_millis(99))
        );
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).expect("answer") >= 0.0);
        assert!(rss_mb(pid).expect("answer") > 0.0);
        assert!(private_mib(pid).expect("answer") > 0.0);
    }
}
