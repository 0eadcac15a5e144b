//! Fixtures the LDAP fuzz tests and the coverage-guided fuzz target share: a small fixed
//! directory (three users, two nested groups, one provider with a search group), the
//! [`Shared`] state a connection needs (core unreachable, empty cache) and one valid, encoded
//! request of every kind the server handles.

use super::Shared;
use super::metrics::LdapMetrics;
use super::view::DirectoryView;
use crate::core_api::CoreApi;
use crate::credential_cache::CredentialCache;
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::*;
use redoubt_outpost_proto::config::*;
use serde_json::json;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Encoder;

pub(crate) const BASE: &str = "dc=example,dc=com";

/// The fixed directory.
pub(crate) fn snapshot() -> ConfigSnapshot {
    let user = |id: i64, name: &str, groups: Vec<i64>| DirectoryUser {
        id,
        username: name.into(),
        name: name.to_uppercase(),
        email: format!("{name}@example.com"),
        is_active: true,
        attributes: json!({"loginShell": "/bin/sh", "tags": ["a", "b"]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        group_ids: groups,
        credential_epoch: 1,
        has_totp: id == 2,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    };
    let group = |id: i64, name: &str, parent_id: Option<i64>| DirectoryGroup {
        id,
        name: name.into(),
        parent_id,
        attributes: Default::default(),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    };
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
                settings: json!({"base_dn": BASE, "search_group_id": 10}),
                application: None,
            }],
            directory: Some(Directory {
                users: vec![
                    user(1, "alice", vec![10, 11]),
                    user(2, "bob", vec![11]),
                    user(3, "carol", vec![]),
                ],
                groups: vec![group(10, "searchers", None), group(11, "staff", Some(10))],
            }),
        },
    }
}

/// What a connection shares, over [`snapshot`]; binds that reach the core fail at once.
pub(crate) fn shared() -> Arc<Shared> {
    shared_with(snapshot())
}

/// The state every connection shares, over `snapshot`, with a core that never answers.
pub(crate) fn shared_with(snapshot: ConfigSnapshot) -> Arc<Shared> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let snapshot = Arc::new(snapshot);
    Arc::new(Shared {
        view: RwLock::new(Arc::new(DirectoryView::build(snapshot))),
        cache: CredentialCache::new(
            Duration::from_secs(60),
            Duration::from_secs(600),
            Arc::new(redoubt_outpost_proto::clock::ManualClock::new(
                1_800_000_000,
            )),
        ),
        locks: crate::lock_book::LockBook::new(std::sync::Arc::new(
            redoubt_outpost_proto::clock::ManualClock::new(1_800_000_000),
        )),
        // Nothing listens on port 9 of the loopback: binds that reach the core fail at once.
        core: CoreApi::new(reqwest::Client::new(), "http://127.0.0.1:9", "token"),
        events: crate::event_queue::for_tests(CoreApi::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9",
            "token",
        )),
        metrics: LdapMetrics::register(&prometheus::Registry::new())
            .expect("metrics register on a fresh registry"),
        tls: None,
        scans: Arc::new(tokio::sync::Semaphore::new(
            super::session::concurrent_scans(),
        )),
    })
}

fn search(msgid: i32, base: &str, scope: LdapSearchScope, filter: LdapFilter) -> LdapMsg {
    LdapMsg::new(
        msgid,
        LdapOp::SearchRequest(LdapSearchRequest {
            base: base.into(),
            scope,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: vec!["*".into(), "+".into(), "memberOf".into()],
        }),
    )
}

/// One valid request of every kind the server handles.
pub(crate) fn seeds() -> Vec<LdapMsg> {
    use LdapFilter::*;
    let users = format!("ou=users,{BASE}");
    let complex = And(vec![
        Or(vec![
            Equality("uid".into(), "alice".into()),
            Substring(
                "cn".into(),
                LdapSubstringFilter {
                    initial: Some("a".into()),
                    any: vec!["l".into()],
                    final_: Some("e".into()),
                },
            ),
        ]),
        Not(Box::new(Present("nsAccountLock".into()))),
        GreaterOrEqual("uidNumber".into(), "2000".into()),
        LessOrEqual("gidNumber".into(), "9000".into()),
        Approx("sn".into(), "alice".into()),
        Extensible(LdapMatchingRuleAssertion {
            matching_rule: Some("1.2.840.113556.1.4.1941".into()),
            type_: Some("memberOf".into()),
            match_value: format!("cn=searchers,ou=groups,{BASE}"),
            dn_attributes: false,
        }),
    ]);
    let mut paged = search(
        9,
        BASE,
        LdapSearchScope::Subtree,
        Present("objectClass".into()),
    );
    paged.ctrl = vec![LdapControl::SimplePagedResults {
        size: 1,
        cookie: Vec::new(),
    }];
    vec![
        LdapMsg::new(
            1,
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: String::new(),
                cred: LdapBindCred::Simple(String::new()),
            }),
        ),
        LdapMsg::new(
            2,
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: format!("cn=nobody,{users}"),
                cred: LdapBindCred::Simple("secret".into()),
            }),
        ),
        search(3, "", LdapSearchScope::Base, Present("objectClass".into())),
        search(
            4,
            "cn=subschema",
            LdapSearchScope::Base,
            Present("objectClass".into()),
        ),
        search(5, BASE, LdapSearchScope::Subtree, complex),
        search(
            6,
            &users,
            LdapSearchScope::OneLevel,
            Equality("objectClass".into(), "posixAccount".into()),
        ),
        paged,
        LdapMsg::new(
            10,
            LdapOp::CompareRequest(LdapCompareRequest {
                dn: format!("cn=alice,{users}"),
                atype: "mail".into(),
                val: b"alice@example.com".to_vec(),
            }),
        ),
        LdapMsg::new(
            11,
            LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: "1.3.6.1.4.1.4203.1.11.3".into(),
                value: None,
            }),
        ),
        LdapMsg::new(
            12,
            LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: "1.3.6.1.4.1.4203.1.11.1".into(),
                value: Some(vec![0x30, 0x05, 0x81, 0x03, b'a', b'b', b'c']),
            }),
        ),
        LdapMsg::new(
            13,
            LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: "1.3.6.1.4.1.1466.20037".into(),
                value: None,
            }),
        ),
        LdapMsg::new(14, LdapOp::DelRequest(format!("cn=alice,{users}"))),
        LdapMsg::new(15, LdapOp::AbandonRequest(9)),
        LdapMsg::new(16, LdapOp::UnbindRequest),
    ]
}

/// `msg` as the client would send it.
pub(crate) fn encode(msg: LdapMsg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    LdapCodec::default()
        .encode(msg, &mut buf)
        .expect("every seed encodes");
    buf.to_vec()
}
