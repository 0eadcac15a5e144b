//! Search planning and entry building: resolve the base, enumerate the scope (through the
//! indexes when the filter allows), keep what the filter matches and the caller may see, then
//! turn entry references into result entries with the requested attributes.

use super::attributes::{self, OPERATIONAL_ATTRIBUTES};
use super::dn;
use super::filter::{self, Truth};
use super::prepared::PreparedFilter;
use super::view::{DirectoryView, EntryRef};
use ldap3_proto::proto::{
    LdapFilter, LdapPartialAttribute, LdapResultCode, LdapSearchResultEntry, LdapSearchScope,
};
use std::borrow::Cow;
use std::collections::HashSet;
use std::time::Instant;

/// Who is searching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Anonymous,
    /// A user bound through provider index `provider`.
    User {
        provider: u16,
        user: u32,
    },
}

/// A search refused or failed, with the code and message to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchFailure {
    pub code: LdapResultCode,
    pub matched: String,
    pub message: String,
}

impl SearchFailure {
    fn new(code: LdapResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            matched: String::new(),
            message: message.into(),
        }
    }
}

/// Most distinct attributes a search may name (RFC 4511 4.5.1.8); more are refused with
/// adminLimitExceeded. Real clients name a few dozen.
pub const MAX_REQUESTED_ATTRIBUTES: usize = 256;

/// Which attributes to return.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    all_user: bool,
    all_operational: bool,
    /// Explicitly named attributes, distinct: the lower-cased name and the name to answer with
    /// (canonical for known attributes, else as first requested).
    named: Vec<(String, Cow<'static, str>)>,
}

impl Selection {
    /// From the request's attribute list (RFC 4511 4.5.1.8, RFC 3673). Repeated names count
    /// once; more than [`MAX_REQUESTED_ATTRIBUTES`] distinct names are refused.
    pub fn parse(attrs: &[String]) -> Result<Self, SearchFailure> {
        let mut selection = Self::default();
        let only_none = attrs.len() == 1 && attrs.first().is_some_and(|a| a == "1.1");
        if attrs.is_empty() {
            selection.all_user = true;
        }
        let mut seen = HashSet::new();
        for attr in attrs {
            match attr.as_str() {
                "*" => selection.all_user = true,
                "+" => selection.all_operational = true,
                "1.1" => {}
                // `@objectClass` (RFC 4529): treat as all user attributes.
                a if a.starts_with('@') => selection.all_user = true,
                a => {
                    let lower = a.to_ascii_lowercase();
                    if seen.contains(&lower) {
                        continue;
                    }
                    if seen.len() == MAX_REQUESTED_ATTRIBUTES {
                        return Err(SearchFailure::new(
                            LdapResultCode::AdminLimitExceeded,
                            format!(
                                "a search may name at most {MAX_REQUESTED_ATTRIBUTES} attributes"
                            ),
                        ));
                    }
                    seen.insert(lower.clone());
                    let answered = match attributes::known_name(&lower) {
                        Some(canonical) => Cow::Borrowed(canonical),
                        None => Cow::Owned(a.to_owned()),
                    };
                    selection.named.push((lower, answered));
                }
            }
        }
        if only_none {
            selection = Self::default();
        }
        Ok(selection)
    }
}

/// The attributes of `entry` that `selection` asks for, with their values (none when
/// `types_only`), in answer order; attributes without values are left out. Linear in the
/// number of attributes asked for and present.
pub fn selected_attributes<'v>(
    view: &'v DirectoryView,
    entry: EntryRef,
    selection: &Selection,
    types_only: bool,
) -> Vec<(Cow<'static, str>, attributes::Values<'v>)> {
    // The names `*` and `+` give: a few dozen, distinct but for the root DSE's overlap.
    let mut names: Vec<Cow<'static, str>> = Vec::new();
    if selection.all_user {
        names = attributes::user_attribute_names(view, entry);
    }
    if selection.all_operational {
        if matches!(entry, EntryRef::RootDse | EntryRef::Subschema) {
            // Every attribute of the root DSE and the subschema entry is operational
            // (RFC 4512 sections 5.1 and 4.2): `+` returns them all, as slapd does.
            for name in attributes::user_attribute_names(view, entry) {
                if !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                    names.push(name);
                }
            }
        }
        for name in OPERATIONAL_ATTRIBUTES {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(Cow::Borrowed(*name));
            }
        }
    }
    let mut out = Vec::with_capacity(names.len() + selection.named.len());
    let mut lower = String::new();
    let mut push = |name: Cow<'static, str>, lower: &str| {
        let mut values = attributes::values(view, entry, lower);
        if !values.is_empty() {
            if types_only {
                values.clear();
            }
            out.push((name, values));
        }
    };
    // Named attributes are distinct already; each is left out if `*` or `+` gave it, found
    // through a set when comparing with every one would cost more.
    let given: Option<HashSet<String>> = (names.len().saturating_mul(selection.named.len()) > 64)
        .then(|| names.iter().map(|n| n.to_ascii_lowercase()).collect());
    let extra: Vec<&(String, Cow<'static, str>)> = selection
        .named
        .iter()
        .filter(|(named, _)| match &given {
            Some(given) => !given.contains(named),
            None => !names.iter().any(|n| n.eq_ignore_ascii_case(named)),
        })
        .collect();
    for name in names {
        lower.clear();
        lower.extend(name.chars().map(|c| c.to_ascii_lowercase()));
        push(name, &lower);
    }
    for (named, answered) in extra {
        push(answered.clone(), named);
    }
    out
}

/// Builds the result entry for `entry`.
pub fn build_entry(
    view: &DirectoryView,
    entry: EntryRef,
    selection: &Selection,
    types_only: bool,
) -> LdapSearchResultEntry {
    LdapSearchResultEntry {
        dn: view.dn(entry),
        attributes: selected_attributes(view, entry, selection, types_only)
            .into_iter()
            .map(|(name, values)| LdapPartialAttribute {
                atype: name.into_owned(),
                vals: values
                    .into_iter()
                    .map(|v| v.into_owned().into_bytes())
                    .collect(),
            })
            .collect(),
    }
}

/// Whether `reader` may see `entry`. Anonymous readers see only the root DSE and the schema.
/// A user sees everything in its provider's tree when in the provider's search group (directly
/// or through nesting), else the containers, itself and its groups.
pub fn visible(view: &DirectoryView, reader: Reader, full: bool, entry: EntryRef) -> bool {
    match (reader, entry) {
        (_, EntryRef::RootDse | EntryRef::Subschema) => true,
        (Reader::Anonymous, _) => false,
        (Reader::User { provider, user }, entry) => {
            if entry.provider() != Some(provider) {
                return false;
            }
            if full {
                return true;
            }
            match entry {
                EntryRef::User(_, u) => u == user,
                EntryRef::Group(_, g) => view.user_in_group_transitively(user, g),
                _ => true,
            }
        }
    }
}

/// Whether the reader may search the whole tree of its provider.
pub fn full_access(view: &DirectoryView, reader: Reader) -> bool {
    let Reader::User { provider, user } = reader else {
        return false;
    };
    let Some(group_id) = view.provider(provider).settings.search_group_id else {
        return false;
    };
    view.group_by_id(group_id)
        .is_some_and(|g| view.user_in_group_transitively(user, g))
}

/// The request's parts a search needs.
#[derive(Debug, Clone)]
pub struct SearchQuery<'a> {
    pub base: &'a str,
    pub scope: LdapSearchScope,
    pub filter: &'a LdapFilter,
    /// Stop matching at this instant (the time limit).
    pub deadline: Option<Instant>,
}

/// What a search matched.
#[derive(Debug)]
pub struct Matched {
    pub entries: Vec<EntryRef>,
    /// The time limit ran out: `entries` is partial.
    pub timed_out: bool,
}

/// Entries between two looks at the clock while matching with a plain filter (a few nodes); a
/// larger filter, whose work per entry can reach milliseconds, looks at it for every entry.
const ENTRIES_PER_CLOCK_CHECK: usize = 16;
/// Filter nodes up to which a filter counts as plain.
const PLAIN_FILTER_NODES: usize = 4;

/// A search ready to match: the entries in scope (through the indexes when the filter
/// allows) and the filter prepared for the view. Building it is cheap; [`Plan::scan`] is the
/// work, linear in `len()` times the filter's size.
#[derive(Debug)]
pub struct Plan {
    reader: Reader,
    full: bool,
    candidates: Vec<EntryRef>,
    filter: PreparedFilter,
}

impl Plan {
    /// Entries the scan will look at.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// A measure of the scan's work: entries times filter nodes.
    pub fn work(&self) -> usize {
        self.candidates
            .len()
            .saturating_mul(self.filter.node_count())
    }

    /// Whether the scan has nothing to look at.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// Keeps the candidates the reader may see and the filter matches, until `deadline`.
    pub fn scan(self, view: &DirectoryView, deadline: Option<Instant>) -> Matched {
        let mut entries = Vec::new();
        let every = if self.filter.node_count() <= PLAIN_FILTER_NODES {
            ENTRIES_PER_CLOCK_CHECK
        } else {
            1
        };
        for (i, entry) in self.candidates.into_iter().enumerate() {
            if i % every == 0
                && let Some(deadline) = deadline
                && Instant::now() >= deadline
            {
                return Matched {
                    entries,
                    timed_out: true,
                };
            }
            if visible(view, self.reader, self.full, entry)
                && self.filter.evaluate(view, entry) == Truth::True
            {
                entries.push(entry);
            }
        }
        Matched {
            entries,
            timed_out: false,
        }
    }
}

/// Runs the matching phase of a search.
pub fn run(
    view: &DirectoryView,
    reader: Reader,
    query: &SearchQuery<'_>,
) -> Result<Matched, SearchFailure> {
    Ok(plan(view, reader, query)?.scan(view, query.deadline))
}

/// Checks the request and plans its matching phase.
pub fn plan(
    view: &DirectoryView,
    reader: Reader,
    query: &SearchQuery<'_>,
) -> Result<Plan, SearchFailure> {
    filter::check_complexity(query.filter)
        .map_err(|e| SearchFailure::new(LdapResultCode::AdminLimitExceeded, e.to_string()))?;
    let Some(base_norm) = dn::normalize(query.base) else {
        return Err(SearchFailure::new(
            LdapResultCode::InvalidDNSyntax,
            format!("`{}` is not a valid DN", query.base),
        ));
    };
    let base = match view.resolve(&base_norm) {
        Some(EntryRef::RootDse) if query.scope != LdapSearchScope::Base => {
            // A subtree search from the root: the reader's own tree.
            match reader {
                Reader::User { provider, .. } => EntryRef::Base(provider),
                Reader::Anonymous => return Err(bind_first()),
            }
        }
        Some(entry) => entry,
        None => return Err(no_such_object(view, &base_norm)),
    };
    let full = full_access(view, reader);
    if !visible(view, reader, full, base) {
        return Err(match reader {
            Reader::Anonymous => bind_first(),
            Reader::User { .. } if base.provider() != reader_provider(reader) => {
                SearchFailure::new(
                    LdapResultCode::InsufficentAccessRights,
                    "this tree belongs to another provider: bind with a DN under it",
                )
            }
            Reader::User { .. } => no_such_object(view, &base_norm),
        });
    }
    Ok(Plan {
        reader,
        full,
        candidates: scope_entries(view, base, query),
        filter: PreparedFilter::new(view, query.filter),
    })
}

fn reader_provider(reader: Reader) -> Option<u16> {
    match reader {
        Reader::User { provider, .. } => Some(provider),
        Reader::Anonymous => None,
    }
}

fn bind_first() -> SearchFailure {
    SearchFailure::new(
        LdapResultCode::InsufficentAccessRights,
        "anonymous clients may read only the root DSE and the schema: bind first",
    )
}

fn no_such_object(view: &DirectoryView, dn_norm: &str) -> SearchFailure {
    let mut failure = SearchFailure::new(LdapResultCode::NoSuchObject, "no such entry");
    // The longest existing ancestor.
    let mut rest = dn_norm;
    while let Some((_, parent)) = rest.split_once(',') {
        if let Some(entry) = view.resolve(parent) {
            failure.matched = view.dn(entry);
            break;
        }
        rest = parent;
    }
    failure
}

/// Entries in the scope of `base`, through the indexes when the filter allows.
fn scope_entries(view: &DirectoryView, base: EntryRef, query: &SearchQuery<'_>) -> Vec<EntryRef> {
    use LdapSearchScope::*;
    let provider = base.provider();
    if let (Some(p), OneLevel | Subtree | Children) = (provider, &query.scope)
        && matches!(
            base,
            EntryRef::Base(_) | EntryRef::UsersOu(_) | EntryRef::GroupsOu(_)
        )
        && let Some(found) = filter::candidates(view, p, query.filter)
    {
        return found
            .into_iter()
            .filter(|e| in_scope(base, query.scope.clone(), *e))
            .collect();
    }
    match query.scope {
        Base => vec![base],
        OneLevel => view.children_of(base),
        Subtree | Children => {
            let mut out = Vec::new();
            if query.scope == Subtree {
                out.push(base);
            }
            for child in view.children_of(base) {
                out.push(child);
                out.extend(view.children_of(child));
            }
            out
        }
    }
}

/// Whether `entry` (a user or group) is in `scope` of `base`.
fn in_scope(base: EntryRef, scope: LdapSearchScope, entry: EntryRef) -> bool {
    let parent = match entry {
        EntryRef::User(p, _) => EntryRef::UsersOu(p),
        EntryRef::Group(p, _) => EntryRef::GroupsOu(p),
        _ => return false,
    };
    match scope {
        LdapSearchScope::Base => base == entry,
        LdapSearchScope::OneLevel => base == parent,
        LdapSearchScope::Subtree | LdapSearchScope::Children => {
            (scope == LdapSearchScope::Subtree && base == entry)
                || base == parent
                || matches!(base, EntryRef::Base(p) if Some(p) == entry.provider())
        }
    }
}
