//! `redoubt-core groups ...`: groups and their members.

use super::ListArgs;
use super::client::{ApiClient, put_some};
use super::output::Output;
use super::users::USER_COLUMNS;
use clap::Subcommand;
use serde_json::{Map, Value, json};

const GROUP_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("PARENT", "parent_id"),
    ("SUPERUSER", "is_superuser"),
];

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List groups.
    List(ListArgs),
    /// Show one group.
    Show { id: i64 },
    /// Create a group.
    Create {
        name: String,
        /// The parent group's id.
        #[arg(long)]
        parent: Option<i64>,
        /// Members of a superuser group may use the admin API.
        #[arg(long)]
        superuser: bool,
    },
    /// Change a group; options not given stay as they are.
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        /// Move the group under this parent.
        #[arg(long, conflicts_with = "no_parent")]
        parent: Option<i64>,
        /// Move the group to the top level.
        #[arg(long)]
        no_parent: bool,
        /// Grant (true) or withdraw (false) admin API access to the members.
        #[arg(long, value_name = "true|false")]
        superuser: Option<bool>,
    },
    /// Delete a group.
    Delete { id: i64 },
    /// List the direct members.
    Members { id: i64 },
    /// Add a user to a group.
    AddMember { group_id: i64, user_id: i64 },
    /// Remove a user from a group.
    RemoveMember { group_id: i64, user_id: i64 },
}

pub(super) async fn run(
    api: &ApiClient,
    out: Output,
    command: GroupsCommand,
) -> anyhow::Result<()> {
    match command {
        GroupsCommand::List(args) => out.list(
            &api.get_query("/api/v1/groups", &args.query()).await?,
            GROUP_COLUMNS,
        ),
        GroupsCommand::Show { id } => out.object(&api.get(&format!("/api/v1/groups/{id}")).await?),
        GroupsCommand::Create {
            name,
            parent,
            superuser,
        } => {
            let body = json!({ "name": name, "parent_id": parent, "is_superuser": superuser });
            out.object(&api.post("/api/v1/groups", body).await?);
        }
        GroupsCommand::Update {
            id,
            name,
            parent,
            no_parent,
            superuser,
        } => {
            let mut body = Map::new();
            put_some(&mut body, "name", name);
            put_some(&mut body, "is_superuser", superuser);
            if no_parent {
                body.insert("parent_id".into(), Value::Null);
            } else {
                put_some(&mut body, "parent_id", parent);
            }
            out.object(&api.patch(&format!("/api/v1/groups/{id}"), body).await?);
        }
        GroupsCommand::Delete { id } => {
            api.delete(&format!("/api/v1/groups/{id}")).await?;
            out.done(&format!("deleted group {id}"));
        }
        GroupsCommand::Members { id } => out.list(
            &api.get(&format!("/api/v1/groups/{id}/members")).await?,
            USER_COLUMNS,
        ),
        GroupsCommand::AddMember { group_id, user_id } => {
            api.post(
                &format!("/api/v1/groups/{group_id}/members"),
                json!({ "user_id": user_id }),
            )
            .await?;
            out.done(&format!("added user {user_id} to group {group_id}"));
        }
        GroupsCommand::RemoveMember { group_id, user_id } => {
            api.delete(&format!("/api/v1/groups/{group_id}/members/{user_id}"))
                .await?;
            out.done(&format!("removed user {user_id} from group {group_id}"));
        }
    }
    Ok(())
}
