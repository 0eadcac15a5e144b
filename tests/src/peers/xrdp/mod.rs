//! Debian's xrdp 0.9 with xorgxrdp as a real RDP peer: `xrdp-sesman` and `xrdp` run in the
//! foreground on free loopback ports with private copies of their configuration, a fresh TLS
//! certificate and `security_layer=tls` (xrdp has no NLA). Needs root: sesman authenticates
//! with PAM and starts each session's Xorg, window manager and `xrdp-chansrv` as the test
//! user ([`TestUser`]), whose desktop is [`DESKTOP_RGB`] with an xterm in the top-left corner.
//!
//! xrdp 0.9.21 reads the sesman port from the compiled-in `/etc/xrdp/sesman.ini`, not from its
//! `--config` directory, so xrdp runs in a private mount namespace (`unshare --mount`) with the
//! private `sesman.ini` bind-mounted over that path; the host's file stays untouched.
//!
//! Stopping ends the session first (its window manager, after which sesman stops Xorg and
//! chansrv and unmounts the FUSE drive), then xrdp and sesman; nothing is left running.

mod ini;
mod procs;
mod user;

pub use procs::Process;
pub use user::{STARTWM, TestUser, USERNAME};

use super::{free_addr, kill_group, own_group, peer_available, running_as_root};
use crate::peers_required;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The colour the test user's session paints the desktop with (`xsetroot -solid '#336699'`).
pub const DESKTOP_RGB: [u8; 3] = [0x33, 0x66, 0x99];

/// How long a new session may take to appear after a client logged in.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(20);

/// Where xorgxrdp's video driver is installed.
const XORGXRDP_DRIVER: &str = "/usr/lib/xorg/modules/drivers/xrdpdev_drv.so";

/// Whether xrdp can run here: root, and xrdp, xorgxrdp and the session tools installed. When
/// not, says why, or panics when `REDOUBT_REQUIRE_PEERS=1`.
pub fn available() -> bool {
    if !running_as_root() {
        assert!(
            !peers_required(),
            "the xrdp peer needs root (sesman logs users in with PAM)"
        );
        eprintln!("SKIPPING: the xrdp peer needs root (sesman logs users in with PAM)");
        return false;
    }
    if !Path::new(XORGXRDP_DRIVER).exists() {
        assert!(
            !peers_required(),
            "xorgxrdp is required but not installed (apt-get install xorgxrdp)"
        );
        eprintln!("SKIPPING: xorgxrdp is not installed (apt-get install xorgxrdp)");
        return false;
    }
    [
        ("xrdp", &["--version"][..], "xrdp"),
        ("xrdp-sesman", &["--version"][..], "xrdp"),
        ("xterm", &["-version"][..], "xterm"),
        ("xsetroot", &["-help"][..], "x11-xserver-utils"),
        ("xclip", &["-version"][..], "xclip"),
        ("xdotool", &["version"][..], "xdotool"),
        ("xauth", &["-V"][..], "xauth"),
        ("unshare", &["--version"][..], "util-linux"),
        ("runuser", &["--version"][..], "util-linux"),
        ("openssl", &["version"][..], "openssl"),
    ]
    .into_iter()
    .all(|(program, args, package)| peer_available(program, args, package))
}

/// A running xrdp with its session manager.
pub struct Xrdp {
    /// Where xrdp listens.
    pub addr: SocketAddr,
    /// The session manager's port.
    pub sesman_port: u16,
    /// The first X display number sessions may take.
    pub display_offset: u32,
    user: TestUser,
    public_key_sha256: String,
    sesman: Child,
    xrdp: Child,
    dir: tempfile::TempDir,
}

impl Xrdp {
    /// Prepares the test user and starts sesman and xrdp; returns once both listen.
    pub async fn start() -> anyhow::Result<Self> {
        let user = tokio::task::spawn_blocking(TestUser::ensure)
            .await
            .context("prepare the test user")??;
        prepare_directories()?;
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let public_key_sha256 = make_certificate(d).await?;
        let addr = free_addr()?;
        let sesman_port = free_addr()?.port();
        let display_offset = free_display_offset(addr.port());
        let sesman_ini = sesman_config(d, sesman_port, display_offset)?;
        let xrdp_ini = xrdp_config(d, addr)?;
        let mut sesman = Command::new("xrdp-sesman");
        sesman
            .args(["--nodaemon", "--config"])
            .arg(&sesman_ini)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(d.join("sesman.out"))?))
            .stderr(Stdio::from(std::fs::File::create(d.join("sesman.err"))?));
        let sesman = own_group(&mut sesman)
            .spawn()
            .context("start xrdp-sesman")?;
        let mut xrdp = Command::new("unshare");
        xrdp.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind '{}' /etc/xrdp/sesman.ini && exec xrdp --nodaemon --config '{}'",
                sesman_ini.display(),
                xrdp_ini.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(d.join("xrdp.out"))?))
            .stderr(Stdio::from(std::fs::File::create(d.join("xrdp.err"))?));
        let xrdp = own_group(&mut xrdp).spawn().context("start xrdp")?;
        let mut peer = Self {
            addr,
            sesman_port,
            display_offset,
            user,
            public_key_sha256,
            sesman,
            xrdp,
            dir,
        };
        peer.wait_until_listening().await?;
        Ok(peer)
    }

    async fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        // sesman listens on [::1] even when told 127.0.0.1 (IPv6 build); xrdp reaches it.
        let sesman = [
            SocketAddr::from(([127, 0, 0, 1], self.sesman_port)),
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.sesman_port)),
        ];
        loop {
            let mut sesman_up = false;
            for addr in sesman {
                sesman_up |= tokio::net::TcpStream::connect(addr).await.is_ok();
            }
            if sesman_up && tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            let sesman_alive = matches!(self.sesman.try_wait(), Ok(None));
            let xrdp_alive = matches!(self.xrdp.try_wait(), Ok(None));
            if !sesman_alive || !xrdp_alive {
                let name = if sesman_alive { "xrdp" } else { "xrdp-sesman" };
                bail!("{name} exited before listening:\n{}", self.logs());
            }
            if started.elapsed() > super::START_DEADLINE {
                bail!(
                    "xrdp did not listen on {} within {:?}:\n{}",
                    self.addr,
                    super::START_DEADLINE,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `127.0.0.1:<port>`, as a RAC endpoint's `host`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The account sessions log in as.
    pub fn user(&self) -> &TestUser {
        &self.user
    }

    /// SHA-256 (lowercase hex) of the TLS certificate's SubjectPublicKeyInfo.
    pub fn public_key_sha256(&self) -> &str {
        &self.public_key_sha256
    }

    /// Everything xrdp and sesman logged so far.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in [
            "xrdp.log",
            "xrdp.out",
            "xrdp.err",
            "sesman.log",
            "sesman.out",
            "sesman.err",
        ] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            if !text.is_empty() {
                out.push_str(&format!("--- {name}\n{text}"));
            }
        }
        out
    }

    /// xrdp's own log (logins, `AUTHFAIL` lines, security negotiation).
    pub fn xrdp_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("xrdp.log")).unwrap_or_default()
    }

    /// The processes of this peer's sessions (below sesman).
    pub fn session_processes(&self) -> Vec<Process> {
        match self.sesman.id() {
            Some(pid) => procs::descendants(&procs::all(), pid),
            None => Vec::new(),
        }
    }

    /// The X display of a running session (the lowest, when several run).
    pub fn session_display(&self) -> Option<u32> {
        self.session_processes()
            .iter()
            .filter(|p| p.program() == "Xorg")
            .filter_map(|p| {
                p.args
                    .iter()
                    .find_map(|a| a.strip_prefix(':').and_then(|n| n.parse().ok()))
            })
            .min()
    }

    /// Waits up to [`SESSION_DEADLINE`] for a session to run; returns its display.
    pub async fn wait_for_session(&self) -> anyhow::Result<u32> {
        let started = Instant::now();
        loop {
            if let Some(display) = self.session_display() {
                return Ok(display);
            }
            if started.elapsed() > SESSION_DEADLINE {
                bail!(
                    "no xrdp session within {SESSION_DEADLINE:?}:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of `name` in the test user's home (`None` when it does not exist).
    pub fn read_home_file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.user.home.join(name)).ok()
    }

    /// Removes `name` from the test user's home (before a test that waits for it).
    pub fn remove_home_file(&self, name: &str) {
        let _ = std::fs::remove_file(self.user.home.join(name));
    }

    /// Waits up to `deadline` for `name` to appear in the home directory with content that
    /// satisfies `done`; returns the content.
    pub async fn wait_for_home_file(
        &self,
        name: &str,
        deadline: Duration,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            if let Some(text) = self.read_home_file(name)
                && done(&text)
            {
                return Ok(text);
            }
            if started.elapsed() > deadline {
                bail!(
                    "~{}/{name} did not appear within {deadline:?} (now: {:?})",
                    self.user.username,
                    self.read_home_file(name)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `program args` as the test user on session display `display`, with `stdin` fed in.
    pub async fn run_in_session(
        &self,
        display: u32,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> anyhow::Result<Output> {
        let mut command = self.session_command(display, program, args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().with_context(|| format!("run {program}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            pipe.write_all(text.as_bytes()).await?;
        }
        let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .with_context(|| format!("{program} did not finish within 10 s"))??;
        Ok(output)
    }

    fn session_command(&self, display: u32, program: &str, args: &[&str]) -> Command {
        let home = self.user.home.display().to_string();
        let mut command = Command::new("runuser");
        command
            .args(["-u", &self.user.username, "--", "env"])
            .arg(format!("DISPLAY=:{display}"))
            .arg(format!("XAUTHORITY={home}/.Xauthority"))
            .arg(format!("HOME={home}"))
            .arg(program)
            .args(args)
            .kill_on_drop(true);
        command
    }

    /// The session's clipboard text (`xclip -selection clipboard -o`).
    pub async fn clipboard_text(&self, display: u32) -> anyhow::Result<String> {
        let output = self
            .run_in_session(display, "xclip", &["-selection", "clipboard", "-o"], None)
            .await?;
        if !output.status.success() {
            bail!(
                "xclip -o failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Waits up to `deadline` until the session's clipboard holds `expected`.
    pub async fn wait_for_clipboard(
        &self,
        display: u32,
        expected: &str,
        deadline: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let now = self.clipboard_text(display).await;
            if now.as_deref().ok() == Some(expected) {
                return Ok(());
            }
            if started.elapsed() > deadline {
                bail!("the session clipboard never held {expected:?} (last: {now:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Copies `text` in the session (`xclip -selection clipboard -i`; xclip stays in the
    /// background serving it until the selection changes or the session ends).
    pub async fn set_clipboard_text(&self, display: u32, text: &str) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut command =
            self.session_command(display, "xclip", &["-selection", "clipboard", "-i"]);
        // The forked xclip keeps its output open: never wait for it.
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command.spawn().context("run xclip -i")?;
        let mut pipe = child.stdin.take().context("xclip stdin")?;
        pipe.write_all(text.as_bytes()).await?;
        drop(pipe);
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .context("xclip -i did not return")??;
        anyhow::ensure!(status.success(), "xclip -i failed: {status}");
        Ok(())
    }

    /// Runs `xdotool args` in the session (e.g. `["type", "hello"]`, `["key", "Return"]`).
    pub async fn xdotool(&self, display: u32, args: &[&str]) -> anyhow::Result<String> {
        let output = self.run_in_session(display, "xdotool", args, None).await?;
        if !output.status.success() {
            bail!(
                "xdotool {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Waits up to `deadline` for a window of `class` (e.g. `xterm`) to be mapped in the
    /// session; returns its id for `xdotool windowfocus` and friends.
    pub async fn wait_for_window(
        &self,
        display: u32,
        class: &str,
        deadline: Duration,
    ) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let output = self
                .run_in_session(
                    display,
                    "xdotool",
                    &["search", "--onlyvisible", "--class", class],
                    None,
                )
                .await?;
            let text = String::from_utf8_lossy(&output.stdout);
            if let Some(id) = text.lines().next().filter(|l| !l.trim().is_empty()) {
                return Ok(id.trim().to_owned());
            }
            if started.elapsed() > deadline {
                bail!("no {class} window on :{display} within {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends every session of this peer (as the user logging off): sends TERM to each
    /// session's window manager and waits until sesman has stopped their X servers.
    pub fn end_sessions(&self) -> anyhow::Result<()> {
        let sessions = self.session_processes();
        for manager in window_managers(&sessions) {
            procs::signal(manager.pid, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.session_display().is_some() {
            if Instant::now() > deadline {
                bail!("the xrdp sessions did not end within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the sessions, then xrdp and sesman.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let ended = self.end_sessions();
        self.kill_all();
        ended
    }

    fn kill_all(&mut self) {
        // Whatever is left of the sessions (when ending them cleanly failed), collected
        // before sesman dies and its children are handed to init.
        let leftovers = self.session_processes();
        kill_group(self.xrdp.id());
        kill_group(self.sesman.id());
        for process in leftovers {
            procs::signal(process.pid, "KILL");
        }
        let _ = self.xrdp.start_kill();
        let _ = self.sesman.start_kill();
    }
}

impl Drop for Xrdp {
    fn drop(&mut self) {
        let _ = self.end_sessions();
        self.kill_all();
    }
}

/// The window managers among a peer's session processes: what each per-session sesman child
/// runs besides Xorg and xrdp-chansrv.
fn window_managers(sessions: &[Process]) -> Vec<&Process> {
    let session_roots: Vec<u32> = sessions
        .iter()
        .filter(|p| p.program() == "xrdp-sesman")
        .map(|p| p.pid)
        .collect();
    sessions
        .iter()
        .filter(|p| session_roots.contains(&p.ppid))
        .filter(|p| !matches!(p.program(), "Xorg" | "xrdp-chansrv" | "xrdp-sesman"))
        .collect()
}

/// The directories sessions need: `/tmp/.X11-unix` (the user's Xorg cannot create it) and
/// `/run/xrdp/sockdir` (emptied by a reboot).
fn prepare_directories() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [
        ("/tmp/.X11-unix", 0o1777),
        ("/run/xrdp", 0o755),
        ("/run/xrdp/sockdir", 0o3777),
    ] {
        std::fs::create_dir_all(path).with_context(|| format!("create {path}"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// A display number from which sesman will find free displays, away from other X servers and
/// from concurrent peers (spread by `seed`).
fn free_display_offset(seed: u16) -> u32 {
    let start = 60 + u32::from(seed) % 300;
    (start..start + 300)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .unwrap_or(start)
}

/// A self-signed RSA certificate and key in `dir` (`cert.pem`, `key.pem`); returns the
/// SHA-256 of its SubjectPublicKeyInfo.
async fn make_certificate(dir: &Path) -> anyhow::Result<String> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
        .args(["-subj", "/CN=localhost", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .await
        .context("run openssl req")?;
    anyhow::ensure!(
        output.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&cert)
        .output()
        .await
        .context("run openssl x509")?;
    anyhow::ensure!(output.status.success(), "openssl x509 failed");
    let pem = String::from_utf8_lossy(&output.stdout);
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let spki = data_encoding::BASE64
        .decode(body.as_bytes())
        .context("the public key PEM")?;
    Ok(super::rdp_server::sha256_hex(&spki))
}

/// The private `sesman.ini`: the packaged one with its own port, display offset and log.
fn sesman_config(dir: &Path, port: u16, display_offset: u32) -> anyhow::Result<PathBuf> {
    let template =
        std::fs::read_to_string("/etc/xrdp/sesman.ini").context("read /etc/xrdp/sesman.ini")?;
    let text = ini::set_all(
        &template,
        &[
            ("Globals", "ListenAddress", "127.0.0.1".into()),
            ("Globals", "ListenPort", port.to_string()),
            ("Sessions", "X11DisplayOffset", display_offset.to_string()),
            (
                "Logging",
                "LogFile",
                dir.join("sesman.log").display().to_string(),
            ),
            ("Logging", "EnableSyslog", "false".into()),
            ("ChansrvLogging", "EnableSyslog", "false".into()),
        ],
    )?;
    let path = dir.join("sesman.ini");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The private `xrdp.ini`: the packaged one on `addr`, TLS only with the generated pair.
fn xrdp_config(dir: &Path, addr: SocketAddr) -> anyhow::Result<PathBuf> {
    let template =
        std::fs::read_to_string("/etc/xrdp/xrdp.ini").context("read /etc/xrdp/xrdp.ini")?;
    let text = ini::set_all(
        &template,
        &[
            ("Globals", "port", format!("tcp://{addr}")),
            ("Globals", "security_layer", "tls".into()),
            (
                "Globals",
                "certificate",
                dir.join("cert.pem").display().to_string(),
            ),
            (
                "Globals",
                "key_file",
                dir.join("key.pem").display().to_string(),
            ),
            (
                "Logging",
                "LogFile",
                dir.join("xrdp.log").display().to_string(),
            ),
            ("Logging", "EnableSyslog", "false".into()),
        ],
    )?;
    let path = dir.join("xrdp.ini");
    std::fs::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests;
