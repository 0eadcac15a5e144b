//! Robustness of the RADIUS request path against hostile datagrams: valid, signed requests of
//! every kind are mutated (bit flips, truncation, splices, random runs, length edits) and fed
//! through [`server::handle`], the function the UDP loop calls, from a source whose provider
//! requires Message-Authenticator and from one whose provider does not (so mutations reach the
//! password and attribute handling). Nothing may panic, and nothing but a Status-Server is
//! ever accepted (the core is unreachable and the cache empty). Deterministic (seeded PRNG).

use super::attributes::AttributeType;
use super::authenticator::{hide_user_password, sign_request};
use super::challenge::Challenges;
use super::config::RadiusConfig;
use super::duplicates::ReplyCache;
use super::metrics::RadiusMetrics;
use super::packet::{Code, Packet};
use super::request::Port;
use super::{Shared, server};
use crate::core_api::CoreApi;
use crate::credential_cache::CredentialCache;
use crate::fuzzing::{Rng, mutate};
use redoubt_outpost_proto::config::*;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

const STRICT: &[u8] = b"strict-secret";
const LAX: &[u8] = b"lax-secret-0";
/// Attribute length octets worth trying.
const LENGTHS: &[u8] = &[0, 1, 2, 3, 18, 0x7f, 0xff];

fn snapshot() -> ConfigSnapshot {
    let provider = |id: i64, secret: &[u8], network: &str, require: bool| ProviderConfig {
        id,
        name: format!("radius-{id}"),
        kind: OutpostKind::Radius,
        settings: json!({
            "shared_secret": String::from_utf8_lossy(secret),
            "client_networks": [network],
            "require_message_authenticator": require,
            "reply_rules": [{"vlan": "10", "class": "c",
                "vendor_attributes": [{"vendor_id": 9, "type": 1, "value": "x"}]}],
        }),
        application: None,
    };
    ConfigSnapshot {
        revision: 1,
        config: OutpostConfig {
            sessions: None,
            outpost: OutpostInfo {
                id: 1,
                name: "radius".into(),
                kind: OutpostKind::Radius,
                settings: json!({}),
            },
            providers: vec![
                provider(1, STRICT, "10.0.0.0/8", true),
                provider(2, LAX, "192.168.0.0/16", false),
            ],
            directory: Some(Directory {
                users: vec![],
                groups: vec![],
            }),
        },
    }
}

fn shared() -> Arc<Shared> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = RadiusMetrics::register(&prometheus::Registry::new()).expect("metrics");
    // Nothing listens on port 9 of the loopback: checks that reach the core fail at once.
    let core = CoreApi::new(reqwest::Client::new(), "http://127.0.0.1:9", "token");
    // The channel counts as up, so Status-Server is answered and fuzzed too.
    let contact = crate::core_contact::CoreContact::default();
    contact.channel(true);
    let clock: redoubt_outpost_proto::clock::SharedClock = Arc::new(
        redoubt_outpost_proto::clock::ManualClock::new(1_800_000_000),
    );
    Arc::new(Shared {
        config: RwLock::new(Arc::new(RadiusConfig::build(Arc::new(snapshot()), false))),
        cache: CredentialCache::new(
            Duration::from_secs(60),
            Duration::from_secs(600),
            clock.clone(),
        ),
        events: crate::event_queue::for_tests(core.clone()),
        clock,
        locks: crate::lock_book::LockBook::new(std::sync::Arc::new(
            redoubt_outpost_proto::clock::ManualClock::new(1_800_000_000),
        )),
        core,
        metrics,
        challenges: Challenges::default(),
        replies: ReplyCache::default(),
        contact,
        drop_log: server::DropLog::default(),
    })
}

/// Signed requests of every kind, for `secret`.
fn seeds(secret: &[u8]) -> Vec<(Port, Vec<u8>)> {
    let authenticator = [0x42; 16];
    let mut pap = Packet::new(Code::AccessRequest, 1, authenticator);
    pap.push(AttributeType::UserName, b"alice".to_vec());
    pap.push(
        AttributeType::UserPassword,
        hide_user_password(b"alice-password;123456", secret, &authenticator),
    );
    pap.push(AttributeType::NasIdentifier, b"switch-1".to_vec());
    pap.push(
        AttributeType::CallingStationId,
        b"00-11-22-33-44-55".to_vec(),
    );
    pap.push(AttributeType::ProxyState, b"proxy".to_vec());
    let mut answer = pap.clone();
    answer.identifier = 2;
    answer.push(AttributeType::State, vec![7; 16]);
    let mut chap = Packet::new(Code::AccessRequest, 3, authenticator);
    chap.push(AttributeType::UserName, b"bob".to_vec());
    chap.push(AttributeType::ChapPassword, vec![1; 17]);
    let mut accounting = Packet::new(Code::AccountingRequest, 4, [0; 16]);
    accounting.push(AttributeType::AcctStatusType, 1u32.to_be_bytes().to_vec());
    accounting.push(AttributeType::UserName, b"alice".to_vec());
    accounting.push(AttributeType::AcctSessionId, b"S1".to_vec());
    accounting.push(AttributeType::AcctInputOctets, 9u32.to_be_bytes().to_vec());
    let status = Packet::new(Code::StatusServer, 5, authenticator);
    let sign = |p: Packet| sign_request(p, secret).expect("seed signs");
    vec![
        (Port::Auth, sign(pap.clone())),
        (Port::Auth, pap.encode().expect("unsigned")),
        (Port::Auth, sign(answer)),
        (Port::Auth, sign(chap)),
        (Port::Accounting, sign(accounting)),
        (Port::Auth, sign(status.clone())),
        (Port::Accounting, sign(status)),
    ]
}

#[tokio::test]
async fn mutated_datagrams_never_panic_or_get_accepted() {
    let shared = shared();
    let mut rng = Rng(0x5EED_4AD1_0500_0001);
    let sources: [(SocketAddr, &[u8]); 2] = [
        ("10.1.2.3:40000".parse().expect("addr"), STRICT),
        ("192.168.1.9:40000".parse().expect("addr"), LAX),
    ];
    let mut decoded = 0;
    for (source, secret) in sources {
        let seeds = seeds(secret);
        let corpus: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
        for (port, seed) in &seeds {
            // Valid seeds decode; the signed ones are admitted (a reply or a core call).
            assert!(Packet::decode(seed).is_ok());
            server::handle(&shared, *port, seed, source).await;
        }
        for round in 0..10_000u32 {
            let (port, seed) = &seeds[rng.below(seeds.len())];
            let bytes = mutate(&mut rng, seed, &corpus, LENGTHS);
            if Packet::decode(&bytes).is_ok() {
                decoded += 1;
            }
            // A new source port each round, so the retransmission cache does not short-cut.
            let source = SocketAddr::new(source.ip(), 1024 + (round % 60_000) as u16);
            if let Some(reply) = server::handle(&shared, *port, &bytes, source).await {
                let reply = Packet::decode(&reply).expect("our replies decode");
                if reply.code == Code::AccessAccept {
                    assert_eq!(
                        bytes[0],
                        Code::StatusServer.number(),
                        "only Status-Server is accepted without the core"
                    );
                }
            }
        }
    }
    for _ in 0..2_000 {
        let len = rng.below(300);
        let bytes = rng.bytes(len);
        let _ = Packet::decode(&bytes);
        server::handle(&shared, Port::Auth, &bytes, sources[1].0).await;
    }
    assert!(decoded > 2_000, "only {decoded} mutated datagrams decoded");
}
