//! Robustness of the LDAP request path against hostile bytes: valid requests of every kind are
//! encoded, then mutated (bit flips, truncation, splices, random runs, length-byte edits) and fed
//! through the same decoder limits and [`Session`] the server uses, building every answered
//! entry. Nothing may panic; every decoded message gets a step. Deterministic (seeded PRNG), so a
//! failure reproduces.

use super::Shared;
use super::metrics::LdapMetrics;
use super::search::build_entry;
use super::server::{MAX_BER_DEPTH, MAX_MESSAGE_BYTES};
use super::session::{Session, Step};
use super::view::DirectoryView;
use crate::core_api::CoreApi;
use crate::credential_cache::CredentialCache;
use crate::fuzzing::{Rng, mutate};
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::*;
use redoubt_outpost_proto::config::*;
use serde_json::json;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

const BASE: &str = "dc=example,dc=com";

fn snapshot() -> ConfigSnapshot {
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

fn shared() -> Arc<Shared> {
    shared_with(snapshot())
}

/// The state every connection shares, over `snapshot`, with a core that never answers.
pub(super) fn shared_with(snapshot: ConfigSnapshot) -> Arc<Shared> {
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
        metrics: LdapMetrics::register(&prometheus::Registry::new()).expect("metrics"),
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
fn seeds() -> Vec<LdapMsg> {
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

fn encode(msg: LdapMsg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    LdapCodec::default()
        .encode(msg, &mut buf)
        .expect("seed encodes");
    buf.to_vec()
}

/// Length octets worth trying: BER long-form prefixes and boundary values.
const BER_LENGTHS: &[u8] = &[0x00, 0x7f, 0x80, 0x81, 0x84, 0xff];

/// Feeds `bytes` to `session`; returns how many messages decoded and got a step.
async fn drive(session: &mut Session, bytes: &[u8]) -> usize {
    let mut handled = 0;
    let mut codec = LdapCodec::new(Some(MAX_MESSAGE_BYTES), Some(MAX_BER_DEPTH));
    let mut buf = BytesMut::from(bytes);
    // A stream may hold several messages; stop at the first error, as the server does.
    while let Ok(Some(msg)) = codec.decode(&mut buf) {
        handled += 1;
        match session.handle(msg).await {
            Step::Entries(output) => {
                for entry in &output.entries {
                    let _ = build_entry(&output.view, *entry, &output.selection, output.types_only);
                }
            }
            Step::Close(_) => return handled,
            Step::Reply(_) | Step::StartTls(_) | Step::Nothing => {}
        }
    }
    handled
}

#[tokio::test]
async fn mutated_requests_never_panic() {
    let shared = shared();
    let corpus: Vec<Vec<u8>> = seeds().into_iter().map(encode).collect();
    let mut rng = Rng(0x5EED_1DA9_0000_0001);
    // Valid seeds first: each must decode, and a session must answer it.
    let mut session = Session::new(shared.clone(), "192.0.2.1".parse().expect("ip"), false);
    for seed in &corpus {
        assert_eq!(drive(&mut session, seed).await, 1, "a seed decodes");
    }
    let mut handled = 0;
    for round in 0..20_000 {
        if round % 200 == 0 {
            // A fresh connection now and then, as a real client population would open.
            session = Session::new(shared.clone(), "192.0.2.1".parse().expect("ip"), false);
        }
        let seed = &corpus[rng.below(corpus.len())];
        let bytes = mutate(&mut rng, seed, &corpus, BER_LENGTHS);
        handled += drive(&mut session, &bytes).await;
    }
    // Pure noise, including long-form lengths claiming huge sizes.
    for _ in 0..2_000 {
        let len = rng.below(256);
        let bytes = rng.bytes(len);
        drive(&mut session, &bytes).await;
    }
    // The mutations must reach the session, not only the decoder's error paths.
    assert!(handled > 2_000, "only {handled} mutated messages decoded");
}

#[test]
fn every_seed_round_trips_through_the_decoder() {
    for msg in seeds() {
        let bytes = encode(msg.clone());
        let mut codec = LdapCodec::new(Some(MAX_MESSAGE_BYTES), Some(MAX_BER_DEPTH));
        let decoded = codec
            .decode(&mut BytesMut::from(&bytes[..]))
            .expect("decodes")
            .expect("complete");
        assert_eq!(decoded.msgid, msg.msgid);
    }
}
