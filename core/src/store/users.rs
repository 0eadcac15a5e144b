//! Users, their password hashes and TOTP devices.

use super::{ObjectKind, Store, StoreError, limit, parse_attributes};
use crate::model::{ListParams, NewUser, Page, TotpDevice, User, UserPatch};
use sqlx::Row;
use sqlx::any::AnyRow;

pub(super) const USER_COLUMNS: &str = "id, username, name, email, is_active, attributes, \
    password_hash IS NOT NULL AS has_password, password_changed_at, created_at, updated_at";

pub(super) fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        is_active: read_flag(row, "is_active")?,
        attributes: parse_attributes(&row.try_get::<String, _>("attributes")?),
        has_password: read_flag(row, "has_password")?,
        password_changed_at: row.try_get("password_changed_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Reads a computed boolean, which SQLite reports as an integer and PostgreSQL as a bool.
pub(super) fn read_flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(flag) => Ok(flag),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

/// What the credential check needs to know about a user, looked up by name.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
}

/// A sealed TOTP secret with its replay guard.
#[derive(Debug, Clone)]
pub struct TotpSecretRow {
    pub device_id: i64,
    pub secret_sealed: String,
    pub last_used_step: i64,
}

impl Store {
    /// Creates a user, optionally with a password hash, in one transaction.
    pub async fn create_user(
        &self,
        new: &NewUser,
        password_hash: Option<&str>,
    ) -> Result<User, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, name, email, is_active, attributes, password_hash, \
             password_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(&new.username)
        .bind(&new.name)
        .bind(&new.email)
        .bind(new.is_active)
        .bind(serde_json::Value::Object(new.attributes.clone()).to_string())
        .bind(password_hash)
        .bind(password_hash.map(|_| now))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "username"))?;
        self.record_change(&mut tx, ObjectKind::User, id, "create")
            .await?;
        let user = fetch_user(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(user)
    }

    /// One user by id.
    pub async fn user(&self, id: i64) -> Result<User, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        Ok(user_from_row(&row)?)
    }

    /// A page of users, optionally filtered by a term in username, name or email.
    pub async fn list_users(&self, params: &ListParams) -> Result<Page<User>, StoreError> {
        let pattern = params.like_pattern();
        // Without a search term, skip the filter: both engines then walk the primary key only.
        let filter = if pattern == "%" {
            "$1 = '%'"
        } else {
            "(LOWER(username) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\' \
             OR LOWER(email) LIKE $1 ESCAPE '\\')"
        };
        let mut conn = self.pool.acquire().await?;
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM users WHERE {filter}"
        )))
        .bind(&pattern)
        .fetch_one(&mut *conn)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY id LIMIT $2 OFFSET $3"
        )))
        .bind(&pattern)
        .bind(limit(params.page_size))
        .bind(params.offset())
        .fetch_all(&mut *conn)
        .await?;
        let items = rows.iter().map(user_from_row).collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total,
            page: params.page,
            page_size: params.page_size,
        })
    }

    /// Applies `patch` to a user.
    pub async fn update_user(&self, id: i64, patch: &UserPatch) -> Result<User, StoreError> {
        let mut tx = self.begin().await?;
        let current = fetch_user(&mut tx, id).await?;
        let attributes = patch.attributes.as_ref().unwrap_or(&current.attributes);
        sqlx::query(
            "UPDATE users SET username = $1, name = $2, email = $3, is_active = $4, \
             attributes = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(patch.username.as_ref().unwrap_or(&current.username))
        .bind(patch.name.as_ref().unwrap_or(&current.name))
        .bind(patch.email.as_ref().unwrap_or(&current.email))
        .bind(patch.is_active.unwrap_or(current.is_active))
        .bind(serde_json::Value::Object(attributes.clone()).to_string())
        .bind(self.now())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "username"))?;
        self.record_change(&mut tx, ObjectKind::User, id, "update")
            .await?;
        if current.is_active && patch.is_active == Some(false) {
            self.revoke_sessions_in(&mut tx, id, None).await?;
        }
        let user = fetch_user(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(user)
    }

    /// Deletes a user with their memberships, devices and tokens.
    pub async fn delete_user(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("user"));
        }
        self.record_change(&mut tx, ObjectKind::User, id, "delete")
            .await?;
        self.revoke_sessions_in(&mut tx, id, None).await?;
        self.commit(tx).await
    }

    /// Replaces a user's password hash (or removes it with `None`).
    pub async fn set_password_hash(&self, id: i64, hash: Option<&str>) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2, \
             credential_epoch = credential_epoch + 1 WHERE id = $3",
        )
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound("user"));
        }
        self.record_change(&mut tx, ObjectKind::User, id, "password")
            .await?;
        self.revoke_sessions_in(&mut tx, id, None).await?;
        self.commit(tx).await
    }

    /// The user named `username` with their password hash, if any.
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Credentials {
                user: user_from_row(&row)?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// Adds a TOTP device with an already sealed secret.
    pub async fn add_totp_device(
        &self,
        user_id: i64,
        name: &str,
        secret_sealed: &str,
    ) -> Result<TotpDevice, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO totp_devices (user_id, name, secret_sealed, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(secret_sealed)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match StoreError::from_sqlx(e, "TOTP device") {
            StoreError::Invalid(_) => StoreError::NotFound("user"),
            other => other,
        })?;
        bump_epoch(&mut tx, user_id).await?;
        self.record_change(&mut tx, ObjectKind::User, user_id, "totp")
            .await?;
        self.revoke_sessions_in(&mut tx, user_id, None).await?;
        self.commit(tx).await?;
        Ok(TotpDevice {
            id,
            user_id,
            name: name.to_owned(),
            created_at: now,
        })
    }

    /// The TOTP devices of a user.
    pub async fn totp_devices(&self, user_id: i64) -> Result<Vec<TotpDevice>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, name, created_at FROM totp_devices WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TotpDevice {
                    id: row.try_get("id")?,
                    user_id: row.try_get("user_id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Removes one TOTP device of a user.
    pub async fn delete_totp_device(&self, user_id: i64, device_id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM totp_devices WHERE id = $1 AND user_id = $2")
            .bind(device_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("TOTP device"));
        }
        bump_epoch(&mut tx, user_id).await?;
        self.record_change(&mut tx, ObjectKind::User, user_id, "totp")
            .await?;
        self.revoke_sessions_in(&mut tx, user_id, None).await?;
        self.commit(tx).await
    }

    /// The sealed TOTP secrets of a user.
    pub async fn totp_secrets(&self, user_id: i64) -> Result<Vec<TotpSecretRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, secret_sealed, last_used_step FROM totp_devices WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TotpSecretRow {
                    device_id: row.try_get("id")?,
                    secret_sealed: row.try_get("secret_sealed")?,
                    last_used_step: row.try_get("last_used_step")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Records that `step` was used on a device, unless it (or a later step) already was.
    /// Returns false when the code was a replay: the guard is one atomic compare-and-set.
    pub async fn consume_totp_step(&self, device_id: i64, step: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE totp_devices SET last_used_step = $1 WHERE id = $2 AND last_used_step < $1",
        )
        .bind(step)
        .bind(device_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Number of users, for metrics.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn fetch_user(tx: &mut super::Tx, id: i64) -> Result<User, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("user"))?;
    Ok(user_from_row(&row)?)
}

/// Moves a user's credential epoch on, so outposts drop binds cached before the change.
async fn bump_epoch(tx: &mut super::Tx, user_id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET credential_epoch = credential_epoch + 1 WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
