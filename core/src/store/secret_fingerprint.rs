//! The fingerprint of the secret key this database was set up with (one row).

use super::{Store, StoreError};

impl Store {
    /// The recorded fingerprint, if any.
    pub async fn secret_key_fingerprint(&self) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT fingerprint FROM secret_key_fingerprint WHERE id = 1")
            .fetch_optional(self.pool())
            .await
            .map_err(|e| StoreError::from_sqlx(e, "secret key fingerprint"))
    }

    /// Records `fingerprint` unless one is recorded already; returns the recorded one (the
    /// first replica to get here wins).
    pub async fn record_secret_key_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO secret_key_fingerprint (id, fingerprint, recorded_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(fingerprint)
        .bind(self.now())
        .execute(self.pool())
        .await
        .map_err(|e| StoreError::from_sqlx(e, "secret key fingerprint"))?;
        self.secret_key_fingerprint()
            .await?
            .ok_or(StoreError::NotFound("secret key fingerprint"))
    }
}
