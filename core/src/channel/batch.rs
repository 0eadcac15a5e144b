//! Resolving change-log rows into the items outposts receive, once per batch for every session,
//! with who each item is for.

use super::convert;
use crate::model::Change;
use crate::store::{Store, StoreError};
use redoubt_outpost_proto::config::OutpostKind;
use redoubt_outpost_proto::control::ChangeItem;

/// Who an item is for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Audience {
    /// Outposts that hold the directory (LDAP, RADIUS).
    Directory,
    /// Outposts without a directory (proxy, RAC).
    WithoutDirectory,
    /// Every outpost.
    Everyone,
    /// The outposts serving a provider.
    Outposts(Vec<i64>),
    /// Outposts of one kind.
    Kind(OutpostKind),
}

/// Something a session must do besides forwarding items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Resend the providers of every outpost (an application binding changed).
    RefreshProviders,
    /// The outpost record changed: send it a snapshot.
    Snapshot(i64),
    /// The outpost's tokens changed: check the session's token still exists.
    RevalidateToken(i64),
    /// The outpost is gone: close its sessions.
    Deleted(i64),
    /// A new session-key generation: outposts without a directory get a snapshot (their keys are
    /// derived per outpost).
    SessionKeysRotated,
}

/// The resolved changes `(from, to]`; every item and action carries its revision, so a session
/// that already holds part of the batch skips that part.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub from: i64,
    pub to: i64,
    pub items: Vec<(i64, Audience, ChangeItem)>,
    pub actions: Vec<(i64, Action)>,
}

impl Audience {
    /// Whether an outpost of `kind` with id `outpost_id` gets the item.
    pub(crate) fn includes(&self, kind: OutpostKind, outpost_id: i64) -> bool {
        match self {
            Self::Directory => kind.needs_directory(),
            Self::WithoutDirectory => !kind.needs_directory(),
            Self::Everyone => true,
            Self::Outposts(ids) => ids.contains(&outpost_id),
            Self::Kind(wanted) => kind == *wanted,
        }
    }
}

/// Reads changes after `from` (at most `limit`) and resolves them; `None` when there are none.
pub(crate) async fn read(
    store: &Store,
    from: i64,
    limit: i64,
) -> Result<Option<Batch>, StoreError> {
    let changes = store.changes_since(from, limit).await?;
    let Some(last) = changes.last() else {
        return Ok(None);
    };
    let to = last.revision;
    let mut batch = Batch {
        from,
        to,
        items: Vec::new(),
        actions: Vec::new(),
    };
    for change in &changes {
        let mut resolved = Resolved::default();
        resolve(store, change, &mut resolved).await?;
        let revision = change.revision;
        batch
            .items
            .extend(resolved.items.into_iter().map(|(a, i)| (revision, a, i)));
        for action in resolved.actions {
            if !batch.actions.iter().any(|(_, a)| *a == action) {
                batch.actions.push((revision, action));
            }
        }
    }
    Ok(Some(batch))
}

#[derive(Default)]
struct Resolved {
    items: Vec<(Audience, ChangeItem)>,
    actions: Vec<Action>,
}

/// RAC outposts decide access per connection and hold no directory: they hear that a user's or
/// a group's members' access may have changed, and re-check their live connections.
fn access_changed(user_ids: Vec<i64>, group_ids: Vec<i64>) -> (Audience, ChangeItem) {
    (
        Audience::Kind(OutpostKind::Rac),
        ChangeItem::AccessChanged {
            user_ids,
            group_ids,
        },
    )
}

async fn resolve(store: &Store, change: &Change, batch: &mut Resolved) -> Result<(), StoreError> {
    let id = change.object_id;
    match change.object_kind.as_str() {
        "user" => {
            batch.items.push(access_changed(vec![id], Vec::new()));
            resolve_user(store, id, batch).await?;
        }
        "group" => {
            batch.items.push(access_changed(Vec::new(), vec![id]));
            resolve_group(store, id, batch).await?;
        }
        _ => resolve_configuration(store, change, batch).await?,
    }
    Ok(())
}

async fn resolve_user(store: &Store, id: i64, batch: &mut Resolved) -> Result<(), StoreError> {
    match store.directory_user(id).await? {
        Some(entry) => batch.items.push((
            Audience::Directory,
            ChangeItem::UserUpserted {
                user: convert::user(entry),
            },
        )),
        None => batch
            .items
            .push((Audience::Directory, ChangeItem::UserDeleted { id })),
    }
    Ok(())
}

async fn resolve_group(store: &Store, id: i64, batch: &mut Resolved) -> Result<(), StoreError> {
    match store.group_if_exists(id).await? {
        Some(group) => batch.items.push((
            Audience::Directory,
            ChangeItem::GroupUpserted {
                group: convert::group(group),
            },
        )),
        None => batch
            .items
            .push((Audience::Directory, ChangeItem::GroupDeleted { id })),
    }
    Ok(())
}

async fn resolve_configuration(
    store: &Store,
    change: &Change,
    batch: &mut Resolved,
) -> Result<(), StoreError> {
    let id = change.object_id;
    match change.object_kind.as_str() {
        "session_revocation" => {
            if let Some(revocation) = store.session_revocation(id).await? {
                batch.items.push((
                    Audience::WithoutDirectory,
                    ChangeItem::SessionsRevoked {
                        revocation: convert::revocation(revocation),
                    },
                ));
            }
        }
        "session_keys" => push_action(batch, Action::SessionKeysRotated),
        "lockout" => {
            if let Some(lock) = store.lockout(id).await? {
                batch.items.push((
                    Audience::Directory,
                    ChangeItem::LockChanged {
                        username: lock.username,
                        source_address: lock.source_address,
                        locked_until: lock.locked_until,
                    },
                ));
            }
        }
        "provider" => match store.provider(id).await {
            Ok(provider) => {
                let outposts = store.outposts_of_provider(id).await?;
                let application = store.application_for_provider(id).await?;
                batch.items.push((
                    Audience::Outposts(outposts),
                    ChangeItem::ProviderUpserted {
                        provider: convert::provider(provider, application),
                    },
                ));
            }
            Err(StoreError::NotFound(_)) => {
                batch
                    .items
                    .push((Audience::Everyone, ChangeItem::ProviderRemoved { id }));
            }
            Err(e) => return Err(e),
        },
        "application" => push_action(batch, Action::RefreshProviders),
        "outpost" => match change.op.as_str() {
            "delete" => push_action(batch, Action::Deleted(id)),
            _ => push_action(batch, Action::Snapshot(id)),
        },
        "token" if change.op == "rotate" => push_action(batch, Action::RevalidateToken(id)),
        _ => {}
    }
    Ok(())
}

fn push_action(batch: &mut Resolved, action: Action) {
    if !batch.actions.contains(&action) {
        batch.actions.push(action);
    }
}
