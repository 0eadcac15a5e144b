//! Outpost instances as the control channel sees them, shared by every core replica.

use super::{Backend, Store, StoreError};
use sqlx::Row;

/// The state of one running outpost process.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub outpost_id: i64,
    pub instance_id: String,
    pub hostname: String,
    pub software_version: String,
    pub build: String,
    pub protocol_version: i64,
    pub remote_address: String,
    pub applied_revision: Option<i64>,
    pub connected: bool,
    pub connected_at: i64,
    pub last_seen: i64,
}

impl Store {
    /// Writes the given instance states in one transaction (insert or replace).
    pub async fn upsert_instances(&self, records: &[InstanceRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for r in records {
            let result = sqlx::query(
                "INSERT INTO outpost_instances (outpost_id, instance_id, hostname, software_version, \
                 build, protocol_version, remote_address, applied_revision, connected, connected_at, \
                 last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (outpost_id, instance_id) DO UPDATE SET hostname = $3, \
                 software_version = $4, build = $5, protocol_version = $6, remote_address = $7, \
                 applied_revision = $8, connected = $9, connected_at = $10, last_seen = $11",
            )
            .bind(r.outpost_id)
            .bind(&r.instance_id)
            .bind(&r.hostname)
            .bind(&r.software_version)
            .bind(&r.build)
            .bind(r.protocol_version)
            .bind(&r.remote_address)
            .bind(r.applied_revision)
            .bind(r.connected)
            .bind(r.connected_at)
            .bind(r.last_seen)
            .execute(&mut *tx)
            .await;
            match result {
                Ok(_) => {}
                // The outpost was deleted meanwhile: nothing to record.
                Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {}
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::from_sqlx(e, "transaction"))
    }

    /// The instances of an outpost seen since `since`, newest first.
    pub async fn outpost_instances(
        &self,
        outpost_id: i64,
        since: i64,
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT outpost_id, instance_id, hostname, software_version, build, protocol_version, \
             remote_address, applied_revision, connected, connected_at, last_seen \
             FROM outpost_instances WHERE outpost_id = $1 AND last_seen >= $2 \
             ORDER BY last_seen DESC, instance_id",
        )
        .bind(outpost_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InstanceRecord {
                    outpost_id: row.try_get("outpost_id")?,
                    instance_id: row.try_get("instance_id")?,
                    hostname: row.try_get("hostname")?,
                    software_version: row.try_get("software_version")?,
                    build: row.try_get("build")?,
                    protocol_version: row.try_get("protocol_version")?,
                    remote_address: row.try_get("remote_address")?,
                    applied_revision: row.try_get("applied_revision")?,
                    connected: super::users::read_flag(row, "connected")?,
                    connected_at: row.try_get("connected_at")?,
                    last_seen: row.try_get("last_seen")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Per outpost: (name, expected replicas setting, instances connected and heard since
    /// `since`), for metrics.
    pub async fn outpost_replica_counts(
        &self,
        since: i64,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let connected_true = match self.backend {
            Backend::Sqlite => "1",
            Backend::Postgres => "TRUE",
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT o.name, o.settings, (SELECT COUNT(*) FROM outpost_instances i \
             WHERE i.outpost_id = o.id AND i.connected = {connected_true} AND i.last_seen >= $1) AS connected \
             FROM outposts o ORDER BY o.id"
        )))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let settings: String = row.try_get("settings")?;
                let expected = serde_json::from_str::<serde_json::Value>(&settings)
                    .ok()
                    .and_then(|s| {
                        s.get("expected_replicas")
                            .and_then(serde_json::Value::as_i64)
                    })
                    .unwrap_or(1);
                Ok((row.try_get("name")?, expected, row.try_get("connected")?))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Forgets instances not seen since `before`.
    pub async fn prune_instances(&self, before: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM outpost_instances WHERE last_seen < $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
