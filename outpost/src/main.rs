//! `redoubt-outpost`: runs an outpost (`run`) or checks one (`healthcheck`).

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
    /// Where the last configuration is kept (REDOUBT_STATE_DIR).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Metrics and health listen address (REDOUBT_LISTEN__METRICS).
    #[arg(long)]
    listen_metrics: Option<String>,
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
        Command::Healthcheck { url } => Ok(healthcheck(&url).await),
        Command::Run(args) => {
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
            flag("url", args.url, "--url");
            flag(
                "state_dir",
                args.state_dir.map(|p| p.display().to_string()),
                "--state-dir",
            );
            flag("listen.metrics", args.listen_metrics, "--listen-metrics");
            let loaded = redoubt_settings::load::<OutpostSettings>(
                args.config.as_deref(),
                std::env::vars(),
                flags,
                &["config"],
            )?;
            redoubt_outpost::telemetry::init(
                &loaded.settings.log_level,
                &loaded.settings.log_format,
            )?;
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            let outpost = redoubt_outpost::start(loaded.settings).await?;
            shutdown_signal().await;
            tracing::info!("shutting down");
            outpost.stop().await;
            Ok(ExitCode::SUCCESS)
        }
    }
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
