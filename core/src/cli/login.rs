//! `redoubt-core login`: trades an administrator's password (and TOTP code) for an admin token.

use super::client::{ApiClient, ApiFailure};
use super::output::Output;
use super::secrets;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use std::io::IsTerminal;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// A member of a superuser group.
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// Read the password (one line) from standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// A TOTP code, when the account has a device (asked for on a terminal when needed).
    #[arg(long, value_name = "CODE")]
    pub totp: Option<String>,
    /// Token lifetime in seconds (default 12 hours).
    #[arg(long, value_name = "SECONDS")]
    pub expires_in: Option<u64>,
}

/// Logs in and prints the token secret alone (or the whole answer with --json).
pub(super) async fn run(api: &ApiClient, out: Output, args: LoginArgs) -> anyhow::Result<()> {
    let password = secrets::read("password", args.password_stdin).await?;
    let interactive = !args.password_stdin && std::io::stdin().is_terminal();
    let mut totp = args.totp;
    let created = loop {
        let body = json!({
            "username": args.username,
            "password": password,
            "totp_code": totp,
            "expires_in_seconds": args.expires_in,
        });
        let error = match api.post("/api/v1/auth/login", body).await {
            Ok(created) => break created,
            Err(error) => error,
        };
        let Some(failure) = error.downcast_ref::<ApiFailure>() else {
            return Err(error);
        };
        let status = failure.status.as_u16();
        match failure.kind.as_str() {
            "mfa-required" if totp.is_none() && interactive => {
                totp = Some(secrets::prompt("TOTP code").await?);
            }
            "mfa-required" => bail!(
                "`{}` has a TOTP device: pass --totp CODE (HTTP {status})",
                args.username
            ),
            "unauthorized" => bail!(
                "login failed: wrong username, password or TOTP code, or the account is \
                 disabled (HTTP {status})"
            ),
            _ => return Err(error),
        }
    };
    if out.json {
        out.json(&created);
    } else {
        let secret = created["secret"]
            .as_str()
            .context("the core sent no token")?;
        println!("{secret}");
    }
    Ok(())
}
