//! The Redoubt test harness: starts a real core in-process on `127.0.0.1:0` with a temporary
//! SQLite file, or a fresh PostgreSQL database when `REDOUBT_TEST_DATABASE_URL` is set, and
//! hands tests its URLs, an admin token and a manual clock.
//!
//! No fixed ports and no sleeps: the listeners are bound before the core starts serving, so the
//! URLs answer as soon as `start` returns.

pub mod bench;
pub mod channel;
pub mod core_process;
pub mod database;
pub mod guac_client;
pub mod http;
pub mod ldap;
pub mod ldap_client;
pub mod peers;
pub mod proxy;
pub mod rac_bench;
pub mod rac_client;
pub mod radius;
pub mod slowloris;

use redoubt_core::clock::ManualClock;
use redoubt_core::config::CoreSettings;
use redoubt_core::server::{Core, Listeners};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use http::Api;

/// Password of the bootstrap `admin` user in tests.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running core.
pub struct TestCore {
    /// Base URL of the HTTP port, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Base URL of the metrics port.
    pub metrics_url: String,
    /// Base URL of the HTTPS port (self-signed certificate in the data dir).
    pub https_url: String,
    /// The bootstrap admin token.
    pub admin_token: String,
    /// An API client with the admin token.
    pub api: Api,
    /// The clock the core reads; advance it to expire tokens or lockouts.
    pub clock: ManualClock,
    pub settings: CoreSettings,
    pub database: database::TestDatabase,
    data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A change to the settings of a test core before it starts.
pub type SettingsTweak = Box<dyn FnOnce(&mut CoreSettings) + Send>;

/// Where every test core's clock starts: 2027-01-15T08:00:00Z, whatever the real date.
pub const TEST_EPOCH: i64 = 1_800_000_000;

thread_local! {
    /// The clock of the core this test started last: outposts the test starts read it, so both
    /// sides agree on the date (cookie, ticket and offline-credential expiry) whatever the
    /// machine's date. A thread-local, because each test body runs on a thread of its own.
    static CURRENT_CLOCK: std::cell::RefCell<Option<ManualClock>> =
        const { std::cell::RefCell::new(None) };
}

/// The clock the test's outposts read: the last started core's, or one at [`TEST_EPOCH`] when
/// the test started no core.
pub fn outpost_clock() -> ManualClock {
    CURRENT_CLOCK
        .with_borrow(Clone::clone)
        .unwrap_or_else(|| ManualClock::new(TEST_EPOCH))
}

/// Options for [`TestCore::start_with`].
#[derive(Default)]
pub struct CoreOptions {
    /// Override settings before start.
    pub tweak: Option<SettingsTweak>,
}

/// The machine's time in unix seconds: where [`TestCore::start_at`] starts the clock of a core
/// whose peers check its timestamps against their own clock (a relying party validating `exp`).
pub fn machine_time() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(TEST_EPOCH, |d| {
            i64::try_from(d.as_secs()).unwrap_or(TEST_EPOCH)
        })
}

impl TestCore {
    /// Starts a core with test defaults.
    pub async fn start() -> Self {
        Self::start_with(CoreOptions::default()).await
    }

    /// Starts a core, letting the test adjust settings.
    pub async fn start_with(options: CoreOptions) -> Self {
        Self::start_at(options, TEST_EPOCH).await
    }

    /// Starts a core whose (manual) clock starts at `start` (unix seconds).
    pub async fn start_at(options: CoreOptions, start: i64) -> Self {
        init_logging();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database = database::TestDatabase::create(data_dir.path()).await;
        let admin_token = redoubt_core::auth::token::generate().expect("randomness");
        let mut settings = CoreSettings {
            data_dir: data_dir.path().to_owned(),
            database_url: database.url.clone(),
            bootstrap_password: ADMIN_PASSWORD.into(),
            bootstrap_token: admin_token.clone().into(),
            ..CoreSettings::default()
        };
        settings.listen.http = "127.0.0.1:0".into();
        settings.listen.metrics = "127.0.0.1:0".into();
        settings.listen.https = "127.0.0.1:0".into();
        settings.password_hash.memory_kib = 64;
        settings.password_hash.iterations = 1;
        // Off unless a test is about it: it is one more outpost connected to every test core.
        settings.embedded_outpost.enabled = false;
        if let Some(tweak) = options.tweak {
            tweak(&mut settings);
        }
        let clock = ManualClock::new(start);
        CURRENT_CLOCK.with_borrow_mut(|current| *current = Some(clock.clone()));
        let mut core = Self {
            url: String::new(),
            metrics_url: String::new(),
            https_url: String::new(),
            api: Api::new("", &admin_token),
            admin_token,
            clock,
            settings,
            database,
            data_dir,
            shutdown: None,
            task: None,
        };
        core.boot(None).await;
        core
    }

    /// (Re)starts the core process part on `http_addr` (or a free port).
    async fn boot(&mut self, http_addr: Option<std::net::SocketAddr>) {
        let http = TcpListener::bind(http_addr.unwrap_or_else(|| ([127, 0, 0, 1], 0).into()))
            .await
            .expect("bind http");
        let metrics = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind metrics");
        let https = TcpListener::bind("127.0.0.1:0").await.expect("bind https");
        self.https_url = format!(
            "https://localhost:{}",
            https.local_addr().expect("addr").port()
        );
        self.url = format!("http://{}", http.local_addr().expect("addr"));
        self.metrics_url = format!("http://{}", metrics.local_addr().expect("addr"));
        self.api = Api::new(&self.url, &self.admin_token);
        let core = Core::prepare(self.settings.clone(), Arc::new(self.clock.clone()))
            .await
            .expect("core prepares");
        let (tx, rx) = oneshot::channel();
        self.shutdown = Some(tx);
        self.task = Some(tokio::spawn(core.serve(
            Listeners {
                http,
                https: Some(https),
                metrics,
            },
            async {
                let _ = rx.await;
            },
        )));
    }

    /// Stops the core gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("core task").expect("core stops cleanly");
        }
    }

    /// Starts a core stopped with [`Self::stop`] again, on the same HTTP address and database.
    pub async fn restart_stopped(&mut self) {
        let addr: std::net::SocketAddr = self
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("addr");
        self.boot(Some(addr)).await;
    }

    /// Stops and starts the core again on the same HTTP address and database.
    pub async fn restart(&mut self) {
        let addr: std::net::SocketAddr = self
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("addr");
        self.stop().await;
        self.boot(Some(addr)).await;
    }

    /// A second core replica on the same database (and secret key), on its own ports.
    pub async fn start_replica(&self) -> TestCore {
        let mut replica = Self {
            url: String::new(),
            metrics_url: String::new(),
            https_url: String::new(),
            api: Api::new("", &self.admin_token),
            admin_token: self.admin_token.clone(),
            clock: self.clock.clone(),
            settings: self.settings.clone(),
            database: database::TestDatabase::shared(&self.database.url),
            data_dir: tempfile::tempdir().expect("temp dir"),
            shutdown: None,
            task: None,
        };
        replica.boot(None).await;
        replica
    }

    /// The core's self-signed certificate, to trust as a CA.
    pub fn ca_file(&self) -> PathBuf {
        self.settings.data_dir.join("tls.crt")
    }

    /// The data dir of this core.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().to_owned()
    }

    /// An API client with another token.
    pub fn api_with(&self, token: &str) -> Api {
        Api::new(&self.url, token)
    }

    /// Creates a group; returns its id.
    pub async fn create_group(&self, name: &str) -> i64 {
        let group = self
            .api
            .post("/api/v1/groups", serde_json::json!({"name": name}))
            .await
            .expect(201);
        group["id"].as_i64().expect("id")
    }

    /// Nests group `child` in `parent`.
    pub async fn nest_group(&self, child: i64, parent: i64) {
        self.api
            .patch(
                &format!("/api/v1/groups/{child}"),
                serde_json::json!({"parent_id": parent}),
            )
            .await
            .expect(200);
    }

    /// Creates a user from `body` (as `POST /api/v1/users` takes it) in `groups`; returns its id.
    pub async fn create_member(&self, body: serde_json::Value, groups: &[i64]) -> i64 {
        let user = self.api.post("/api/v1/users", body).await.expect(201);
        let id = user["id"].as_i64().expect("id");
        for group in groups {
            self.api
                .post(
                    &format!("/api/v1/groups/{group}/members"),
                    serde_json::json!({"user_id": id}),
                )
                .await
                .expect(204);
        }
        id
    }

    /// The configuration revision the core is at now.
    pub async fn revision(&self) -> i64 {
        self.api.get("/api/v1/info").await.expect(200)["revision"]
            .as_i64()
            .expect("revision")
    }

    /// Binds `group_id` to the application with slug `slug` (from then on only its members may
    /// use it); returns the application's id.
    pub async fn bind_group(&self, slug: &str, group_id: i64) -> i64 {
        let apps = self
            .api
            .get(&format!("/api/v1/applications?search={slug}"))
            .await
            .expect(200);
        let app_id = apps["items"]
            .as_array()
            .and_then(|items| items.iter().find(|a| a["slug"] == slug))
            .and_then(|a| a["id"].as_i64())
            .unwrap_or_else(|| panic!("no application {slug}: {apps}"));
        self.api
            .post(
                &format!("/api/v1/applications/{app_id}/groups"),
                serde_json::json!({"group_id": group_id}),
            )
            .await
            .expect(204);
        app_id
    }

    /// Creates a `kind` provider named `name` with `settings`, an application for it (slug
    /// `name`, open to everyone) and an outpost `<name>-outpost` serving it; returns the
    /// provider's id and the outpost's token.
    pub async fn create_served_provider(
        &self,
        kind: &str,
        name: &str,
        settings: serde_json::Value,
    ) -> (i64, String) {
        let provider = self
            .api
            .post(
                "/api/v1/providers",
                serde_json::json!({"name": name, "kind": kind, "settings": settings}),
            )
            .await
            .expect(201);
        let provider_id = provider["id"].as_i64().expect("id");
        self.api
            .post(
                "/api/v1/applications",
                serde_json::json!({"slug": name, "name": name, "provider_id": provider_id}),
            )
            .await
            .expect(201);
        let created = self
            .api
            .post(
                "/api/v1/outposts",
                serde_json::json!({"name": format!("{name}-outpost"), "kind": kind,
                                   "provider_ids": [provider_id]}),
            )
            .await
            .expect(201);
        let token = created["token"].as_str().expect("token").to_owned();
        (provider_id, token)
    }
}

impl Drop for TestCore {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts an outpost in-process against `core_url` with `token`, keeping state in `state_dir`,
/// with its metrics on a free port.
pub async fn start_outpost(
    core_url: &str,
    token: &str,
    state_dir: &std::path::Path,
) -> redoubt_outpost::RunningOutpost {
    start_outpost_with(core_url, token, state_dir, |_| {}).await
}

/// [`start_outpost`], with `tweak` applied to the settings last.
pub async fn start_outpost_with(
    core_url: &str,
    token: &str,
    state_dir: &std::path::Path,
    tweak: impl FnOnce(&mut redoubt_outpost::settings::OutpostSettings),
) -> redoubt_outpost::RunningOutpost {
    start_outpost_on_clock(core_url, token, state_dir, tweak, Arc::new(outpost_clock())).await
}

/// [`start_outpost_with`] for a core that runs on the wall clock ([`core_process::CoreProcess`]).
pub async fn start_outpost_on_wall_clock(
    core_url: &str,
    token: &str,
    state_dir: &std::path::Path,
    tweak: impl FnOnce(&mut redoubt_outpost::settings::OutpostSettings),
) -> redoubt_outpost::RunningOutpost {
    let clock = Arc::new(redoubt_core::clock::SystemClock);
    start_outpost_on_clock(core_url, token, state_dir, tweak, clock).await
}

async fn start_outpost_on_clock(
    core_url: &str,
    token: &str,
    state_dir: &std::path::Path,
    tweak: impl FnOnce(&mut redoubt_outpost::settings::OutpostSettings),
    clock: redoubt_core::clock::SharedClock,
) -> redoubt_outpost::RunningOutpost {
    init_logging();
    let mut settings = redoubt_outpost::settings::OutpostSettings {
        url: core_url.to_owned(),
        token: token.to_owned(),
        state_dir: state_dir.to_owned(),
        ..Default::default()
    };
    for address in [
        &mut settings.listen.metrics,
        &mut settings.listen.http,
        &mut settings.listen.https,
        &mut settings.listen.ldap,
        &mut settings.listen.ldaps,
        &mut settings.listen.radius,
        &mut settings.listen.radius_accounting,
    ] {
        *address = "127.0.0.1:0".into();
    }
    tweak(&mut settings);
    let options = redoubt_outpost::StartOptions {
        modules: vec![redoubt_outpost_rac::MODULE],
        clock,
    };
    redoubt_outpost::start_with(settings, options)
        .await
        .expect("outpost starts")
}

/// The `redoubt-core` binary built next to the test binary.
pub fn core_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/redoubt-core
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = profile_dir.join("redoubt-core");
    assert!(
        binary.exists(),
        "{} is missing: build it first with `cargo build -p redoubt-core`",
        binary.display()
    );
    binary
}

/// The `redoubt-outpost` binary built next to the test binary.
pub fn outpost_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = profile_dir.join("redoubt-outpost");
    assert!(
        binary.exists(),
        "{} is missing: build it first with `cargo build -p redoubt-outpost-bin`",
        binary.display()
    );
    binary
}

/// Whether a missing external tool (promtool, ...) must fail the test rather than skip it.
/// The README's test command sets `REDOUBT_REQUIRE_PEERS=1` after installing them.
pub fn peers_required() -> bool {
    std::env::var("REDOUBT_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Runs `promtool check metrics` on `text`. Returns false (after saying so) when promtool is not
/// installed and peers are not required; panics with promtool's output when the check fails.
pub fn promtool_check(text: &str) -> bool {
    use std::io::Write;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            assert!(
                !peers_required(),
                "promtool is required but missing: {error}"
            );
            eprintln!("SKIPPED promtool check: promtool not installed ({error})");
            return false;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    true
}

/// Installs the ring crypto provider and a test log writer (once per process).
pub fn init_logging() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("REDOUBT_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}
