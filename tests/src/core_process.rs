//! The real `redoubt-core` binary as a child process, for what an in-process core cannot show:
//! `kill -9` in the middle of writes, and replicas that die while outposts hold channels to
//! them. It runs on the wall clock (outposts talking to it should too: see
//! [`crate::start_outpost_on_wall_clock`]).

use crate::bench::{free_port, wait_ready};
use crate::http::Api;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;
use tokio::process::{Child, Command};

/// A `redoubt-core serve` process on a fixed loopback port (kept across restarts).
pub struct CoreProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The admin API.
    pub api: Api,
    /// The admin token (bootstrapped by the first process on the database).
    pub admin_token: String,
    port: u16,
    data_dir: PathBuf,
    database_url: String,
    secret_key: String,
    child: Option<Child>,
}

impl CoreProcess {
    /// Starts a core on `database_url` with `secret_key` (replicas on one database share it),
    /// keeping its files in `data_dir`, and waits until it is ready.
    pub async fn start(
        data_dir: &Path,
        database_url: &str,
        secret_key: &str,
        admin_token: &str,
    ) -> Self {
        crate::init_logging();
        let port = free_port().expect("a free port");
        let url = format!("http://127.0.0.1:{port}");
        let mut core = Self {
            api: Api::new(&url, admin_token),
            url,
            admin_token: admin_token.to_owned(),
            port,
            data_dir: data_dir.to_owned(),
            database_url: database_url.to_owned(),
            secret_key: secret_key.to_owned(),
            child: None,
        };
        core.spawn().await;
        core
    }

    async fn spawn(&mut self) {
        let child = Command::new(crate::core_binary())
            .args([
                "serve",
                "--listen-http",
                &format!("127.0.0.1:{}", self.port),
            ])
            .args([
                "--listen-metrics",
                "127.0.0.1:0",
                "--listen-https",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--database-url", &self.database_url])
            .env("REDOUBT_SECRET_KEY", &self.secret_key)
            .env("REDOUBT_BOOTSTRAP_TOKEN", &self.admin_token)
            .env("REDOUBT_BOOTSTRAP_PASSWORD", "process-admin-password")
            .env("REDOUBT_PASSWORD_HASH__MEMORY_KIB", "64")
            .env("REDOUBT_PASSWORD_HASH__ITERATIONS", "1")
            .env("REDOUBT_EMBEDDED_OUTPOST__ENABLED", "false")
            .env("REDOUBT_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start redoubt-core");
        self.child = Some(child);
        wait_ready(
            &reqwest::Client::new(),
            &self.url,
            "the core",
            Instant::now(),
        )
        .await
        .expect("the core process becomes ready");
    }

    /// `kill -9`: no close frame, no flush, transactions in flight cut off.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts the process again on the same port, data dir and database.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    /// The configuration revision the core is at.
    pub async fn revision(&self) -> i64 {
        self.api.get("/api/v1/info").await.expect(200)["revision"]
            .as_i64()
            .expect("revision")
    }
}
