//! `redoubt-outpost`: runs an outpost (`run`) or checks one (`healthcheck`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use redoubt_outpost::settings::OutpostSettings;
use redoubt_settings::Override;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "redoubt-outpost",
    version,
    about = "Redoubt outpost: LDAP, RADIUS, proxy and remote access close to the applications",
    long_about = "Redoubt outpost: one binary for every outpost type.\n\n\
        Create the outpost in the core (`redoubt-core outposts create NAME --kind ldap`), then run \
        it with the URL and token that command prints:\n\n  \
        REDOUBT_URL=https://redoubt.example.com REDOUBT_TOKEN=rdt_... redoubt-outpost run\n\n\
        The outpost learns its type and configuration from the core, keeps it current over a \
        WebSocket, stores it in REDOUBT_STATE_DIR so it can start while the core is unreachable, \
        and serves /metrics and /-/health/ready on :9300."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the outpost.
    Run(RunArgs),
    /// Exit 0 when the outpost at --url is ready (has a configuration), 1 otherwise.
    Healthcheck {
        /// Base URL of the outpost's metrics port.
        #[arg(long, default_value = "http://127.0.0.1:9300")]
        url: String,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// TOML configuration file.
    #[arg(long, env = "REDOUBT_CONFIG")]
    config: Option<PathBuf>,
    /// The core's URL (REDOUBT_URL).
    #[arg(long)]
    url: Option<String>,
    /// Read the outpost's token from this file (REDOUBT_TOKEN_FILE; or set REDOUBT_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for the core, besides the system roots
    /// (REDOUBT_CA_FILE).
    #[arg(long)]
    ca_file: Option<String>,
    /// Do not verify the core's TLS certificate (REDOUBT_DANGER_INSECURE). Never in production.
    #[arg(long)]
    danger_insecure: bool,
    /// Where the last configuration is kept (REDOUBT_STATE_DIR).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Log level or filter directive (REDOUBT_LOG_LEVEL).
    #[arg(long)]
    log_level: Option<String>,
    /// `text` or `json` (REDOUBT_LOG_FORMAT).
    #[arg(long)]
    log_format: Option<String>,
    /// Metrics and health listen address (REDOUBT_LISTEN__METRICS).
    #[arg(long)]
    listen_metrics: Option<String>,
    /// HTTP listen address of proxy and RAC outposts (REDOUBT_LISTEN__HTTP).
    #[arg(long)]
    listen_http: Option<String>,
    /// HTTPS listen address of proxy and RAC outposts (REDOUBT_LISTEN__HTTPS).
    #[arg(long)]
    listen_https: Option<String>,
    /// LDAP listen address (REDOUBT_LISTEN__LDAP).
    #[arg(long)]
    listen_ldap: Option<String>,
    /// LDAPS listen address (REDOUBT_LISTEN__LDAPS).
    #[arg(long)]
    listen_ldaps: Option<String>,
    /// RADIUS authentication listen address, UDP (REDOUBT_LISTEN__RADIUS).
    #[arg(long)]
    listen_radius: Option<String>,
    /// RADIUS accounting listen address, UDP (REDOUBT_LISTEN__RADIUS_ACCOUNTING).
    #[arg(long)]
    listen_radius_accounting: Option<String>,
}

impl RunArgs {
    /// The flags as the highest configuration layer.
    fn overrides(self) -> anyhow::Result<Vec<Override>> {
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
        flag("url", self.url, "--url");
        if let Some(path) = self.token_file {
            let token = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read --token-file {}", path.display()))?;
            flag(
                "token",
                Some(token.trim_end_matches(['\n', '\r']).to_owned()),
                "--token-file",
            );
        }
        flag("ca_file", self.ca_file, "--ca-file");
        flag(
            "danger_insecure",
            self.danger_insecure.then(|| "true".to_owned()),
            "--danger-insecure",
        );
        flag(
            "state_dir",
            self.state_dir.map(|p| p.display().to_string()),
            "--state-dir",
        );
        flag("log_level", self.log_level, "--log-level");
        flag("log_format", self.log_format, "--log-format");
        flag("listen.metrics", self.listen_metrics, "--listen-metrics");
        flag("listen.http", self.listen_http, "--listen-http");
        flag("listen.https", self.listen_https, "--listen-https");
        flag("listen.ldap", self.listen_ldap, "--listen-ldap");
        flag("listen.ldaps", self.listen_ldaps, "--listen-ldaps");
        flag("listen.radius", self.listen_radius, "--listen-radius");
        flag(
            "listen.radius_accounting",
            self.listen_radius_accounting,
            "--listen-radius-accounting",
        );
        Ok(flags)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // At least two workers, even on one CPU: a worker busy with protocol work (encoding a
    // large search answer between yields) then never delays the control channel's heartbeats.
    // Heavy work itself runs on the blocking pool (directory rebuilds, large LDAP scans).
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
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
        Command::Healthcheck { url } => Ok(healthcheck(&url).await),
        Command::Run(args) => {
            let file = args.config.clone();
            let loaded = redoubt_settings::load::<OutpostSettings>(
                file.as_deref(),
                std::env::vars(),
                args.overrides()?,
                // Variables of the core, set in images that run both binaries.
                &[
                    "config",
                    "data_dir",
                    "database_url",
                    "secret_key",
                    "bootstrap_password",
                    "bootstrap_token",
                ],
            )?;
            loaded.settings.validate()?;
            redoubt_outpost::telemetry::init(
                &loaded.settings.log_level,
                &loaded.settings.log_format,
            )?;
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            let outpost = redoubt_outpost::start_with(
                loaded.settings,
                redoubt_outpost::StartOptions {
                    modules: modules(),
                    ..Default::default()
                },
            )
            .await?;
            shutdown_signal().await;
            tracing::info!("shutting down");
            outpost.stop().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The protocol modules that live in crates of their own.
fn modules() -> Vec<redoubt_outpost::module::ExternalModule> {
    vec![
        #[cfg(feature = "rac")]
        redoubt_outpost_rac::MODULE,
    ]
}

async fn healthcheck(url: &str) -> ExitCode {
    let target = format!("{}/-/health/ready", url.trim_end_matches('/'));
    match reqwest::Client::new()
        .get(&target)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("not ready: {target} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("not ready: {target}: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
