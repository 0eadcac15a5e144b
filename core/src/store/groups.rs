//! Groups, their nesting and their members.

use super::{ObjectKind, Store, StoreError, Tx, limit, parse_attributes};
use crate::model::{Group, GroupPatch, ListParams, NewGroup, Page, User};
use sqlx::Row;
use sqlx::any::AnyRow;

pub(super) const GROUP_COLUMNS: &str =
    "id, name, parent_id, is_superuser, attributes, created_at, updated_at";

pub(super) fn group_from_row(row: &AnyRow) -> Result<Group, sqlx::Error> {
    Ok(Group {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        parent_id: row.try_get("parent_id")?,
        is_superuser: super::users::read_flag(row, "is_superuser")?,
        attributes: parse_attributes(&row.try_get::<String, _>("attributes")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Groups a user belongs to directly or through a child group, as a recursive query.
const EFFECTIVE_GROUPS: &str = "WITH RECURSIVE effective(id) AS ( \
        SELECT group_id FROM group_members WHERE user_id = $1 \
        UNION \
        SELECT g.parent_id FROM user_groups g JOIN effective e ON g.id = e.id \
        WHERE g.parent_id IS NOT NULL) ";

impl Store {
    /// Creates a group.
    pub async fn create_group(&self, new: &NewGroup) -> Result<Group, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        if let Some(parent) = new.parent_id {
            ensure_group_exists(&mut tx, parent).await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO user_groups (name, parent_id, is_superuser, attributes, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(&new.name)
        .bind(new.parent_id)
        .bind(new.is_superuser)
        .bind(serde_json::Value::Object(new.attributes.clone()).to_string())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "group name"))?;
        self.record_change(&mut tx, ObjectKind::Group, id, "create")
            .await?;
        let group = fetch_group(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(group)
    }

    /// One group by id.
    pub async fn group(&self, id: i64) -> Result<Group, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM user_groups WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("group"))?;
        Ok(group_from_row(&row)?)
    }

    /// Whether a group with this id exists.
    pub async fn group_exists(&self, id: i64) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM user_groups WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Whether a group with this name exists.
    pub async fn group_name_exists(&self, name: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM user_groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// A page of groups, optionally filtered by a term in the name.
    pub async fn list_groups(&self, params: &ListParams) -> Result<Page<Group>, StoreError> {
        let pattern = params.like_pattern();
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM user_groups WHERE ($1 = '%' OR LOWER(name) LIKE $1 ESCAPE '\\')",
        )
        .bind(&pattern)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM user_groups WHERE ($1 = '%' OR LOWER(name) LIKE $1 ESCAPE '\\') \
             ORDER BY id LIMIT $2 OFFSET $3"
        )))
        .bind(&pattern)
        .bind(limit(params.page_size))
        .bind(params.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(group_from_row).collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total,
            page: params.page,
            page_size: params.page_size,
        })
    }

    /// Applies `patch` to a group, refusing a parent that would make a cycle.
    pub async fn update_group(&self, id: i64, patch: &GroupPatch) -> Result<Group, StoreError> {
        let mut tx = self.begin().await?;
        let current = fetch_group(&mut tx, id).await?;
        let parent_id = patch.parent_id.unwrap_or(current.parent_id);
        if let Some(parent) = parent_id {
            ensure_group_exists(&mut tx, parent).await?;
            if ancestors(&mut tx, parent).await?.contains(&id) || parent == id {
                return Err(StoreError::Invalid(
                    "parent_id: a group cannot be nested under itself or its descendants".into(),
                ));
            }
        }
        let attributes = patch.attributes.as_ref().unwrap_or(&current.attributes);
        sqlx::query(
            "UPDATE user_groups SET name = $1, parent_id = $2, is_superuser = $3, \
             attributes = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(patch.name.as_ref().unwrap_or(&current.name))
        .bind(parent_id)
        .bind(patch.is_superuser.unwrap_or(current.is_superuser))
        .bind(serde_json::Value::Object(attributes.clone()).to_string())
        .bind(self.now())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "group name"))?;
        self.record_change(&mut tx, ObjectKind::Group, id, "update")
            .await?;
        let group = fetch_group(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(group)
    }

    /// Deletes a group; its children move up to the top level.
    pub async fn delete_group(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE user_groups SET parent_id = NULL WHERE parent_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM user_groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("group"));
        }
        self.record_change(&mut tx, ObjectKind::Group, id, "delete")
            .await?;
        self.commit(tx).await
    }

    /// The direct members of a group.
    pub async fn group_members(&self, group_id: i64) -> Result<Vec<User>, StoreError> {
        self.group(group_id).await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            users.push(self.user(id).await?);
        }
        Ok(users)
    }

    /// Adds a user to a group; adding an existing member is not an error.
    pub async fn add_group_member(&self, group_id: i64, user_id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        ensure_group_exists(&mut tx, group_id).await?;
        let user_exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if user_exists.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let inserted = sqlx::query(
            "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(group_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 {
            self.record_change(&mut tx, ObjectKind::Group, group_id, "members")
                .await?;
            self.record_change(&mut tx, ObjectKind::User, user_id, "membership")
                .await?;
        }
        self.commit(tx).await
    }

    /// Removes a user from a group.
    pub async fn remove_group_member(&self, group_id: i64, user_id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("membership"));
        }
        self.record_change(&mut tx, ObjectKind::Group, group_id, "members")
            .await?;
        self.record_change(&mut tx, ObjectKind::User, user_id, "membership")
            .await?;
        self.commit(tx).await
    }

    /// The groups a user is directly a member of.
    pub async fn user_groups(&self, user_id: i64) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM user_groups WHERE id IN \
             (SELECT group_id FROM group_members WHERE user_id = $1) ORDER BY id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(group_from_row).collect::<Result<_, _>>()?)
    }

    /// The groups a user belongs to directly or through nesting (a member of a child group is a
    /// member of its parents).
    pub async fn effective_groups(&self, user_id: i64) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{EFFECTIVE_GROUPS} SELECT {GROUP_COLUMNS} FROM user_groups \
             WHERE id IN (SELECT id FROM effective) ORDER BY id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(group_from_row).collect::<Result<_, _>>()?)
    }

    /// Number of groups, for metrics.
    pub async fn count_groups(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM user_groups")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn fetch_group(tx: &mut Tx, id: i64) -> Result<Group, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM user_groups WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("group"))?;
    Ok(group_from_row(&row)?)
}

pub(super) async fn ensure_group_exists(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM user_groups WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    found.map(|_| ()).ok_or(StoreError::NotFound("group"))
}

/// Ids of `id`'s ancestors, nearest first; stops at a cycle.
async fn ancestors(tx: &mut Tx, id: i64) -> Result<Vec<i64>, StoreError> {
    let mut seen = Vec::new();
    let mut next = Some(id);
    while let Some(current) = next {
        let parent: Option<Option<i64>> =
            sqlx::query_scalar("SELECT parent_id FROM user_groups WHERE id = $1")
                .bind(current)
                .fetch_optional(&mut **tx)
                .await?;
        next = parent.flatten();
        if let Some(p) = next {
            if seen.contains(&p) {
                break;
            }
            seen.push(p);
        }
    }
    Ok(seen)
}
