//! Search filter evaluation (RFC 4511 section 4.5.1.7) with three-valued logic, standard
//! matching (case-insensitive strings, DN-valued attributes compared as normalized DNs, integers
//! as numbers), AD's in-chain and bitwise matching rules, a complexity bound, and index
//! planning for the equality lookups applications send most (`uid`, `cn`, `sAMAccountName`).

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use super::attributes::{self, DN_ATTRIBUTES, INTEGER_ATTRIBUTES};
use super::dn;
use super::view::{DirectoryView, EntryRef};
use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

/// Most terms a filter may have.
pub const MAX_FILTER_TERMS: usize = 1024;
/// Deepest nesting a filter may have.
pub const MAX_FILTER_DEPTH: usize = 32;

/// LDAP_MATCHING_RULE_IN_CHAIN: membership through nested groups.
const RULE_IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
const RULE_BIT_AND: &str = "1.2.840.113556.1.4.803";
const RULE_BIT_OR: &str = "1.2.840.113556.1.4.804";
const RULE_CASE_IGNORE: &str = "2.5.13.2";
const RULE_CASE_EXACT: &str = "2.5.13.5";

/// The result of a filter on an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Undefined,
}

impl From<bool> for Truth {
    fn from(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }
}

/// Why a filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the filter has more than {MAX_FILTER_TERMS} terms")]
    TooManyTerms,
    #[error("the filter is nested deeper than {MAX_FILTER_DEPTH} levels")]
    TooDeep,
}

/// Checks the filter's size and depth.
pub fn check_complexity(filter: &LdapFilter) -> Result<(), FilterError> {
    fn walk(filter: &LdapFilter, depth: usize, terms: &mut usize) -> Result<(), FilterError> {
        *terms += 1;
        if *terms > MAX_FILTER_TERMS {
            return Err(FilterError::TooManyTerms);
        }
        if depth > MAX_FILTER_DEPTH {
            return Err(FilterError::TooDeep);
        }
        match filter {
            LdapFilter::And(children) | LdapFilter::Or(children) => {
                for child in children {
                    walk(child, depth + 1, terms)?;
                }
                Ok(())
            }
            LdapFilter::Not(child) => walk(child, depth + 1, terms),
            _ => Ok(()),
        }
    }
    walk(filter, 0, &mut 0)
}

/// Evaluates `filter` on `entry`.
pub fn evaluate(view: &DirectoryView, entry: EntryRef, filter: &LdapFilter) -> Truth {
    match filter {
        LdapFilter::And(children) => {
            let mut result = Truth::True;
            for child in children {
                match evaluate(view, entry, child) {
                    Truth::False => return Truth::False,
                    Truth::Undefined => result = Truth::Undefined,
                    Truth::True => {}
                }
            }
            result
        }
        LdapFilter::Or(children) => {
            let mut result = Truth::False;
            for child in children {
                match evaluate(view, entry, child) {
                    Truth::True => return Truth::True,
                    Truth::Undefined => result = Truth::Undefined,
                    Truth::False => {}
                }
            }
            result
        }
        LdapFilter::Not(child) => match evaluate(view, entry, child) {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Undefined => Truth::Undefined,
        },
        LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
            let lower = attr.to_ascii_lowercase();
            let matcher = Matcher::for_attribute(&lower);
            let wanted = matcher.prepare(value);
            any_value(view, entry, &lower, |v| matcher.equal(v, &wanted))
        }
        LdapFilter::Substring(attr, substrings) => {
            let lower = attr.to_ascii_lowercase();
            any_value(view, entry, &lower, |v| substring_match(v, substrings))
        }
        LdapFilter::GreaterOrEqual(attr, value) => {
            let lower = attr.to_ascii_lowercase();
            let matcher = Matcher::for_attribute(&lower);
            any_value(view, entry, &lower, |v| {
                matcher.compare(v, value) != Some(std::cmp::Ordering::Less)
            })
        }
        LdapFilter::LessOrEqual(attr, value) => {
            let lower = attr.to_ascii_lowercase();
            let matcher = Matcher::for_attribute(&lower);
            any_value(view, entry, &lower, |v| {
                matcher.compare(v, value) != Some(std::cmp::Ordering::Greater)
            })
        }
        LdapFilter::Present(attr) => {
            let lower = attr.to_ascii_lowercase();
            if lower == "objectclass" {
                return Truth::True;
            }
            Truth::from(!attributes::values(view, entry, &lower).is_empty())
        }
        LdapFilter::Extensible(assertion) => extensible(view, entry, assertion),
    }
}

/// True if any value of the attribute satisfies `test`; False if none does or there are none.
fn any_value(
    view: &DirectoryView,
    entry: EntryRef,
    lower: &str,
    test: impl Fn(&str) -> bool,
) -> Truth {
    Truth::from(
        attributes::values(view, entry, lower)
            .iter()
            .any(|v| test(v)),
    )
}

/// How values of an attribute compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matcher {
    CaseIgnore,
    CaseExact,
    DistinguishedName,
    Integer,
}

impl Matcher {
    fn for_attribute(lower: &str) -> Self {
        if DN_ATTRIBUTES.contains(&lower) {
            Self::DistinguishedName
        } else if INTEGER_ATTRIBUTES.contains(&lower) {
            Self::Integer
        } else {
            Self::CaseIgnore
        }
    }

    /// The assertion value in the form `equal` compares against.
    fn prepare(self, value: &str) -> String {
        match self {
            Self::CaseIgnore => value.trim().to_lowercase(),
            Self::CaseExact | Self::Integer => value.trim().to_owned(),
            Self::DistinguishedName => dn::normalize(value).unwrap_or_else(|| value.to_owned()),
        }
    }

    fn equal(self, value: &str, prepared: &str) -> bool {
        match self {
            Self::CaseIgnore => {
                let value = value.trim();
                if value.is_ascii() && prepared.is_ascii() {
                    value.eq_ignore_ascii_case(prepared)
                } else {
                    value.to_lowercase() == prepared
                }
            }
            Self::CaseExact => value.trim() == prepared,
            Self::DistinguishedName => dn::normalize(value).as_deref() == Some(prepared),
            Self::Integer => match (value.parse::<i64>(), prepared.parse::<i64>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            },
        }
    }

    fn compare(self, value: &str, assertion: &str) -> Option<std::cmp::Ordering> {
        match self {
            Self::Integer => Some(
                value
                    .trim()
                    .parse::<i64>()
                    .ok()?
                    .cmp(&assertion.trim().parse::<i64>().ok()?),
            ),
            _ => Some(value.to_lowercase().cmp(&assertion.to_lowercase())),
        }
    }
}

/// `(attr=ini*any*fin)`, case-insensitively.
fn substring_match(value: &str, filter: &LdapSubstringFilter) -> bool {
    let value = value.to_lowercase();
    let mut rest = value.as_str();
    if let Some(initial) = &filter.initial {
        let initial = initial.to_lowercase();
        match rest.strip_prefix(initial.as_str()) {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
    for part in &filter.any {
        let part = part.to_lowercase();
        match rest.find(part.as_str()) {
            Some(at) => {
                rest = rest
                    .get(at.saturating_add(part.len())..)
                    .unwrap_or_default()
            }
            None => return false,
        }
    }
    match &filter.final_ {
        Some(last) => rest.ends_with(last.to_lowercase().as_str()),
        None => true,
    }
}

fn extensible(view: &DirectoryView, entry: EntryRef, a: &LdapMatchingRuleAssertion) -> Truth {
    let Some(attr) = a.type_.as_deref().map(str::to_ascii_lowercase) else {
        // `(:dn:2.5.13.5:=x)` without a type: rare enough to leave undefined.
        return Truth::Undefined;
    };
    match a.matching_rule.as_deref() {
        Some(RULE_IN_CHAIN) => in_chain(view, entry, &attr, &a.match_value),
        Some(rule @ (RULE_BIT_AND | RULE_BIT_OR)) => {
            let Ok(mask) = a.match_value.trim().parse::<i64>() else {
                return Truth::Undefined;
            };
            any_value(view, entry, &attr, |v| {
                v.trim().parse::<i64>().is_ok_and(|n| {
                    if rule == RULE_BIT_AND {
                        n & mask == mask
                    } else {
                        n & mask != 0
                    }
                })
            })
        }
        Some(RULE_CASE_EXACT) => {
            let wanted = Matcher::CaseExact.prepare(&a.match_value);
            any_value(view, entry, &attr, |v| Matcher::CaseExact.equal(v, &wanted))
        }
        Some(RULE_CASE_IGNORE) | None => {
            let matcher = Matcher::for_attribute(&attr);
            let wanted = matcher.prepare(&a.match_value);
            any_value(view, entry, &attr, |v| matcher.equal(v, &wanted))
        }
        Some(_) => Truth::Undefined,
    }
}

/// `memberOf:1.2.840.113556.1.4.1941:=<group DN>` on users and groups, and
/// `member:1.2.840.113556.1.4.1941:=<user DN>` on groups: membership through nesting.
fn in_chain(view: &DirectoryView, entry: EntryRef, attr: &str, value: &str) -> Truth {
    let Some(target) = dn::normalize(value).and_then(|d| view.resolve(&d)) else {
        return Truth::False;
    };
    match (attr, entry, target) {
        ("memberof", EntryRef::User(p, u), EntryRef::Group(tp, g)) if p == tp => {
            view.user_in_group_transitively(u, g).into()
        }
        ("memberof", EntryRef::Group(p, child), EntryRef::Group(tp, g)) if p == tp => {
            (child != g && view.group_within(child, g)).into()
        }
        ("member" | "uniquemember", EntryRef::Group(p, g), EntryRef::User(tp, u)) if p == tp => {
            view.user_in_group_transitively(u, g).into()
        }
        ("member" | "uniquemember", EntryRef::Group(p, g), EntryRef::Group(tp, child))
            if p == tp =>
        {
            (child != g && view.group_within(child, g)).into()
        }
        _ => Truth::False,
    }
}

/// Entries the filter can only match, found through the indexes, or `None` when the filter
/// needs a scan. Sound: every entry the filter matches is in the returned set.
pub fn candidates(
    view: &DirectoryView,
    provider: u16,
    filter: &LdapFilter,
) -> Option<Vec<EntryRef>> {
    match filter {
        LdapFilter::Equality(attr, value) => {
            let lower = attr.to_ascii_lowercase();
            match lower.as_str() {
                "uid" | "samaccountname" => Some(
                    view.user_by_name(value.trim())
                        .map(|u| EntryRef::User(provider, u))
                        .into_iter()
                        .collect(),
                ),
                "cn" => {
                    let name = value.trim();
                    let mut found: Vec<EntryRef> = view
                        .user_by_name(name)
                        .map(|u| EntryRef::User(provider, u))
                        .into_iter()
                        .collect();
                    found.extend(
                        view.group_by_name(name)
                            .map(|g| EntryRef::Group(provider, g)),
                    );
                    // The base or an OU could be named by cn only if its RDN were cn: never.
                    Some(found)
                }
                _ => None,
            }
        }
        LdapFilter::And(children) => {
            let mut best: Option<Vec<EntryRef>> = None;
            for child in children {
                if let Some(found) = candidates(view, provider, child)
                    && best.as_ref().is_none_or(|b| found.len() < b.len())
                {
                    best = Some(found);
                }
            }
            best
        }
        LdapFilter::Or(children) => {
            let mut all = Vec::new();
            for child in children {
                all.extend(candidates(view, provider, child)?);
            }
            all.sort_unstable_by_key(|e| match e {
                EntryRef::User(_, u) => (0, *u),
                EntryRef::Group(_, g) => (1, *g),
                _ => (2, 0),
            });
            all.dedup();
            Some(all)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
mod tests {
    use super::*;

    fn sub(initial: Option<&str>, any: &[&str], final_: Option<&str>) -> LdapSubstringFilter {
        LdapSubstringFilter {
            initial: initial.map(str::to_owned),
            any: any.iter().map(|s| (*s).to_owned()).collect(),
            final_: final_.map(str::to_owned),
        }
    }

    #[test]
    fn substrings_match_case_insensitively_in_order() {
        assert!(substring_match("Alice", &sub(Some("al"), &[], None)));
        assert!(substring_match("Alice", &sub(None, &["LI"], Some("e"))));
        assert!(!substring_match("Alice", &sub(None, &["ce"], Some("li"))));
        assert!(!substring_match("Al", &sub(Some("al"), &["l"], None)));
        assert!(substring_match(
            "ü-Straße",
            &sub(Some("Ü"), &[], Some("SSE").filter(|_| false))
        ));
    }

    #[test]
    fn huge_or_deep_filters_are_refused() {
        let many = LdapFilter::Or(
            (0..2000)
                .map(|i| LdapFilter::Equality("uid".into(), format!("u{i}")))
                .collect(),
        );
        assert_eq!(check_complexity(&many), Err(FilterError::TooManyTerms));
        let mut deep = LdapFilter::Present("cn".into());
        for _ in 0..40 {
            deep = LdapFilter::Not(Box::new(deep));
        }
        assert_eq!(check_complexity(&deep), Err(FilterError::TooDeep));
        assert!(check_complexity(&LdapFilter::Present("cn".into())).is_ok());
    }

    #[test]
    fn integers_compare_as_numbers_and_dns_as_dns() {
        assert_eq!(
            Matcher::Integer.compare("10", "9"),
            Some(std::cmp::Ordering::Greater)
        );
        assert!(Matcher::Integer.equal("2001", &Matcher::Integer.prepare(" 2001")));
        let wanted = Matcher::DistinguishedName.prepare("CN=Admins, OU=Groups,DC=x");
        assert!(Matcher::DistinguishedName.equal("cn=admins,ou=groups,dc=X", &wanted));
    }
}
