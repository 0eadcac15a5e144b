//! Locks of (source, user) pairs, kept so they can be pushed to directory outposts as changes
//! (every replica reads them from the change log) and their credential caches obey them.

use super::{ObjectKind, Store, StoreError};
use sqlx::Row;

/// A pair lock as pushed to outposts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairLock {
    pub id: i64,
    pub username: String,
    pub source_address: String,
    /// Unix seconds at which the pair may try again.
    pub locked_until: i64,
}

impl Store {
    /// Records that `username` (every user when empty) from `source_address` is locked until
    /// `locked_until` and pushes it to outposts.
    pub async fn record_lockout(
        &self,
        username: &str,
        source_address: &str,
        locked_until: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO lockouts (username, source_address, locked_until, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(source_address)
        .bind(locked_until)
        .bind(self.now())
        .fetch_one(&mut *tx)
        .await?;
        self.record_change(&mut tx, ObjectKind::Lockout, id, "lock")
            .await?;
        self.commit(tx).await?;
        Ok(id)
    }

    /// One lock by id, if it is still kept.
    pub async fn lockout(&self, id: i64) -> Result<Option<PairLock>, StoreError> {
        let row = sqlx::query(
            "SELECT id, username, source_address, locked_until FROM lockouts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| -> Result<PairLock, StoreError> {
            Ok(PairLock {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                source_address: row.try_get("source_address")?,
                locked_until: row.try_get("locked_until")?,
            })
        })
        .transpose()
    }

    /// Forgets locks that ended before `before`.
    pub async fn prune_lockouts(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM lockouts WHERE locked_until < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
