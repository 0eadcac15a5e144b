//! `redoubt-core apps ...`: applications and the groups allowed to use them.

use super::ListArgs;
use super::client::{ApiClient, put_some};
use super::output::Output;
use clap::Subcommand;
use serde_json::{Map, Value, json};

const APP_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("SLUG", "slug"),
    ("NAME", "name"),
    ("PROVIDER", "provider_id"),
    ("GROUPS", "group_ids"),
    ("LAUNCH URL", "launch_url"),
];

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// List applications.
    List(ListArgs),
    /// Show one application.
    Show { id: i64 },
    /// Create an application.
    Create {
        /// Lowercase letters, digits and dashes.
        slug: String,
        #[arg(long)]
        name: String,
        /// Where users open it (http or https URL).
        #[arg(long, default_value = "")]
        launch_url: String,
        /// The provider serving it.
        #[arg(long)]
        provider: Option<i64>,
    },
    /// Change an application; options not given stay as they are.
    Update {
        id: i64,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        launch_url: Option<String>,
        /// Serve it with this provider.
        #[arg(long, conflicts_with = "no_provider")]
        provider: Option<i64>,
        /// Detach the provider.
        #[arg(long)]
        no_provider: bool,
    },
    /// Delete an application.
    Delete { id: i64 },
    /// Allow a group to use the application (with no bound group, everyone may).
    Bind { app_id: i64, group_id: i64 },
    /// Withdraw a group's access.
    Unbind { app_id: i64, group_id: i64 },
}

pub(super) async fn run(api: &ApiClient, out: Output, command: AppsCommand) -> anyhow::Result<()> {
    match command {
        AppsCommand::List(args) => out.list(
            &api.get_query("/api/v1/applications", &args.query()).await?,
            APP_COLUMNS,
        ),
        AppsCommand::Show { id } => {
            out.object(&api.get(&format!("/api/v1/applications/{id}")).await?);
        }
        AppsCommand::Create {
            slug,
            name,
            launch_url,
            provider,
        } => {
            let body = json!({
                "slug": slug, "name": name, "launch_url": launch_url, "provider_id": provider,
            });
            out.object(&api.post("/api/v1/applications", body).await?);
        }
        AppsCommand::Update {
            id,
            slug,
            name,
            launch_url,
            provider,
            no_provider,
        } => {
            let mut body = Map::new();
            put_some(&mut body, "slug", slug);
            put_some(&mut body, "name", name);
            put_some(&mut body, "launch_url", launch_url);
            if no_provider {
                body.insert("provider_id".into(), Value::Null);
            } else {
                put_some(&mut body, "provider_id", provider);
            }
            out.object_with_warnings(
                &api.patch(&format!("/api/v1/applications/{id}"), body)
                    .await?,
            );
        }
        AppsCommand::Delete { id } => {
            let answer = api.delete(&format!("/api/v1/applications/{id}")).await?;
            out.done(&format!("deleted application {id}"));
            out.warnings(&answer);
        }
        AppsCommand::Bind { app_id, group_id } => {
            api.post(
                &format!("/api/v1/applications/{app_id}/groups"),
                json!({ "group_id": group_id }),
            )
            .await?;
            out.done(&format!("group {group_id} may use application {app_id}"));
        }
        AppsCommand::Unbind { app_id, group_id } => {
            api.delete(&format!("/api/v1/applications/{app_id}/groups/{group_id}"))
                .await?;
            out.done(&format!(
                "unbound group {group_id} from application {app_id}"
            ));
        }
    }
    Ok(())
}
