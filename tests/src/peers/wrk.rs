//! Runs the `wrk` load generator (Debian package `wrk`) and reads its report: requests per
//! second, the p99 latency from `--latency`'s distribution, and the non-2xx/3xx and socket
//! error counts, so a benchmark can refuse a run where the server only said no.

use anyhow::{Context, bail};
use std::time::Duration;

/// What one wrk run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkReport {
    pub requests_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub requests: u64,
    /// Responses that were neither 2xx nor 3xx.
    pub non_success: u64,
    /// Connect, read, write and timeout errors added up.
    pub socket_errors: u64,
}

/// Options for one run: `-t threads -c connections -d duration --latency`.
#[derive(Debug, Clone)]
pub struct WrkRun<'a> {
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

/// Whether wrk is installed; see [`super::peer_available`].
pub fn available() -> bool {
    // `wrk` without arguments prints its usage and exits 1; it runs, that is enough.
    super::peer_available("wrk", &[], "wrk")
}

/// Runs wrk and parses its report; fails when wrk fails or prints no figures.
pub async fn run(run: &WrkRun<'_>) -> anyhow::Result<WrkReport> {
    let mut command = tokio::process::Command::new("wrk");
    command
        .arg(format!("-t{}", run.threads))
        .arg(format!("-c{}", run.connections))
        .arg(format!("-d{}s", run.duration.as_secs().max(1)))
        .arg("--latency");
    for (name, value) in run.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let output = command
        .arg(run.url)
        .kill_on_drop(true)
        .output()
        .await
        .context("run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text).with_context(|| format!("wrk printed:\n{text}"))
}

/// Reads wrk's report.
pub fn parse(text: &str) -> anyhow::Result<WrkReport> {
    let mut report = WrkReport {
        requests_per_second: f64::NAN,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        requests: 0,
        non_success: 0,
        socket_errors: 0,
    };
    let (mut seen_rps, mut seen_p99) = (false, false);
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value, ..] => {
                report.requests_per_second = value.parse().context("Requests/sec")?;
                seen_rps = true;
            }
            ["50%", value, ..] => report.p50 = parse_duration(value)?,
            ["99%", value, ..] => {
                report.p99 = parse_duration(value)?;
                seen_p99 = true;
            }
            [count, "requests", "in", ..] => report.requests = count.parse().context("requests")?,
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                report.non_success = count.parse().context("Non-2xx")?;
            }
            ["Socket", "errors:", rest @ ..] => {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                report.socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    if !seen_rps || !seen_p99 {
        bail!("no Requests/sec or 99% line");
    }
    Ok(report)
}

/// Parses wrk's `123.45us`, `1.20ms`, `2.00s`, `1.50m` durations.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .context("duration without a unit")?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().context("duration value")?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => bail!("unknown duration unit `{unit}`"),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        bail!("`{text}` is not a duration");
    }
    // Rounded to whole nanoseconds so `0.98ms` is exactly 980 us.
    Ok(Duration::from_nanos((seconds * 1e9).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 5s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.05ms  512.30us  12.40ms   80.12%
    Req/Sec    30.12k     2.01k   35.00k    70.00%
  Latency Distribution
     50%  0.98ms
     75%    1.20ms
     90%    1.50ms
     99%    2.75ms
  299512 requests in 5.00s, 40.02MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 12
Requests/sec:  59880.31
Transfer/sec:      8.00MB
";

    #[test]
    fn reads_the_figures_of_a_report() {
        let report = parse(REPORT).expect("parses");
        assert!((report.requests_per_second - 59880.31).abs() < 1e-6);
        assert_eq!(report.p50, Duration::from_micros(980));
        assert_eq!(report.p99, Duration::from_micros(2750));
        assert_eq!(report.requests, 299_512);
        assert_eq!(report.non_success, 12);
        assert_eq!(report.socket_errors, 5);
    }

    #[test]
    fn refuses_a_report_without_figures() {
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused").is_err());
        assert_eq!(
            parse_duration("850.00us").expect("us"),
            Duration::from_micros(850)
        );
        assert!(parse_duration("5parsecs").is_err());
    }
}
