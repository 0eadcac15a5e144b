//! The admin CLI: subcommands of `redoubt-core` that drive a running core over its REST API.
//! Tables for people, `--json` for scripts; the URL and token come from flags or
//! `REDOUBT_URL` / `REDOUBT_TOKEN`.

mod apps;
mod client;
mod events;
mod groups;
mod login;
mod outposts;
mod output;
mod providers;
mod secrets;
mod tokens;
mod users;

pub use apps::AppsCommand;
pub use client::ApiClient;
pub use events::{EventFilter, EventsCommand};
pub use groups::GroupsCommand;
pub use login::LoginArgs;
pub use outposts::OutpostsCommand;
pub use providers::{ProvidersCommand, SettingsArgs};
pub use tokens::TokensCommand;
pub use users::{TotpCommand, UsersCommand};

use clap::{Args, Subcommand};
use std::process::ExitCode;

/// Environment variables (without prefix, lowercase) the CLI reads, so `serve` does not warn.
/// The outpost's variables are listed too, for images that run both binaries.
pub const CLIENT_ENV_KEYS: &[&str] = &[
    "url",
    "token",
    "config",
    "test_database_url",
    "state_dir",
    "ca_file",
    "danger_insecure",
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
    /// Admin API token (see `redoubt-core login`).
    #[arg(long, global = true, env = "REDOUBT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Trade a password (and TOTP code) for an admin token; prints only the token.
    ///
    /// export REDOUBT_TOKEN=$(redoubt-core login --username admin)
    Login(LoginArgs),
    /// Show the core's version, database and configuration revision.
    Info,
    /// Users, their passwords and TOTP devices.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Groups and their members.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Applications and the groups allowed to use them.
    #[command(subcommand, visible_alias = "applications")]
    Apps(AppsCommand),
    /// Protocol providers (ldap, radius, proxy, rac).
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Outposts, their tokens and running instances.
    #[command(subcommand)]
    Outposts(OutpostsCommand),
    /// Admin API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The audit event log.
    #[command(subcommand)]
    Events(EventsCommand),
}

/// Paging and search of list commands.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Case-insensitive substring to look for.
    #[arg(long)]
    pub search: Option<String>,
    /// 1-based page number.
    #[arg(long, default_value_t = 1)]
    pub page: u32,
    /// Items per page (at most 1000).
    #[arg(long, default_value_t = 50)]
    pub page_size: u32,
}

impl ListArgs {
    /// The query parameters of a list endpoint.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("page", self.page.to_string()),
            ("page_size", self.page_size.to_string()),
        ];
        if let Some(search) = &self.search {
            query.push(("search", search.clone()));
        }
        query
    }
}

/// Runs an admin command.
pub async fn run(client: &ClientArgs, command: AdminCommand) -> anyhow::Result<ExitCode> {
    let out = output::Output { json: client.json };
    if let AdminCommand::Login(args) = command {
        let api = ApiClient::new(&client.url, None)?;
        login::run(&api, out, args).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let token = client
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no API token: set REDOUBT_TOKEN or pass --token \
                 (get one with `export REDOUBT_TOKEN=$(redoubt-core login --username admin)`)"
            )
        })?;
    let api = ApiClient::new(&client.url, Some(token.to_owned()))?;
    match command {
        AdminCommand::Login(_) => anyhow::bail!("login needs no token"),
        AdminCommand::Info => out.object(&api.get("/api/v1/info").await?),
        AdminCommand::Users(c) => users::run(&api, out, c).await?,
        AdminCommand::Groups(c) => groups::run(&api, out, c).await?,
        AdminCommand::Apps(c) => apps::run(&api, out, c).await?,
        AdminCommand::Providers(c) => providers::run(&api, out, c).await?,
        AdminCommand::Outposts(c) => outposts::run(&api, out, c).await?,
        AdminCommand::Tokens(c) => tokens::run(&api, out, c).await?,
        AdminCommand::Events(c) => events::run(&api, out, c).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 0 when `url` answers ready.
pub async fn healthcheck(url: &str) -> ExitCode {
    let target = format!("{}/-/health/ready", url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    match client
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
