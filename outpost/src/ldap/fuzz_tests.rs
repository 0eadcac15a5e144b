//! Robustness of the LDAP request path against hostile bytes: valid requests of every kind are
//! encoded, then mutated (bit flips, truncation, splices, random runs, length-byte edits) and fed
//! through the same decoder limits and [`Session`] the server uses, building every answered
//! entry. Nothing may panic; every decoded message gets a step. Deterministic (seeded PRNG), so a
//! failure reproduces.

use super::fixtures::{encode, seeds, shared};
use super::search::build_entry;
use super::server::{MAX_BER_DEPTH, MAX_MESSAGE_BYTES};
use super::session::{Session, Step};
use crate::fuzzing::{Rng, mutate};
use ldap3_proto::LdapCodec;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

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
