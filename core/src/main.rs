//! `redoubt-core`: runs the core (`serve`), checks it (`healthcheck`), and drives a running core
//! over its API (`users`, `groups`, `apps`, `providers`, `outposts`, `tokens`, `events`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use redoubt_core::cli::{self, AdminCommand, ClientArgs};
use redoubt_core::clock::SystemClock;
use redoubt_core::config::{self, CoreSettings, Override};
use redoubt_core::server::{Core, Listeners};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "redoubt-core",
    version,
    about = "Redoubt core: identities, applications, providers and outposts",
    long_about = "Redoubt core: identities, applications, providers and outposts.\n\n\
        Start it with `redoubt-core serve` (SQLite in ./data by default), then drive it with the \
        admin commands, e.g.\n\n  export REDOUBT_TOKEN=$(redoubt-core login --username admin)\n  \
        redoubt-core users list\n\nSettings come from defaults, an optional TOML file \
        (--config), REDOUBT_* environment variables (REDOUBT_LISTEN__HTTP=0.0.0.0:9000; a _FILE \
        suffix reads the value from a file) and flags, later ones winning."
)]
struct Cli {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the core server.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(ServeArgs),
    /// Exit 0 when the core at --url is ready, 1 otherwise (for container health checks;
    /// the metrics port answers too: --url http://127.0.0.1:9300).
    Healthcheck,
    #[command(flatten)]
    Admin(AdminCommand),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "REDOUBT_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP listen address (ip:port; port 0 picks a free one).
    #[arg(long)]
    listen_http: Option<String>,
    /// HTTPS listen address; an empty value turns HTTPS off.
    #[arg(long)]
    listen_https: Option<String>,
    /// Metrics listen address.
    #[arg(long)]
    listen_metrics: Option<String>,
    /// sqlite://... or postgres://...
    #[arg(long)]
    database_url: Option<String>,
    /// Data directory (SQLite file, secret key, bootstrap credentials).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl ServeArgs {
    fn load(&self) -> anyhow::Result<config::Loaded<CoreSettings>> {
        let mut flags = Vec::new();
        let mut flag = |key: &str, value: Option<String>, origin: &str| {
            if let Some(value) = value {
                flags.push(Override {
                    key: key.into(),
                    value,
                    origin: origin.into(),
                });
            }
        };
        flag("listen.http", self.listen_http.clone(), "--listen-http");
        flag("listen.https", self.listen_https.clone(), "--listen-https");
        flag(
            "listen.metrics",
            self.listen_metrics.clone(),
            "--listen-metrics",
        );
        flag("database_url", self.database_url.clone(), "--database-url");
        flag(
            "data_dir",
            self.data_dir.as_ref().map(|p| p.display().to_string()),
            "--data-dir",
        );
        Ok(config::load(
            self.config.as_deref(),
            std::env::vars(),
            flags,
            cli::CLIENT_ENV_KEYS,
        )?)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => {
            let loaded = args.load()?;
            loaded.settings.validate()?;
            redoubt_core::telemetry::init(&loaded.settings.log_level, &loaded.settings.log_format)?;
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            let core = Core::prepare(loaded.settings, Arc::new(SystemClock)).await?;
            print_bootstrap(&core);
            eprintln!("database is migrated");
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck => Ok(cli::healthcheck(&cli.client.url).await),
        Command::Admin(command) => cli::run(&cli.client, command).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let loaded = args.load()?;
    let settings = loaded.settings;
    settings.validate()?;
    redoubt_core::telemetry::init(&settings.log_level, &settings.log_format)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let listeners = Listeners::bind(&settings).await?;
    let http_addr = listeners.http.local_addr()?;
    let https_addr = listeners
        .https
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let core = Core::prepare(settings, Arc::new(SystemClock)).await?;
    print_welcome(&core, http_addr, https_addr);
    core.serve(listeners, shutdown_signal())
        .await
        .context("the core stopped with an error")
}

fn print_welcome(
    core: &Core,
    http_addr: std::net::SocketAddr,
    https_addr: Option<std::net::SocketAddr>,
) {
    let host = if http_addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", http_addr.port())
    } else {
        http_addr.to_string()
    };
    let url = format!("http://{host}");
    print_bootstrap(core);
    eprintln!(
        "Redoubt core is up at {url}\n  log in:   export REDOUBT_URL={url} REDOUBT_TOKEN=$(redoubt-core login --url {url} --username admin)\n  \
         then:     redoubt-core users list\n  API docs: {url}/api/v1/schema.json\n"
    );
    if let (Some(addr), Some(tls)) = (https_addr, &core.tls) {
        let port = addr.port();
        eprintln!("HTTPS on port {port} with {}", tls.cert_path.display());
        if tls.generated {
            eprintln!(
                "  (self-signed: give outposts REDOUBT_CA_FILE={} or set tls.cert_file/tls.key_file)\n",
                tls.cert_path.display()
            );
        }
    }
}

/// Tells the operator about the first administrator. A generated password is printed only when
/// standard error is a terminal (a person reads it once); otherwise standard error is most likely
/// a log (journald, a container's log), so only the 0600 file holding it is named.
fn print_bootstrap(core: &Core) {
    let outcome = &core.bootstrap;
    if let (Some(password), Some(file)) = (&outcome.generated_password, &outcome.credentials_file) {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!(
                "\nFirst start: created user `admin` in group `admins`.\n  password: {password}\n  \
                 (also written to {}, readable only by you; delete it once you have stored it)\n",
                file.display()
            );
        } else {
            eprintln!(
                "\nFirst start: created user `admin` in group `admins`; its password is in {} \
                 (readable only by you; not printed because this output is not a terminal and may \
                 be kept in logs; delete the file once you have stored the password)\n",
                file.display()
            );
        }
    } else if outcome.admin_created {
        eprintln!(
            "\nFirst start: created user `admin` with the password from REDOUBT_BOOTSTRAP_PASSWORD.\n"
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
