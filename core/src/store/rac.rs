//! Remote access (RAC): endpoint credentials (stored sealed; this module never sees them in
//! the clear), the server keys outposts reported, and the connections that count against the
//! endpoint and per-user limits across every outpost replica.
//!
//! A connection counts while it has not ended and its lease has not lapsed. Granting one counts
//! and inserts in a single write transaction: SQLite's `BEGIN IMMEDIATE` serialises writers, and
//! on PostgreSQL a transaction-scoped advisory lock per provider does, so two replicas can never
//! both take the last slot.

use super::{Backend, Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Advisory-lock base serialising grants per provider on PostgreSQL ("rac" in ASCII, shifted).
const RAC_GRANT_LOCK: i64 = 0x7261_6300_0000_0000;

/// A connection the core granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RacConnection {
    pub id: String,
    pub provider_id: i64,
    pub endpoint_slug: String,
    pub user_id: i64,
    pub session_id: String,
    pub auth_time_ms: i64,
    pub outpost_id: i64,
    pub instance_id: String,
    pub client_address: String,
    pub started_at: i64,
    pub lease_until: i64,
    pub expires_at: i64,
    /// When the outpost reported the RDP session up.
    pub connected_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
}

/// A connection to record if the limits allow it.
#[derive(Debug, Clone)]
pub struct NewRacConnection<'a> {
    pub provider_id: i64,
    pub endpoint_slug: &'a str,
    pub user_id: i64,
    pub session_id: &'a str,
    pub auth_time_ms: i64,
    pub outpost_id: i64,
    pub instance_id: &'a str,
    pub client_address: &'a str,
    pub lease_until: i64,
    pub expires_at: i64,
    /// Open connections the endpoint allows (`None`: unlimited).
    pub endpoint_limit: Option<u32>,
    /// Open connections per user on this provider (`None`: unlimited).
    pub user_limit: Option<u32>,
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RacLimit {
    Endpoint,
    User,
}

/// How a connection ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RacEnd<'a> {
    pub reason: &'a str,
    pub bytes_from_server: u64,
    pub bytes_to_browser: u64,
}

/// The last server key an outpost saw for an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RacEndpointKey {
    pub endpoint_slug: String,
    pub server_key_sha256: String,
    pub seen_at: i64,
}

const CONNECTION_COLUMNS: &str = "id, provider_id, endpoint_slug, user_id, session_id, \
    auth_time_ms, outpost_id, instance_id, client_address, started_at, lease_until, expires_at, \
    connected_at, ended_at, end_reason";

fn connection_from_row(row: &AnyRow) -> Result<RacConnection, StoreError> {
    Ok(RacConnection {
        id: row.try_get("id")?,
        provider_id: row.try_get("provider_id")?,
        endpoint_slug: row.try_get("endpoint_slug")?,
        user_id: row.try_get("user_id")?,
        session_id: row.try_get("session_id")?,
        auth_time_ms: row.try_get("auth_time_ms")?,
        outpost_id: row.try_get("outpost_id")?,
        instance_id: row.try_get("instance_id")?,
        client_address: row.try_get("client_address")?,
        started_at: row.try_get("started_at")?,
        lease_until: row.try_get("lease_until")?,
        expires_at: row.try_get("expires_at")?,
        connected_at: row.try_get("connected_at")?,
        ended_at: row.try_get("ended_at")?,
        end_reason: row.try_get("end_reason")?,
    })
}

/// A random 128-bit connection id, lowercase hex.
fn new_connection_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Invalid(format!("no randomness available: {e}")))?;
    Ok(data_encoding::HEXLOWER.encode(&bytes))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Stores an endpoint's sealed credentials, replacing any.
    pub async fn set_rac_credentials(
        &self,
        provider_id: i64,
        slug: &str,
        sealed: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rac_endpoint_credentials (provider_id, endpoint_slug, sealed, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (provider_id, endpoint_slug) \
             DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(provider_id)
        .bind(slug)
        .bind(sealed)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "endpoint credentials"))?;
        Ok(())
    }

    /// Forgets an endpoint's credentials.
    pub async fn clear_rac_credentials(
        &self,
        provider_id: i64,
        slug: &str,
    ) -> Result<(), StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM rac_endpoint_credentials WHERE provider_id = $1 AND endpoint_slug = $2",
        )
        .bind(provider_id)
        .bind(slug)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("endpoint credentials"));
        }
        Ok(())
    }

    /// Forgets the credentials of every endpoint of `provider_id` not in `keep` (endpoints
    /// removed or renamed).
    pub async fn prune_rac_credentials(
        &self,
        provider_id: i64,
        keep: &[String],
    ) -> Result<(), StoreError> {
        for slug in self.rac_credential_slugs(provider_id).await? {
            if !keep.contains(&slug) {
                sqlx::query(
                    "DELETE FROM rac_endpoint_credentials \
                     WHERE provider_id = $1 AND endpoint_slug = $2",
                )
                .bind(provider_id)
                .bind(&slug)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// An endpoint's sealed credentials, if set.
    pub async fn rac_credentials(
        &self,
        provider_id: i64,
        slug: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sealed FROM rac_endpoint_credentials \
             WHERE provider_id = $1 AND endpoint_slug = $2",
        )
        .bind(provider_id)
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The slugs of a provider's endpoints that have credentials.
    pub async fn rac_credential_slugs(&self, provider_id: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT endpoint_slug FROM rac_endpoint_credentials WHERE provider_id = $1 \
             ORDER BY endpoint_slug",
        )
        .bind(provider_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The last server key seen per endpoint of a provider.
    pub async fn rac_endpoint_keys(
        &self,
        provider_id: i64,
    ) -> Result<Vec<RacEndpointKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT endpoint_slug, server_key_sha256, seen_at FROM rac_endpoint_keys \
             WHERE provider_id = $1 ORDER BY endpoint_slug",
        )
        .bind(provider_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RacEndpointKey {
                    endpoint_slug: row.try_get("endpoint_slug")?,
                    server_key_sha256: row.try_get("server_key_sha256")?,
                    seen_at: row.try_get("seen_at")?,
                })
            })
            .collect()
    }

    /// Records a connection unless a limit is reached, counting every open connection (not
    /// ended, lease not lapsed) of every replica. Returns the new connection's id.
    pub async fn open_rac_connection(
        &self,
        new: &NewRacConnection<'_>,
    ) -> Result<Result<String, RacLimit>, StoreError> {
        let now = self.now();
        let id = new_connection_id()?;
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(RAC_GRANT_LOCK.wrapping_add(new.provider_id))
                .execute(&mut *tx)
                .await?;
        }
        if let Some(limit) = new.endpoint_limit {
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM rac_connections WHERE provider_id = $1 \
                 AND endpoint_slug = $2 AND ended_at IS NULL AND lease_until > $3",
            )
            .bind(new.provider_id)
            .bind(new.endpoint_slug)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if open >= i64::from(limit) {
                return Ok(Err(RacLimit::Endpoint));
            }
        }
        if let Some(limit) = new.user_limit {
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM rac_connections WHERE provider_id = $1 \
                 AND user_id = $2 AND ended_at IS NULL AND lease_until > $3",
            )
            .bind(new.provider_id)
            .bind(new.user_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if open >= i64::from(limit) {
                return Ok(Err(RacLimit::User));
            }
        }
        sqlx::query(
            "INSERT INTO rac_connections (id, provider_id, endpoint_slug, user_id, session_id, \
             auth_time_ms, outpost_id, instance_id, client_address, started_at, lease_until, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(new.provider_id)
        .bind(new.endpoint_slug)
        .bind(new.user_id)
        .bind(new.session_id)
        .bind(new.auth_time_ms)
        .bind(new.outpost_id)
        .bind(new.instance_id)
        .bind(new.client_address)
        .bind(now)
        .bind(new.lease_until)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(Ok(id))
    }

    /// One connection by id.
    pub async fn rac_connection(&self, id: &str) -> Result<Option<RacConnection>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONNECTION_COLUMNS} FROM rac_connections WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(connection_from_row).transpose()
    }

    /// Marks a connection as up and remembers the server key for its endpoint. `false` when it
    /// was already marked or has ended (a repeated report).
    pub async fn mark_rac_connection_started(
        &self,
        connection: &RacConnection,
        server_key_sha256: &str,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE rac_connections SET connected_at = $1 \
             WHERE id = $2 AND connected_at IS NULL AND ended_at IS NULL",
        )
        .bind(now)
        .bind(&connection.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated > 0 && !server_key_sha256.is_empty() {
            sqlx::query(
                "INSERT INTO rac_endpoint_keys (provider_id, endpoint_slug, server_key_sha256, \
                 seen_at) SELECT $1, $2, $3, $4 WHERE EXISTS \
                 (SELECT 1 FROM providers WHERE id = $1) \
                 ON CONFLICT (provider_id, endpoint_slug) DO UPDATE SET \
                 server_key_sha256 = excluded.server_key_sha256, seen_at = excluded.seen_at",
            )
            .bind(connection.provider_id)
            .bind(&connection.endpoint_slug)
            .bind(server_key_sha256)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        self.commit(tx).await?;
        Ok(updated > 0)
    }

    /// Ends a connection (frees its slot). `false` when it had already ended.
    pub async fn end_rac_connection(&self, id: &str, end: RacEnd<'_>) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE rac_connections SET ended_at = $1, end_reason = $2, bytes_from_server = $3, \
             bytes_to_browser = $4 WHERE id = $5 AND ended_at IS NULL",
        )
        .bind(self.now())
        .bind(end.reason)
        .bind(to_i64(end.bytes_from_server))
        .bind(to_i64(end.bytes_to_browser))
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated > 0)
    }

    /// The listed connections that outpost instance `(outpost_id, instance_id)` holds and that
    /// have not ended.
    pub async fn held_rac_connections(
        &self,
        outpost_id: i64,
        instance_id: &str,
        ids: &[String],
    ) -> Result<Vec<RacConnection>, StoreError> {
        let mut held = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(connection) = self.rac_connection(id).await?
                && connection.outpost_id == outpost_id
                && connection.instance_id == instance_id
                && connection.ended_at.is_none()
            {
                held.push(connection);
            }
        }
        Ok(held)
    }

    /// Extends the leases of the listed connections that have not ended to `lease_until`.
    pub async fn renew_rac_leases(&self, ids: &[&str], lease_until: i64) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query(
                "UPDATE rac_connections SET lease_until = $1 WHERE id = $2 AND ended_at IS NULL",
            )
            .bind(lease_until)
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Forgets connections that ended, or whose lease lapsed, before `before`; they no longer
    /// count, and the event log keeps their history.
    pub async fn prune_rac_connections(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM rac_connections WHERE (ended_at IS NOT NULL AND ended_at < $1) \
             OR lease_until < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Connections that count against limits now, for metrics.
    pub async fn count_open_rac_connections(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM rac_connections WHERE ended_at IS NULL AND lease_until > $1",
        )
        .bind(self.now())
        .fetch_one(&self.pool)
        .await?)
    }
}
