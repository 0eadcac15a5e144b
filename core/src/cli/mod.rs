//! The admin CLI: subcommands of `redoubt-core` that drive a running core over its REST API.

use clap::Subcommand;
use std::process::ExitCode;

/// Environment variables (without prefix, lowercase) the CLI reads, so `serve` does not warn.
pub const CLIENT_ENV_KEYS: &[&str] = &[
    "url",
    "token",
    "config",
    "healthcheck_url",
    "test_database_url",
];

/// Where the core is and how to authenticate.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// Base URL of the core.
    #[arg(
        long,
        global = true,
        env = "REDOUBT_URL",
        default_value = "http://127.0.0.1:9000"
    )]
    pub url: String,
    /// Admin API token.
    #[arg(long, global = true, env = "REDOUBT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show facts about the core.
    Info,
}

/// Runs an admin command.
pub async fn run(_client: &ClientArgs, _command: AdminCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}

/// Exit 0 when `url` answers ready.
pub async fn healthcheck(url: &str) -> ExitCode {
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
