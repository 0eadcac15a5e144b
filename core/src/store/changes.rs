//! The change log: every write an outpost cares about appends a row whose `revision` is the
//! monotonic configuration revision.
//!
//! On PostgreSQL the append takes a transaction-scoped advisory lock first, so revisions commit in
//! the order they are numbered: a reader that has seen revision `n` can never later find a
//! committed `m < n` it missed. SQLite has a single writer, which gives the same guarantee.

use super::{Backend, Store, StoreError, Tx};
use crate::model::Change;
use sqlx::Row;

/// Advisory-lock key serialising change-log appends on PostgreSQL ("redoubt" in ASCII, truncated).
const CHANGE_LOG_LOCK: i64 = 0x7265_646f_7562;

/// The PostgreSQL notification channel that wakes core replicas on a new revision.
pub const CHANGE_CHANNEL: &str = "redoubt_changes";

/// The kinds of object whose changes are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Group,
    Application,
    Provider,
    Outpost,
    Token,
    /// Sessions ended early (see `store::sessions`).
    SessionRevocation,
    /// A new generation of session-cookie keys.
    SessionKeys,
    /// A (source, user) pair locked by the brute-force policy (see `store::lockouts`).
    Lockout,
}

impl ObjectKind {
    /// The stable name kept in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Application => "application",
            Self::Provider => "provider",
            Self::Outpost => "outpost",
            Self::Token => "token",
            Self::SessionRevocation => "session_revocation",
            Self::SessionKeys => "session_keys",
            Self::Lockout => "lockout",
        }
    }
}

impl Store {
    /// Appends a change inside `tx` and returns its revision.
    pub async fn record_change(
        &self,
        tx: &mut Tx,
        kind: ObjectKind,
        object_id: i64,
        op: &str,
    ) -> Result<i64, StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CHANGE_LOG_LOCK)
                .execute(&mut **tx)
                .await?;
        }
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO changes (object_kind, object_id, op, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING revision",
        )
        .bind(kind.as_str())
        .bind(object_id)
        .bind(op)
        .bind(self.now())
        .fetch_one(&mut **tx)
        .await?;
        if self.backend == Backend::Postgres {
            // Delivered on commit to every core replica listening (LISTEN/NOTIFY is transactional).
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGE_CHANNEL)
                .bind(revision.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(revision)
    }

    /// The newest revision, 0 on an empty log.
    pub async fn current_revision(&self) -> Result<i64, StoreError> {
        let revision: Option<i64> = sqlx::query_scalar("SELECT MAX(revision) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(revision.unwrap_or(0))
    }

    /// Changes after `revision`, oldest first, at most `limit` of them.
    pub async fn changes_since(
        &self,
        revision: i64,
        limit: i64,
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT revision, object_kind, object_id, op, created_at FROM changes \
             WHERE revision > $1 ORDER BY revision LIMIT $2",
        )
        .bind(revision)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Change {
                    revision: row.try_get("revision")?,
                    object_kind: row.try_get("object_kind")?,
                    object_id: row.try_get("object_id")?,
                    op: row.try_get("op")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
