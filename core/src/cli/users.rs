//! `redoubt-core users ...`: users, their passwords and TOTP devices.

use super::client::{ApiClient, put_some};
use super::output::{Output, cell};
use super::{ListArgs, secrets};
use anyhow::Context;
use clap::Subcommand;
use serde_json::{Map, Value, json};

/// Table columns of users (also used for group members).
pub(crate) const USER_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("USERNAME", "username"),
    ("NAME", "name"),
    ("EMAIL", "email"),
    ("ACTIVE", "is_active"),
];

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users (search matches username, name and email).
    List(ListArgs),
    /// Show one user with their groups.
    Show { id: i64 },
    /// Create a user.
    ///
    /// echo 's3cret-pass' | redoubt-core users create alice --email alice@example.com --password-stdin
    Create {
        username: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        /// Create the user disabled.
        #[arg(long)]
        inactive: bool,
        /// Read an initial password (one line) from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Free-form attribute, repeatable: --attribute shell=/bin/bash
        #[arg(long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// Change a user; options not given stay as they are.
    Update {
        id: i64,
        #[arg(long)]
        username: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Enable (true) or disable (false) the user.
        #[arg(long, value_name = "true|false")]
        active: Option<bool>,
    },
    /// Delete a user.
    Delete { id: i64 },
    /// Set a user's password (prompted twice, or one line from standard input).
    SetPassword {
        id: i64,
        #[arg(long)]
        password_stdin: bool,
    },
    /// End every session of a user now (sign out everywhere): core logins and proxy sessions on
    /// every outpost.
    RevokeSessions { id: i64 },
    /// TOTP devices of a user.
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
        /// A label, e.g. phone (default: authenticator).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a device.
    Remove { user_id: i64, device_id: i64 },
}

/// `--attribute KEY=VALUE` pairs as a JSON object.
fn parse_attributes(pairs: Vec<String>) -> anyhow::Result<Map<String, Value>> {
    let mut attributes = Map::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .with_context(|| format!("--attribute `{pair}` is not KEY=VALUE"))?;
        attributes.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(attributes)
}

pub(super) async fn run(api: &ApiClient, out: Output, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List(args) => out.list(
            &api.get_query("/api/v1/users", &args.query()).await?,
            USER_COLUMNS,
        ),
        UsersCommand::Show { id } => out.object(&api.get(&format!("/api/v1/users/{id}")).await?),
        UsersCommand::Create {
            username,
            name,
            email,
            inactive,
            password_stdin,
            attributes,
        } => {
            let attributes = parse_attributes(attributes)?;
            let password = if password_stdin {
                Some(secrets::from_stdin("password")?)
            } else {
                None
            };
            let body = json!({
                "username": username, "name": name, "email": email, "is_active": !inactive,
                "attributes": attributes, "password": password,
            });
            out.object(&api.post("/api/v1/users", body).await?);
        }
        UsersCommand::Update {
            id,
            username,
            name,
            email,
            active,
        } => {
            let mut body = Map::new();
            put_some(&mut body, "username", username);
            put_some(&mut body, "name", name);
            put_some(&mut body, "email", email);
            put_some(&mut body, "is_active", active);
            out.object(&api.patch(&format!("/api/v1/users/{id}"), body).await?);
        }
        UsersCommand::Delete { id } => {
            api.delete(&format!("/api/v1/users/{id}")).await?;
            out.done(&format!("deleted user {id}"));
        }
        UsersCommand::SetPassword { id, password_stdin } => {
            let password = secrets::new_password(password_stdin).await?;
            api.put(
                &format!("/api/v1/users/{id}/password"),
                json!({ "password": password }),
            )
            .await?;
            out.done(&format!("set the password of user {id}"));
        }
        UsersCommand::RevokeSessions { id } => {
            api.post(&format!("/api/v1/users/{id}/sessions/revoke"), json!({}))
                .await?;
            out.done(&format!("ended every session of user {id}"));
        }
        UsersCommand::Totp(command) => totp(api, out, command).await?,
    }
    Ok(())
}

async fn totp(api: &ApiClient, out: Output, command: TotpCommand) -> anyhow::Result<()> {
    match command {
        TotpCommand::List { user_id } => out.list(
            &api.get(&format!("/api/v1/users/{user_id}/totp")).await?,
            &[("ID", "id"), ("NAME", "name"), ("CREATED", "created_at")],
        ),
        TotpCommand::Add { user_id, name } => {
            let enrolled = api
                .post(
                    &format!("/api/v1/users/{user_id}/totp"),
                    json!({ "name": name }),
                )
                .await?;
            if out.json {
                out.json(&enrolled);
            } else {
                println!(
                    "Enrolled TOTP device {} (`{}`) for user {user_id}. Shown this once; scan \
                     the URI as a QR code or type the secret now:\n",
                    cell(&enrolled["device"]["id"]),
                    cell(&enrolled["device"]["name"]),
                );
                println!("  otpauth URI: {}", cell(&enrolled["otpauth_uri"]));
                println!("  secret:      {}", cell(&enrolled["secret"]));
            }
        }
        TotpCommand::Remove { user_id, device_id } => {
            api.delete(&format!("/api/v1/users/{user_id}/totp/{device_id}"))
                .await?;
            out.done(&format!(
                "removed TOTP device {device_id} of user {user_id}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_key_value_pairs() {
        let parsed = parse_attributes(vec!["shell=/bin/bash".into(), "note=a=b".into()]);
        let parsed = parsed.ok().unwrap_or_default();
        assert_eq!(parsed["shell"], "/bin/bash");
        assert_eq!(parsed["note"], "a=b");
        assert!(parse_attributes(vec!["novalue".into()]).is_err());
        assert!(parse_attributes(vec!["=x".into()]).is_err());
    }
}
