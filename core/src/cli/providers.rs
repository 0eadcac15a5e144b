//! `redoubt-core providers ...`: protocol providers and their settings.

use super::ListArgs;
use super::client::{ApiClient, put_some};
use super::output::{Output, cell, print_table};
use super::secrets;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

const PROVIDER_COLUMNS: &[(&str, &str)] = &[("ID", "id"), ("NAME", "name"), ("KIND", "kind")];

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// List providers.
    List(ListArgs),
    /// Show one provider with its settings (secret settings only with --show-secret).
    Show {
        id: i64,
        /// Include secret settings, such as a RADIUS shared secret.
        #[arg(long)]
        show_secret: bool,
    },
    /// Create a provider from --settings (JSON) or the shortcuts of its kind
    ///
    /// Examples:
    ///   redoubt-core providers create dir --kind ldap --base-dn dc=example,dc=com
    ///   echo 'radius-secret' | redoubt-core providers create wifi --kind radius \
    ///       --shared-secret-stdin --client-network 10.0.0.0/8
    #[command(verbatim_doc_comment)]
    Create {
        /// A name for people.
        name: String,
        /// ldap, radius, proxy, rac or oidc (an oidc client's secret is shown once).
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        settings: SettingsArgs,
        /// ldap: the base DN, e.g. dc=example,dc=com.
        #[arg(long)]
        base_dn: Option<String>,
        /// ldap: the group whose members may search the whole directory.
        #[arg(long, value_name = "GROUP_ID")]
        search_group: Option<i64>,
        /// radius: read the shared secret (one line) from standard input.
        #[arg(long)]
        shared_secret_stdin: bool,
        /// radius: a client network in CIDR form, repeatable.
        #[arg(long = "client-network", value_name = "CIDR")]
        client_networks: Vec<String>,
    },
    /// Change a provider; options not given stay as they are.
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        // --settings replaces the settings whole (`providers show ID --json` has the current ones).
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Delete a provider.
    Delete { id: i64 },
    /// A RAC provider's endpoints: credentials set or not, the server key last seen.
    RacEndpoints { id: i64 },
    /// Set or clear the credentials a RAC endpoint in `static` mode signs in with.
    #[command(subcommand)]
    RacCredentials(RacCredentialsCommand),
}

/// `providers rac-credentials ...`.
#[derive(Debug, Subcommand)]
pub enum RacCredentialsCommand {
    /// Set (replace) an endpoint's credentials; the password comes from --password-file, or
    /// is asked on the terminal (a line of standard input when it is not one)
    ///
    /// Example:
    ///   redoubt-core providers rac-credentials set 4 build-box --username admin \
    ///       --domain CORP --password-file /run/secrets/rdp
    #[command(verbatim_doc_comment)]
    Set {
        /// The RAC provider's id.
        id: i64,
        /// The endpoint's slug (`providers rac-endpoints ID` lists them).
        slug: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        domain: Option<String>,
        /// Read the password from this file (its first line).
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
    },
    /// Forget an endpoint's credentials.
    Clear { id: i64, slug: String },
}

const RAC_ENDPOINT_COLUMNS: &[&str] = &[
    "SLUG",
    "NAME",
    "HOST",
    "AUTH",
    "CREDENTIALS",
    "LAST SERVER KEY",
    "SEEN",
];

/// The password of a credentials file: its first line.
fn password_from_file(path: &Path) -> anyhow::Result<String> {
    let text = read(path)?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.is_empty() {
        bail!("{} holds no password on its first line", path.display());
    }
    Ok(password)
}

async fn run_rac_credentials(
    api: &ApiClient,
    out: Output,
    command: RacCredentialsCommand,
) -> anyhow::Result<()> {
    match command {
        RacCredentialsCommand::Set {
            id,
            slug,
            username,
            domain,
            password_file,
        } => {
            let password = match password_file {
                Some(path) => password_from_file(&path)?,
                None => secrets::prompt("endpoint password").await?,
            };
            let body = json!({ "username": username, "domain": domain, "password": password });
            api.put(&rac_credentials_path(id, &slug), body).await?;
            out.done(&format!("set the credentials of endpoint {slug}"));
        }
        RacCredentialsCommand::Clear { id, slug } => {
            api.delete(&rac_credentials_path(id, &slug)).await?;
            out.done(&format!("cleared the credentials of endpoint {slug}"));
        }
    }
    Ok(())
}

fn rac_credentials_path(id: i64, slug: &str) -> String {
    let slug: String = url::form_urlencoded::byte_serialize(slug.as_bytes()).collect();
    format!("/api/v1/providers/{id}/rac/endpoints/{slug}/credentials")
}

fn print_rac_endpoints(out: Output, endpoints: &Value) {
    if out.json {
        out.json(endpoints);
        return;
    }
    let rows: Vec<Vec<String>> = endpoints
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            vec![
                cell(&e["slug"]),
                cell(&e["name"]),
                cell(&e["host"]),
                cell(&e["auth_mode"]),
                if e["has_credentials"].as_bool() == Some(true) {
                    "set"
                } else {
                    "-"
                }
                .to_owned(),
                cell(&e["last_server_key_sha256"]),
                cell(&e["last_server_key_seen_at"]),
            ]
        })
        .collect();
    print_table(RAC_ENDPOINT_COLUMNS, &rows);
}

/// Provider settings as JSON, inline or from a file.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Settings as a JSON object, e.g. '{"base_dn":"dc=example,dc=com"}'; on update they
    /// replace the current settings whole.
    #[arg(long, value_name = "JSON", conflicts_with = "settings_file")]
    settings: Option<String>,
    /// Read the settings JSON from a file (keeps secrets out of the process list).
    #[arg(long, value_name = "PATH")]
    settings_file: Option<PathBuf>,
}

impl SettingsArgs {
    /// The settings given, if any.
    fn load(&self) -> anyhow::Result<Option<Map<String, Value>>> {
        match (&self.settings, &self.settings_file) {
            (Some(text), _) => parse_settings(text, "--settings").map(Some),
            (None, Some(path)) => parse_settings(&read(path)?, "--settings-file").map(Some),
            (None, None) => Ok(None),
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn parse_settings(text: &str, flag: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str(text).with_context(|| format!("{flag} is not valid JSON"))? {
        Value::Object(map) => Ok(map),
        _ => bail!("{flag} must be a JSON object"),
    }
}

pub(super) async fn run(
    api: &ApiClient,
    out: Output,
    command: ProvidersCommand,
) -> anyhow::Result<()> {
    match command {
        ProvidersCommand::List(args) => out.list(
            &api.get_query("/api/v1/providers", &args.query()).await?,
            PROVIDER_COLUMNS,
        ),
        ProvidersCommand::Show { id, show_secret } => {
            let reveal = if show_secret { "?reveal=secrets" } else { "" };
            out.object(&api.get(&format!("/api/v1/providers/{id}{reveal}")).await?);
        }
        ProvidersCommand::Create {
            name,
            kind,
            settings,
            base_dn,
            search_group,
            shared_secret_stdin,
            client_networks,
        } => {
            let mut settings = settings.load()?.unwrap_or_default();
            put_some(&mut settings, "base_dn", base_dn);
            put_some(&mut settings, "search_group_id", search_group);
            if shared_secret_stdin {
                let secret = secrets::from_stdin("shared secret")?;
                settings.insert("shared_secret".into(), secret.into());
            }
            if !client_networks.is_empty() {
                settings.insert("client_networks".into(), json!(client_networks));
            }
            let body = json!({ "name": name, "kind": kind, "settings": settings });
            out.object_with_warnings(&api.post("/api/v1/providers", body).await?);
        }
        ProvidersCommand::Update { id, name, settings } => {
            let mut body = Map::new();
            put_some(&mut body, "name", name);
            put_some(&mut body, "settings", settings.load()?);
            out.object_with_warnings(&api.patch(&format!("/api/v1/providers/{id}"), body).await?);
        }
        ProvidersCommand::Delete { id } => {
            api.delete(&format!("/api/v1/providers/{id}")).await?;
            out.done(&format!("deleted provider {id}"));
        }
        ProvidersCommand::RacEndpoints { id } => {
            let path = format!("/api/v1/providers/{id}/rac/endpoints");
            print_rac_endpoints(out, &api.get(&path).await?);
        }
        ProvidersCommand::RacCredentials(command) => {
            run_rac_credentials(api, out, command).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_must_be_an_object() {
        assert!(parse_settings(r#"{"base_dn":"dc=x"}"#, "--settings").is_ok());
        assert!(parse_settings("[1]", "--settings").is_err());
        assert!(parse_settings("{", "--settings").is_err());
    }
}
