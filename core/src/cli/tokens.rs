//! `redoubt-core tokens ...`: admin API tokens.

use super::client::ApiClient;
use super::output::{Output, cell};
use clap::Subcommand;
use serde_json::json;

const TOKEN_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("USER", "user_id"),
    ("OUTPOST", "outpost_id"),
    ("EXPIRES", "expires_at"),
    ("LAST USED", "last_used_at"),
    ("DESCRIPTION", "description"),
];

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List API tokens (admin and outpost), without their secrets.
    List,
    /// Create an admin token; prints the secret once.
    Create {
        /// What it is for, e.g. "backup script".
        #[arg(long, default_value = "")]
        description: String,
        /// Lifetime in seconds (default: no expiry).
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u64>,
        /// The superuser it acts for (default: you).
        #[arg(long, value_name = "USER_ID")]
        user: Option<i64>,
    },
    /// Revoke a token.
    Delete { id: i64 },
}

pub(super) async fn run(
    api: &ApiClient,
    out: Output,
    command: TokensCommand,
) -> anyhow::Result<()> {
    match command {
        TokensCommand::List => out.list(&api.get("/api/v1/tokens").await?, TOKEN_COLUMNS),
        TokensCommand::Create {
            description,
            expires_in,
            user,
        } => {
            let body = json!({
                "description": description, "expires_in_seconds": expires_in, "user_id": user,
            });
            let created = api.post("/api/v1/tokens", body).await?;
            if out.json {
                out.json(&created);
            } else {
                let expires = match &created["token"]["expires_at"] {
                    serde_json::Value::Null => "never".to_owned(),
                    at => cell(at),
                };
                println!(
                    "Created token {} (expires: {expires}). Its secret is shown this once:\n\n  {}\n",
                    cell(&created["token"]["id"]),
                    cell(&created["secret"])
                );
            }
        }
        TokensCommand::Delete { id } => {
            api.delete(&format!("/api/v1/tokens/{id}")).await?;
            out.done(&format!("revoked token {id}"));
        }
    }
    Ok(())
}
