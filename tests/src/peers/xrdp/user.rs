//! The local account xrdp sessions log in as, created once per machine: `rdptest` with a
//! random password kept in a root-only file (so every test process, even concurrent ones, uses
//! the same one), and a `~/startwm.sh` that paints the desktop [`super::DESKTOP_RGB`] and runs
//! an xterm.

use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The account's name.
pub const USERNAME: &str = "rdptest";

/// Where the account's password is kept.
const STATE_DIR: &str = "/var/lib/redoubt-tests";

/// The session script: the known colour, then an xterm (the session lasts as long as it).
pub const STARTWM: &str = "#!/bin/sh\nxsetroot -solid '#336699'\nexec xterm -geometry 80x10+0+0\n";

/// The test account. `Debug` never shows the password.
#[derive(Clone)]
pub struct TestUser {
    pub username: String,
    pub password: String,
    pub home: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Debug for TestUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestUser")
            .field("username", &self.username)
            .field("home", &self.home)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl TestUser {
    /// Creates the account when missing, (re)sets its password and session script.
    pub fn ensure() -> anyhow::Result<Self> {
        let password = password()?;
        if lookup()?.is_none() {
            let status = Command::new("useradd")
                .args(["-m", "-s", "/bin/bash", USERNAME])
                .stdout(Stdio::null())
                .status()
                .context("run useradd")?;
            // 9: created meanwhile by a concurrent test process.
            if !status.success() && status.code() != Some(9) {
                bail!("useradd {USERNAME} failed: {status}");
            }
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .context("run chpasswd")?;
        chpasswd
            .stdin
            .take()
            .context("chpasswd stdin")?
            .write_all(format!("{USERNAME}:{password}\n").as_bytes())?;
        let status = chpasswd.wait()?;
        anyhow::ensure!(status.success(), "chpasswd failed: {status}");
        let (uid, gid, home) = lookup()?.context("the account is missing after useradd")?;
        let user = Self {
            username: USERNAME.to_owned(),
            password,
            home,
            uid,
            gid,
        };
        user.write_owned("startwm.sh", STARTWM, 0o755)?;
        Ok(user)
    }

    /// Writes `name` in the home directory, owned by the user, atomically (concurrent test
    /// processes write the same content).
    pub fn write_owned(&self, name: &str, content: &str, mode: u32) -> anyhow::Result<()> {
        let path = self.home.join(name);
        let temporary = self
            .home
            .join(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&temporary, content)
            .with_context(|| format!("write {}", temporary.display()))?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(&temporary, Some(self.uid), Some(self.gid))?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("rename to {}", path.display()))?;
        Ok(())
    }
}

/// `(uid, gid, home)` of the account, `None` when it does not exist.
fn lookup() -> anyhow::Result<Option<(u32, u32, PathBuf)>> {
    let output = Command::new("getent")
        .args(["passwd", USERNAME])
        .output()
        .context("run getent")?;
    if !output.status.success() {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    let (Some(uid), Some(gid), Some(home)) = (fields.get(2), fields.get(3), fields.get(5)) else {
        bail!("unexpected passwd entry for {USERNAME}");
    };
    Ok(Some((uid.parse()?, gid.parse()?, PathBuf::from(home))))
}

/// The account's password: made once (random), then read by every later run.
fn password() -> anyhow::Result<String> {
    std::fs::create_dir_all(STATE_DIR)?;
    std::fs::set_permissions(STATE_DIR, std::fs::Permissions::from_mode(0o700))?;
    let path = PathBuf::from(STATE_DIR).join(format!("{USERNAME}.password"));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut file) => {
            let mut bytes = [0u8; 18];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
            let password = data_encoding::BASE64URL_NOPAD.encode(&bytes);
            file.write_all(password.as_bytes())?;
            file.sync_all()?;
            Ok(password)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process may be between creating and writing it.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let password = std::fs::read_to_string(&path)?;
                if !password.trim().is_empty() {
                    return Ok(password.trim().to_owned());
                }
                if Instant::now() > deadline {
                    bail!("{} stays empty", path.display());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(error) => Err(error).with_context(|| format!("create {}", path.display())),
    }
}
