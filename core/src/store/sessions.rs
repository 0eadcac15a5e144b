//! Session revocations and session-key generations: what lets proxy outposts keep browser
//! sessions in sealed cookies with no session store.
//!
//! A revocation ends every session of a user that began before it (disabled, deleted, password or
//! TOTP changed) or one core login session (sign-out). It is kept until no session it could end
//! can still be valid ([`MAX_SESSION_VALIDITY_SECONDS`]), is part of every proxy outpost's
//! snapshot and is pushed as a change, so every replica and every restarted outpost honours it.
//!
//! Session keys are derived from the secret key per outpost and per generation; the table only
//! numbers the generations. Rotating adds one; outposts seal with the newest and still open
//! cookies sealed with the one before.

use super::{ObjectKind, Store, StoreError, Tx};
use crate::model::SessionRevocation;
use redoubt_outpost_proto::provider::MAX_SESSION_VALIDITY_SECONDS;
use sqlx::Row;

/// How many key generations outposts receive: the newest seals, the older ones still open.
pub const SESSION_KEY_GENERATIONS_KEPT: i64 = 2;

/// Longest a core login session or a proxy session may last, in seconds; revocations are kept this
/// long (plus a day of slack for clock skew).
const REVOCATION_RETENTION_SECONDS: i64 = MAX_SESSION_VALIDITY_SECONDS as i64 + 86_400;

impl Store {
    /// Ends sessions of `user_id`: all of them (`None`) or one core login session, and pushes the
    /// revocation to outposts.
    pub async fn revoke_sessions(
        &self,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<SessionRevocation, StoreError> {
        let mut tx = self.begin().await?;
        let revocation = self
            .revoke_sessions_in(&mut tx, user_id, session_id)
            .await?;
        self.commit(tx).await?;
        Ok(revocation)
    }

    /// [`Store::revoke_sessions`] inside a transaction the caller commits.
    pub(crate) async fn revoke_sessions_in(
        &self,
        tx: &mut Tx,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<SessionRevocation, StoreError> {
        let revoked_at_ms = self.now_ms();
        let expires_at = self.now() + REVOCATION_RETENTION_SECONDS;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO session_revocations (user_id, session_id, revoked_at_ms, expires_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(session_id)
        .bind(revoked_at_ms)
        .bind(expires_at)
        .fetch_one(&mut **tx)
        .await?;
        self.record_change(tx, ObjectKind::SessionRevocation, id, "revoke")
            .await?;
        Ok(SessionRevocation {
            id,
            user_id,
            session_id: session_id.map(str::to_owned),
            revoked_at_ms,
        })
    }

    /// Whether a revocation ends the session `session_id` of `user_id` that logged in at
    /// `auth_time_ms`.
    pub async fn session_revoked(
        &self,
        user_id: i64,
        session_id: &str,
        auth_time_ms: i64,
    ) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM session_revocations WHERE user_id = $1 \
             AND ((session_id IS NULL AND revoked_at_ms > $2) OR session_id = $3)",
        )
        .bind(user_id)
        .bind(auth_time_ms)
        .bind(session_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(count > 0)
    }

    /// One revocation by id, if it is still kept.
    pub async fn session_revocation(
        &self,
        id: i64,
    ) -> Result<Option<SessionRevocation>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, session_id, revoked_at_ms FROM session_revocations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(read_revocation).transpose()
    }

    /// Revocations still in force, oldest first.
    pub async fn active_session_revocations(&self) -> Result<Vec<SessionRevocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, session_id, revoked_at_ms FROM session_revocations \
             WHERE expires_at > $1 ORDER BY id",
        )
        .bind(self.now())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_revocation).collect()
    }

    /// Revocations in force, for metrics.
    pub async fn count_session_revocations(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM session_revocations WHERE expires_at > $1")
                .bind(self.now())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Forgets revocations no session can outlive any more.
    pub async fn prune_session_revocations(&self) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM session_revocations WHERE expires_at <= $1")
                .bind(self.now())
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// The newest session-key generations, newest first; creates the first one when there is
    /// none.
    pub async fn session_key_generations(&self) -> Result<Vec<i64>, StoreError> {
        let ids = self.newest_key_generations().await?;
        if !ids.is_empty() {
            return Ok(ids);
        }
        let mut tx = self.begin().await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM session_key_generations")
            .fetch_one(&mut *tx)
            .await?;
        if existing == 0 {
            sqlx::query("INSERT INTO session_key_generations (created_at) VALUES ($1)")
                .bind(self.now())
                .execute(&mut *tx)
                .await?;
        }
        self.commit(tx).await?;
        self.newest_key_generations().await
    }

    /// Starts a new key generation; outposts seal with it from their next configuration on, and
    /// the generation before it keeps opening existing cookies.
    pub async fn rotate_session_keys(&self) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO session_key_generations (created_at) VALUES ($1) RETURNING id",
        )
        .bind(self.now())
        .fetch_one(&mut *tx)
        .await?;
        self.record_change(&mut tx, ObjectKind::SessionKeys, id, "rotate")
            .await?;
        self.commit(tx).await?;
        Ok(id)
    }

    async fn newest_key_generations(&self) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM session_key_generations ORDER BY id DESC LIMIT $1")
                .bind(SESSION_KEY_GENERATIONS_KEPT)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

fn read_revocation(row: &sqlx::any::AnyRow) -> Result<SessionRevocation, StoreError> {
    Ok(SessionRevocation {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        session_id: row.try_get("session_id")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
    })
}
