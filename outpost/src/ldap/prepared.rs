//! A search filter made ready for one directory view before any entry is looked at, so that
//! evaluating it on an entry costs what the entry's values cost and never more (RFC 4511 section
//! 4.5.1.7 semantics, three-valued): attribute names lower-cased and interned, assertion values
//! normalized once, DNs in `memberOf`/`member`/`uniqueMember`/`entryDN` assertions and in-chain
//! rules resolved to entries once (membership is then an index lookup, not a DN built and
//! parsed per value), ORs of equalities on one attribute turned into one set lookup, and each
//! attribute's values produced at most once per entry however many terms read them.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use super::attributes::{self, Values};
use super::dn;
use super::filter::{
    Matcher, RULE_BIT_AND, RULE_BIT_OR, RULE_CASE_EXACT, RULE_CASE_IGNORE, RULE_IN_CHAIN,
    Substrings, Truth,
};
use super::view::{DirectoryView, EntryRef, SUBSCHEMA_DN};
use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// A filter prepared for one view. Evaluate it only on entries of that view.
#[derive(Debug)]
pub struct PreparedFilter {
    root: Node,
    /// Attribute names the filter reads, lower-cased; nodes refer to them by index.
    attributes: Vec<String>,
}

/// An interned attribute name.
type Attr = usize;

#[derive(Debug)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Constant(Truth),
    Present(Attr),
    Equal {
        attr: Attr,
        matcher: Matcher,
        wanted: String,
    },
    /// An OR of case-ignore equalities on one attribute: the prepared values.
    EqualAny {
        attr: Attr,
        wanted: HashSet<String>,
    },
    /// `memberOf` equal to one of these groups (the set holds `EntryRef::Group`s).
    MemberOf(HashSet<EntryRef>),
    /// `member`/`uniqueMember` equal to one of these users or groups.
    Member(HashSet<EntryRef>),
    /// `entryDN` equal to one of these entries.
    EntryIs(HashSet<EntryRef>),
    Substring {
        attr: Attr,
        parts: Substrings,
    },
    /// `>=` (`at_least`) or `<=`.
    Ordering {
        attr: Attr,
        integer: bool,
        assertion: String,
        at_least: bool,
    },
    /// In-chain membership; `None` when the DN names no entry.
    InChain {
        member_of: bool,
        target: Option<EntryRef>,
    },
    Bits {
        attr: Attr,
        mask: i64,
        all: bool,
    },
}

impl PreparedFilter {
    /// Prepares `filter` for `view`. Linear in the filter's size (times a DN parse per DN).
    pub fn new(view: &DirectoryView, filter: &LdapFilter) -> Self {
        let mut builder = Builder {
            view,
            index: HashMap::new(),
            attributes: Vec::new(),
        };
        let root = builder.node(filter);
        Self {
            root,
            attributes: builder.attributes,
        }
    }

    /// Nodes in the prepared tree (a set lookup counts once): the filter's cost per entry,
    /// values aside.
    pub fn node_count(&self) -> usize {
        fn count(node: &Node) -> usize {
            match node {
                Node::And(children) | Node::Or(children) => {
                    1 + children.iter().map(count).sum::<usize>()
                }
                Node::Not(child) => 1 + count(child),
                _ => 1,
            }
        }
        count(&self.root)
    }

    /// The filter's truth on `entry`.
    pub fn evaluate(&self, view: &DirectoryView, entry: EntryRef) -> Truth {
        let mut values = EntryValues {
            view,
            entry,
            names: &self.attributes,
            raw: Vec::new(),
            lower: Vec::new(),
        };
        self.root.evaluate(&mut values)
    }
}

struct Builder<'v> {
    view: &'v DirectoryView,
    index: HashMap<String, Attr>,
    attributes: Vec<String>,
}

impl Builder<'_> {
    fn attr(&mut self, name: &str) -> Attr {
        let lower = name.to_ascii_lowercase();
        if let Some(at) = self.index.get(&lower) {
            return *at;
        }
        let at = self.attributes.len();
        self.attributes.push(lower.clone());
        self.index.insert(lower, at);
        at
    }

    fn node(&mut self, filter: &LdapFilter) -> Node {
        match filter {
            LdapFilter::And(children) => Node::And(children.iter().map(|c| self.node(c)).collect()),
            LdapFilter::Or(children) => self.or(children),
            LdapFilter::Not(child) => Node::Not(Box::new(self.node(child))),
            LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
                let lower = attr.to_ascii_lowercase();
                self.equality(&lower, Matcher::for_attribute(&lower), value)
            }
            LdapFilter::Substring(attr, substrings) => Node::Substring {
                attr: self.attr(attr),
                parts: Substrings::new(substrings),
            },
            LdapFilter::GreaterOrEqual(attr, value) => self.ordering(attr, value, true),
            LdapFilter::LessOrEqual(attr, value) => self.ordering(attr, value, false),
            LdapFilter::Present(attr) => {
                if attr.eq_ignore_ascii_case("objectclass") {
                    Node::Constant(Truth::True)
                } else {
                    Node::Present(self.attr(attr))
                }
            }
            LdapFilter::Extensible(assertion) => self.extensible(assertion),
        }
    }

    /// An OR whose case-ignore equalities on one attribute become one set lookup each, and
    /// whose `memberOf`/`member` equalities become one membership test each. Equalities are
    /// never Undefined, so regrouping the terms keeps the OR's value.
    fn or(&mut self, children: &[LdapFilter]) -> Node {
        let mut rest = Vec::new();
        let mut sets: Vec<(Attr, HashSet<String>)> = Vec::new();
        let mut member_of: Option<HashSet<EntryRef>> = None;
        let mut member: Option<HashSet<EntryRef>> = None;
        for child in children {
            match self.node(child) {
                Node::Equal {
                    attr,
                    matcher: Matcher::CaseIgnore,
                    wanted,
                } => match sets.iter_mut().find(|(a, _)| *a == attr) {
                    Some((_, set)) => {
                        set.insert(wanted);
                    }
                    None => sets.push((attr, HashSet::from([wanted]))),
                },
                Node::EqualAny { attr, wanted } => {
                    match sets.iter_mut().find(|(a, _)| *a == attr) {
                        Some((_, set)) => set.extend(wanted),
                        None => sets.push((attr, wanted)),
                    }
                }
                Node::MemberOf(targets) => member_of.get_or_insert_default().extend(targets),
                Node::Member(targets) => member.get_or_insert_default().extend(targets),
                other => rest.push(other),
            }
        }
        rest.extend(
            sets.into_iter()
                .map(|(attr, wanted)| Node::EqualAny { attr, wanted }),
        );
        rest.extend(member_of.map(Node::MemberOf));
        rest.extend(member.map(Node::Member));
        if rest.len() == 1
            && let Some(only) = rest.pop()
        {
            return only;
        }
        Node::Or(rest)
    }

    fn equality(&mut self, lower: &str, matcher: Matcher, value: &str) -> Node {
        if matcher == Matcher::DistinguishedName {
            match lower {
                "memberof" => return Node::MemberOf(self.named(value, true)),
                "member" | "uniquemember" => return Node::Member(self.named(value, false)),
                "entrydn" => {
                    // The root DSE and the subschema entry have no entryDN.
                    let mut named = self.named_any(value);
                    named.retain(|e| e.provider().is_some());
                    return Node::EntryIs(named);
                }
                "subschemasubentry" => {
                    // Every entry but the subschema entry itself has this one value.
                    let wanted = dn::normalize(value).is_some_and(|d| d == SUBSCHEMA_DN);
                    return if wanted {
                        Node::Not(Box::new(Node::EntryIs(HashSet::from([
                            EntryRef::Subschema,
                        ]))))
                    } else {
                        Node::Constant(Truth::False)
                    };
                }
                _ => {}
            }
        }
        Node::Equal {
            attr: self.attr(lower),
            matcher,
            wanted: matcher.prepare(value),
        }
    }

    /// The entries whose served DN equals `value` as normalized DNs: the user or group it
    /// names (groups only when `groups_only`), under every provider whose tree has the same
    /// base, so the test is the DN comparison it replaces.
    fn named(&self, value: &str, groups_only: bool) -> HashSet<EntryRef> {
        self.named_any(value)
            .into_iter()
            .filter(|e| match e {
                EntryRef::Group(..) => true,
                EntryRef::User(..) => !groups_only,
                _ => false,
            })
            .collect()
    }

    fn named_any(&self, value: &str) -> HashSet<EntryRef> {
        let view = self.view;
        let Some(wanted) = dn::normalize(value) else {
            return HashSet::new();
        };
        let Some(target) = view.resolve(&wanted) else {
            return HashSet::new();
        };
        // `resolve` also accepts `uid=` for users; the served DN must be the one given.
        if dn::normalize(&view.dn(target)).as_deref() != Some(wanted.as_str()) {
            return HashSet::new();
        }
        let Some(provider) = target.provider() else {
            return HashSet::from([target]);
        };
        let base = &view.provider(provider).base_norm;
        let mut out = HashSet::new();
        for (i, tree) in view.providers.iter().enumerate() {
            let Ok(p) = u16::try_from(i) else { break };
            if &tree.base_norm != base {
                continue;
            }
            out.insert(match target {
                EntryRef::Base(_) => EntryRef::Base(p),
                EntryRef::UsersOu(_) => EntryRef::UsersOu(p),
                EntryRef::GroupsOu(_) => EntryRef::GroupsOu(p),
                EntryRef::User(_, u) => EntryRef::User(p, u),
                EntryRef::Group(_, g) => EntryRef::Group(p, g),
                other => other,
            });
        }
        out
    }

    fn ordering(&mut self, attr: &str, value: &str, at_least: bool) -> Node {
        let lower = attr.to_ascii_lowercase();
        let integer = Matcher::for_attribute(&lower) == Matcher::Integer;
        Node::Ordering {
            attr: self.attr(&lower),
            integer,
            assertion: if integer {
                value.trim().to_owned()
            } else {
                value.to_lowercase()
            },
            at_least,
        }
    }

    fn extensible(&mut self, a: &LdapMatchingRuleAssertion) -> Node {
        let Some(attr) = a.type_.as_deref().map(str::to_ascii_lowercase) else {
            // `(:dn:2.5.13.5:=x)` without a type: rare enough to leave undefined.
            return Node::Constant(Truth::Undefined);
        };
        match a.matching_rule.as_deref() {
            Some(RULE_IN_CHAIN) => {
                let member_of = match attr.as_str() {
                    "memberof" => true,
                    "member" | "uniquemember" => false,
                    _ => return Node::Constant(Truth::False),
                };
                let view = self.view;
                let target = dn::normalize(&a.match_value).and_then(|d| view.resolve(&d));
                Node::InChain { member_of, target }
            }
            Some(rule @ (RULE_BIT_AND | RULE_BIT_OR)) => {
                match a.match_value.trim().parse::<i64>() {
                    Ok(mask) => Node::Bits {
                        attr: self.attr(&attr),
                        mask,
                        all: rule == RULE_BIT_AND,
                    },
                    Err(_) => Node::Constant(Truth::Undefined),
                }
            }
            Some(RULE_CASE_EXACT) => Node::Equal {
                attr: self.attr(&attr),
                matcher: Matcher::CaseExact,
                wanted: Matcher::CaseExact.prepare(&a.match_value),
            },
            Some(RULE_CASE_IGNORE) | None => {
                self.equality(&attr, Matcher::for_attribute(&attr), &a.match_value)
            }
            Some(_) => Node::Constant(Truth::Undefined),
        }
    }
}

/// One entry's values of the filter's attributes, each produced at most once.
struct EntryValues<'v, 'f> {
    view: &'v DirectoryView,
    entry: EntryRef,
    names: &'f [String],
    raw: Vec<Option<Values<'v>>>,
    lower: Vec<Option<Vec<String>>>,
}

impl<'v> EntryValues<'v, '_> {
    fn name(&self, attr: Attr) -> &str {
        self.names.get(attr).map_or("", String::as_str)
    }

    fn raw(&mut self, attr: Attr) -> &[std::borrow::Cow<'v, str>] {
        if self.raw.len() <= attr {
            self.raw.resize_with(attr + 1, || None);
        }
        let (view, entry) = (self.view, self.entry);
        let name = self.names.get(attr).map_or("", String::as_str);
        match self.raw.get_mut(attr) {
            Some(slot) => slot.get_or_insert_with(|| attributes::values(view, entry, name)),
            None => &[],
        }
    }

    /// The values lower-cased.
    fn lower(&mut self, attr: Attr) -> &[String] {
        if self.lower.len() <= attr {
            self.lower.resize_with(attr + 1, || None);
        }
        if matches!(self.lower.get(attr), Some(None)) {
            let lowered = self.raw(attr).iter().map(|v| v.to_lowercase()).collect();
            if let Some(slot) = self.lower.get_mut(attr) {
                *slot = Some(lowered);
            }
        }
        self.lower
            .get(attr)
            .and_then(Option::as_deref)
            .unwrap_or(&[])
    }

    fn present(&mut self, attr: Attr) -> bool {
        if let Some(Some(raw)) = self.raw.get(attr) {
            return !raw.is_empty();
        }
        attributes::has_values(self.view, self.entry, self.name(attr))
    }
}

impl Node {
    fn evaluate(&self, values: &mut EntryValues<'_, '_>) -> Truth {
        let view = values.view;
        let entry = values.entry;
        match self {
            Node::And(children) => {
                let mut result = Truth::True;
                for child in children {
                    match child.evaluate(values) {
                        Truth::False => return Truth::False,
                        Truth::Undefined => result = Truth::Undefined,
                        Truth::True => {}
                    }
                }
                result
            }
            Node::Or(children) => {
                let mut result = Truth::False;
                for child in children {
                    match child.evaluate(values) {
                        Truth::True => return Truth::True,
                        Truth::Undefined => result = Truth::Undefined,
                        Truth::False => {}
                    }
                }
                result
            }
            Node::Not(child) => match child.evaluate(values) {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                Truth::Undefined => Truth::Undefined,
            },
            Node::Constant(truth) => *truth,
            Node::Present(attr) => values.present(*attr).into(),
            Node::Equal {
                attr,
                matcher: Matcher::CaseIgnore,
                wanted,
            } => values
                .lower(*attr)
                .iter()
                .any(|v| v.trim() == wanted)
                .into(),
            Node::Equal {
                attr,
                matcher,
                wanted,
            } => values
                .raw(*attr)
                .iter()
                .any(|v| matcher.equal(v, v, wanted))
                .into(),
            Node::EqualAny { attr, wanted } => values
                .lower(*attr)
                .iter()
                .any(|v| wanted.contains(v.trim()))
                .into(),
            Node::MemberOf(groups) => member_of(view, entry, groups).into(),
            Node::Member(targets) => has_member(view, entry, targets).into(),
            Node::EntryIs(targets) => targets.contains(&entry).into(),
            Node::Substring { attr, parts } => {
                values.lower(*attr).iter().any(|v| parts.matches(v)).into()
            }
            Node::Ordering {
                attr,
                integer,
                assertion,
                at_least,
            } => {
                let refused = if *at_least {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                let test = |order: Option<Ordering>| order != Some(refused);
                if *integer {
                    let wanted = assertion.parse::<i64>().ok();
                    values
                        .raw(*attr)
                        .iter()
                        .any(|v| {
                            test(
                                v.trim()
                                    .parse::<i64>()
                                    .ok()
                                    .zip(wanted)
                                    .map(|(a, b)| a.cmp(&b)),
                            )
                        })
                        .into()
                } else {
                    values
                        .lower(*attr)
                        .iter()
                        .any(|v| test(Some(v.as_str().cmp(assertion.as_str()))))
                        .into()
                }
            }
            Node::InChain { member_of, target } => in_chain(view, entry, *member_of, *target),
            Node::Bits { attr, mask, all } => values
                .raw(*attr)
                .iter()
                .any(|v| {
                    v.trim().parse::<i64>().is_ok_and(|n| {
                        if *all {
                            n & mask == *mask
                        } else {
                            n & mask != 0
                        }
                    })
                })
                .into(),
        }
    }
}

/// Whether `entry`'s `memberOf` values (a user's direct groups, a group's parent) include one
/// of `groups`.
fn member_of(view: &DirectoryView, entry: EntryRef, groups: &HashSet<EntryRef>) -> bool {
    match entry {
        EntryRef::User(p, u) => view
            .direct_groups(u)
            .any(|g| groups.contains(&EntryRef::Group(p, g))),
        EntryRef::Group(p, c) => view
            .parent(c)
            .is_some_and(|g| groups.contains(&EntryRef::Group(p, g))),
        _ => false,
    }
}

/// Whether group `entry`'s `member` values (member users, child groups) include one of
/// `targets`: whichever side is smaller is walked.
fn has_member(view: &DirectoryView, entry: EntryRef, targets: &HashSet<EntryRef>) -> bool {
    let EntryRef::Group(p, g) = entry else {
        return false;
    };
    let (members, children) = (view.members(g), view.children(g));
    if targets.len() < members.len() + children.len() {
        let group_id = view.group(g).id;
        targets.iter().any(|target| match *target {
            EntryRef::User(tp, u) if tp == p => view.user(u).group_ids.contains(&group_id),
            EntryRef::Group(tp, c) if tp == p => view.parent(c) == Some(g),
            _ => false,
        })
    } else {
        members
            .iter()
            .any(|u| targets.contains(&EntryRef::User(p, *u)))
            || children
                .iter()
                .any(|c| targets.contains(&EntryRef::Group(p, *c)))
    }
}

/// `memberOf:1.2.840.113556.1.4.1941:=<group DN>` on users and groups, and
/// `member:1.2.840.113556.1.4.1941:=<user DN>` on groups: membership through nesting.
fn in_chain(
    view: &DirectoryView,
    entry: EntryRef,
    member_of: bool,
    target: Option<EntryRef>,
) -> Truth {
    let Some(target) = target else {
        return Truth::False;
    };
    match (member_of, entry, target) {
        (true, EntryRef::User(p, u), EntryRef::Group(tp, g)) if p == tp => {
            view.user_in_group_transitively(u, g).into()
        }
        (true, EntryRef::Group(p, child), EntryRef::Group(tp, g)) if p == tp => {
            (child != g && view.group_within(child, g)).into()
        }
        (false, EntryRef::Group(p, g), EntryRef::User(tp, u)) if p == tp => {
            view.user_in_group_transitively(u, g).into()
        }
        (false, EntryRef::Group(p, g), EntryRef::Group(tp, child)) if p == tp => {
            (child != g && view.group_within(child, g)).into()
        }
        _ => Truth::False,
    }
}
