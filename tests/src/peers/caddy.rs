//! Debian's Caddy as a process: `caddy run --config <Caddyfile> --adapter caddyfile` with the
//! admin endpoint and automatic HTTPS off, storage, HOME and XDG directories in a temporary
//! directory, on a free loopback port, killed on drop. [`site_caddyfile`] turns
//! `examples/caddy/Caddyfile` into a runnable configuration, so the example users copy is the
//! configuration the tests run.

use super::{examples_dir, kill_group, own_group, substitute, wait_listening};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use tokio::process::{Child, Command};

/// Whether `caddy` is installed; see [`super::peer_available`].
pub fn available() -> bool {
    super::peer_available("caddy", &["version"], "caddy")
}

/// What to put into the example in place of its placeholders.
#[derive(Debug, Clone)]
pub struct Sites {
    /// Where Caddy listens (both sites share the port and differ by host name).
    pub listen: SocketAddr,
    /// The two applications' host names.
    pub server_names: [String; 2],
    /// The proxy outpost's HTTP listener.
    pub outpost: SocketAddr,
    /// The application (both sites proxy to it).
    pub upstream: SocketAddr,
}

/// The text of `examples/caddy/Caddyfile`.
pub fn example() -> anyhow::Result<String> {
    let path = examples_dir().join("caddy/Caddyfile");
    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
}

/// Global options for a test: no admin endpoint, no automatic HTTPS, loopback only, storage in
/// `dir`.
pub fn global_options(dir: &Path) -> String {
    format!(
        "{{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n\
         \tstorage file_system {{\n\t\troot {}\n\t}}\n}}\n\n",
        dir.join("storage").display()
    )
}

/// `examples/caddy/Caddyfile` with its placeholders replaced by `sites` (plain HTTP sites on
/// `sites.listen`), without global options.
pub fn site_caddyfile(sites: &Sites) -> anyhow::Result<String> {
    let port = sites.listen.port();
    substitute(
        &example()?,
        &[
            (
                "\napp1.example.com {",
                format!("\nhttp://{}:{port} {{", sites.server_names[0]),
            ),
            (
                "\napp2.example.com {",
                format!("\nhttp://{}:{port} {{", sites.server_names[1]),
            ),
            ("127.0.0.1:9000", sites.outpost.to_string()),
            ("127.0.0.1:8081", sites.upstream.to_string()),
            ("127.0.0.1:8082", sites.upstream.to_string()),
        ],
    )
}

/// Runs `caddy adapt` on `caddyfile` (with the test's global options) in a temporary
/// directory; returns whether Caddy accepted it and what it printed.
pub async fn check(caddyfile: &str) -> anyhow::Result<(bool, String)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, format!("{}{caddyfile}", global_options(dir.path())))?;
    let output = with_dirs(Command::new("caddy"), dir.path())
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .output()
        .await
        .context("run caddy adapt")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

fn with_dirs(mut command: Command, dir: &Path) -> Command {
    command
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_CACHE_HOME", dir.join("cache"));
    command
}

/// A running Caddy; killed on drop.
pub struct Caddy {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Caddy {
    /// Starts Caddy running the example for `sites`.
    pub async fn start_sites(sites: &Sites) -> anyhow::Result<Self> {
        Self::start(&site_caddyfile(sites)?, sites.listen).await
    }

    /// Starts Caddy with `caddyfile` (after the test's global options) and waits until `listen`
    /// accepts connections.
    pub async fn start(caddyfile: &str, listen: SocketAddr) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, format!("{}{caddyfile}", global_options(dir.path())))?;
        let log = std::fs::File::create(dir.path().join("caddy.log"))?;
        let mut command = with_dirs(Command::new("caddy"), dir.path());
        command
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = own_group(&mut command).spawn().context("start caddy")?;
        let mut caddy = Self {
            addr: listen,
            child,
            dir,
        };
        let log_path = caddy.dir.path().join("caddy.log");
        let child = &mut caddy.child;
        wait_listening(
            listen,
            "caddy",
            || matches!(child.try_wait(), Ok(None)),
            || std::fs::read_to_string(&log_path).unwrap_or_default(),
        )
        .await?;
        Ok(caddy)
    }

    /// `http://<host>:<port>` for one of the site names.
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}", self.addr.port())
    }

    /// What Caddy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.start_kill();
    }
}
