//! The brute-force policy against real clients: Python `ldap3` binding from chosen source
//! addresses (127.0.0.x), OpenLDAP's `ldapwhoami`, FreeRADIUS's `radclient` with a
//! Calling-Station-Id, and the core's HTTP login form. Proves that an attacker at one source
//! cannot lock the user out at another, that refused attempts do not extend a lock, that an
//! application server relaying many users is not a sprayer while a sprayer is, that a user's
//! failures from many sources only slow answers down, and that an outpost never answers a locked
//! pair from its credential cache.

use crate::login::Browser;
use redoubt_tests::ldap::{
    BASE, LdapSetup, SYSTEM_PYTHON, ldap_tool, ldap_utils_available, python_ldap3_available,
    user_dn,
};
use redoubt_tests::radius::{SECRET, radclient_auth, radius_utils_available};
use redoubt_tests::{Api, TestCore};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One simple bind: from `source` (a loopback address), as `user`, with `password`.
struct Bind<'a>(&'a str, &'a str, &'a str);

/// Runs the binds in order with Python `ldap3`, each on a new connection from its source
/// address; returns for each whether it succeeded and the LDAP result code.
async fn ldap3_binds(s: &LdapSetup, binds: &[Bind<'_>]) -> Vec<(bool, i64)> {
    const SCRIPT: &str = r#"
import json, os, sys
from ldap3 import Server, Connection
server = Server("127.0.0.1", port=int(os.environ["PORT"]))
out = []
for source, dn, password in json.load(sys.stdin):
    conn = Connection(server, user=dn, password=password, source_address=source)
    ok = conn.bind()
    out.append([ok, conn.result["result"]])
    conn.unbind()
print(json.dumps(out))
"#;
    let input: Vec<Value> = binds
        .iter()
        .map(|Bind(source, user, password)| json!([source, user_dn(user), password]))
        .collect();
    let mut child = tokio::process::Command::new(SYSTEM_PYTHON)
        .args(["-c", SCRIPT])
        .env("PORT", s.ldap.port().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(
        &mut stdin,
        serde_json::to_string(&input).expect("json").as_bytes(),
    )
    .await
    .expect("write binds");
    drop(stdin);
    let output = child.wait_with_output().await.expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<(bool, i64)> = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(results.len(), binds.len());
    results
}

/// `ldapwhoami` (from 127.0.0.1) as `user`; true when the bind succeeded.
async fn ldapwhoami(s: &LdapSetup, user: &str, password: &str) -> bool {
    let url = format!("ldap://127.0.0.1:{}", s.ldap.port());
    let dn = user_dn(user);
    ldap_tool(
        "ldapwhoami",
        &["-x", "-H", &url, "-D", &dn, "-w", password],
        &s.ca.ca_file,
    )
    .await
    .code
        == 0
}

async fn events(core: &TestCore, query: &str) -> Vec<Value> {
    core.api
        .get(&format!("/api/v1/events?page_size=200&{query}"))
        .await
        .expect(200)["items"]
        .as_array()
        .expect("items")
        .clone()
}

fn peers_present() -> bool {
    python_ldap3_available() && ldap_utils_available()
}

#[tokio::test]
async fn an_ldap_attacker_at_one_address_cannot_lock_out_the_user_at_another() {
    if !peers_present() {
        return;
    }
    let core = TestCore::start().await;
    let s = redoubt_tests::ldap::setup(&core, 0, json!({})).await;
    let mut binds: Vec<Bind> = (0..5)
        .map(|_| Bind("127.0.0.2", "alice", "guess"))
        .collect();
    binds.push(Bind("127.0.0.2", "alice", "alice-password"));
    binds.push(Bind("127.0.0.3", "alice", "alice-password"));
    let results = ldap3_binds(&s, &binds).await;
    assert!(results[..5].iter().all(|(ok, code)| !ok && *code == 49));
    assert!(!results[5].0, "the attacker's pair is locked: {results:?}");
    assert!(results[6].0, "alice at another address is not: {results:?}");
    // The locked attempt was refused without a password check and recorded apart.
    let refused = events(&core, "action=credential_refused&target=alice").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["source_address"], "127.0.0.2");
    assert_eq!(refused[0]["detail"]["reason"], "locked_pair");
    // The lock ends after one wait increment (60 s).
    core.clock.advance(60);
    let after = ldap3_binds(&s, &[Bind("127.0.0.2", "alice", "alice-password")]).await;
    assert!(after[0].0, "{after:?}");
    s.outpost.stop().await;
}

#[tokio::test]
async fn refused_attempts_do_not_extend_a_lock_and_further_failures_wait_longer() {
    if !peers_present() {
        return;
    }
    let core = TestCore::start().await;
    let s = redoubt_tests::ldap::setup(&core, 0, json!({})).await;
    let failures: Vec<Bind> = (0..5).map(|_| Bind("127.0.0.2", "bob", "guess")).collect();
    ldap3_binds(&s, &failures).await;
    // Hammering the locked pair with the right password (or any) is refused and not counted.
    core.clock.advance(30);
    let hammer: Vec<Bind> = (0..10)
        .map(|i| {
            Bind(
                "127.0.0.2",
                "bob",
                if i % 2 == 0 { "bob-password" } else { "x" },
            )
        })
        .collect();
    assert!(ldap3_binds(&s, &hammer).await.iter().all(|(ok, _)| !ok));
    assert_eq!(
        events(&core, "action=credential_refused&target=bob")
            .await
            .len(),
        10
    );
    assert_eq!(
        events(&core, "action=credential_check&target=bob&outcome=failure")
            .await
            .len(),
        5,
        "refused attempts are no failures"
    );
    // The lock still ends 60 s after the last real failure.
    core.clock.advance(30);
    let freed = ldap3_binds(&s, &[Bind("127.0.0.2", "bob", "bob-password")]).await;
    assert!(freed[0].0, "{freed:?}");
    // After a success the pair starts over; five failures lock it for 60 s, a sixth (made once
    // that wait is over) for 120 s.
    ldap3_binds(&s, &failures).await;
    core.clock.advance(60);
    ldap3_binds(&s, &[Bind("127.0.0.2", "bob", "guess")]).await;
    core.clock.advance(119);
    let still = ldap3_binds(&s, &[Bind("127.0.0.2", "bob", "bob-password")]).await;
    assert!(!still[0].0, "the second wait is two increments");
    core.clock.advance(1);
    let again = ldap3_binds(&s, &[Bind("127.0.0.2", "bob", "bob-password")]).await;
    assert!(again[0].0, "{again:?}");
    s.outpost.stop().await;
}

#[tokio::test]
async fn an_application_server_relaying_many_users_is_not_a_sprayer_but_a_sprayer_is() {
    if !peers_present() {
        return;
    }
    let core = TestCore::start().await;
    let users: Vec<String> = (0..50).map(|i| format!("member{i:02}")).collect();
    for user in &users {
        core.api
            .post(
                "/api/v1/users",
                json!({"username": user, "password": format!("{user}-password")}),
            )
            .await
            .expect(201);
    }
    let s = redoubt_tests::ldap::setup(&core, 0, json!({})).await;
    let passwords: Vec<String> = users.iter().map(|u| format!("{u}-password")).collect();
    // The application server at 127.0.0.4 binds as each of its 50 users, and 21 of them also
    // mistype their password once: more distinct failing users than a sprayer needs (20), but
    // far fewer than those who succeed.
    let mut relayed: Vec<Bind> = users
        .iter()
        .zip(&passwords)
        .map(|(u, p)| Bind("127.0.0.4", u, p))
        .collect();
    relayed.extend(users.iter().take(21).map(|u| Bind("127.0.0.4", u, "typo")));
    relayed.push(Bind("127.0.0.4", "alice", "alice-password"));
    let results = ldap3_binds(&s, &relayed).await;
    assert!(results[..50].iter().all(|(ok, _)| *ok));
    assert!(
        results[71].0,
        "the application server keeps working: {results:?}"
    );
    // A sprayer at 127.0.0.5 tries one password on 20 users: it is refused from then on, even
    // for a right password the outpost has cached (once the core's push arrives), while
    // everyone else is unaffected.
    let sprayed: Vec<Bind> = users
        .iter()
        .skip(25)
        .take(20)
        .map(|u| Bind("127.0.0.5", u, "Winter2027!"))
        .collect();
    assert!(ldap3_binds(&s, &sprayed).await.iter().all(|(ok, _)| !ok));
    let deadline = Instant::now() + Duration::from_secs(10);
    while ldap3_binds(&s, &[Bind("127.0.0.5", "alice", "alice-password")]).await[0].0 {
        assert!(Instant::now() < deadline, "the sprayer is never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let others = ldap3_binds(
        &s,
        &[
            Bind("127.0.0.6", "alice", "alice-password"),
            Bind("127.0.0.4", "member30", "member30-password"),
        ],
    )
    .await;
    assert!(others.iter().all(|(ok, _)| *ok), "{others:?}");
    let refused = events(&core, "action=credential_refused&source_address=127.0.0.5").await;
    assert_eq!(refused[0]["detail"]["reason"], "locked_source");
    s.outpost.stop().await;
}

#[tokio::test]
async fn a_locked_pair_is_refused_by_an_outpost_even_with_the_password_in_its_cache() {
    if !peers_present() {
        return;
    }
    let core = TestCore::start().await;
    let s = redoubt_tests::ldap::setup(&core, 0, json!({})).await;
    // alice binds from 127.0.0.1: the outpost now answers her password from its cache.
    assert!(ldapwhoami(&s, "alice", "alice-password").await);
    let checks = || async {
        events(
            &core,
            "action=credential_check&target=alice&outcome=success",
        )
        .await
        .len()
    };
    assert!(ldapwhoami(&s, "alice", "alice-password").await);
    assert_eq!(checks().await, 1, "the second bind was a cache hit");
    // Someone at the same address guesses her password on the core's login form: the core locks
    // (alice, 127.0.0.1) and pushes the lock to the outpost.
    let mut browser = Browser::new(&core.url);
    for _ in 0..5 {
        assert_eq!(browser.login("alice", "guess", None).await.status, 401);
    }
    assert_eq!(
        browser.login("alice", "alice-password", None).await.status,
        429
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if !ldapwhoami(&s, "alice", "alice-password").await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outpost kept answering the locked pair from its cache"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = events(&core, "action=credential_refused&target=alice").await;
    assert!(
        refused.iter().any(|e| e["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("outpost:"))),
        "the outpost asked the core, which refused: {refused:?}"
    );
    // alice at another address binds as usual; when the lock ends, so does she at 127.0.0.1.
    let other = ldap3_binds(&s, &[Bind("127.0.0.2", "alice", "alice-password")]).await;
    assert!(other[0].0);
    core.clock.advance(60);
    assert!(ldapwhoami(&s, "alice", "alice-password").await);
    s.outpost.stop().await;
}

#[tokio::test]
async fn radius_pairs_are_keyed_on_the_calling_station() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = redoubt_tests::radius::setup(&core, json!({})).await;
    let station = |id: &str| format!("Calling-Station-Id = \"{id}\"");
    let attacker = station("02-00-00-00-00-aa");
    let user = station("02-00-00-00-00-bb");
    for _ in 0..5 {
        let reply = radclient_auth(s.auth, SECRET, "alice", "guess", &attacker).await;
        assert!(reply.is("Access-Reject"), "{reply:?}");
    }
    let locked = radclient_auth(s.auth, SECRET, "alice", "alice-password", &attacker).await;
    assert!(locked.is("Access-Reject"), "{locked:?}");
    // The same NAS (127.0.0.1) relays alice's own device: it is not locked out.
    let fine = radclient_auth(s.auth, SECRET, "alice", "alice-password", &user).await;
    assert!(fine.is("Access-Accept"), "{fine:?}");
    let refused = events(&core, "action=credential_refused&target=alice").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["source_address"], "02-00-00-00-00-aa");
    s.outpost.stop().await;
}

#[tokio::test]
async fn failures_from_many_sources_slow_a_user_down_but_never_block() {
    let core = TestCore::start().await;
    crate::login::create_user(&core, "alice", "alice-password").await;
    // Twelve failures from twelve addresses (the login API records the peer, so each goes
    // through the outpost-facing check with its own source).
    let (provider_id, token) = core
        .create_served_provider("ldap", "mail", json!({"base_dn": BASE}))
        .await;
    let outpost = Api::new(&core.url, &token);
    let verify = |password: &'static str, source: String| {
        let outpost = &outpost;
        async move {
            outpost
                .post(
                    "/api/v1/outpost/credentials/verify",
                    json!({"provider_id": provider_id, "username": "alice", "password": password, "source_address": source}),
                )
                .await
                .expect(200)
        }
    };
    for i in 0..12 {
        let answer = verify("guess", format!("198.51.100.{i}")).await;
        assert_eq!(answer["reason"], "invalid_credentials");
    }
    // Two failures past the slowdown threshold (10): 2 x 250 ms before the answer.
    let started = Instant::now();
    let answer = verify("alice-password", "203.0.113.1".into()).await;
    assert_eq!(answer["result"], "success", "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "answered in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_lock_made_at_one_replica_holds_at_the_other_and_at_its_outposts() {
    if !peers_present() {
        return;
    }
    let core = TestCore::start().await;
    let s = redoubt_tests::ldap::setup(&core, 0, json!({})).await;
    assert!(ldapwhoami(&s, "carol", "carol-password").await);
    // The guesses reach the other replica's login form; the outpost is connected to the first.
    let replica = core.start_replica().await;
    let mut at_replica = Browser::new(&replica.url);
    for _ in 0..5 {
        assert_eq!(at_replica.login("carol", "guess", None).await.status, 401);
    }
    let mut at_first = Browser::new(&core.url);
    assert_eq!(
        at_first.login("carol", "carol-password", None).await.status,
        429,
        "the first replica counts the failures made at the other"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while ldapwhoami(&s, "carol", "carol-password").await {
        assert!(
            Instant::now() < deadline,
            "the outpost of the first replica never heard of the lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.outpost.stop().await;
}
