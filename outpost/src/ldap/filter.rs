//! Search filters (RFC 4511 section 4.5.1.7): the complexity bound, how values compare
//! (case-insensitive strings, DN-valued attributes as normalized DNs, integers as numbers,
//! substrings), and index planning for the equality lookups applications send most (`uid`,
//! `cn`, `sAMAccountName`). Evaluation on entries is [`super::prepared`].

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use super::attributes::{DN_ATTRIBUTES, INTEGER_ATTRIBUTES};
use super::dn;
use super::view::{DirectoryView, EntryRef};
use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};

/// Most terms a filter may have.
pub const MAX_FILTER_TERMS: usize = 1024;
/// Deepest nesting a filter may have.
pub const MAX_FILTER_DEPTH: usize = 32;

/// LDAP_MATCHING_RULE_IN_CHAIN: membership through nested groups.
pub(super) const RULE_IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
pub(super) const RULE_BIT_AND: &str = "1.2.840.113556.1.4.803";
pub(super) const RULE_BIT_OR: &str = "1.2.840.113556.1.4.804";
pub(super) const RULE_CASE_IGNORE: &str = "2.5.13.2";
pub(super) const RULE_CASE_EXACT: &str = "2.5.13.5";

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

/// How values of an attribute compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Matcher {
    CaseIgnore,
    CaseExact,
    DistinguishedName,
    Integer,
}

impl Matcher {
    pub(super) fn for_attribute(lower: &str) -> Self {
        if DN_ATTRIBUTES.contains(&lower) {
            Self::DistinguishedName
        } else if INTEGER_ATTRIBUTES.contains(&lower) {
            Self::Integer
        } else {
            Self::CaseIgnore
        }
    }

    /// The assertion value in the form `equal` compares against.
    pub(super) fn prepare(self, value: &str) -> String {
        match self {
            Self::CaseIgnore => value.trim().to_lowercase(),
            Self::CaseExact | Self::Integer => value.trim().to_owned(),
            Self::DistinguishedName => dn::normalize(value).unwrap_or_else(|| value.to_owned()),
        }
    }

    /// Whether `value` equals the prepared assertion; `lower` is `value` lower-cased (only
    /// case-ignore matching reads it).
    pub(super) fn equal(self, value: &str, lower: &str, prepared: &str) -> bool {
        match self {
            // Lower-casing leaves white space alone, so trimming commutes with it.
            Self::CaseIgnore => lower.trim() == prepared,
            Self::CaseExact => value.trim() == prepared,
            Self::DistinguishedName => dn::normalize(value).as_deref() == Some(prepared),
            Self::Integer => match (value.parse::<i64>(), prepared.parse::<i64>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            },
        }
    }
}

/// The parts of a substring assertion, lower-cased once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Substrings {
    initial: Option<String>,
    any: Vec<String>,
    final_: Option<String>,
}

impl Substrings {
    pub(super) fn new(filter: &LdapSubstringFilter) -> Self {
        Self {
            initial: filter.initial.as_deref().map(str::to_lowercase),
            any: filter.any.iter().map(|p| p.to_lowercase()).collect(),
            final_: filter.final_.as_deref().map(str::to_lowercase),
        }
    }

    /// `(attr=ini*any*fin)` on a lower-cased value: each part in order, without overlap.
    pub(super) fn matches(&self, lower: &str) -> bool {
        let mut rest = lower;
        if let Some(initial) = &self.initial {
            match rest.strip_prefix(initial.as_str()) {
                Some(tail) => rest = tail,
                None => return false,
            }
        }
        for part in &self.any {
            match rest.find(part.as_str()) {
                Some(at) => {
                    rest = rest
                        .get(at.saturating_add(part.len())..)
                        .unwrap_or_default()
                }
                None => return false,
            }
        }
        match &self.final_ {
            Some(last) => rest.ends_with(last.as_str()),
            None => true,
        }
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

    fn substring_match(value: &str, filter: &LdapSubstringFilter) -> bool {
        Substrings::new(filter).matches(&value.to_lowercase())
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
        assert!(Matcher::Integer.equal("2001", "2001", &Matcher::Integer.prepare(" 2001")));
        let wanted = Matcher::DistinguishedName.prepare("CN=Admins, OU=Groups,DC=x");
        let value = "cn=admins,ou=groups,dc=X";
        assert!(Matcher::DistinguishedName.equal(value, &value.to_lowercase(), &wanted));
        let wanted = Matcher::CaseIgnore.prepare(" ÄrGER ");
        assert!(Matcher::CaseIgnore.equal(" ärger", " ärger", &wanted));
    }
}
