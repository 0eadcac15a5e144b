//! The directory as LDAP sees it: for each LDAP provider a tree under its base DN
//! (`ou=users` and `ou=groups`), built from the configuration snapshot with a few indexes
//! (users and groups by name, group members and children). Entries are small references into
//! the snapshot; their attributes are produced on demand ([`super::attributes`]), so the
//! directory costs little more memory than the snapshot the runtime already holds.

use super::dn::{self, Dn};
use redoubt_outpost_proto::config::{ConfigSnapshot, DirectoryGroup, DirectoryUser, OutpostKind};
use redoubt_outpost_proto::provider::LdapProviderSettings;
use std::collections::HashMap;
use std::sync::Arc;

/// One LDAP provider's tree.
#[derive(Debug, Clone)]
pub struct ProviderTree {
    pub id: i64,
    pub name: String,
    pub settings: LdapProviderSettings,
    /// The base DN as configured (for output) and normalized (for matching).
    pub base: String,
    pub base_norm: String,
    pub users_norm: String,
    pub groups_norm: String,
    /// The application's bound groups, if the provider has an application.
    pub has_application: bool,
}

impl ProviderTree {
    /// `ou=users,<base>` as served.
    pub fn users_dn(&self) -> String {
        format!("ou=users,{}", self.base)
    }

    /// `ou=groups,<base>` as served.
    pub fn groups_dn(&self) -> String {
        format!("ou=groups,{}", self.base)
    }
}

/// A reference to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryRef {
    RootDse,
    Subschema,
    /// The base DN of provider `.0` (an index into [`DirectoryView::providers`]).
    Base(u16),
    UsersOu(u16),
    GroupsOu(u16),
    /// A user (index into the snapshot's users) under provider `.0`.
    User(u16, u32),
    Group(u16, u32),
}

impl EntryRef {
    /// The provider the entry belongs to, if any.
    pub fn provider(self) -> Option<u16> {
        match self {
            Self::RootDse | Self::Subschema => None,
            Self::Base(p) | Self::UsersOu(p) | Self::GroupsOu(p) => Some(p),
            Self::User(p, _) | Self::Group(p, _) => Some(p),
        }
    }
}

/// The DN of the subschema entry.
pub const SUBSCHEMA_DN: &str = "cn=subschema";

/// The directory with its indexes.
pub struct DirectoryView {
    pub snapshot: Arc<ConfigSnapshot>,
    pub providers: Vec<ProviderTree>,
    users_by_name: HashMap<String, u32>,
    groups_by_name: HashMap<String, u32>,
    group_by_id: HashMap<i64, u32>,
    /// Per group index: direct member users.
    members: Vec<Vec<u32>>,
    /// Per group index: child groups.
    children: Vec<Vec<u32>>,
}

impl std::fmt::Debug for DirectoryView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryView")
            .field("revision", &self.snapshot.revision)
            .field("providers", &self.providers.len())
            .field("users", &self.users().len())
            .field("groups", &self.groups().len())
            .finish()
    }
}

static EMPTY_USERS: Vec<DirectoryUser> = Vec::new();
static EMPTY_GROUPS: Vec<DirectoryGroup> = Vec::new();

impl DirectoryView {
    /// Builds the view of `snapshot`. Providers whose settings do not parse are left out with a
    /// warning (the core validates them, so this means a newer core).
    pub fn build(snapshot: Arc<ConfigSnapshot>) -> Self {
        let mut providers = Vec::new();
        for provider in &snapshot.config.providers {
            if provider.kind != OutpostKind::Ldap || providers.len() >= usize::from(u16::MAX) {
                continue;
            }
            let settings: LdapProviderSettings = match serde_json::from_value(
                provider.settings.clone(),
            ) {
                Ok(settings) => settings,
                Err(error) => {
                    tracing::warn!(provider = %provider.name, %error, "LDAP provider settings do not parse; not serving it");
                    continue;
                }
            };
            let Ok(base) = Dn::parse(settings.base_dn.trim()) else {
                tracing::warn!(provider = %provider.name, "base_dn does not parse; not serving it");
                continue;
            };
            let base_norm = base.normalized();
            providers.push(ProviderTree {
                id: provider.id,
                name: provider.name.clone(),
                base: settings.base_dn.trim().to_owned(),
                users_norm: format!("ou=users,{base_norm}"),
                groups_norm: format!("ou=groups,{base_norm}"),
                base_norm,
                has_application: provider.application.is_some(),
                settings,
            });
        }
        let mut view = Self {
            providers,
            users_by_name: HashMap::new(),
            groups_by_name: HashMap::new(),
            group_by_id: HashMap::new(),
            members: Vec::new(),
            children: Vec::new(),
            snapshot,
        };
        let snapshot = view.snapshot.clone();
        let directory = snapshot.config.directory.as_ref();
        let users = directory.map_or(&EMPTY_USERS, |d| &d.users);
        let groups = directory.map_or(&EMPTY_GROUPS, |d| &d.groups);
        view.users_by_name.reserve(users.len());
        for (i, user) in users.iter().enumerate() {
            view.users_by_name
                .insert(user.username.to_lowercase(), i as u32);
        }
        view.members = vec![Vec::new(); groups.len()];
        view.children = vec![Vec::new(); groups.len()];
        for (i, group) in groups.iter().enumerate() {
            view.groups_by_name
                .insert(group.name.to_lowercase(), i as u32);
            view.group_by_id.insert(group.id, i as u32);
        }
        for (i, group) in groups.iter().enumerate() {
            if let Some(parent) = group.parent_id.and_then(|p| view.group_by_id.get(&p)) {
                view.children[*parent as usize].push(i as u32);
            }
        }
        for (i, user) in users.iter().enumerate() {
            for group in &user.group_ids {
                if let Some(g) = view.group_by_id.get(group) {
                    view.members[*g as usize].push(i as u32);
                }
            }
        }
        view
    }

    pub fn users(&self) -> &[DirectoryUser] {
        self.snapshot
            .config
            .directory
            .as_ref()
            .map_or(&[], |d| d.users.as_slice())
    }

    pub fn groups(&self) -> &[DirectoryGroup] {
        self.snapshot
            .config
            .directory
            .as_ref()
            .map_or(&[], |d| d.groups.as_slice())
    }

    pub fn user(&self, index: u32) -> &DirectoryUser {
        &self.users()[index as usize]
    }

    pub fn group(&self, index: u32) -> &DirectoryGroup {
        &self.groups()[index as usize]
    }

    /// A user by name, case-insensitively.
    pub fn user_by_name(&self, name: &str) -> Option<u32> {
        self.users_by_name.get(&name.to_lowercase()).copied()
    }

    /// A user by id.
    pub fn user_by_id(&self, id: i64) -> Option<u32> {
        self.users()
            .binary_search_by_key(&id, |u| u.id)
            .ok()
            .map(|i| i as u32)
    }

    /// A group by name, case-insensitively.
    pub fn group_by_name(&self, name: &str) -> Option<u32> {
        self.groups_by_name.get(&name.to_lowercase()).copied()
    }

    /// A group by id.
    pub fn group_by_id(&self, id: i64) -> Option<u32> {
        self.group_by_id.get(&id).copied()
    }

    /// Direct member users of a group.
    pub fn members(&self, group: u32) -> &[u32] {
        &self.members[group as usize]
    }

    /// Child groups of a group.
    pub fn children(&self, group: u32) -> &[u32] {
        &self.children[group as usize]
    }

    /// The parent group of a group, if it exists.
    pub fn parent(&self, group: u32) -> Option<u32> {
        self.group(group)
            .parent_id
            .and_then(|p| self.group_by_id(p))
    }

    /// Groups a user belongs to directly.
    pub fn direct_groups(&self, user: u32) -> impl Iterator<Item = u32> + '_ {
        self.user(user)
            .group_ids
            .iter()
            .filter_map(|g| self.group_by_id(*g))
    }

    /// Whether `user` is in `group` directly or through nested groups (a member of a child
    /// group is a member of its parent).
    pub fn user_in_group_transitively(&self, user: u32, group: u32) -> bool {
        self.direct_groups(user)
            .any(|g| self.group_within(g, group))
    }

    /// Whether group `g` is `ancestor` or nested somewhere below it.
    pub fn group_within(&self, mut g: u32, ancestor: u32) -> bool {
        // Nesting is cycle-checked by the core; the bound guards against a corrupt snapshot.
        for _ in 0..64 {
            if g == ancestor {
                return true;
            }
            match self.parent(g) {
                Some(parent) => g = parent,
                None => return false,
            }
        }
        false
    }

    /// The provider tree by index.
    pub fn provider(&self, index: u16) -> &ProviderTree {
        &self.providers[usize::from(index)]
    }

    /// The provider index serving provider id `id`.
    pub fn provider_index(&self, id: i64) -> Option<u16> {
        self.providers
            .iter()
            .position(|p| p.id == id)
            .map(|i| i as u16)
    }

    /// The entry a normalized DN names.
    pub fn resolve(&self, dn_norm: &str) -> Option<EntryRef> {
        if dn_norm.is_empty() {
            return Some(EntryRef::RootDse);
        }
        if dn_norm == SUBSCHEMA_DN {
            return Some(EntryRef::Subschema);
        }
        for (i, provider) in self.providers.iter().enumerate() {
            let p = i as u16;
            if dn_norm == provider.base_norm {
                return Some(EntryRef::Base(p));
            }
            if dn_norm == provider.users_norm {
                return Some(EntryRef::UsersOu(p));
            }
            if dn_norm == provider.groups_norm {
                return Some(EntryRef::GroupsOu(p));
            }
            if let Some(rdn) = leaf_under(dn_norm, &provider.users_norm) {
                let name = rdn_value(rdn, &["cn", "uid"])?;
                return self.user_by_name(&name).map(|u| EntryRef::User(p, u));
            }
            if let Some(rdn) = leaf_under(dn_norm, &provider.groups_norm) {
                let name = rdn_value(rdn, &["cn"])?;
                return self.group_by_name(&name).map(|g| EntryRef::Group(p, g));
            }
        }
        None
    }

    /// The DN of an entry, as served.
    pub fn dn(&self, entry: EntryRef) -> String {
        match entry {
            EntryRef::RootDse => String::new(),
            EntryRef::Subschema => SUBSCHEMA_DN.to_owned(),
            EntryRef::Base(p) => self.provider(p).base.clone(),
            EntryRef::UsersOu(p) => self.provider(p).users_dn(),
            EntryRef::GroupsOu(p) => self.provider(p).groups_dn(),
            EntryRef::User(p, u) => self.user_dn(p, u),
            EntryRef::Group(p, g) => self.group_dn(p, g),
        }
    }

    pub fn user_dn(&self, provider: u16, user: u32) -> String {
        format!(
            "cn={},ou=users,{}",
            dn::escape_value(&self.user(user).username),
            self.provider(provider).base
        )
    }

    pub fn group_dn(&self, provider: u16, group: u32) -> String {
        format!(
            "cn={},ou=groups,{}",
            dn::escape_value(&self.group(group).name),
            self.provider(provider).base
        )
    }

    /// Direct children of an entry.
    pub fn children_of(&self, entry: EntryRef) -> Vec<EntryRef> {
        match entry {
            EntryRef::Base(p) => vec![EntryRef::UsersOu(p), EntryRef::GroupsOu(p)],
            EntryRef::UsersOu(p) => (0..self.users().len() as u32)
                .map(|u| EntryRef::User(p, u))
                .collect(),
            EntryRef::GroupsOu(p) => (0..self.groups().len() as u32)
                .map(|g| EntryRef::Group(p, g))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether an entry has children.
    pub fn has_subordinates(&self, entry: EntryRef) -> bool {
        matches!(
            entry,
            EntryRef::Base(_) | EntryRef::UsersOu(_) | EntryRef::GroupsOu(_)
        )
    }
}

/// If `dn` is exactly one RDN below `parent`, that RDN.
fn leaf_under<'a>(dn: &'a str, parent: &str) -> Option<&'a str> {
    let rdn = dn.strip_suffix(parent)?.strip_suffix(',')?;
    // The RDN must not contain an unescaped comma (that would be deeper).
    let parsed = Dn::parse(rdn).ok()?;
    (parsed.rdns.len() == 1).then_some(rdn)
}

/// The unescaped value of a single normalized RDN whose type is one of `types`.
fn rdn_value(rdn: &str, types: &[&str]) -> Option<String> {
    let parsed = Dn::parse(rdn).ok()?;
    let (attr, value) = parsed.rdns.into_iter().next()?;
    types.contains(&attr.as_str()).then_some(value)
}
