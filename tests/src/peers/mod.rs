//! Real peers in front of and behind the outposts: Debian's nginx and Caddy as reverse
//! proxies, an echo upstream application, headless Chromium through chromedriver, a login
//! through the real browser flow over plain HTTP, and RDP servers for RAC (an in-process
//! `ironrdp-server`, xrdp), and FreeRADIUS as a RADIUS proxy in front of the RADIUS outpost.
//! Each process peer runs in a temporary directory on free loopback
//! ports and is killed on drop.

pub mod browser;
pub mod caddy;
pub mod freeradius;
pub mod login_flow;
pub mod nginx;
pub mod rdp_server;
pub mod served;
pub mod upstream;
pub mod wrk;
pub mod xrdp;

use crate::peers_required;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a started peer may take to answer before the test fails.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// The `examples/` directory of the repository.
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Whether `program` can be run (it answers `args`); when not, says so, or panics when
/// `REDOUBT_REQUIRE_PEERS=1` so that CI never skips silently.
pub fn peer_available(program: &str, args: &[&str], package: &str) -> bool {
    let found = std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok();
    if !found {
        assert!(
            !peers_required(),
            "{program} is required but not installed (apt-get install {package})"
        );
        eprintln!("SKIPPING: {program} is not installed (apt-get install {package})");
    }
    found
}

/// Waits until `addr` accepts TCP connections, polling with a deadline (no fixed sleep); fails
/// early with `log` (a peer's error log) in the message when `alive` says the process died.
pub async fn wait_listening(
    addr: SocketAddr,
    what: &str,
    mut alive: impl FnMut() -> bool,
    log: impl Fn() -> String,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if !alive() {
            bail!("{what} exited before listening on {addr}:\n{}", log());
        }
        if started.elapsed() > START_DEADLINE {
            bail!(
                "{what} did not listen on {addr} within {START_DEADLINE:?}:\n{}",
                log()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A loopback address with a port that was free a moment ago, for a peer process to bind.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let port = crate::bench::free_port().context("pick a free port")?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Replaces each `from` in `template` with `to`, failing when one does not occur: the examples
/// and the harness that runs them must not drift apart.
pub fn substitute(template: &str, pairs: &[(&str, String)]) -> anyhow::Result<String> {
    let mut text = template.to_owned();
    for (from, to) in pairs {
        if !text.contains(from) {
            bail!("the template no longer contains `{from}`");
        }
        text = text.replace(from, to);
    }
    Ok(text)
}

/// Whether this process runs as root (then nginx needs `user root;` to keep its workers able
/// to use the temporary directory).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Puts `command` in a process group of its own, so [`kill_group`] ends it with every process
/// it started (nginx workers, Chromium's renderers).
pub fn own_group(command: &mut tokio::process::Command) -> &mut tokio::process::Command {
    command.process_group(0).kill_on_drop(true)
}

/// Sends SIGKILL to the process group led by `pid` (started through [`own_group`]).
pub fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pid}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Installs the ring crypto provider that reqwest (built without one) needs; idempotent.
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
