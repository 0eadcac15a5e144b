//! Reads for outposts: the directory (users with their direct groups and credential epochs,
//! groups) and the providers an outpost serves.

use super::groups::{GROUP_COLUMNS, group_from_row};
use super::users::{USER_COLUMNS, read_flag, user_from_row};
use super::{Store, StoreError};
use crate::model::{Group, User};
use sqlx::Row;
use std::collections::HashMap;

/// A user as the directory of an outpost needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryEntry {
    pub user: User,
    /// Direct memberships.
    pub group_ids: Vec<i64>,
    pub credential_epoch: i64,
    pub has_totp: bool,
}

const ENTRY_COLUMNS: &str = "credential_epoch, \
    EXISTS (SELECT 1 FROM totp_devices t WHERE t.user_id = users.id) AS has_totp";

impl Store {
    /// Every user with their direct groups, ordered by id.
    pub async fn directory_users(&self) -> Result<Vec<DirectoryEntry>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut memberships: HashMap<i64, Vec<i64>> = HashMap::new();
        let rows = sqlx::query("SELECT group_id, user_id FROM group_members ORDER BY group_id")
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            let user: i64 = row.try_get("user_id")?;
            memberships
                .entry(user)
                .or_default()
                .push(row.try_get("group_id")?);
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, {ENTRY_COLUMNS} FROM users ORDER BY id"
        )))
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let user = user_from_row(row)?;
                Ok(DirectoryEntry {
                    group_ids: memberships.remove(&user.id).unwrap_or_default(),
                    credential_epoch: row.try_get("credential_epoch")?,
                    has_totp: read_flag(row, "has_totp")?,
                    user,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// One user's directory entry, `None` when the user is gone.
    pub async fn directory_user(&self, id: i64) -> Result<Option<DirectoryEntry>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, {ENTRY_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let group_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT group_id FROM group_members WHERE user_id = $1 ORDER BY group_id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(Some(DirectoryEntry {
            user: user_from_row(&row)?,
            group_ids,
            credential_epoch: row.try_get("credential_epoch")?,
            has_totp: read_flag(&row, "has_totp")?,
        }))
    }

    /// Every group, ordered by id.
    pub async fn all_groups(&self) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM user_groups ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(group_from_row).collect::<Result<_, _>>()?)
    }

    /// One group, `None` when it is gone.
    pub async fn group_if_exists(&self, id: i64) -> Result<Option<Group>, StoreError> {
        match self.group(id).await {
            Ok(group) => Ok(Some(group)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ids of the outposts serving `provider_id`.
    pub async fn outposts_of_provider(&self, provider_id: i64) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT outpost_id FROM outpost_providers WHERE provider_id = $1")
                .bind(provider_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
