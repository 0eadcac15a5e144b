//! Applying pushed change sets to the configuration an outpost holds. Pure: no I/O, unit-tested.

use crate::lock_book::PairLock;
use redoubt_outpost_proto::config::OutpostConfig;
use redoubt_outpost_proto::control::ChangeItem;
use std::collections::BTreeSet;

/// What a change set touched, for the protocol module to react to (evict cached binds, end
/// sessions, rebind listeners).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSummary {
    /// The whole configuration was replaced (a snapshot).
    pub snapshot: bool,
    pub users: BTreeSet<i64>,
    pub groups: BTreeSet<i64>,
    pub providers: BTreeSet<i64>,
    pub outpost: bool,
    /// Users whose sessions must end now.
    pub revoked_sessions: BTreeSet<i64>,
    /// (source, user) pairs the core locked: no cached answer for them until the lock ends.
    pub locks: Vec<PairLock>,
}

impl ChangeSummary {
    /// Whether nothing changed (a change set with no items, e.g. on reconnect).
    pub fn is_empty(&self) -> bool {
        !self.snapshot
            && !self.outpost
            && self.users.is_empty()
            && self.groups.is_empty()
            && self.providers.is_empty()
            && self.revoked_sessions.is_empty()
            && self.locks.is_empty()
    }

    /// A summary for a full snapshot.
    pub fn snapshot() -> Self {
        Self {
            snapshot: true,
            ..Self::default()
        }
    }
}

/// Applies `items` in order to `config`.
pub fn apply_changes(config: &mut OutpostConfig, items: &[ChangeItem]) -> ChangeSummary {
    let mut summary = ChangeSummary::default();
    for item in items {
        match item {
            ChangeItem::UserUpserted { user } => {
                if let Some(dir) = config.directory.as_mut() {
                    match dir.users.binary_search_by_key(&user.id, |u| u.id) {
                        Ok(i) => dir.users[i] = user.clone(),
                        Err(i) => dir.users.insert(i, user.clone()),
                    }
                    summary.users.insert(user.id);
                }
            }
            ChangeItem::UserDeleted { id } => {
                if let Some(dir) = config.directory.as_mut() {
                    dir.users.retain(|u| u.id != *id);
                    summary.users.insert(*id);
                }
            }
            ChangeItem::GroupUpserted { group } => {
                if let Some(dir) = config.directory.as_mut() {
                    match dir.groups.binary_search_by_key(&group.id, |g| g.id) {
                        Ok(i) => dir.groups[i] = group.clone(),
                        Err(i) => dir.groups.insert(i, group.clone()),
                    }
                    summary.groups.insert(group.id);
                }
            }
            ChangeItem::GroupDeleted { id } => {
                if let Some(dir) = config.directory.as_mut() {
                    dir.groups.retain(|g| g.id != *id);
                    for group in dir.groups.iter_mut().filter(|g| g.parent_id == Some(*id)) {
                        group.parent_id = None;
                        summary.groups.insert(group.id);
                    }
                    for user in dir.users.iter_mut().filter(|u| u.group_ids.contains(id)) {
                        user.group_ids.retain(|g| g != id);
                        summary.users.insert(user.id);
                    }
                    summary.groups.insert(*id);
                }
            }
            ChangeItem::ProviderUpserted { provider } => {
                match config.providers.iter_mut().find(|p| p.id == provider.id) {
                    Some(existing) => *existing = provider.clone(),
                    None => config.providers.push(provider.clone()),
                }
                summary.providers.insert(provider.id);
            }
            ChangeItem::ProviderRemoved { id } => {
                let before = config.providers.len();
                config.providers.retain(|p| p.id != *id);
                if config.providers.len() != before {
                    summary.providers.insert(*id);
                }
            }
            ChangeItem::OutpostUpdated { outpost } => {
                config.outpost = outpost.clone();
                summary.outpost = true;
            }
            ChangeItem::SessionsRevoked { revocation } => {
                if let Some(sessions) = config.sessions.as_mut() {
                    sessions.revocations.push(revocation.clone());
                }
                summary.revoked_sessions.insert(revocation.user_id);
            }
            ChangeItem::AccessChanged {
                user_ids,
                group_ids,
            } => {
                summary.users.extend(user_ids);
                summary.groups.extend(group_ids);
            }
            ChangeItem::LockChanged {
                username,
                source_address,
                locked_until,
            } => summary.locks.push(PairLock {
                username: username.clone(),
                source_address: source_address.clone(),
                locked_until: *locked_until,
            }),
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::config::*;
    use serde_json::Value;

    fn user(id: i64, groups: &[i64]) -> DirectoryUser {
        DirectoryUser {
            id,
            username: format!("u{id}"),
            name: String::new(),
            email: String::new(),
            is_active: true,
            attributes: Default::default(),
            group_ids: groups.to_vec(),
            credential_epoch: 0,
            has_totp: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn group(id: i64, parent: Option<i64>) -> DirectoryGroup {
        DirectoryGroup {
            id,
            name: format!("g{id}"),
            parent_id: parent,
            attributes: Default::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn provider(id: i64) -> ProviderConfig {
        ProviderConfig {
            id,
            name: format!("p{id}"),
            kind: OutpostKind::Ldap,
            settings: Value::Null,
            application: None,
        }
    }

    fn config(directory: bool) -> OutpostConfig {
        OutpostConfig {
            sessions: None,
            outpost: OutpostInfo {
                id: 1,
                name: "o".into(),
                kind: OutpostKind::Ldap,
                settings: Value::Null,
            },
            providers: vec![provider(1)],
            directory: directory.then(|| Directory {
                users: vec![user(1, &[10]), user(3, &[])],
                groups: vec![group(10, None), group(11, Some(10))],
            }),
        }
    }

    #[test]
    fn users_upsert_in_order_and_delete() {
        let mut c = config(true);
        let mut changed = user(1, &[10]);
        changed.credential_epoch = 2;
        let s = apply_changes(
            &mut c,
            &[
                ChangeItem::UserUpserted { user: user(2, &[]) },
                ChangeItem::UserUpserted { user: changed },
                ChangeItem::UserDeleted { id: 3 },
            ],
        );
        let dir = c.directory.as_ref().expect("directory");
        assert_eq!(
            dir.users.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(dir.users[0].credential_epoch, 2);
        assert_eq!(s.users, BTreeSet::from([1, 2, 3]));
    }

    #[test]
    fn deleting_a_group_drops_memberships_and_parent_links() {
        let mut c = config(true);
        let s = apply_changes(&mut c, &[ChangeItem::GroupDeleted { id: 10 }]);
        let dir = c.directory.as_ref().expect("directory");
        assert!(dir.users[0].group_ids.is_empty());
        assert_eq!(dir.groups, vec![group(11, None)]);
        assert_eq!(s.groups, BTreeSet::from([10, 11]));
        assert_eq!(s.users, BTreeSet::from([1]));
    }

    #[test]
    fn access_changes_name_users_and_groups_without_a_directory() {
        let mut c = config(false);
        let s = apply_changes(
            &mut c,
            &[ChangeItem::AccessChanged {
                user_ids: vec![4],
                group_ids: vec![10],
            }],
        );
        assert_eq!(s.users, BTreeSet::from([4]));
        assert_eq!(s.groups, BTreeSet::from([10]));
        assert!(!s.is_empty());
        assert!(c.directory.is_none());
    }

    #[test]
    fn providers_outpost_and_revocations() {
        let mut c = config(false);
        let mut p = provider(1);
        p.name = "renamed".into();
        let mut info = c.outpost.clone();
        info.name = "new".into();
        let s = apply_changes(
            &mut c,
            &[
                ChangeItem::ProviderUpserted { provider: p },
                ChangeItem::ProviderUpserted {
                    provider: provider(2),
                },
                ChangeItem::ProviderRemoved { id: 1 },
                ChangeItem::ProviderRemoved { id: 9 },
                ChangeItem::OutpostUpdated { outpost: info },
                ChangeItem::SessionsRevoked {
                    revocation: redoubt_outpost_proto::session::SessionRevocation {
                        user_id: 7,
                        session_id: None,
                        revoked_at_ms: 1,
                    },
                },
                ChangeItem::UserUpserted { user: user(5, &[]) },
            ],
        );
        assert_eq!(c.providers, vec![provider(2)]);
        assert_eq!(c.outpost.name, "new");
        assert!(s.outpost);
        assert_eq!(s.providers, BTreeSet::from([1, 2]));
        assert_eq!(s.revoked_sessions, BTreeSet::from([7]));
        assert!(s.users.is_empty(), "no directory: user items are ignored");
        assert!(c.directory.is_none());
    }
}
