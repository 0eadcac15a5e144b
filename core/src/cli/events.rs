//! `redoubt-core events ...`: the audit event log.

use super::client::ApiClient;
use super::output::Output;
use clap::{Args, Subcommand};

const EVENT_COLUMNS: &[(&str, &str)] = &[
    ("TIME", "created_at"),
    ("ACTOR", "actor"),
    ("ACTION", "action"),
    ("TARGET", "target"),
    ("SOURCE", "source_address"),
    ("OUTCOME", "outcome"),
];

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events, newest first; filters combine.
    ///
    /// redoubt-core events list --outcome failure --since 2026-11-22T00:00:00Z
    List(EventFilter),
}

/// Filters and paging of `events list`.
#[derive(Debug, Args)]
pub struct EventFilter {
    /// Exact action, e.g. credential_check, user_create, outpost_create.
    #[arg(long)]
    action: Option<String>,
    /// Exact actor, e.g. admin or api-login.
    #[arg(long)]
    actor: Option<String>,
    /// Exact target, e.g. alice.
    #[arg(long)]
    target: Option<String>,
    #[arg(long, value_parser = ["success", "failure"])]
    outcome: Option<String>,
    /// Source IP address.
    #[arg(long, value_name = "ADDRESS")]
    source: Option<String>,
    /// Not before this RFC 3339 time, e.g. 2026-11-22T00:00:00Z.
    #[arg(long, value_name = "RFC3339")]
    since: Option<String>,
    /// Not after this RFC 3339 time.
    #[arg(long, value_name = "RFC3339")]
    until: Option<String>,
    #[arg(long, default_value_t = 1)]
    page: u32,
    /// Events per page (at most 1000).
    #[arg(long, default_value_t = 50)]
    page_size: u32,
}

impl EventFilter {
    /// The query parameters of `GET /api/v1/events`.
    fn query(self) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("page", self.page.to_string()),
            ("page_size", self.page_size.to_string()),
        ];
        for (key, value) in [
            ("action", self.action),
            ("actor", self.actor),
            ("target", self.target),
            ("outcome", self.outcome),
            ("source_address", self.source),
            ("since", self.since),
            ("until", self.until),
        ] {
            if let Some(value) = value {
                query.push((key, value));
            }
        }
        query
    }
}

pub(super) async fn run(
    api: &ApiClient,
    out: Output,
    command: EventsCommand,
) -> anyhow::Result<()> {
    let EventsCommand::List(filter) = command;
    out.list(
        &api.get_query("/api/v1/events", &filter.query()).await?,
        EVENT_COLUMNS,
    );
    Ok(())
}
