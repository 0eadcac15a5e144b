//! Outposts across core outages and their own restarts: warm credentials kept in the state dir
//! (LDAP with `ldapwhoami`/`ldapsearch`, RADIUS with `radtest`), and the on-disk event queue
//! (accounting from `radclient` and cached logins reach the core once, with the time they
//! happened).

use redoubt_core::api::dto::rfc3339;
use redoubt_core::clock::Clock;
use redoubt_tests::ldap::{LdapSetup, TestCa, ldap_tool, ldap_utils_available, user_dn};
use redoubt_tests::radius::{
    RadiusSetup, SECRET, metric, poll, radclient, radclient_auth, radius_utils_available, radtest,
};
use redoubt_tests::{TestCore, start_outpost_with};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The offline window the restarted outposts get: short enough to pass on the test clock.
const OFFLINE_SECONDS: u64 = 3600;
/// Longest wait for queued events to reach a core that came back (the outpost reconnects with
/// backoff first).
const DELIVERY: Duration = Duration::from_secs(60);

async fn whoami(ldap: SocketAddr, ca: &TestCa, dn: &str, password: &str) -> i32 {
    let url = format!("ldap://{ldap}");
    ldap_tool(
        "ldapwhoami",
        &["-x", "-H", &url, "-D", dn, "-w", password],
        &ca.ca_file,
    )
    .await
    .code
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Events of `action` in the core, oldest first.
async fn events(core: &TestCore, action: &str) -> Vec<Value> {
    let body = core
        .api
        .get(&format!("/api/v1/events?action={action}&page_size=1000"))
        .await
        .expect(200);
    let mut items = body["items"].as_array().cloned().unwrap_or_default();
    items.reverse();
    items
}

/// Waits until the core holds at least `count` events of `action`; returns them.
async fn wait_for_events(core: &TestCore, action: &str, count: usize) -> Vec<Value> {
    poll(DELIVERY, || async {
        let found = events(core, action).await;
        (found.len() >= count).then_some(found)
    })
    .await
    .unwrap_or_else(|| panic!("{count} {action} events within {DELIVERY:?}"))
}

#[tokio::test]
async fn ldap_binds_and_searches_from_the_state_dir_after_a_restart_without_the_core() {
    if !ldap_utils_available() {
        return;
    }
    let mut core = TestCore::start().await;
    let LdapSetup {
        outpost,
        ldap,
        ca,
        state,
        outpost_token,
        ..
    } = redoubt_tests::ldap::setup(&core, 0, json!({})).await;
    let alice = user_dn("alice");
    assert_eq!(whoami(ldap, &ca, &alice, "alice-password").await, 0);

    core.stop().await;
    outpost.stop().await;
    for file in ["credentials.key", "credentials.jsonl"] {
        assert_eq!(mode(&state.path().join(file)), 0o600, "{file}");
    }
    let kept = std::fs::read_to_string(state.path().join("credentials.jsonl")).expect("cache");
    assert!(!kept.contains("alice-password"), "no password on disk");

    // The host reboots during the outage: a new process, the same state dir, no core.
    let (cert, key) = (ca.cert_file.clone(), ca.key_file.clone());
    let outpost = start_outpost_with(&core.url, &outpost_token, state.path(), |s| {
        s.tls.cert_file = cert.display().to_string();
        s.tls.key_file = key.display().to_string();
        s.credential_offline_seconds = OFFLINE_SECONDS;
    })
    .await;
    let ldap = outpost.listening("ldap").await;
    let bound_at = core.clock.now();
    assert_eq!(
        whoami(ldap, &ca, &alice, "alice-password").await,
        0,
        "a password the core accepted before the restart still binds"
    );
    // alice is in the provider's search group: a service account that bound before the
    // outage still searches after the restart.
    let url = format!("ldap://{ldap}");
    let found = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url,
            "-D",
            &alice,
            "-w",
            "alice-password",
            "-b",
            redoubt_tests::ldap::BASE,
            "(uid=bob)",
            "mail",
        ],
        &ca.ca_file,
    )
    .await;
    assert_eq!(found.code, 0, "{found:?}");
    assert!(found.stdout.contains("mail: bob@example.com"), "{found:?}");
    let wrong = whoami(ldap, &ca, &alice, "not-her-password").await;
    assert_ne!(wrong, 0, "a wrong password never binds");
    assert_eq!(
        whoami(ldap, &ca, &user_dn("bob"), "bob-password").await,
        52,
        "a password never cached needs the core"
    );
    core.clock
        .advance(i64::try_from(OFFLINE_SECONDS).expect("small"));
    assert_eq!(
        whoami(ldap, &ca, &alice, "alice-password").await,
        52,
        "past credential_offline_seconds the cached password is refused"
    );

    // The core comes back: each bind answered from the cache is in its log once, at the time
    // of the bind (not of the delivery, an hour later on the test clock).
    core.restart_stopped().await;
    let cached = wait_for_events(&core, "cached_login", 2).await;
    assert_eq!(cached.len(), 2, "one event per cached bind: {cached:#?}");
    for event in &cached {
        assert_eq!(event["target"], "alice", "{event}");
        assert_eq!(event["outcome"], "success", "{event}");
        assert_eq!(event["created_at"], rfc3339(bound_at), "{event}");
        assert_eq!(event["detail"]["protocol"], "ldap", "{event}");
        assert_eq!(event["source_address"], "127.0.0.1", "{event}");
    }
    // So is each bind refused during the outage: the wrong password, bob, alice too late.
    let refused = wait_for_events(&core, "offline_refusal", 3).await;
    let mut targets: Vec<&str> = refused
        .iter()
        .map(|e| e["target"].as_str().unwrap_or_default())
        .collect();
    targets.sort_unstable();
    assert_eq!(targets, ["alice", "alice", "bob"], "{refused:#?}");
    for event in &refused {
        assert_eq!(event["outcome"], "failure", "{event}");
        assert_eq!(event["detail"]["reason"], "no_cached_credential", "{event}");
        assert_eq!(event["detail"]["protocol"], "ldap", "{event}");
    }
    outpost.stop().await;
}

#[tokio::test]
async fn a_cached_ldap_bind_is_reported_once_with_its_time() {
    if !ldap_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = redoubt_tests::ldap::setup(&core, 0, json!({})).await;
    let alice = user_dn("alice");
    // The first bind asks the core (a credential_check event); the second is a cache hit.
    assert_eq!(whoami(s.ldap, &s.ca, &alice, "alice-password").await, 0);
    core.clock.advance(120);
    let hit_at = core.clock.now();
    assert_eq!(whoami(s.ldap, &s.ca, &alice, "alice-password").await, 0);
    let cached = wait_for_events(&core, "cached_login", 1).await;
    assert_eq!(cached.len(), 1, "{cached:#?}");
    assert_eq!(cached[0]["created_at"], rfc3339(hit_at));
    assert_eq!(cached[0]["detail"]["cache"], "hit");
    let checks = events(&core, "credential_check").await;
    assert_eq!(
        checks.iter().filter(|e| e["target"] == "alice").count(),
        1,
        "the core checked the password once: {checks:#?}"
    );
    assert_eq!(
        checks[0]["detail"]["protocol"], "ldap",
        "credential checks and outpost events name the protocol alike"
    );
    s.outpost.stop().await;
}

#[tokio::test]
async fn radius_accepts_from_the_state_dir_after_a_restart_without_the_core() {
    if !radius_utils_available() {
        return;
    }
    let mut core = TestCore::start().await;
    let RadiusSetup {
        outpost,
        auth,
        state,
        outpost_token,
        ..
    } = redoubt_tests::radius::setup(&core, json!({})).await;
    assert!(
        radtest(auth, SECRET, "alice", "alice-password")
            .await
            .is("Access-Accept")
    );
    core.stop().await;
    outpost.stop().await;

    let outpost = start_outpost_with(&core.url, &outpost_token, state.path(), |s| {
        s.credential_offline_seconds = OFFLINE_SECONDS;
    })
    .await;
    let auth = outpost.listening("radius").await;
    let warm = radtest(auth, SECRET, "alice", "alice-password").await;
    assert!(
        warm.is("Access-Accept"),
        "a cached user gets in after the restart: {warm:?}"
    );
    // Refusals are silence (the NAS fails over): radclient waits 2 s once, not radtest's retries.
    let wrong = radclient_auth(auth, SECRET, "alice", "not-her-password", "").await;
    assert!(!wrong.is("Access-Accept"), "{wrong:?}");
    let cold = radclient_auth(auth, SECRET, "bob", "bob-password", "").await;
    assert!(!cold.is("Access-Accept"), "{cold:?}");
    core.clock
        .advance(i64::try_from(OFFLINE_SECONDS).expect("small"));
    let expired = radclient_auth(auth, SECRET, "alice", "alice-password", "").await;
    assert!(
        !expired.is("Access-Accept"),
        "past credential_offline_seconds: {expired:?}"
    );
    core.restart_stopped().await;
    let cached = wait_for_events(&core, "cached_login", 1).await;
    assert_eq!(cached.len(), 1, "{cached:#?}");
    assert_eq!(cached[0]["detail"]["protocol"], "radius");
    assert_eq!(cached[0]["target"], "alice");
    outpost.stop().await;
}

/// One Accounting-Request through `radclient`; whether it was answered.
async fn account(accounting: SocketAddr, session: &str, extra: &str) -> bool {
    let pairs = format!(
        "User-Name = \"alice\", Acct-Session-Id = \"{session}\", \
         Acct-Status-Type = Start, NAS-Identifier = \"switch-1\"{extra}"
    );
    radclient(accounting, "acct", SECRET, &pairs, 3)
        .await
        .is("Accounting-Response")
}

#[tokio::test]
async fn accounting_during_an_outage_and_across_a_restart_arrives_once() {
    if !radius_utils_available() {
        return;
    }
    let mut core = TestCore::start().await;
    let RadiusSetup {
        outpost,
        accounting,
        state,
        outpost_token,
        ..
    } = redoubt_tests::radius::setup(&core, json!({})).await;
    assert!(account(accounting, "online-0", "").await);
    wait_for_events(&core, "radius_accounting", 1).await;

    core.stop().await;
    let stamped = core.clock.now() - 600;
    // Answered while the core is away: each record is on disk first.
    assert!(
        account(
            accounting,
            "outage-0",
            &format!(", Event-Timestamp = {stamped}")
        )
        .await
    );
    for i in 1..4 {
        assert!(account(accounting, &format!("outage-{i}"), "").await);
    }
    outpost.stop().await;
    let queue = state.path().join("events");
    assert_eq!(mode(&queue), 0o700);
    for entry in std::fs::read_dir(&queue).expect("queue dir") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }

    let outpost = start_outpost_with(&core.url, &outpost_token, state.path(), |_| {}).await;
    let accounting = outpost.listening("radius_accounting").await;
    for i in 4..6 {
        assert!(account(accounting, &format!("outage-{i}"), "").await);
    }
    core.restart_stopped().await;
    let recorded = wait_for_events(&core, "radius_accounting", 7).await;
    let sessions: Vec<&str> = recorded
        .iter()
        .filter_map(|e| e["detail"]["session_id"].as_str())
        .collect();
    let mut expected = vec!["online-0".to_owned()];
    expected.extend((0..6).map(|i| format!("outage-{i}")));
    let mut sorted = sessions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected, "every record exactly once");
    let first = recorded
        .iter()
        .find(|e| e["detail"]["session_id"] == "outage-0")
        .expect("outage-0");
    assert_eq!(
        first["created_at"],
        rfc3339(stamped),
        "dated by the NAS's Event-Timestamp"
    );
    assert_eq!(first["target"], "alice");
    assert_eq!(first["detail"]["protocol"], "radius");
    // Delivered: the queue's bytes drop to what the last segment still holds, and nothing
    // is sent again.
    let delivered = poll(DELIVERY, || async {
        let text = reqwest::get(format!("http://{}/metrics", outpost.metrics_addr))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (metric(&text, "redoubt_outpost_events_total{result=\"delivered\"}") >= 6.0).then_some(text)
    })
    .await
    .expect("the outpost counts the delivery");
    redoubt_tests::promtool_check(&delivered);
    assert_eq!(events(&core, "radius_accounting").await.len(), 7);
    outpost.stop().await;
}

#[tokio::test]
async fn a_batch_delivered_twice_is_stored_once() {
    let core = TestCore::start().await;
    let (provider_id, token) = core
        .create_served_provider(
            "radius",
            "dup",
            json!({"shared_secret": SECRET, "client_networks": ["127.0.0.0/8"]}),
        )
        .await;
    let at = core.clock.now() - 3600;
    let batch = json!({"events": [
        {"provider_id": provider_id, "action": "radius_accounting", "username": "alice",
         "detail": {"status": "start", "session_id": "dup-1"},
         "id": "0123456789abcdef0123456789abcdef", "occurred_at": at},
        {"provider_id": provider_id, "action": "cached_login", "username": "alice",
         "detail": {"cache": "offline"},
         "id": "fedcba9876543210fedcba9876543210", "occurred_at": at},
    ]});
    // The core stores the batch, then the answer is lost: the outpost sends it again.
    let outpost_api = core.api_with(&token);
    let first = outpost_api
        .post("/api/v1/outpost/events", batch.clone())
        .await
        .expect(200);
    assert_eq!(first, json!({"recorded": 2, "duplicates": 0}));
    let again = outpost_api
        .post("/api/v1/outpost/events", batch)
        .await
        .expect(200);
    assert_eq!(again, json!({"recorded": 0, "duplicates": 2}));
    let accounting = events(&core, "radius_accounting").await;
    assert_eq!(accounting.len(), 1, "{accounting:#?}");
    assert_eq!(accounting[0]["created_at"], rfc3339(at));
    assert_eq!(events(&core, "cached_login").await.len(), 1);
    let bad = outpost_api
        .post(
            "/api/v1/outpost/events",
            json!({"events": [{"provider_id": provider_id, "action": "cached_login",
                               "id": "not an id!"}]}),
        )
        .await;
    assert_eq!(bad.status.as_u16(), 400, "{bad:?}");
}
