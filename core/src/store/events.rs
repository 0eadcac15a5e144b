//! The audit event log.

use super::{Store, StoreError, limit};
use crate::auth::lockout::Counts;
use crate::model::{Event, EventFilter, NewEvent, Outcome, Page};
use sqlx::Row;
use sqlx::any::AnyRow;

fn event_from_row(row: &AnyRow) -> Result<Event, sqlx::Error> {
    let detail: String = row.try_get("detail")?;
    Ok(Event {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        source_address: row.try_get("source_address")?,
        outcome: row.try_get("outcome")?,
        detail: serde_json::from_str(&detail).unwrap_or_default(),
    })
}

const EVENT_FILTER: &str = "($1 = '' OR action = $1) AND ($2 = '' OR actor = $2) \
    AND ($3 = '' OR target = $3) AND ($4 = '' OR outcome = $4) \
    AND ($5 = '' OR source_address = $5) AND created_at >= $6 AND created_at <= $7";

impl Store {
    /// Appends an event.
    pub async fn record_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (created_at, actor, action, target, source_address, outcome, \
             detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.now())
        .bind(&event.actor)
        .bind(event.action)
        .bind(&event.target)
        .bind(&event.source_address)
        .bind(event.outcome.as_str())
        .bind(event.detail.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Appends an event an outpost queued: `event_id` (the outpost's random id) is stored once,
    /// so a batch delivered again after a lost answer adds nothing; `occurred_at` is when it
    /// happened, never later than now. Returns whether the event was new.
    pub async fn record_outpost_event(
        &self,
        event: &NewEvent,
        event_id: Option<&str>,
        occurred_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let at = occurred_at.map_or(now, |at| at.clamp(0, now));
        let done = sqlx::query(
            "INSERT INTO events (created_at, actor, action, target, source_address, outcome, \
             detail, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(at)
        .bind(&event.actor)
        .bind(event.action)
        .bind(&event.target)
        .bind(&event.source_address)
        .bind(event.outcome.as_str())
        .bind(event.detail.to_string())
        .bind(event_id.map(str::to_owned))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A page of events matching `filter`, newest first.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        page: u32,
        page_size: u32,
    ) -> Result<Page<Event>, StoreError> {
        let bind_filter =
            |query: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
                query
                    .bind(filter.action.clone().unwrap_or_default())
                    .bind(filter.actor.clone().unwrap_or_default())
                    .bind(filter.target.clone().unwrap_or_default())
                    .bind(filter.outcome.clone().unwrap_or_default())
                    .bind(filter.source_address.clone().unwrap_or_default())
                    .bind(filter.since.unwrap_or(i64::MIN))
                    .bind(filter.until.unwrap_or(i64::MAX))
            };
        let total: i64 = bind_filter(sqlx::query(COUNT_SQL.as_str()))
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let rows = bind_filter(sqlx::query(LIST_SQL.as_str()))
            .bind(limit(page_size))
            .bind(i64::from(page.saturating_sub(1)) * i64::from(page_size))
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total,
            page,
            page_size,
        })
    }

    /// The counts the brute-force policy decides on, for an attempt of `action` by `target` from
    /// `source_address`, over events since `since` (see `auth::lockout`). An empty source has no
    /// source counts.
    pub async fn lockout_counts(
        &self,
        action: &str,
        target: &str,
        source_address: &str,
        since: i64,
    ) -> Result<Counts, StoreError> {
        let failure = Outcome::Failure.as_str();
        let success = Outcome::Success.as_str();
        let last_success: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(id) FROM events WHERE action = $1 AND target = $2 \
             AND source_address = $3 AND created_at >= $4 AND outcome = $5",
        )
        .bind(action)
        .bind(target)
        .bind(source_address)
        .bind(since)
        .bind(success)
        .fetch_one(&self.pool)
        .await?;
        let pair = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(created_at) AS last FROM events WHERE action = $1 \
             AND target = $2 AND source_address = $3 AND created_at >= $4 AND outcome = $5 \
             AND id > $6",
        )
        .bind(action)
        .bind(target)
        .bind(source_address)
        .bind(since)
        .bind(failure)
        .bind(last_success.unwrap_or(0))
        .fetch_one(&self.pool)
        .await?;
        let user_failures: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE action = $1 AND target = $2 \
             AND created_at >= $3 AND outcome = $4",
        )
        .bind(action)
        .bind(target)
        .bind(since)
        .bind(failure)
        .fetch_one(&self.pool)
        .await?;
        let mut counts = Counts {
            pair_failures: pair.try_get("n")?,
            pair_last_failure: pair.try_get("last")?,
            user_failures,
            ..Counts::default()
        };
        if !source_address.is_empty() {
            let distinct = |outcome: &'static str| {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(DISTINCT target) FROM events WHERE action = $1 \
                     AND source_address = $2 AND created_at >= $3 AND outcome = $4",
                )
                .bind(action)
                .bind(source_address)
                .bind(since)
                .bind(outcome)
                .fetch_one(&self.pool)
            };
            counts.source_failed_users = distinct(failure).await?;
            counts.source_succeeded_users = distinct(success).await?;
        }
        Ok(counts)
    }

    /// Deletes events older than `before` unless another replica is doing it right now (a
    /// PostgreSQL advisory lock); `None` means another replica held the lock.
    pub async fn prune_events_exclusive(&self, before: i64) -> Result<Option<u64>, StoreError> {
        if self.backend != super::Backend::Postgres {
            return self.prune_events(before).await.map(Some);
        }
        let mut tx = self.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PRUNE_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        let deleted = sqlx::query("DELETE FROM events WHERE created_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        self.commit(tx).await?;
        Ok(Some(deleted))
    }

    /// Deletes events older than `before`; returns how many went.
    pub async fn prune_events(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM events WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

/// Advisory-lock key of the event-pruning job on PostgreSQL.
const PRUNE_LOCK: i64 = 0x7265_646f_7570;

static COUNT_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT COUNT(*) AS n FROM events WHERE {EVENT_FILTER}"));

static LIST_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT id, created_at, actor, action, target, source_address, outcome, detail \
         FROM events WHERE {EVENT_FILTER} ORDER BY id DESC LIMIT $8 OFFSET $9"
    )
});
