//! Fuzz-style tests: mutated session cookies and login states fed to the openers and to the
//! whole decision never panic and are never accepted, and mutated forwarded URLs never panic.

use super::decide::{Check, check_session};
use super::forward::{Flavour, reconstruct};
use super::session::tests::session;
use super::session::{LoginState, open_session, open_state, seal_session, seal_state, session_aad};
use super::state::tests::sample;
use crate::fuzzing::{Rng, mutate};
use http::{HeaderMap, HeaderValue};

const ROUNDS: usize = 20_000;

#[test]
fn mutated_cookies_and_states_are_never_accepted() {
    let state = sample();
    let provider = &state.providers[0];
    let aad = session_aad(provider.id, &provider.cookie_name);
    let cookie = seal_session(&state.keys, &aad, &session(4_000_000_000), [5; 24]).expect("seal");
    let login = LoginState {
        provider_id: provider.id,
        rd: "https://app.example.com/".into(),
        redirect_uri: "https://app.example.com/outpost.redoubt/callback".into(),
        verifier: "v".repeat(43),
        nonce: "n".repeat(43),
        binding: "b".repeat(43),
        exp: 4_000_000_000_000,
    };
    let sealed_state = seal_state(&state.keys, &login, [6; 24]).expect("seal");
    let corpus = vec![
        cookie.clone().into_bytes(),
        sealed_state.clone().into_bytes(),
    ];
    let mut rng = Rng(0x5eed_c00c1e);
    for round in 0..ROUNDS {
        let seed = &corpus[round % corpus.len()];
        let mutated = mutate(&mut rng, seed, &corpus, b"0129.-_");
        let Ok(text) = String::from_utf8(mutated) else {
            continue;
        };
        if let Ok(opened) = open_session(&state.keys, &aad, &text, 0) {
            assert_eq!(text, cookie, "a mutated cookie opened: {opened:?}");
        }
        if let Check::Session { .. } = check_session(&state, provider, Some(&text), 0) {
            assert_eq!(text, cookie, "a mutated cookie passed");
        }
        if open_state(&state.keys, provider.id, &text, 0).is_ok() {
            assert_eq!(text, sealed_state, "a mutated state opened");
        }
    }
}

#[test]
fn mutated_forwarded_urls_never_panic() {
    let corpus: Vec<Vec<u8>> = [
        "https://app.example.com:8443/a/b?c=d",
        "http://[::1]:80/x",
        "https://app.example.com",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut rng = Rng(0xf0f0_1234);
    for round in 0..ROUNDS {
        let mutated = mutate(&mut rng, &corpus[round % corpus.len()], &corpus, b":/[]?#@");
        let Ok(value) = HeaderValue::from_bytes(&mutated) else {
            continue;
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-original-url", value.clone());
        headers.insert("x-forwarded-host", value.clone());
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert("x-forwarded-uri", value);
        let text = String::from_utf8_lossy(&mutated);
        for flavour in [Flavour::Nginx, Flavour::Traefik, Flavour::Envoy] {
            if let Ok(url) = reconstruct(flavour, &headers, Some(&text), &text) {
                assert!(url.path_and_query.starts_with('/'));
                assert!(!url.host.is_empty());
            }
        }
    }
}
