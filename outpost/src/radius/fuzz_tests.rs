//! Robustness of the RADIUS request path against hostile datagrams: valid, signed requests of
//! every kind are mutated (bit flips, truncation, splices, random runs, length edits) and fed
//! through [`server::handle`], the function the UDP loop calls, from a source whose provider
//! requires Message-Authenticator and from one whose provider does not (so mutations reach the
//! password and attribute handling). Nothing may panic, and nothing but a Status-Server is
//! ever accepted (the core is unreachable and the cache empty). Deterministic (seeded PRNG).

use super::fixtures::{LAX, STRICT, seeds, shared};
use super::packet::{Code, Packet};
use super::request::Port;
use super::server;
use crate::fuzzing::{Rng, mutate};
use std::net::SocketAddr;

/// Attribute length octets worth trying.
const LENGTHS: &[u8] = &[0, 1, 2, 3, 18, 0x7f, 0xff];

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
