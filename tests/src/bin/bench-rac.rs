//! `bench-rac`: the RAC outpost's figures against the goals of the RAC brief, with release
//! `redoubt-core` and `redoubt-outpost` running as processes and in-process `ironrdp-server`s
//! (one per session, 1920x1080, TLS) painting scripted rectangles (`push_fill`), watched by Rust
//! WebSocket clients that draw and acknowledge every frame as the browser does:
//! - outpost RSS per session at 1, 10 and `--sessions` (default 50) sessions;
//! - RDP update -> frame latency, measured at the client (from `push_fill` until a drawn frame
//!   shows it) and from the outpost's `redoubt_rac_frame_latency_seconds`, for 256x256 and
//!   full-screen updates;
//! - CPU per idle session (`/proc/<pid>/stat` over a window);
//! - sessions per core: every session gets a 256x256 update 10 times a second, at growing
//!   session counts; the most sessions whose p99 stays under 30 ms, and the outpost's CPU per
//!   session at that load;
//! - bytes per second to the browser, idle and under that load.
//!
//! With `--guacd PREFIX` (a guacamole-server installed under PREFIX, `sbin/guacd`) it also runs
//! guacd and the outpost in turn against the same xrdp session host with the same workload (an
//! xterm scrolling `ls -lR /usr` for 10 s at 1024x768) and prints Redoubt's ratio to guacd for
//! memory per session, CPU and bytes per second. Without it, that part is skipped.
//!
//! Run with `scripts/bench-rac`. Not a test: it fails only when a connection breaks, never on a
//! figure. `--quick` shortens every window.

use anyhow::{Context, bail};
use redoubt_tests::bench::{
    BenchCore, bucket_quantile, children, cpu_seconds, private_mib, prometheus_buckets,
    prometheus_value, quantile, rss_mib, start_core,
};
use redoubt_tests::guac_client::{GuacClient, GuacRdp};
use redoubt_tests::peers::rdp_server::{
    RdpTestOptions, RdpTestSecurity, RdpTestServer, Rect, pattern_rgb,
};
use redoubt_tests::peers::xrdp::{self, DESKTOP_RGB, Xrdp};
use redoubt_tests::peers::{free_addr, kill_group, own_group, wait_listening};
use redoubt_tests::rac_bench::{BenchEndpoint, RacSide, create_user};
use redoubt_tests::rac_client::RacClient;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const WIDTH: u16 = 1920;
const HEIGHT: u16 = 1080;
/// The side of the scripted updates.
const UPDATE: u16 = 256;
/// Updates per second each session gets in the load phase.
const LOAD_RATE: u32 = 10;
const LATENCY_METRIC: &str = "redoubt_rac_frame_latency_seconds";
const BYTES_METRIC: &str = "redoubt_rac_websocket_bytes_sent_total";
const FRAMES_METRIC: &str = "redoubt_rac_frames_total";

struct Args {
    core: PathBuf,
    outpost: PathBuf,
    sessions: usize,
    guacd: Option<PathBuf>,
    quick: bool,
}

fn args() -> anyhow::Result<Args> {
    let usage = "usage: bench-rac <release redoubt-core> <release redoubt-outpost> \
                 [--sessions N] [--guacd PREFIX] [--quick]";
    let mut positional = Vec::new();
    let (mut sessions, mut guacd, mut quick) = (50, None, false);
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--sessions" => {
                sessions = given
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .context(usage)?;
            }
            "--guacd" => guacd = Some(PathBuf::from(given.next().context(usage)?)),
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n{usage}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let mut positional = positional.into_iter();
    Ok(Args {
        core: positional.next().context(usage)?,
        outpost: positional.next().context(usage)?,
        sessions,
        guacd,
        quick,
    })
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One RDP server and the client watching it through the outpost.
struct Session {
    server: RdpTestServer,
    client: RacClient,
}

/// A colour for update `n` that differs from what the server shows at (`x`, `y`) now.
fn colour(server: &RdpTestServer, n: u64, x: u16, y: u16) -> [u8; 3] {
    let mut rgb = [
        (n.wrapping_mul(37) % 251) as u8,
        (n.wrapping_mul(91) % 241) as u8,
        (n.wrapping_mul(53).wrapping_add(7) % 239) as u8,
    ];
    if server.pixel(x, y) == Some(rgb) {
        rgb[0] ^= 0x80;
    }
    rgb
}

/// Paints `rect` on the server and waits until the client drew a frame showing it; returns
/// how long that took.
async fn one_update(session: &Session, rect: Rect, n: u64) -> anyhow::Result<Duration> {
    let (x, y) = (rect.x + rect.width / 2, rect.y + rect.height / 2);
    let rgb = colour(&session.server, n, x, y);
    let started = Instant::now();
    session
        .server
        .push_fill(rect, rgb)
        .context("the update is outside the desktop")?;
    session
        .client
        .wait_for_within(Duration::from_secs(10), "the update", |v| {
            (v.rgb(x, y) == Some(rgb)).then_some(())
        })
        .await?;
    Ok(started.elapsed())
}

/// A 256x256 rectangle at a position spread over the desktop by `n` and `seed`.
fn update_rect(n: u64, seed: u64) -> Rect {
    let spread = n
        .wrapping_mul(7919)
        .wrapping_add(seed.wrapping_mul(104_729));
    Rect {
        x: (spread % u64::from(WIDTH - UPDATE)) as u16,
        y: ((spread / 7) % u64::from(HEIGHT - UPDATE)) as u16,
        width: UPDATE,
        height: UPDATE,
    }
}

/// The outpost's CPU seconds, bytes and frames sent so far.
async fn outpost_counters(side: &RacSide) -> anyhow::Result<(f64, f64, f64)> {
    let text = side.metrics_text().await?;
    Ok((
        cpu_seconds(side.pid()?)?,
        prometheus_value(&text, BYTES_METRIC),
        prometheus_value(&text, FRAMES_METRIC),
    ))
}

fn mbit(bytes_per_second: f64) -> f64 {
    bytes_per_second * 8.0 / 1e6
}

/// Opens sessions (on the next of `servers`) until `sessions` holds `count`, each waiting for
/// its first whole frame.
async fn open_sessions(
    side: &mut RacSide,
    servers: &mut impl Iterator<Item = RdpTestServer>,
    sessions: &mut Vec<Session>,
    count: usize,
) -> anyhow::Result<()> {
    while sessions.len() < count {
        let i = sessions.len();
        let server = servers.next().context("no server left")?;
        let client = side.connect(&format!("desk{i}")).await?;
        let hello = client.wait_for_hello().await?;
        if (hello.width, hello.height) != (WIDTH, HEIGHT) {
            bail!("session {i} opened at {}x{}", hello.width, hello.height);
        }
        let (x, y) = (WIDTH - 3, HEIGHT - 3);
        client
            .wait_for_rgb(x, y, pattern_rgb(WIDTH, HEIGHT, x, y))
            .await
            .with_context(|| format!("the first frame of session {i}"))?;
        sessions.push(Session { server, client });
    }
    Ok(())
}

fn endpoint(i: usize, server: &RdpTestServer) -> BenchEndpoint {
    BenchEndpoint {
        slug: format!("desk{i}"),
        host: server.host(),
        width: WIDTH,
        height: HEIGHT,
        username: "bench-rdp".into(),
        password: "bench-rdp-password".into(),
    }
}

/// Sequential updates on session 0 (the others idle), `pause` apart (more than the outpost's
/// 30 fps cap, which would otherwise hold an update back); client-side latencies.
async fn latency_run(
    session: &Session,
    count: u64,
    full_screen: bool,
    pause: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::new();
    for n in 0..count {
        let rect = if full_screen {
            Rect {
                x: 0,
                y: 0,
                width: WIDTH,
                height: HEIGHT,
            }
        } else {
            update_rect(n, 0)
        };
        samples.push(one_update(session, rect, n).await?);
        tokio::time::sleep(pause).await;
    }
    Ok(samples)
}

/// One session's part of the load phase: a 256x256 update every 1/[`LOAD_RATE`] s (started
/// at an offset so sessions do not paint in lockstep) until `until`.
async fn load_one(
    session: &Session,
    seed: u64,
    offset: Duration,
    until: Instant,
) -> anyhow::Result<Vec<Duration>> {
    tokio::time::sleep(offset).await;
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / LOAD_RATE);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    let mut n = 0;
    while Instant::now() < until {
        ticker.tick().await;
        samples.push(one_update(session, update_rect(n, seed), n + seed * 1_000_000).await?);
        n += 1;
    }
    Ok(samples)
}

/// What one load step measured.
#[derive(Clone)]
struct LoadStep {
    sessions: usize,
    updates_per_second: f64,
    p50: Duration,
    p99: Duration,
    /// The outpost's own p99 (`redoubt_rac_frame_latency_seconds`), seconds.
    outpost_p99: Option<f64>,
    /// Frames the outpost sent per update (above 1: updates split over several frames).
    frames_per_update: f64,
    /// Outpost CPU in cores.
    cores: f64,
    bytes_per_second: f64,
}

async fn load_step(
    side: &RacSide,
    sessions: &[Session],
    window: Duration,
) -> anyhow::Result<LoadStep> {
    let (cpu0, bytes0, frames0) = outpost_counters(side).await?;
    let before = prometheus_buckets(&side.metrics_text().await?, LATENCY_METRIC);
    let started = Instant::now();
    let until = started + window;
    let period = Duration::from_secs(1) / LOAD_RATE;
    let runs = sessions.iter().enumerate().map(|(i, session)| {
        let offset =
            period * u32::try_from(i).unwrap_or(0) / u32::try_from(sessions.len()).unwrap_or(1);
        load_one(session, i as u64 + 1, offset, until)
    });
    let results = futures_util::future::join_all(runs).await;
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu1, bytes1, frames1) = outpost_counters(side).await?;
    let after = prometheus_buckets(&side.metrics_text().await?, LATENCY_METRIC);
    let mut samples = Vec::new();
    for result in results {
        samples.extend(result?);
    }
    let updates = samples.len() as f64;
    Ok(LoadStep {
        sessions: sessions.len(),
        updates_per_second: updates / elapsed,
        p50: quantile(&mut samples, 0.5).unwrap_or_default(),
        p99: quantile(&mut samples, 0.99).unwrap_or_default(),
        outpost_p99: bucket_quantile(&before, &after, 0.99),
        frames_per_update: (frames1 - frames0) / updates.max(1.0),
        cores: (cpu1 - cpu0) / elapsed,
        bytes_per_second: (bytes1 - bytes0) / elapsed,
    })
}

/// The figures with in-process RDP servers.
async fn redoubt_figures(core: &BenchCore, args: &Args, dir: &Path) -> anyhow::Result<()> {
    let mut servers = Vec::new();
    for _ in 0..args.sessions {
        servers.push(
            RdpTestServer::start(RdpTestOptions {
                security: RdpTestSecurity::Tls,
                width: WIDTH,
                height: HEIGHT,
                follow_layouts: false,
            })
            .await?,
        );
    }
    let endpoints: Vec<BenchEndpoint> = servers
        .iter()
        .enumerate()
        .map(|(i, server)| endpoint(i, server))
        .collect();
    let mut servers = servers.into_iter();
    let mut side = RacSide::start(core, &args.outpost, dir, "rac-bench", &endpoints).await?;
    let pid = side.pid()?;
    let settle = Duration::from_secs(if args.quick { 1 } else { 2 });
    let window = Duration::from_secs(if args.quick { 3 } else { 10 });
    tokio::time::sleep(settle).await;
    let rss0 = rss_mib(pid)?;
    println!(
        "outpost RSS, signed in, no sessions: {rss0:.1} MiB (goal <= 30 MiB: {})",
        verdict(rss0 <= 30.0)
    );

    // Memory per session.
    let mut sessions = Vec::new();
    let mut levels: Vec<usize> = [1, 10, 50]
        .into_iter()
        .filter(|n| *n < args.sessions)
        .collect();
    levels.push(args.sessions);
    for level in &levels {
        let started = Instant::now();
        open_sessions(&mut side, &mut servers, &mut sessions, *level).await?;
        tokio::time::sleep(settle).await;
        let rss = rss_mib(pid)?;
        let per = (rss - rss0) / *level as f64;
        println!(
            "{level:>3} sessions at {WIDTH}x{HEIGHT}: RSS {rss:.1} MiB, {per:.1} MiB per session \
             (goal <= 24 MiB: {}); opened in {:.1} s",
            verdict(per <= 24.0),
            started.elapsed().as_secs_f64()
        );
    }

    // Idle CPU and bytes.
    let (cpu0, bytes0, _) = outpost_counters(&side).await?;
    tokio::time::sleep(window).await;
    let (cpu1, bytes1, _) = outpost_counters(&side).await?;
    let n = sessions.len() as f64;
    let idle = (cpu1 - cpu0) / window.as_secs_f64() / n * 100.0;
    println!(
        "idle CPU over {} s with {} sessions: {idle:.3}% of a core per session (goal <= 1%: {}); \
         {:.0} bytes/s per idle session to the browser",
        window.as_secs(),
        sessions.len(),
        verdict(idle <= 1.0),
        (bytes1 - bytes0) / window.as_secs_f64() / n
    );

    // Latency, one session busy, the others idle.
    let first = sessions.first().context("no session")?;
    let count = if args.quick { 50 } else { 300 };
    let before = prometheus_buckets(&side.metrics_text().await?, LATENCY_METRIC);
    let frames_before = first.client.view().frames;
    let mut samples = latency_run(first, count, false, Duration::from_millis(40)).await?;
    let frames = first.client.view().frames - frames_before;
    let after = prometheus_buckets(&side.metrics_text().await?, LATENCY_METRIC);
    let (p50, p99) = (
        quantile(&mut samples, 0.5).unwrap_or_default(),
        quantile(&mut samples, 0.99).unwrap_or_default(),
    );
    println!(
        "{UPDATE}x{UPDATE} update -> drawn frame at the client ({count} updates): p50 {:.2} ms \
         (goal <= 5 ms: {}), p99 {:.2} ms (goal <= 30 ms: {})",
        ms(p50),
        verdict(p50 <= Duration::from_millis(5)),
        ms(p99),
        verdict(p99 <= Duration::from_millis(30))
    );
    match (
        bucket_quantile(&before, &after, 0.5),
        bucket_quantile(&before, &after, 0.99),
    ) {
        (Some(p50), Some(p99)) => println!(
            "  the outpost's {LATENCY_METRIC} over the same updates: p50 {:.2} ms, p99 {:.2} ms \
             (bucket-interpolated); {:.2} frames per update",
            p50 * 1e3,
            p99 * 1e3,
            frames as f64 / count as f64
        ),
        _ => println!("  the outpost's {LATENCY_METRIC} recorded nothing"),
    }
    let count = if args.quick { 5 } else { 30 };
    let mut samples = latency_run(first, count, true, Duration::from_millis(50)).await?;
    let (p50, p99) = (
        quantile(&mut samples, 0.5).unwrap_or_default(),
        quantile(&mut samples, 0.99).unwrap_or_default(),
    );
    println!(
        "full-screen {WIDTH}x{HEIGHT} update -> drawn frame ({count} updates): p50 {:.1} ms, \
         p99 {:.1} ms (goal <= 50 ms: {})",
        ms(p50),
        ms(p99),
        verdict(p99 <= Duration::from_millis(50))
    );

    // Sessions per core.
    let window = Duration::from_secs(if args.quick { 3 } else { 5 });
    println!(
        "load: every session gets a {UPDATE}x{UPDATE} update {LOAD_RATE} times a second, {} s per step",
        window.as_secs()
    );
    let mut steps: Vec<usize> = [1, 5, 10, 20, 30, 40, 50, 75, 100, 150, 200]
        .into_iter()
        .filter(|n| *n < sessions.len())
        .collect();
    steps.push(sessions.len());
    // The largest step whose p99 stayed under 30 ms, measured at the client (which includes
    // the in-process RDP servers and clients sharing the machine) and by the outpost itself.
    let (mut best_client, mut best_outpost): (Option<LoadStep>, Option<LoadStep>) = (None, None);
    let mut last: Option<LoadStep> = None;
    for count in steps {
        let step = load_step(&side, sessions.get(..count).context("sessions")?, window).await?;
        println!(
            "  {:>3} sessions: {:>6.0} updates/s, p50 {:>6.2} ms, p99 {:>7.2} ms (outpost's own \
             p99 {:>6.2} ms, {:.2} frames per update), outpost CPU {:>5.1}% of a core ({:.2}% \
             per session), {:.2} Mbit/s per session to the browser",
            step.sessions,
            step.updates_per_second,
            ms(step.p50),
            ms(step.p99),
            step.outpost_p99.unwrap_or(f64::NAN) * 1e3,
            step.frames_per_update,
            step.cores * 100.0,
            step.cores * 100.0 / step.sessions as f64,
            mbit(step.bytes_per_second / step.sessions as f64)
        );
        let overloaded = step.p99 > Duration::from_millis(200);
        if step.p99 <= Duration::from_millis(30) {
            best_client = Some(step.clone());
        }
        if step.outpost_p99.is_some_and(|p| p <= 0.030) {
            best_outpost = Some(step.clone());
        }
        last = Some(step);
        if overloaded {
            break;
        }
    }
    if let Some(step) = &last {
        let per_core = step.sessions as f64 / step.cores.max(1e-6);
        println!(
            "by CPU alone: {} sessions at this load used {:.2} cores of the outpost: {per_core:.0} \
             sessions per core (goal >= 50: {}), whatever their latency",
            step.sessions,
            step.cores,
            verdict(per_core >= 50.0)
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for (measured, best) in [
        ("at the client", best_client),
        ("by the outpost", best_outpost),
    ] {
        let Some(step) = best else {
            println!(
                "sessions per core: no step kept p99 <= 30 ms measured {measured} \
                 (goal >= 50: NOT met)"
            );
            continue;
        };
        let per_core = step.sessions as f64 / step.cores.max(1e-6);
        let per_session = mbit(step.bytes_per_second / step.sessions as f64);
        println!(
            "sessions per core (p99 measured {measured}): at most {} sessions tried on this \
             {cores}-core machine (shared with the RDP servers and clients), the largest step \
             under 30 ms: {}; the outpost used {:.2} cores for them: {per_core:.0} sessions per \
             core (goal >= 50: {}); {per_session:.2} Mbit/s per session to the browser (goal \
             for office use <= 2 Mbit/s: {})",
            sessions.len(),
            step.sessions,
            step.cores,
            verdict(per_core >= 50.0),
            verdict(per_session <= 2.0)
        );
    }
    Ok(())
}

/// What one side used during the xrdp workload.
struct Usage {
    /// Memory one session costs, MiB.
    memory: f64,
    cpu_seconds: f64,
    bytes: f64,
    frames: f64,
}

/// Runs an xterm scrolling `ls -lR /usr` for `seconds` in the session on `display`.
async fn scroll(xrdp: &Xrdp, display: u32, seconds: u64) -> anyhow::Result<()> {
    let user = xrdp.user();
    let home = user.home.display().to_string();
    let status = tokio::process::Command::new("runuser")
        .args(["-u", &user.username, "--", "env"])
        .arg(format!("DISPLAY=:{display}"))
        .arg(format!("XAUTHORITY={home}/.Xauthority"))
        .arg(format!("HOME={home}"))
        .args([
            "timeout",
            &seconds.to_string(),
            "xterm",
            "-geometry",
            "120x45+0+0",
            "-e",
        ])
        .args(["sh", "-c", "while :; do ls -lR /usr; done"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .context("run the scrolling xterm")?;
    // `timeout` answers 124 when it stopped the xterm, as intended.
    if status.code() != Some(124) {
        bail!("the scrolling xterm ended early: {status}");
    }
    Ok(())
}

const WORKLOAD_SECONDS: u64 = 10;
const XRDP_WIDTH: u16 = 1024;
const XRDP_HEIGHT: u16 = 768;

async fn redoubt_on_xrdp(
    core: &BenchCore,
    args: &Args,
    dir: &Path,
    xrdp: &Xrdp,
) -> anyhow::Result<Usage> {
    let user = xrdp.user();
    let endpoint = BenchEndpoint {
        slug: "xrdp".into(),
        host: xrdp.host(),
        width: XRDP_WIDTH,
        height: XRDP_HEIGHT,
        username: user.username.clone(),
        password: user.password.clone(),
    };
    let mut side = RacSide::start(core, &args.outpost, dir, "rac-xrdp", &[endpoint]).await?;
    let pid = side.pid()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss0 = rss_mib(pid)?;
    let client = side.connect("xrdp").await?;
    client.wait_for_hello().await?;
    let display = xrdp.wait_for_session().await?;
    client
        .wait_for_rgb(XRDP_WIDTH - 10, XRDP_HEIGHT - 10, DESKTOP_RGB)
        .await
        .context("the xrdp desktop through the outpost")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, bytes0, frames0) = outpost_counters(&side).await?;
    scroll(xrdp, display, WORKLOAD_SECONDS).await?;
    let (cpu1, bytes1, frames1) = outpost_counters(&side).await?;
    let memory = rss_mib(pid)? - rss0;
    let _ = client.close().await;
    drop(client);
    xrdp.end_sessions()?;
    Ok(Usage {
        memory,
        cpu_seconds: cpu1 - cpu0,
        bytes: bytes1 - bytes0,
        frames: frames1 - frames0,
    })
}

async fn guacd_on_xrdp(prefix: &Path, xrdp: &Xrdp) -> anyhow::Result<Usage> {
    let addr = free_addr()?;
    let mut command = tokio::process::Command::new(prefix.join("sbin/guacd"));
    command
        .args([
            "-f",
            "-b",
            "127.0.0.1",
            "-l",
            &addr.port().to_string(),
            "-L",
            "warning",
        ])
        .env("LD_LIBRARY_PATH", prefix.join("lib"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut guacd = own_group(&mut command).spawn().context("start guacd")?;
    wait_listening(
        addr,
        "guacd",
        || matches!(guacd.try_wait(), Ok(None)),
        String::new,
    )
    .await?;
    let result = guacd_session(addr, &guacd, xrdp).await;
    kill_group(guacd.id());
    let _ = guacd.kill().await;
    result
}

async fn guacd_session(
    addr: std::net::SocketAddr,
    guacd: &tokio::process::Child,
    xrdp: &Xrdp,
) -> anyhow::Result<Usage> {
    let parent = guacd.id().context("guacd exited")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let parent_rss0 = rss_mib(parent)?;
    let user = xrdp.user();
    let parameters = [
        ("security", "tls"),
        ("ignore-cert", "true"),
        ("color-depth", "24"),
        ("disable-gfx", "true"),
        ("force-lossless", "true"),
    ];
    let client = GuacClient::connect(
        addr,
        &GuacRdp {
            host: xrdp.addr.ip().to_string(),
            port: xrdp.addr.port(),
            username: user.username.clone(),
            password: user.password.clone(),
            width: XRDP_WIDTH,
            height: XRDP_HEIGHT,
            parameters: parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
    )
    .await?;
    let display = xrdp.wait_for_session().await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.counters.snapshot().images == 0 {
        if Instant::now() > deadline {
            bail!("guacd sent no image within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connection = children(parent)
        .into_iter()
        .next()
        .context("no guacd connection process")?;
    let cpu = || -> anyhow::Result<f64> { Ok(cpu_seconds(parent)? + cpu_seconds(connection)?) };
    let (cpu0, counts0) = (cpu()?, client.counters.snapshot());
    scroll(xrdp, display, WORKLOAD_SECONDS).await?;
    let (cpu1, counts1) = (cpu()?, client.counters.snapshot());
    let child_rss = rss_mib(connection)?;
    let memory = private_mib(connection)? + (rss_mib(parent)? - parent_rss0);
    println!(
        "  guacd: connection process RSS {child_rss:.1} MiB, of which {:.1} MiB private",
        private_mib(connection)?
    );
    drop(client);
    xrdp.end_sessions()?;
    Ok(Usage {
        memory,
        cpu_seconds: cpu1 - cpu0,
        bytes: (counts1.bytes - counts0.bytes) as f64,
        frames: (counts1.frames - counts0.frames) as f64,
    })
}

async fn guacd_comparison(
    core: &BenchCore,
    args: &Args,
    dir: &Path,
    prefix: &Path,
) -> anyhow::Result<()> {
    if !prefix.join("sbin/guacd").exists() {
        bail!("no guacd at {}/sbin/guacd", prefix.display());
    }
    if !xrdp::available() {
        println!("guacd comparison skipped: the xrdp peer is not available here (see above)");
        return Ok(());
    }
    let xrdp = Xrdp::start().await?;
    println!(
        "side by side on xrdp at {XRDP_WIDTH}x{XRDP_HEIGHT}: an xterm scrolling `ls -lR /usr` for \
         {WORKLOAD_SECONDS} s (guacd: PNG only, force-lossless, no GFX, 24 bpp; Redoubt: lossless)"
    );
    let ours = redoubt_on_xrdp(core, args, dir, &xrdp).await?;
    let theirs = guacd_on_xrdp(prefix, &xrdp).await?;
    let seconds = WORKLOAD_SECONDS as f64;
    for (name, usage) in [("Redoubt", &ours), ("guacd", &theirs)] {
        println!(
            "  {name:<8} memory per session {:>6.1} MiB, CPU {:>5.1}% of a core, {:>6.2} Mbit/s, \
             {:>5.1} frames/s",
            usage.memory,
            usage.cpu_seconds / seconds * 100.0,
            mbit(usage.bytes / seconds),
            usage.frames / seconds
        );
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    println!(
        "  Redoubt / guacd: memory {:.2}x, CPU {:.2}x, bytes/s {:.2}x (lower is better)",
        ratio(ours.memory, theirs.memory),
        ratio(ours.cpu_seconds, theirs.cpu_seconds),
        ratio(ours.bytes, theirs.bytes)
    );
    xrdp.stop()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    redoubt_tests::peers::crypto();
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let core = start_core(&args.core, &dir.path().join("core")).await?;
    create_user(&core).await?;
    println!(
        "RAC outpost, {} sessions max, on {} cores{}",
        args.sessions,
        std::thread::available_parallelism().map_or(0, usize::from),
        if args.quick { " (quick)" } else { "" }
    );
    redoubt_figures(&core, &args, dir.path()).await?;
    match &args.guacd {
        Some(prefix) => guacd_comparison(&core, &args, dir.path(), prefix).await?,
        None => println!(
            "guacd comparison skipped: run with --guacd PREFIX (a guacamole-server 1.6 install \
             with sbin/guacd) and root for the xrdp peer"
        ),
    }
    Ok(())
}
