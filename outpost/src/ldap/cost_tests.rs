//! Pathological searches are refused or cost what they ask for (issue 13): too many attribute
//! names or filter terms get adminLimitExceeded, repeated names count once, ORs over
//! membership and equalities are set lookups, the time limit is checked every few entries
//! while filtering, and large scans run off the async workers.

use super::fixtures::shared_with;
use super::prepared::PreparedFilter;
use super::search::{self, MAX_REQUESTED_ATTRIBUTES, Reader, SearchQuery, Selection};
use super::session::{Session, Step, scan_on_blocking_pool};
use super::view::{DirectoryView, EntryRef};
use ldap3_proto::proto::*;
use redoubt_outpost_proto::config::*;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BASE: &str = "dc=example,dc=com";

/// `users` users (`user0`...; each with `values` values of a custom `tags` attribute, in the
/// search group `searchers` (id 1) and in group `g<i % groups>` (ids from 100)).
fn snapshot(users: usize, groups: usize, values: usize) -> ConfigSnapshot {
    let tags: Vec<String> = (0..values).map(|j| format!("tag-value-{j:05}")).collect();
    let user = |i: usize| DirectoryUser {
        id: i as i64 + 1,
        username: format!("user{i}"),
        name: format!("User {i}"),
        email: format!("user{i}@example.com"),
        is_active: true,
        attributes: json!({"tags": tags})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        group_ids: vec![1, 100 + (i % groups) as i64],
        credential_epoch: 1,
        has_totp: false,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    };
    let group = |id: i64, name: String| DirectoryGroup {
        id,
        name,
        parent_id: None,
        attributes: Default::default(),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    };
    let mut all_groups = vec![group(1, "searchers".into())];
    all_groups.extend((0..groups).map(|g| group(100 + g as i64, format!("g{g}"))));
    ConfigSnapshot {
        revision: 1,
        config: OutpostConfig {
            sessions: None,
            outpost: OutpostInfo {
                id: 1,
                name: "ldap".into(),
                kind: OutpostKind::Ldap,
                settings: json!({}),
            },
            providers: vec![ProviderConfig {
                id: 1,
                name: "directory".into(),
                kind: OutpostKind::Ldap,
                settings: json!({"base_dn": BASE, "search_group_id": 1}),
                application: None,
            }],
            directory: Some(Directory {
                users: (0..users).map(user).collect(),
                groups: all_groups,
            }),
        },
    }
}

fn view(users: usize, groups: usize, values: usize) -> DirectoryView {
    DirectoryView::build(Arc::new(snapshot(users, groups, values)))
}

/// A reader with access to the whole tree.
const READER: Reader = Reader::User {
    provider: 0,
    user: 0,
};

fn search_request(filter: LdapFilter, attrs: Vec<String>) -> LdapMsg {
    LdapMsg::new(
        7,
        LdapOp::SearchRequest(LdapSearchRequest {
            base: BASE.into(),
            scope: LdapSearchScope::Subtree,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs,
        }),
    )
}

/// The result code of a search answered without entries.
async fn refused_with(msg: LdapMsg) -> LdapResultCode {
    let shared = shared_with(snapshot(3, 2, 1));
    let mut session = Session::new(shared, "192.0.2.1".parse().expect("ip"), false);
    match session.handle(msg).await {
        Step::Reply(replies) => match replies.last().map(|m| &m.op) {
            Some(LdapOp::SearchResultDone(result)) => result.code.clone(),
            other => panic!("not a search result: {other:?}"),
        },
        other => panic!("not refused: {other:?}"),
    }
}

fn group_dn(name: &str) -> String {
    format!("cn={name},ou=groups,{BASE}")
}

#[tokio::test]
async fn too_many_attribute_names_or_filter_terms_are_refused() {
    let names: Vec<String> = (0..10_000).map(|i| format!("attr{i}")).collect();
    let code = refused_with(search_request(LdapFilter::Present("cn".into()), names)).await;
    assert_eq!(code, LdapResultCode::AdminLimitExceeded);
    let or = LdapFilter::Or(
        (0..5_000)
            .map(|i| LdapFilter::Equality("uid".into(), format!("u{i}")))
            .collect(),
    );
    let code = refused_with(search_request(or, Vec::new())).await;
    assert_eq!(code, LdapResultCode::AdminLimitExceeded);
    let mut deep = LdapFilter::Present("cn".into());
    for _ in 0..40 {
        deep = LdapFilter::Not(Box::new(deep));
    }
    let code = refused_with(search_request(deep, Vec::new())).await;
    assert_eq!(code, LdapResultCode::AdminLimitExceeded);
}

#[test]
fn repeated_attribute_names_count_once() {
    // 10,000 names, but only three distinct ones (case aside): accepted, each answered once.
    let names: Vec<String> = (0..10_000)
        .map(|i| ["cn", "CN", "memberOf", "Tags"][i % 4].to_owned())
        .collect();
    let selection = Selection::parse(&names).expect("three distinct names");
    let view = view(2, 1, 3);
    let attributes = search::selected_attributes(&view, EntryRef::User(0, 1), &selection, false);
    let answered: Vec<&str> = attributes.iter().map(|(name, _)| name.as_ref()).collect();
    assert_eq!(answered, ["cn", "memberOf", "Tags"]);
    let tags = &attributes[2].1;
    assert_eq!(tags.len(), 3);
    // Exactly the bound is accepted; one more distinct name is not.
    let at_bound: Vec<String> = (0..MAX_REQUESTED_ATTRIBUTES)
        .map(|i| format!("a{i}"))
        .collect();
    assert!(Selection::parse(&at_bound).is_ok());
    let mut over = at_bound;
    over.push("one-more".into());
    let refused = Selection::parse(&over).expect_err("over the bound");
    assert_eq!(refused.code, LdapResultCode::AdminLimitExceeded);
    // `*` with names it already covers: each attribute once.
    let star = Selection::parse(&["*".into(), "UID".into(), "uid".into()]).expect("parse");
    let attributes = search::selected_attributes(&view, EntryRef::User(0, 0), &star, false);
    let uids = attributes.iter().filter(|(n, _)| n == "uid").count();
    assert_eq!(uids, 1);
}

#[test]
fn ors_over_membership_and_equalities_are_set_lookups() {
    let view = view(200, 50, 1);
    // 1,000 terms: memberOf over every group (each twice, some as extensible matches), and
    // uid equalities: prepared into one membership set and one equality set.
    let mut terms = Vec::new();
    for i in 0..500 {
        let dn = group_dn(&format!("g{}", i % 50));
        if i % 2 == 0 {
            terms.push(LdapFilter::Equality("memberOf".into(), dn));
        } else {
            terms.push(LdapFilter::Extensible(LdapMatchingRuleAssertion {
                matching_rule: None,
                type_: Some("MEMBEROF".into()),
                match_value: dn,
                dn_attributes: false,
            }));
        }
        terms.push(LdapFilter::Equality("uid".into(), format!("nobody{i}")));
    }
    let all = PreparedFilter::new(&view, &LdapFilter::Or(terms));
    assert_eq!(all.node_count(), 3, "an OR of two set lookups");
    // Exactly the members of g7 and g9, by memberOf; and the groups holding user3 by member.
    let some = LdapFilter::Or(vec![
        LdapFilter::Equality("memberOf".into(), group_dn("G7")),
        LdapFilter::Equality("memberof".into(), format!("CN=g9, OU=Groups,{BASE}")),
        // A DN the directory does not serve matches nothing.
        LdapFilter::Equality("memberOf".into(), "cn=g7,ou=groups,dc=elsewhere".into()),
    ]);
    let some = PreparedFilter::new(&view, &some);
    let matched: Vec<u32> = (0..200)
        .filter(|u| some.evaluate(&view, EntryRef::User(0, *u)) == super::filter::Truth::True)
        .collect();
    let expected: Vec<u32> = (0..200).filter(|u| u % 50 == 7 || u % 50 == 9).collect();
    assert_eq!(matched, expected);
    let member = PreparedFilter::new(
        &view,
        &LdapFilter::Equality("member".into(), format!("cn=user3,ou=users,{BASE}")),
    );
    let groups: Vec<String> = (0..view.groups().len() as u32)
        .filter(|g| member.evaluate(&view, EntryRef::Group(0, *g)) == super::filter::Truth::True)
        .map(|g| view.group(g).name.clone())
        .collect();
    assert_eq!(groups, ["searchers", "g3"]);
    // A user DN written with `uid=` is not the DN served (`cn=`), so it is no member value.
    let by_uid = PreparedFilter::new(
        &view,
        &LdapFilter::Equality("member".into(), format!("uid=user3,ou=users,{BASE}")),
    );
    assert!(
        (0..view.groups().len() as u32)
            .all(|g| by_uid.evaluate(&view, EntryRef::Group(0, g)) == super::filter::Truth::False)
    );
}

/// A filter that reads every value of every entry many times: `terms` substring assertions
/// on `tags` that match nothing.
fn expensive_filter(terms: usize) -> LdapFilter {
    LdapFilter::Or(
        (0..terms)
            .map(|i| {
                LdapFilter::Substring(
                    "tags".into(),
                    LdapSubstringFilter {
                        initial: None,
                        any: vec![format!("absent{i}")],
                        final_: None,
                    },
                )
            })
            .collect(),
    )
}

#[test]
fn the_time_limit_is_checked_every_few_entries_while_filtering() {
    let view = view(20_000, 10, 20);
    let filter = expensive_filter(1000);
    let query = SearchQuery {
        base: BASE,
        scope: LdapSearchScope::Subtree,
        filter: &filter,
        deadline: None,
    };
    let plan = search::plan(&view, READER, &query).expect("plan");
    assert!(plan.len() > 20_000);
    // Already out of time: the scan stops at its first look at the clock.
    let matched = plan.scan(&view, Some(Instant::now()));
    assert!(matched.timed_out);
    assert!(matched.entries.is_empty());
    // A limit of 50 ms on work that takes far longer ends within a few entries of it.
    let everything = LdapFilter::Or(vec![
        expensive_filter(1000),
        LdapFilter::Present("objectClass".into()),
    ]);
    let query = SearchQuery {
        filter: &everything,
        ..query
    };
    let plan = search::plan(&view, READER, &query).expect("plan");
    let started = Instant::now();
    let matched = plan.scan(&view, Some(started + Duration::from_millis(50)));
    assert!(matched.timed_out);
    assert!(matched.entries.len() < 20_000, "{}", matched.entries.len());
}

#[tokio::test(flavor = "current_thread")]
async fn large_scans_leave_the_async_worker_free() {
    let shared = shared_with(snapshot(500, 10, 100));
    let view = shared.view();
    let filter = expensive_filter(100);
    let query = SearchQuery {
        base: BASE,
        scope: LdapSearchScope::Subtree,
        filter: &filter,
        deadline: None,
    };
    let plan = search::plan(&view, READER, &query).expect("plan");
    // On this one-thread runtime, a task that ticks while the scan runs proves the scan is
    // not on the runtime's thread.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let matched = scan_on_blocking_pool(&shared, view.clone(), plan, deadline)
        .await
        .expect("the scan ends");
    ticker.abort();
    assert!(!matched.timed_out);
    assert!(matched.entries.is_empty(), "nothing has an absent tag");
    assert!(
        ticks.load(Ordering::Relaxed) > 5,
        "the worker was held by the scan"
    );
}
