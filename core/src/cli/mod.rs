//! The admin CLI: subcommands of `redoubt-core` that drive a running core over its REST API.
//! Tables for people, `--json` for scripts; the URL and token come from flags or
//! `REDOUBT_URL` / `REDOUBT_TOKEN`.

mod client;
mod commands;
mod output;
mod secrets;

pub use client::ApiClient;

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

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// Read the password from standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// A TOTP code, when the account has a device.
    #[arg(long)]
    pub totp: Option<String>,
    /// Token lifetime in seconds (default 12 hours).
    #[arg(long)]
    pub expires_in: Option<u64>,
}

/// Paging and search of list commands.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Case-insensitive substring.
    #[arg(long)]
    pub search: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub page: u32,
    #[arg(long, default_value_t = 50)]
    pub page_size: u32,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    List(ListArgs),
    /// Show one user with their groups.
    Show { id: i64 },
    /// Create a user.
    Create {
        username: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        /// Create the user disabled.
        #[arg(long)]
        inactive: bool,
        /// Read an initial password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Free-form attribute, repeatable: --attribute shell=/bin/bash
        #[arg(long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// Change a user.
    Update {
        id: i64,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        active: Option<bool>,
    },
    /// Delete a user.
    Delete { id: i64 },
    /// Set a user's password (prompted, or from standard input).
    SetPassword {
        id: i64,
        #[arg(long)]
        password_stdin: bool,
    },
    /// TOTP devices.
    #[command(subcommand)]
    Totp(TotpCommand),
}

#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// List a user's devices.
    List { user_id: i64 },
    /// Enrol a device; prints the otpauth URI and secret once.
    Add {
        user_id: i64,
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a device.
    Remove { user_id: i64, device_id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    List(ListArgs),
    Show {
        id: i64,
    },
    /// Create a group.
    Create {
        name: String,
        #[arg(long)]
        parent: Option<i64>,
        /// Members of a superuser group may use the admin API.
        #[arg(long)]
        superuser: bool,
    },
    /// Change a group.
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, conflicts_with = "no_parent")]
        parent: Option<i64>,
        /// Move the group to the top level.
        #[arg(long)]
        no_parent: bool,
        #[arg(long)]
        superuser: Option<bool>,
    },
    Delete {
        id: i64,
    },
    /// List the direct members.
    Members {
        id: i64,
    },
    AddMember {
        group_id: i64,
        user_id: i64,
    },
    RemoveMember {
        group_id: i64,
        user_id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    List(ListArgs),
    Show {
        id: i64,
    },
    /// Create an application.
    Create {
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        launch_url: String,
        /// The provider serving it.
        #[arg(long)]
        provider: Option<i64>,
    },
    Update {
        id: i64,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        launch_url: Option<String>,
        #[arg(long, conflicts_with = "no_provider")]
        provider: Option<i64>,
        #[arg(long)]
        no_provider: bool,
    },
    Delete {
        id: i64,
    },
    /// Allow a group to use the application (no bound group: everyone may).
    Bind {
        app_id: i64,
        group_id: i64,
    },
    Unbind {
        app_id: i64,
        group_id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    List(ListArgs),
    Show {
        id: i64,
    },
    /// Create a provider: give --settings JSON, or the shortcuts of its kind.
    Create {
        name: String,
        /// ldap, radius, proxy or rac.
        #[arg(long)]
        kind: String,
        /// Settings as JSON, e.g. '{"base_dn":"dc=example,dc=com"}'.
        #[arg(long, conflicts_with = "settings_file")]
        settings: Option<String>,
        #[arg(long)]
        settings_file: Option<std::path::PathBuf>,
        /// ldap: the base DN.
        #[arg(long)]
        base_dn: Option<String>,
        /// ldap: the group whose members may search the whole directory.
        #[arg(long)]
        search_group: Option<i64>,
        /// radius: read the shared secret from standard input.
        #[arg(long)]
        shared_secret_stdin: bool,
        /// radius: a client network in CIDR form, repeatable.
        #[arg(long = "client-network")]
        client_networks: Vec<String>,
    },
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        /// Replaces the settings whole.
        #[arg(long)]
        settings: Option<String>,
    },
    Delete {
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutpostsCommand {
    List(ListArgs),
    Show {
        id: i64,
    },
    /// Create an outpost; prints its token once and how to run it.
    Create {
        name: String,
        #[arg(long)]
        kind: String,
        /// A provider it serves, repeatable.
        #[arg(long = "provider")]
        providers: Vec<i64>,
    },
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        /// Replaces the provider list, repeatable.
        #[arg(long = "provider")]
        providers: Option<Vec<i64>>,
    },
    Delete {
        id: i64,
    },
    /// Replace the token; the old one stops working at once.
    RotateToken {
        id: i64,
    },
    /// The running instances: version, revision, health.
    Instances {
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    List,
    /// Create an admin token; prints the secret once.
    Create {
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        expires_in: Option<u64>,
        /// The superuser it acts for (default: you).
        #[arg(long)]
        user: Option<i64>,
    },
    Delete {
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events, newest first.
    List {
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// success or failure.
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long)]
        source: Option<String>,
        /// RFC 3339, e.g. 2026-11-22T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 50)]
        page_size: u32,
    },
}

/// Runs an admin command.
pub async fn run(client: &ClientArgs, command: AdminCommand) -> anyhow::Result<ExitCode> {
    let out = output::Output { json: client.json };
    if let AdminCommand::Login(args) = command {
        let api = ApiClient::new(&client.url, None)?;
        commands::login(&api, out, args).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let token = client.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
        anyhow::anyhow!(
            "no API token: set REDOUBT_TOKEN or pass --token (get one with `redoubt-core login`)"
        )
    })?;
    let api = ApiClient::new(&client.url, Some(token))?;
    commands::dispatch(&api, out, command).await?;
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
