//! `redoubt-core outposts ...`: outposts, their tokens and running instances; a new token comes
//! with the lines to run the outpost (environment, systemd, container).

use super::ListArgs;
use super::client::{ApiClient, put_some};
use super::output::{Output, cell};
use anyhow::Context;
use clap::Subcommand;
use serde_json::{Map, Value, json};

const OUTPOST_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("KIND", "kind"),
    ("PROVIDERS", "provider_ids"),
];
const INSTANCE_COLUMNS: &[(&str, &str)] = &[
    ("INSTANCE", "instance_id"),
    ("HOSTNAME", "hostname"),
    ("VERSION", "version"),
    ("OUTDATED", "outdated"),
    ("REVISION", "applied_revision"),
    ("UP TO DATE", "up_to_date"),
    ("HEALTHY", "healthy"),
    ("LAST SEEN", "last_seen"),
    ("ADDRESS", "remote_address"),
];
/// The image that runs both binaries.
const IMAGE: &str = "ghcr.io/redoubt-id/redoubt:latest";

#[derive(Debug, Subcommand)]
pub enum OutpostsCommand {
    /// List outposts.
    List(ListArgs),
    /// Show one outpost.
    Show { id: i64 },
    /// Create an outpost; prints its token once and how to run it.
    ///
    /// redoubt-core outposts create ldap1 --kind ldap --provider 3
    Create {
        /// Also names its systemd unit, env file and container (redoubt-outpost@NAME).
        name: String,
        /// ldap, radius, proxy or rac.
        #[arg(long)]
        kind: String,
        /// A provider it serves, repeatable.
        #[arg(long = "provider", value_name = "PROVIDER_ID")]
        providers: Vec<i64>,
    },
    /// Change an outpost; options not given stay as they are.
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        /// Replaces the provider list, repeatable.
        #[arg(
            long = "provider",
            value_name = "PROVIDER_ID",
            conflicts_with = "no_providers"
        )]
        providers: Option<Vec<i64>>,
        /// Serve no provider.
        #[arg(long)]
        no_providers: bool,
    },
    /// Delete an outpost (its token stops working).
    Delete { id: i64 },
    /// Replace the token; the old one stops working at once. Prints the new one once.
    RotateToken { id: i64 },
    /// The running instances: version, revision, health.
    Instances { id: i64 },
    /// Start a new generation of the keys proxy outposts seal session cookies with. Cookies
    /// sealed with the previous generation keep working; older ones end.
    RotateSessionKeys,
}

pub(super) async fn run(
    api: &ApiClient,
    out: Output,
    command: OutpostsCommand,
) -> anyhow::Result<()> {
    match command {
        OutpostsCommand::List(args) => out.list(
            &api.get_query("/api/v1/outposts", &args.query()).await?,
            OUTPOST_COLUMNS,
        ),
        OutpostsCommand::Show { id } => {
            out.object(&api.get(&format!("/api/v1/outposts/{id}")).await?);
        }
        OutpostsCommand::Create {
            name,
            kind,
            providers,
        } => {
            let body = json!({ "name": name, "kind": kind, "provider_ids": providers });
            let created = api.post("/api/v1/outposts", body).await?;
            if out.json {
                out.json(&created);
                return Ok(());
            }
            let token = created["token"]
                .as_str()
                .context("the core sent no token")?;
            let outpost = &created["outpost"];
            println!(
                "Created {} outpost `{}` (id {}).",
                cell(&outpost["kind"]),
                cell(&outpost["name"]),
                cell(&outpost["id"])
            );
            print_run_instructions(api.base(), outpost, token);
        }
        OutpostsCommand::Update {
            id,
            name,
            providers,
            no_providers,
        } => {
            let mut body = Map::new();
            put_some(&mut body, "name", name);
            if no_providers {
                body.insert("provider_ids".into(), json!([]));
            } else {
                put_some(&mut body, "provider_ids", providers);
            }
            out.object(&api.patch(&format!("/api/v1/outposts/{id}"), body).await?);
        }
        OutpostsCommand::Delete { id } => {
            api.delete(&format!("/api/v1/outposts/{id}")).await?;
            out.done(&format!("deleted outpost {id}"));
        }
        OutpostsCommand::RotateToken { id } => {
            let outpost = api.get(&format!("/api/v1/outposts/{id}")).await?;
            let rotated = api
                .post(&format!("/api/v1/outposts/{id}/rotate-token"), json!({}))
                .await?;
            if out.json {
                out.json(&rotated);
                return Ok(());
            }
            let token = rotated["token"]
                .as_str()
                .context("the core sent no token")?;
            println!(
                "Rotated the token of outpost `{}` (id {id}); the old one no longer works.",
                cell(&outpost["name"])
            );
            print_run_instructions(api.base(), &outpost, token);
        }
        OutpostsCommand::RotateSessionKeys => {
            let rotated = api.post("/api/v1/session-keys/rotate", json!({})).await?;
            if out.json {
                out.json(&rotated);
            } else {
                out.done(&format!(
                    "proxy outposts now seal session cookies with key generation {}; the previous generation still opens them",
                    cell(&rotated["generation"])
                ));
            }
        }
        OutpostsCommand::Instances { id } => out.list(
            &api.get(&format!("/api/v1/outposts/{id}/instances")).await?,
            INSTANCE_COLUMNS,
        ),
    }
    Ok(())
}

/// The outpost's name as a systemd instance, file and container name: characters other than
/// ASCII letters, digits, `_`, `.` and `-` become `-`.
fn instance_name(name: &str, id: &Value) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(['-', '.']);
    if trimmed.is_empty() {
        format!("outpost-{}", cell(id))
    } else {
        trimmed.to_owned()
    }
}

/// Published ports of a kind's listeners (the metrics port 9300 comes on top).
fn ports(kind: &str) -> &'static str {
    match kind {
        "ldap" => "-p 3389:3389 -p 6636:6636",
        "radius" => "-p 1812:1812/udp -p 1813:1813/udp",
        _ => "-p 9000:9000 -p 9443:9443",
    }
}

/// `value` as one shell word.
fn shell_word(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@%+=".contains(c))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Whether the core's URL names this machine, which a container cannot reach that way.
fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The token, shown once, and three ways to run the outpost with it.
fn print_run_instructions(url: &str, outpost: &Value, token: &str) {
    let name = instance_name(outpost["name"].as_str().unwrap_or_default(), &outpost["id"]);
    let kind = outpost["kind"].as_str().unwrap_or_default();
    let env_file = format!("/etc/redoubt/outpost-{name}.env");
    let (q_url, q_token) = (shell_word(url), shell_word(token));
    println!(
        "\nIts token is shown this once (the core keeps only a hash); store it now:\n\n  {token}\n"
    );
    println!(
        "Environment of the outpost:\n  REDOUBT_URL={url}\n  REDOUBT_TOKEN={token}\n  \
         (With several core replicas, list each, comma-separated: \
         REDOUBT_URL=https://core-a.example.com,https://core-b.example.com; the outpost fails over \
         between them within seconds.)\n"
    );
    println!(
        "systemd (install systemd/redoubt-outpost@.service of the Redoubt sources in \
         /etc/systemd/system/ first):\n  \
         printf 'REDOUBT_URL=%s\\nREDOUBT_TOKEN=%s\\n' {q_url} {q_token} \\\n    \
         | sudo install -D -m 0600 /dev/stdin {env_file}\n  \
         sudo systemctl enable --now redoubt-outpost@{name}\n"
    );
    println!(
        "Container:\n  \
         podman run -d --name redoubt-outpost-{name} \\\n    \
         -e REDOUBT_URL={q_url} -e REDOUBT_TOKEN={q_token} \\\n    \
         -e REDOUBT_STATE_DIR=/state -v redoubt-outpost-{name}:/state \\\n    \
         {} -p 9300:9300 {IMAGE} redoubt-outpost run",
        ports(kind)
    );
    if is_loopback(url) {
        println!(
            "  ({url} is this machine: inside a container that is the container itself; use an \
             address of the core the container can reach, or add --network host.)"
        );
    }
    if url.starts_with("https://") {
        println!(
            "  (If the core's certificate is self-signed, give the outpost REDOUBT_CA_FILE with \
             the core's tls.crt.)"
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_instance_names() {
        assert_eq!(instance_name("ldap-1", &json!(1)), "ldap-1");
        assert_eq!(instance_name("My Outpost/2", &json!(1)), "My-Outpost-2");
        assert_eq!(instance_name("ß", &json!(7)), "outpost-7");
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("http://h:9000"), "http://h:9000");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn loopback_urls() {
        assert!(is_loopback("http://127.0.0.1:9000"));
        assert!(is_loopback("http://localhost:9000"));
        assert!(is_loopback("http://[::1]:9000"));
        assert!(!is_loopback("https://redoubt.example.com"));
    }
}
