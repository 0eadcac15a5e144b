//! Debian's nginx as a process: `nginx -p <tempdir> -c <generated conf> -g 'daemon off;'` with
//! its pid file, error log and temporary files in the temporary directory, on a free loopback
//! port, killed on drop. [`site_conf`] turns `examples/nginx/redoubt.conf` into a runnable server
//! block, so the example users copy is the configuration the tests run.

use super::{examples_dir, kill_group, own_group, running_as_root, substitute, wait_listening};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::{Child, Command};

/// Whether `nginx` is installed; see [`super::peer_available`].
pub fn available() -> bool {
    super::peer_available("nginx", &["-v"], "nginx")
}

/// What to put into the example in place of its placeholders.
#[derive(Debug, Clone)]
pub struct Site {
    /// Where nginx listens.
    pub listen: SocketAddr,
    /// The application's host name (`server_name`).
    pub server_name: String,
    /// The proxy outpost's HTTP listener.
    pub outpost: SocketAddr,
    /// The application.
    pub upstream: SocketAddr,
}

/// The text of `examples/nginx/redoubt.conf`.
pub fn example() -> anyhow::Result<String> {
    let path = examples_dir().join("nginx/redoubt.conf");
    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
}

/// `examples/nginx/redoubt.conf` with its placeholders replaced by `site`.
pub fn site_conf(site: &Site) -> anyhow::Result<String> {
    substitute(
        &example()?,
        &[
            (
                "server 127.0.0.1:9000;",
                format!("server {};", site.outpost),
            ),
            (
                "server 127.0.0.1:8080;",
                format!("server {};", site.upstream),
            ),
            ("listen 80;", format!("listen {};", site.listen)),
            (
                "server_name app.example.com;",
                format!("server_name {};", site.server_name),
            ),
        ],
    )
}

/// A complete `nginx.conf` around `http_body` (text for the `http` context) keeping every file
/// nginx writes in `dir`.
pub fn main_conf(dir: &Path, http_body: &str, worker_processes: &str) -> String {
    let d = dir.display();
    // As root the master would hand its workers to `nobody`, which cannot enter the private
    // temporary directory.
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    format!(
        "{user}worker_processes {worker_processes};\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         access_log off;\n\
         client_body_temp_path {d}/client_body;\n\
         proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n\
         {http_body}\n\
         }}\n"
    )
}

/// Runs `nginx -t` on `http_body` (wrapped by [`main_conf`]) in a temporary directory; returns
/// whether nginx accepted it and what it printed.
pub async fn check(http_body: &str) -> anyhow::Result<(bool, String)> {
    let dir = tempfile::tempdir()?;
    let conf = write_conf(dir.path(), http_body, "1")?;
    let output = Command::new("nginx")
        .arg("-t")
        .args(base_args(dir.path(), &conf))
        .output()
        .await
        .context("run nginx -t")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

fn write_conf(dir: &Path, http_body: &str, workers: &str) -> anyhow::Result<PathBuf> {
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main_conf(dir, http_body, workers))?;
    Ok(conf)
}

fn base_args(dir: &Path, conf: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        format!("{}/", dir.display()),
        "-e".into(),
        dir.join("error.log").display().to_string(),
        "-c".into(),
        conf.display().to_string(),
        "-g".into(),
        "daemon off;".into(),
    ]
}

/// A running nginx; killed on drop.
pub struct Nginx {
    /// Where it listens (the first of the addresses it was started for).
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx running the example for `site`.
    pub async fn start_site(site: &Site) -> anyhow::Result<Self> {
        Self::start(&site_conf(site)?, &[site.listen], "1").await
    }

    /// Starts nginx with `http_body` in the `http` context and waits until every address in
    /// `listens` accepts connections.
    pub async fn start(
        http_body: &str,
        listens: &[SocketAddr],
        worker_processes: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let conf = write_conf(dir.path(), http_body, worker_processes)?;
        let mut command = Command::new("nginx");
        command
            .args(base_args(dir.path(), &conf))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = own_group(&mut command).spawn().context("start nginx")?;
        let addr = *listens.first().context("nginx needs an address")?;
        let mut nginx = Self { addr, child, dir };
        for listen in listens {
            let log_path = nginx.dir.path().join("error.log");
            let child = &mut nginx.child;
            wait_listening(
                *listen,
                "nginx",
                || matches!(child.try_wait(), Ok(None)),
                || std::fs::read_to_string(&log_path).unwrap_or_default(),
            )
            .await?;
        }
        Ok(nginx)
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The master process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Killing only the master would leave its workers serving the port.
        kill_group(self.child.id());
        let _ = self.child.start_kill();
    }
}
