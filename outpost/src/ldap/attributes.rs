//! Attribute values of directory entries, produced on demand from the snapshot. The layout
//! follows authentik's LDAP outpost so application configs carry over by changing the base DN:
//! users are `inetOrgPerson`/`posixAccount` (plus `user` for AD-minded clients), groups are
//! `groupOfNames`/`groupOfUniqueNames`/`posixGroup`.

use super::view::{DirectoryView, EntryRef};
use redoubt_outpost_proto::config::DirectoryUser;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// The values of one attribute.
pub type Values<'a> = Vec<Cow<'a, str>>;

/// Object classes of users.
const USER_CLASSES: &[&str] = &[
    "top",
    "person",
    "organizationalPerson",
    "inetOrgPerson",
    "posixAccount",
    "user",
];
/// Object classes of groups.
const GROUP_CLASSES: &[&str] = &[
    "top",
    "groupOfNames",
    "groupOfUniqueNames",
    "posixGroup",
    "group",
];

/// User attributes returned for `*`, canonical names.
const USER_ATTRIBUTES: &[&str] = &[
    "objectClass",
    "cn",
    "uid",
    "sAMAccountName",
    "name",
    "displayName",
    "givenName",
    "sn",
    "mail",
    "memberOf",
    "uidNumber",
    "gidNumber",
    "homeDirectory",
    "loginShell",
    "entryUUID",
    "ak-active",
    "userAccountControl",
];
/// Group attributes returned for `*`.
const GROUP_ATTRIBUTES: &[&str] = &[
    "objectClass",
    "cn",
    "name",
    "member",
    "uniqueMember",
    "memberUid",
    "gidNumber",
    "memberOf",
    "entryUUID",
];
/// Operational attributes returned for `+`.
pub const OPERATIONAL_ATTRIBUTES: &[&str] = &[
    "entryDN",
    "createTimestamp",
    "modifyTimestamp",
    "hasSubordinates",
    "subschemaSubentry",
    "structuralObjectClass",
];
/// Attributes holding DNs: matched by DN rules.
pub const DN_ATTRIBUTES: &[&str] = &[
    "member",
    "uniquemember",
    "memberof",
    "entrydn",
    "namingcontexts",
    "subschemasubentry",
];
/// Attributes holding integers: matched and ordered as numbers.
pub const INTEGER_ATTRIBUTES: &[&str] = &[
    "uidnumber",
    "gidnumber",
    "useraccountcontrol",
    "supportedldapversion",
];

/// Every attribute name this server knows, canonical; custom attributes come on top. A hash
/// lookup: it runs for every requested name and every custom attribute of every entry.
pub fn known_name(lower: &str) -> Option<&'static str> {
    static KNOWN: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
        USER_ATTRIBUTES
            .iter()
            .chain(GROUP_ATTRIBUTES)
            .chain(OPERATIONAL_ATTRIBUTES)
            .chain(super::rootdse::ROOTDSE_ATTRIBUTES)
            .chain(super::rootdse::SUBSCHEMA_ATTRIBUTES)
            .chain(&["ou", "dc", "o"])
            .rev()
            .map(|n| (n.to_ascii_lowercase(), *n))
            .collect()
    });
    KNOWN.get(lower).copied()
}

/// The user attributes of an entry returned for `*`, canonical names, custom ones included.
pub fn user_attribute_names(view: &DirectoryView, entry: EntryRef) -> Vec<Cow<'static, str>> {
    let fixed: &[&'static str] = match entry {
        EntryRef::User(..) => USER_ATTRIBUTES,
        EntryRef::Group(..) => GROUP_ATTRIBUTES,
        EntryRef::Base(p) => match base_rdn_type(view, p) {
            Some("dc") => &["objectClass", "dc"],
            Some("o") => &["objectClass", "o"],
            Some("ou") => &["objectClass", "ou"],
            _ => &["objectClass"],
        },
        EntryRef::UsersOu(_) | EntryRef::GroupsOu(_) => &["objectClass", "ou"],
        EntryRef::RootDse => super::rootdse::ROOTDSE_ATTRIBUTES,
        EntryRef::Subschema => super::rootdse::SUBSCHEMA_ATTRIBUTES,
    };
    let mut names: Vec<Cow<'static, str>> = fixed.iter().map(|n| Cow::Borrowed(*n)).collect();
    let custom = match entry {
        EntryRef::User(_, u) => Some(&view.user(u).attributes),
        EntryRef::Group(_, g) => Some(&view.group(g).attributes),
        _ => None,
    };
    // Keys differing only in case are one attribute: the first wins.
    let mut seen = HashSet::new();
    for key in custom.into_iter().flat_map(|m| m.keys()) {
        if is_custom_name(key)
            && !fixed.iter().any(|n| n.eq_ignore_ascii_case(key))
            && seen.insert(key.to_ascii_lowercase())
        {
            names.push(Cow::Owned(key.clone()));
        }
    }
    names
}

/// Whether a custom attribute key can be served as an LDAP attribute.
fn is_custom_name(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && known_name(&key.to_ascii_lowercase()).is_none_or(|k| {
            k.eq_ignore_ascii_case("homeDirectory") || k.eq_ignore_ascii_case("loginShell")
        })
}

/// The values of attribute `lower` (lower-case name) of `entry`.
pub fn values<'v>(view: &'v DirectoryView, entry: EntryRef, lower: &str) -> Values<'v> {
    match entry {
        EntryRef::User(p, u) => user_values(view, p, u, lower),
        EntryRef::Group(p, g) => group_values(view, p, g, lower),
        EntryRef::Base(p) => container_values(view, entry, lower, base_classes(view, p), || {
            base_rdn_value(view, p)
        }),
        EntryRef::UsersOu(_) => {
            container_values(view, entry, lower, &["top", "organizationalUnit"], || {
                Some(("ou", "users".to_owned()))
            })
        }
        EntryRef::GroupsOu(_) => {
            container_values(view, entry, lower, &["top", "organizationalUnit"], || {
                Some(("ou", "groups".to_owned()))
            })
        }
        EntryRef::RootDse => super::rootdse::rootdse_values(view, lower),
        EntryRef::Subschema => super::rootdse::subschema_values(lower),
    }
}

/// Whether attribute `lower` of `entry` has a value, without producing the values of the
/// attributes that list members (a group's DNs of thousands of members are never built just
/// to be counted).
pub fn has_values(view: &DirectoryView, entry: EntryRef, lower: &str) -> bool {
    match (entry, lower) {
        (EntryRef::User(_, u), "memberof") => view.direct_groups(u).next().is_some(),
        (EntryRef::Group(_, g), "member" | "uniquemember") => {
            !view.members(g).is_empty() || !view.children(g).is_empty()
        }
        (EntryRef::Group(_, g), "memberuid") => !view.members(g).is_empty(),
        _ => !values(view, entry, lower).is_empty(),
    }
}

fn owned<'v>(values: impl IntoIterator<Item = String>) -> Values<'v> {
    values.into_iter().map(Cow::Owned).collect()
}

fn one<'v>(value: &'v str) -> Values<'v> {
    if value.is_empty() {
        Vec::new()
    } else {
        vec![Cow::Borrowed(value)]
    }
}

fn user_values<'v>(view: &'v DirectoryView, p: u16, u: u32, lower: &str) -> Values<'v> {
    let user = view.user(u);
    let settings = &view.provider(p).settings;
    let uid_number = i64::from(settings.uid_start_number) + user.id;
    match lower {
        "objectclass" => USER_CLASSES.iter().map(|c| Cow::Borrowed(*c)).collect(),
        "cn" | "uid" | "samaccountname" => one(&user.username),
        "name" | "displayname" => one(display_name(user)),
        "givenname" => split_name(user).0.map(Cow::Borrowed).into_iter().collect(),
        "sn" => vec![Cow::Borrowed(split_name(user).1)],
        "mail" => one(&user.email),
        "memberof" => owned(view.direct_groups(u).map(|g| view.group_dn(p, g))),
        "uidnumber" | "gidnumber" => vec![Cow::Owned(uid_number.to_string())],
        "homedirectory" => custom(&user.attributes, "homeDirectory")
            .unwrap_or_else(|| vec![Cow::Owned(format!("/home/{}", user.username))]),
        "loginshell" => custom(&user.attributes, "loginShell")
            .unwrap_or_else(|| vec![Cow::Borrowed("/bin/bash")]),
        "entryuuid" => vec![Cow::Owned(entry_uuid("user", user.id, user.created_at))],
        "ak-active" => vec![Cow::Borrowed(if user.is_active { "TRUE" } else { "FALSE" })],
        "useraccountcontrol" => vec![Cow::Borrowed(if user.is_active { "512" } else { "514" })],
        _ => operational(
            view,
            EntryRef::User(p, u),
            lower,
            user.created_at,
            user.updated_at,
        )
        .or_else(|| custom(&user.attributes, lower))
        .unwrap_or_default(),
    }
}

fn group_values<'v>(view: &'v DirectoryView, p: u16, g: u32, lower: &str) -> Values<'v> {
    let group = view.group(g);
    let settings = &view.provider(p).settings;
    match lower {
        "objectclass" => GROUP_CLASSES.iter().map(|c| Cow::Borrowed(*c)).collect(),
        "cn" | "name" => one(&group.name),
        "member" | "uniquemember" => owned(
            view.members(g)
                .iter()
                .map(|u| view.user_dn(p, *u))
                .chain(view.children(g).iter().map(|c| view.group_dn(p, *c))),
        ),
        "memberuid" => view
            .members(g)
            .iter()
            .map(|u| Cow::Borrowed(view.user(*u).username.as_str()))
            .collect(),
        "gidnumber" => vec![Cow::Owned(
            (i64::from(settings.gid_start_number) + group.id).to_string(),
        )],
        "memberof" => owned(view.parent(g).map(|parent| view.group_dn(p, parent))),
        "entryuuid" => vec![Cow::Owned(entry_uuid("group", group.id, group.created_at))],
        _ => operational(
            view,
            EntryRef::Group(p, g),
            lower,
            group.created_at,
            group.updated_at,
        )
        .or_else(|| custom(&group.attributes, lower))
        .unwrap_or_default(),
    }
}

fn container_values<'v>(
    view: &'v DirectoryView,
    entry: EntryRef,
    lower: &str,
    classes: &'static [&'static str],
    rdn: impl Fn() -> Option<(&'static str, String)>,
) -> Values<'v> {
    if lower == "objectclass" {
        return classes.iter().map(|c| Cow::Borrowed(*c)).collect();
    }
    if let Some((attr, value)) = rdn()
        && attr == lower
    {
        return vec![Cow::Owned(value)];
    }
    let created = view.snapshot.revision;
    operational(view, entry, lower, 0, created.max(0)).unwrap_or_default()
}

fn base_rdn_type(view: &DirectoryView, p: u16) -> Option<&'static str> {
    base_rdn_value(view, p).map(|(t, _)| t)
}

fn base_rdn_value(view: &DirectoryView, p: u16) -> Option<(&'static str, String)> {
    let dn = super::dn::Dn::parse(&view.provider(p).base).ok()?;
    let (attr, value) = dn.rdns.into_iter().next()?;
    let attr = match attr.as_str() {
        "dc" => "dc",
        "o" => "o",
        "ou" => "ou",
        _ => return None,
    };
    Some((attr, value))
}

fn base_classes(view: &DirectoryView, p: u16) -> &'static [&'static str] {
    match base_rdn_type(view, p) {
        Some("dc") => &["top", "domain", "dcObject"],
        Some("o") => &["top", "organization"],
        Some("ou") => &["top", "organizationalUnit"],
        _ => &["top", "extensibleObject"],
    }
}

/// Operational attributes shared by every entry in a provider's tree.
fn operational<'v>(
    view: &'v DirectoryView,
    entry: EntryRef,
    lower: &str,
    created: i64,
    modified: i64,
) -> Option<Values<'v>> {
    Some(match lower {
        "entrydn" => vec![Cow::Owned(view.dn(entry))],
        "createtimestamp" => vec![Cow::Owned(generalized_time(created))],
        "modifytimestamp" => vec![Cow::Owned(generalized_time(modified))],
        "hassubordinates" => vec![Cow::Borrowed(if view.has_subordinates(entry) {
            "TRUE"
        } else {
            "FALSE"
        })],
        "subschemasubentry" => vec![Cow::Borrowed(super::view::SUBSCHEMA_DN)],
        "structuralobjectclass" => vec![Cow::Borrowed(match entry {
            EntryRef::User(..) => "inetOrgPerson",
            EntryRef::Group(..) => "groupOfNames",
            EntryRef::UsersOu(_) | EntryRef::GroupsOu(_) => "organizationalUnit",
            _ => "domain",
        })],
        _ => return None,
    })
}

/// A custom attribute by case-insensitive key: strings, numbers and booleans, or lists of them.
fn custom<'v>(attributes: &'v serde_json::Map<String, Value>, name: &str) -> Option<Values<'v>> {
    let (key, value) = attributes
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))?;
    if !is_custom_name(key) {
        return None;
    }
    let mut out = Vec::new();
    let mut push = |v: &'v Value| match v {
        Value::String(s) => out.push(Cow::Borrowed(s.as_str())),
        Value::Number(n) => out.push(Cow::Owned(n.to_string())),
        Value::Bool(b) => out.push(Cow::Borrowed(if *b { "TRUE" } else { "FALSE" })),
        _ => {}
    };
    match value {
        Value::Array(items) => items.iter().for_each(&mut push),
        other => push(other),
    }
    Some(out)
}

fn display_name(user: &DirectoryUser) -> &str {
    if user.name.trim().is_empty() {
        &user.username
    } else {
        &user.name
    }
}

/// `(givenName, sn)`: the first word and the rest of the name; a one-word name is the surname
/// (sn is required by `person`).
fn split_name(user: &DirectoryUser) -> (Option<&str>, &str) {
    let name = display_name(user).trim();
    match name.split_once(' ') {
        Some((given, rest)) if !rest.trim().is_empty() => (Some(given), rest.trim()),
        _ => (None, name),
    }
}

/// A stable UUID for an entry (name-based, from its kind, id and creation time, so an entry
/// recreated with the same id in a new database gets a new one).
pub fn entry_uuid(kind: &str, id: i64, created_at: i64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("redoubt:{kind}:{id}:{created_at}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8 (custom)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex = data_encoding::HEXLOWER.encode(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Seconds since the epoch as LDAP GeneralizedTime (`20261122143000Z`).
pub fn generalized_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_matches_known_dates() {
        assert_eq!(generalized_time(0), "19700101000000Z");
        assert_eq!(generalized_time(1_795_348_800), "20261122120000Z");
        assert_eq!(generalized_time(951_782_400), "20000229000000Z");
    }

    #[test]
    fn entry_uuids_are_stable_and_well_formed() {
        let a = entry_uuid("user", 7, 100);
        assert_eq!(a, entry_uuid("user", 7, 100));
        assert_ne!(a, entry_uuid("group", 7, 100));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
    }
}
