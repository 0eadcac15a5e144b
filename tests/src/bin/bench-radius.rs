//! `bench-radius`: the RADIUS outpost against Debian's FreeRADIUS 3 (`files` + `pap`, the same
//! 10,000 users, the same VLAN reply) driven by the same load generator in one run: PAP
//! Access-Requests with a Message-Authenticator, a fixed number in flight, round-robin over the
//! users with a known password after a priming pass. Prints Access-Requests/s and p50/p99
//! latency for both with the ratio, the cost of a cold check next to one Argon2id
//! verification, and both servers' RSS. Run with `scripts/bench-radius`. Not a test: it never
//! fails on a timing.

use anyhow::{Context, bail};
use redoubt_core::auth::password::{HashParams, PasswordHasherArgon2};
use redoubt_tests::bench::{BenchApi, free_port, rss_mb, start_core, start_outpost, wait_ready};
use redoubt_tests::radius::{RadiusClient, access_request, check_reply, code};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const SECRET: &str = "bench-shared-secret";
const PASSWORD: &str = "bench-password-1";
const USERS: usize = 10_000;
/// The VLAN both servers assign to everyone.
const VLAN: &str = "100";
/// Cold requests in flight while priming (each costs the core one Argon2id check).
const PRIMING_IN_FLIGHT: usize = 8;
/// How long one request may take before it counts as lost.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

struct Args {
    core: PathBuf,
    outpost: PathBuf,
    quick: bool,
}

impl Args {
    /// Users with a password (the load cycles over them); the others have none. Each one's
    /// first request costs an Argon2id check in the core, so the set stays small enough to
    /// prime in well under the outpost's 5-minute credential cache.
    fn warm_users(&self) -> usize {
        if self.quick { 300 } else { 1_000 }
    }
    /// Requests in flight at any time.
    fn in_flight(&self) -> usize {
        32
    }
    fn phase(&self) -> Duration {
        Duration::from_secs(if self.quick { 2 } else { 5 })
    }
    fn rounds(&self) -> usize {
        if self.quick { 1 } else { 2 }
    }
}

fn args() -> anyhow::Result<Args> {
    let usage = "usage: bench-radius <release redoubt-core> <release redoubt-outpost> [--quick]";
    let mut args = std::env::args().skip(1);
    let core = args.next().context(usage)?.into();
    let outpost = args.next().context(usage)?.into();
    let quick = args.next().is_some_and(|a| a == "--quick");
    Ok(Args {
        core,
        outpost,
        quick,
    })
}

fn user_name(i: usize) -> String {
    format!("user{i:06}")
}

/// Creates the users; the first `warm` get [`PASSWORD`].
async fn fill(api: &BenchApi, users: usize, warm: usize) -> anyhow::Result<()> {
    const WORKERS: usize = 8;
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            for i in (0..users).skip(worker).step_by(WORKERS) {
                let mut body = json!({"username": user_name(i)});
                if i < warm {
                    body["password"] = json!(PASSWORD);
                }
                api.post("/api/v1/users", body).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Starts a release outpost for `token` with RADIUS on `auth`; returns the process and its
/// metrics base URL.
fn start_radius_outpost(
    binary: &Path,
    core_url: &str,
    token: &str,
    state: &Path,
    auth: SocketAddr,
) -> anyhow::Result<(Child, String)> {
    let listen = [
        ("RADIUS", auth.to_string()),
        ("RADIUS_ACCOUNTING", "127.0.0.1:0".into()),
    ];
    let (child, metrics) = start_outpost(binary, core_url, token, state, &listen)?;
    Ok((child, format!("http://{metrics}")))
}

/// Sends Access-Requests for user 0 until one is accepted (the server is up and serving).
async fn wait_accepting(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut client = RadiusClient::bind().await?;
    loop {
        if let Ok(Some(reply)) = client
            .authenticate(
                addr,
                SECRET,
                &user_name(0),
                PASSWORD,
                Duration::from_millis(500),
            )
            .await
            && reply.code == code::ACCESS_ACCEPT
        {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{what} did not accept user 0 within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes a minimal FreeRADIUS configuration into `dir` (one client, `files` and `pap`, the
/// users with cleartext passwords or an Auth-Type Reject) and starts `freeradius` on `addr`.
async fn start_freeradius(
    dir: &Path,
    addr: SocketAddr,
    users: usize,
    warm: usize,
) -> anyhow::Result<Child> {
    let d = dir.display();
    let conf = format!(
        r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {d}
sbindir = /usr/sbin
logdir = {d}
raddbdir = {d}
radacctdir = {d}
name = freeradius
confdir = {d}
modconfdir = {d}
run_dir = {d}
db_dir = {d}
libdir = /usr/lib/freeradius
pidfile = {d}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
proxy_requests = no
log {{
  destination = stdout
  auth = no
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = yes
}}
thread pool {{
  start_servers = 8
  max_servers = 32
  min_spare_servers = 4
  max_spare_servers = 16
  max_requests_per_server = 0
}}
client localhost {{
  ipaddr = 127.0.0.1
  secret = {SECRET}
  require_message_authenticator = yes
}}
modules {{
  pap {{
  }}
  files {{
    filename = {d}/users
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = {ip}
    port = {port}
  }}
  authorize {{
    files
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
  }}
}}
"#,
        ip = addr.ip(),
        port = addr.port(),
    );
    std::fs::write(dir.join("radiusd.conf"), conf)?;
    let mut entries = String::with_capacity(users * 120);
    for i in 0..users {
        if i < warm {
            entries.push_str(&format!(
                "{} Cleartext-Password := \"{PASSWORD}\"\n\
                 \tTunnel-Type := VLAN, Tunnel-Medium-Type := IEEE-802, \
                 Tunnel-Private-Group-Id := \"{VLAN}\"\n\n",
                user_name(i)
            ));
        } else {
            entries.push_str(&format!("{} Auth-Type := Reject\n\n", user_name(i)));
        }
    }
    std::fs::write(dir.join("users"), entries)?;
    let check = std::process::Command::new("freeradius")
        .arg("-C")
        .arg("-d")
        .arg(dir)
        .output()
        .context("run freeradius -C (apt-get install freeradius)")?;
    if !check.status.success() {
        bail!(
            "freeradius refuses the configuration:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let child = Command::new("freeradius")
        .args(["-f", "-l", "stdout", "-d"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start freeradius")?;
    wait_accepting(addr, "FreeRADIUS").await?;
    Ok(child)
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    lost: usize,
}

/// `in_flight` workers, each with its own socket and one request outstanding, cycle over the
/// warm users for `phase`.
async fn run_load(
    addr: SocketAddr,
    warm: usize,
    in_flight: usize,
    phase: Duration,
) -> anyhow::Result<Figures> {
    let deadline = Instant::now() + phase;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = RadiusClient::bind().await?;
            let mut latencies = Vec::new();
            let mut lost = 0;
            while Instant::now() < deadline {
                let user = user_name(next.fetch_add(1, Ordering::Relaxed) % warm);
                let id = client.next_id();
                let t = Instant::now();
                let (bytes, _) = access_request(id, SECRET, &user, PASSWORD, &[], true);
                match client.exchange(addr, &bytes, REQUEST_TIMEOUT).await? {
                    Some(reply) if reply[0] == code::ACCESS_ACCEPT => latencies.push(t.elapsed()),
                    Some(reply) => bail!("{user} got code {} instead of an Accept", reply[0]),
                    None => lost += 1,
                }
            }
            anyhow::Ok((latencies, lost))
        }));
    }
    let mut all = Vec::new();
    let mut lost = 0;
    for task in tasks {
        let (latencies, l) = task.await??;
        all.extend(latencies);
        lost += l;
    }
    let elapsed = started.elapsed();
    if all.is_empty() {
        bail!("no request was answered");
    }
    all.sort();
    Ok(Figures {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
        lost,
    })
}

/// Checks one reply of each server completely (authenticators, code, VLAN) before the load.
async fn check_one(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let client = RadiusClient::bind().await?;
    let (bytes, _) = access_request(1, SECRET, &user_name(1), PASSWORD, &[], true);
    let reply = client
        .exchange(addr, &bytes, REQUEST_TIMEOUT)
        .await?
        .with_context(|| format!("{what} did not answer"))?;
    let (packet, _) =
        check_reply(&bytes, &reply, SECRET).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if packet.code != code::ACCESS_ACCEPT {
        bail!("{what} answered code {}", packet.code);
    }
    let vlan = packet.get(81).map(|v| v.strip_prefix(&[0]).unwrap_or(v));
    if vlan != Some(VLAN.as_bytes()) {
        bail!("{what} did not assign VLAN {VLAN}: {packet:?}");
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = args()?;
    let warm = args.warm_users();
    let dir = tempfile::tempdir()?;
    let core = start_core(&args.core, &dir.path().join("core")).await?;
    let api = core.api.clone();
    let url = api.url.clone();

    let t = Instant::now();
    fill(&api, USERS, warm).await?;
    eprintln!(
        "filled the core with {USERS} users ({warm} with a password) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let provider = api
        .post(
            "/api/v1/providers",
            json!({"name": "wifi", "kind": "radius",
                   "settings": {"shared_secret": SECRET, "client_networks": ["127.0.0.0/8"],
                                "reply_rules": [{"vlan": VLAN}]}}),
        )
        .await?;
    api.post(
        "/api/v1/applications",
        json!({"slug": "wifi", "name": "Wi-Fi", "provider_id": provider["id"]}),
    )
    .await?;
    let outpost = api
        .post(
            "/api/v1/outposts",
            json!({"name": "radius", "kind": "radius", "provider_ids": [provider["id"]]}),
        )
        .await?;
    let outpost_token = outpost["token"].as_str().context("token")?.to_owned();

    // FreeRADIUS first: it loads its users file in a moment, and the outpost's primed cache
    // is then measured right after priming.
    let freeradius_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let freeradius_dir = dir.path().join("freeradius");
    std::fs::create_dir_all(&freeradius_dir)?;
    let freeradius = start_freeradius(&freeradius_dir, freeradius_addr, USERS, warm).await?;
    check_one(freeradius_addr, "FreeRADIUS").await?;

    let redoubt_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let state = dir.path().join("outpost");
    let started = Instant::now();
    let (outpost_child, metrics_base) =
        start_radius_outpost(&args.outpost, &url, &outpost_token, &state, redoubt_addr)?;
    wait_ready(&api.client, &metrics_base, "the outpost", started).await?;
    wait_accepting(redoubt_addr, "the outpost").await?;
    eprintln!(
        "the outpost accepted its first request {:.2} s after start",
        started.elapsed().as_secs_f64()
    );
    check_one(redoubt_addr, "the outpost").await?;

    // Cold checks: each warm user's first request goes to the core (one Argon2id check), with
    // as many in flight as the load uses.
    let hasher = PasswordHasherArgon2::new(HashParams::default())?;
    let phc = hasher.hash(PASSWORD)?;
    let mut argon = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        if !hasher.verify(PASSWORD, &phc) {
            bail!("Argon2id does not verify its own hash");
        }
        argon.push(t.elapsed());
    }
    argon.sort();
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..PRIMING_IN_FLIGHT {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = RadiusClient::bind().await?;
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= warm {
                    break;
                }
                let t = Instant::now();
                let reply = client
                    .authenticate(
                        redoubt_addr,
                        SECRET,
                        &user_name(i),
                        PASSWORD,
                        Duration::from_secs(30),
                    )
                    .await?;
                match reply {
                    Some(p) if p.code == code::ACCESS_ACCEPT => times.push(t.elapsed()),
                    other => bail!("priming {}: {other:?}", user_name(i)),
                }
            }
            anyhow::Ok(times)
        }));
    }
    let mut cold = Vec::new();
    for task in tasks {
        cold.extend(task.await??);
    }
    cold.sort();
    let priming = t.elapsed();
    eprintln!(
        "primed {warm} users through the core in {:.1} s",
        priming.as_secs_f64()
    );

    // Warm-up, then alternate the peers.
    let short = Duration::from_millis(500);
    run_load(freeradius_addr, warm, args.in_flight(), short).await?;
    run_load(redoubt_addr, warm, args.in_flight(), short).await?;
    let mut fr_rounds = Vec::new();
    let mut rd_rounds = Vec::new();
    let mut fr_best: Option<Figures> = None;
    let mut rd_best: Option<Figures> = None;
    for _ in 0..args.rounds() {
        let fr = run_load(freeradius_addr, warm, args.in_flight(), args.phase()).await?;
        let rd = run_load(redoubt_addr, warm, args.in_flight(), args.phase()).await?;
        fr_rounds.push(fr.per_second);
        rd_rounds.push(rd.per_second);
        if fr_best
            .as_ref()
            .is_none_or(|x| fr.per_second > x.per_second)
        {
            fr_best = Some(fr);
        }
        if rd_best
            .as_ref()
            .is_none_or(|x| rd.per_second > x.per_second)
        {
            rd_best = Some(rd);
        }
    }
    let (fr, rd) = (
        fr_best.context("a FreeRADIUS round")?,
        rd_best.context("a Redoubt round")?,
    );
    let metrics = api
        .client
        .get(format!("{metrics_base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let series = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let rss_outpost = rss_mb(outpost_child.id().context("outpost pid")?)?;
    let rss_freeradius = rss_mb(freeradius.id().context("freeradius pid")?)?;

    let rounds = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\nRADIUS: {USERS} users, {warm} warm, PAP + Message-Authenticator, {} in flight, \
         {} s per phase, best of {} round(s)\n",
        args.in_flight(),
        args.phase().as_secs(),
        args.rounds()
    );
    println!(
        "{:<26} {:>14} {:>14} {:>8}",
        "", "FreeRADIUS", "redoubt", "ratio"
    );
    println!(
        "{:<26} {:>14.0} {:>14.0} {:>7.2}x",
        "Access-Requests/s",
        fr.per_second,
        rd.per_second,
        rd.per_second / fr.per_second
    );
    println!(
        "{:<26} {:>14} {:>14} {:>7.2}x",
        "p50 latency",
        ms(fr.p50),
        ms(rd.p50),
        rd.p50.as_secs_f64() / fr.p50.as_secs_f64()
    );
    println!(
        "{:<26} {:>14} {:>14} {:>7.2}x",
        "p99 latency",
        ms(fr.p99),
        ms(rd.p99),
        rd.p99.as_secs_f64() / fr.p99.as_secs_f64()
    );
    println!(
        "{:<26} {:>14} {:>14}",
        "lost (no reply in 2 s)", fr.lost, rd.lost
    );
    println!(
        "{:<26} {:>14} {:>14}",
        "RSS",
        format!("{rss_freeradius:.1} MB"),
        format!("{rss_outpost:.1} MB")
    );
    println!("(ratio = redoubt / FreeRADIUS: higher is better for requests/s, lower for latency)");
    println!(
        "\nrounds, requests/s: FreeRADIUS {}; redoubt {}",
        rounds(&fr_rounds),
        rounds(&rd_rounds)
    );
    println!(
        "cold checks (first request of a user, through the core, {PRIMING_IN_FLIGHT} in flight): \
         p50 {}, p99 {}, {:.0}/s ({warm} in {:.1} s); one Argon2id check alone here: {}",
        ms(cold[cold.len() / 2]),
        ms(cold[cold.len() * 99 / 100]),
        warm as f64 / priming.as_secs_f64(),
        priming.as_secs_f64(),
        ms(argon[argon.len() / 2]),
    );
    println!(
        "outpost credential cache: {:.0} hits, {:.0} misses; {:.0} datagrams dropped as busy",
        series("redoubt_radius_credential_cache_total{result=\"hit\"}"),
        series("redoubt_radius_credential_cache_total{result=\"miss\"}"),
        series("redoubt_radius_dropped_total{reason=\"busy\"}"),
    );
    println!(
        "goal: requests/s >= 1x FreeRADIUS ({}), p99 no worse ({})",
        if rd.per_second >= fr.per_second {
            "met"
        } else {
            "NOT met"
        },
        if rd.p99 <= fr.p99 { "met" } else { "NOT met" },
    );
    drop(outpost_child);
    drop(freeradius);
    Ok(())
}
