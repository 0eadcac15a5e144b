//! Debian's FreeRADIUS as a RADIUS proxy in front of a RADIUS outpost: `freeradius -f -d <dir>`
//! with a generated configuration in a temporary directory, on free loopback ports, killed on
//! drop. Every Access-Request it receives goes to a fail-over pool: the outpost first (a home
//! server with `status_check = status-server`), then a fallback that accepts everyone with
//! `Reply-Message = "fallback"` (a second virtual server of the same process on a port of its
//! own, reached over UDP like any home server). `radmin` on the control socket reads what the
//! proxy thinks of each home server (`alive`, `zombie`, `dead`).

use super::{START_DEADLINE, free_addr, kill_group, own_group};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The secret NAS clients (radclient) share with the proxy.
pub const PROXY_SECRET: &str = "proxy-test-secret";
/// The Reply-Message the fallback home server adds to its Access-Accept.
pub const FALLBACK_MESSAGE: &str = "fallback";
/// The proxy's `check_interval` (FreeRADIUS's least) and `num_answers_to_alive` (its least):
/// a dead home server comes back after about three checks.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(6);

/// Whether `freeradius` and `radmin` are installed; see [`super::peer_available`].
pub fn available() -> bool {
    super::peer_available("freeradius", &["-v"], "freeradius")
        && super::peer_available("radmin", &["-h"], "freeradius")
}

/// A running FreeRADIUS proxy; killed on drop.
pub struct FreeRadiusProxy {
    /// Where NAS clients send Access-Requests (secret [`PROXY_SECRET`]).
    pub addr: SocketAddr,
    /// The fallback home server.
    pub fallback: SocketAddr,
    /// The outpost as a home server.
    pub outpost: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

/// The `radiusd.conf` of the proxy: one client (the loopback), the pool, the control socket.
pub fn config(
    dir: &Path,
    listen: SocketAddr,
    outpost: SocketAddr,
    outpost_secret: &str,
    fallback: SocketAddr,
) -> String {
    let d = dir.display();
    let check = CHECK_INTERVAL.as_secs();
    format!(
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
max_requests = 1024
hostname_lookups = no
proxy_requests = yes
log {{
  destination = files
  file = {d}/radius.log
  auth = no
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = yes
}}
thread pool {{
  start_servers = 2
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 2
  max_requests_per_server = 0
}}
proxy server {{
  default_fallback = no
}}
# The outpost: a request without an answer within a second makes it a zombie; with no answer
# to Status-Server for 2 s more it is dead; {check} s between checks, 3 answers revive it.
home_server outpost {{
  type = auth
  ipaddr = {outpost_ip}
  port = {outpost_port}
  secret = {outpost_secret}
  response_window = 1
  response_timeouts = 1
  zombie_period = 2
  status_check = status-server
  check_interval = {check}
  check_timeout = 1
  num_answers_to_alive = 3
}}
home_server fallback {{
  type = auth
  ipaddr = {fallback_ip}
  port = {fallback_port}
  secret = {PROXY_SECRET}
  response_window = 5
  zombie_period = 10
  status_check = none
}}
home_server_pool outposts {{
  type = fail-over
  home_server = outpost
  home_server = fallback
}}
realm outposts {{
  auth_pool = outposts
}}
client loopback {{
  ipaddr = 127.0.0.1
  secret = {PROXY_SECRET}
}}
listen {{
  type = control
  socket = {d}/control.sock
  mode = ro
}}
server default {{
  listen {{
    type = auth
    ipaddr = {listen_ip}
    port = {listen_port}
  }}
  authorize {{
    update control {{
      &Proxy-To-Realm := "outposts"
    }}
  }}
  authenticate {{
  }}
}}
server fallback {{
  listen {{
    type = auth
    ipaddr = {fallback_ip}
    port = {fallback_port}
  }}
  authorize {{
    update control {{
      &Auth-Type := Accept
    }}
    update reply {{
      &Reply-Message := "{FALLBACK_MESSAGE}"
    }}
  }}
  authenticate {{
  }}
}}
"#,
        outpost_ip = outpost.ip(),
        outpost_port = outpost.port(),
        fallback_ip = fallback.ip(),
        fallback_port = fallback.port(),
        listen_ip = listen.ip(),
        listen_port = listen.port(),
    )
}

impl FreeRadiusProxy {
    /// Starts the proxy in front of the outpost at `outpost` (whose provider's secret is
    /// `outpost_secret`) and waits until it says it is ready.
    pub async fn start(outpost: SocketAddr, outpost_secret: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let addr = free_addr()?;
        let fallback = free_addr()?;
        std::fs::write(
            dir.path().join("radiusd.conf"),
            config(dir.path(), addr, outpost, outpost_secret, fallback),
        )?;
        let check = Command::new("freeradius")
            .arg("-C")
            .arg("-d")
            .arg(dir.path())
            .output()
            .await
            .context("run freeradius -C (apt-get install freeradius)")?;
        if !check.status.success() {
            bail!(
                "freeradius refuses the configuration:\n{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let mut command = Command::new("freeradius");
        command
            .arg("-f")
            .arg("-d")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = own_group(&mut command)
            .spawn()
            .context("start freeradius")?;
        let mut proxy = Self {
            addr,
            fallback,
            outpost,
            child,
            dir,
        };
        let started = Instant::now();
        while !proxy.log().contains("Ready to process requests") {
            if !matches!(proxy.child.try_wait(), Ok(None)) {
                bail!("freeradius exited while starting:\n{}", proxy.log());
            }
            if started.elapsed() > START_DEADLINE {
                bail!(
                    "freeradius was not ready within {START_DEADLINE:?}:\n{}",
                    proxy.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(proxy)
    }

    /// FreeRADIUS's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("radius.log")).unwrap_or_default()
    }

    /// What the proxy thinks of the outpost: `alive`, `zombie`, `dead` or `unknown`.
    pub async fn outpost_state(&self) -> anyhow::Result<String> {
        self.home_server_state(self.outpost).await
    }

    /// What the proxy thinks of the home server at `addr` (`radmin show home_server state`).
    pub async fn home_server_state(&self, addr: SocketAddr) -> anyhow::Result<String> {
        let output = Command::new("radmin")
            .arg("-f")
            .arg(self.dir.path().join("control.sock"))
            .arg("-e")
            .arg(format!(
                "show home_server state {} {}",
                addr.ip(),
                addr.port()
            ))
            .output()
            .await
            .context("run radmin")?;
        if !output.status.success() {
            bail!(
                "radmin failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

impl Drop for FreeRadiusProxy {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.start_kill();
    }
}
