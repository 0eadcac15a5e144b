//! Real outposts in-process: started from a URL and a token, live changes, core restarts,
//! starts from state with the core down, token rotation, metrics.

use redoubt_tests::{TestCore, promtool_check, start_outpost};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn ldap_outpost(core: &TestCore) -> (i64, String, i64) {
    let provider = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "dir", "kind": "ldap", "settings": {"base_dn": "dc=example,dc=com"}}),
        )
        .await
        .expect(201);
    core.api
        .post(
            "/api/v1/applications",
            json!({"slug": "dir", "name": "Directory", "provider_id": provider["id"]}),
        )
        .await
        .expect(201);
    let created = core
        .api
        .post(
            "/api/v1/outposts",
            json!({"name": "ldap-1", "kind": "ldap", "provider_ids": [provider["id"]]}),
        )
        .await
        .expect(201);
    (
        created["outpost"]["id"].as_i64().expect("id"),
        created["token"].as_str().expect("token").to_owned(),
        provider["id"].as_i64().expect("id"),
    )
}

async fn revision(core: &TestCore) -> i64 {
    core.revision().await
}

async fn ready(outpost: &redoubt_outpost::RunningOutpost) -> u16 {
    reqwest::get(format!("http://{}/-/health/ready", outpost.metrics_addr))
        .await
        .expect("health")
        .status()
        .as_u16()
}

/// Polls the instances API until `check` holds (the registry flushes every second).
async fn instance_where(core: &TestCore, outpost_id: i64, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = core
            .api
            .get(&format!("/api/v1/outposts/{outpost_id}/instances"))
            .await
            .expect(200);
        if let Some(found) = list.as_array().and_then(|l| l.iter().find(|i| check(i))) {
            return found.clone();
        }
        assert!(Instant::now() < deadline, "no instance matched: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn outpost_from_url_and_token_shows_up_healthy_and_applies_changes_live() {
    let core = TestCore::start().await;
    let (outpost_id, token, provider_id) = ldap_outpost(&core).await;
    let state = tempfile::tempdir().expect("tempdir");
    let outpost = start_outpost(&core.url, &token, state.path()).await;
    let snapshot = outpost.wait_for_revision(revision(&core).await).await;
    assert_eq!(snapshot.config.outpost.name, "ldap-1");
    assert_eq!(snapshot.config.providers[0].id, provider_id);
    outpost.wait_connected(true).await;
    assert_eq!(ready(&outpost).await, 200);
    let instance = instance_where(&core, outpost_id, |i| {
        i["healthy"] == true && i["up_to_date"] == true
    })
    .await;
    assert_eq!(instance["instance_id"], json!(outpost.instance_id));
    assert_eq!(instance["version"], redoubt_outpost::VERSION);
    assert_eq!(instance["outdated"], false);

    let started = Instant::now();
    core.api
        .post("/api/v1/users", json!({"username": "lena"}))
        .await
        .expect(201);
    let target = revision(&core).await;
    let applied = outpost.wait_for_revision(target).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "applied after {:?}",
        started.elapsed()
    );
    let directory = applied.config.directory.as_ref().expect("directory");
    assert!(directory.users.iter().any(|u| u.username == "lena"));
    // Persisted privately.
    use std::os::unix::fs::PermissionsExt;
    let file = state.path().join("state.json");
    assert_eq!(
        std::fs::metadata(&file)
            .expect("state file")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&file)
            .expect("read")
            .contains("lena")
    );
    outpost.stop().await;
}

#[tokio::test]
async fn outpost_survives_a_core_restart_and_catches_up() {
    let mut core = TestCore::start().await;
    let (_, token, _) = ldap_outpost(&core).await;
    let state = tempfile::tempdir().expect("tempdir");
    let outpost = start_outpost(&core.url, &token, state.path()).await;
    outpost.wait_for_revision(revision(&core).await).await;
    outpost.wait_connected(true).await;
    core.stop().await;
    outpost.wait_connected(false).await;
    assert_eq!(
        ready(&outpost).await,
        200,
        "keeps serving while the core is down"
    );
    core.restart_stopped().await;
    // A change the outpost missed while disconnected arrives by catch-up after it reconnects.
    core.api
        .post("/api/v1/users", json!({"username": "milo"}))
        .await
        .expect(201);
    let target = revision(&core).await;
    let applied = tokio::time::timeout(Duration::from_secs(15), outpost.wait_for_revision(target))
        .await
        .expect("caught up after the core came back");
    assert!(
        applied
            .config
            .directory
            .as_ref()
            .expect("dir")
            .users
            .iter()
            .any(|u| u.username == "milo")
    );
    outpost.stop().await;
}

#[tokio::test]
async fn outpost_restarts_from_state_while_the_core_is_down() {
    let mut core = TestCore::start().await;
    let (_, token, _) = ldap_outpost(&core).await;
    let state = tempfile::tempdir().expect("tempdir");
    let outpost = start_outpost(&core.url, &token, state.path()).await;
    let held = outpost.wait_for_revision(revision(&core).await).await;
    outpost.stop().await;
    core.stop().await;
    let again = start_outpost(&core.url, &token, state.path()).await;
    let restored = again.wait_for_revision(held.revision).await;
    assert_eq!(restored.config, held.config);
    assert_eq!(ready(&again).await, 200);
    assert!(!again.is_connected());
    again.stop().await;
    // A state file for another token is ignored: no configuration, not ready.
    let other = start_outpost(&core.url, "rdt_another_token", state.path()).await;
    assert!(other.config().is_none());
    assert_eq!(ready(&other).await, 503);
    other.stop().await;
}

#[tokio::test]
async fn corrupt_state_is_ignored_and_a_wrong_token_never_gets_ready() {
    let core = TestCore::start().await;
    let (_, token, _) = ldap_outpost(&core).await;
    let state = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        state.path().join("state.json"),
        b"{\"format\":\"redoubt-outpost-state\",\"ver",
    )
    .expect("write");
    let outpost = start_outpost(&core.url, &token, state.path()).await;
    outpost.wait_for_revision(revision(&core).await).await;
    outpost.stop().await;

    let wrong = start_outpost(
        &core.url,
        "rdt_wrong",
        tempfile::tempdir().expect("tempdir").path(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ready(&wrong).await, 503);
    assert!(wrong.config().is_none());
    // Still alive and serving its metrics: no crash loop.
    let metrics = reqwest::get(format!("http://{}/metrics", wrong.metrics_addr))
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    wrong.stop().await;
}

#[tokio::test]
async fn rotating_the_token_disconnects_the_old_instance() {
    let core = TestCore::start().await;
    let (outpost_id, token, _) = ldap_outpost(&core).await;
    let state = tempfile::tempdir().expect("tempdir");
    let outpost = start_outpost(&core.url, &token, state.path()).await;
    outpost.wait_connected(true).await;
    core.api
        .post(
            &format!("/api/v1/outposts/{outpost_id}/rotate-token"),
            json!({}),
        )
        .await
        .expect(200);
    tokio::time::timeout(Duration::from_secs(5), outpost.wait_connected(false))
        .await
        .expect("disconnected");
    assert_eq!(ready(&outpost).await, 200, "keeps serving what it holds");
    instance_where(&core, outpost_id, |i| i["connected"] == false).await;
    outpost.stop().await;
}

#[tokio::test]
async fn outpost_metrics_pass_promtool() {
    let core = TestCore::start().await;
    let (_, token, _) = ldap_outpost(&core).await;
    let state = tempfile::tempdir().expect("tempdir");
    let outpost = start_outpost(&core.url, &token, state.path()).await;
    outpost.wait_for_revision(revision(&core).await).await;
    outpost.wait_connected(true).await;
    let text = reqwest::get(format!("http://{}/metrics", outpost.metrics_addr))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert!(
        text.contains("redoubt_outpost_channel_connected 1"),
        "{text}"
    );
    assert!(
        text.contains("redoubt_outpost_info{kind=\"ldap\",outpost=\"ldap-1\""),
        "{text}"
    );
    assert!(text.contains("redoubt_outpost_applied_revision"));
    promtool_check(&text);
    outpost.stop().await;
}

fn https_settings(
    core: &TestCore,
    token: &str,
    state: &std::path::Path,
) -> redoubt_outpost::settings::OutpostSettings {
    let mut settings = redoubt_outpost::settings::OutpostSettings {
        url: core.https_url.clone(),
        token: token.to_owned(),
        state_dir: state.to_owned(),
        ..Default::default()
    };
    settings.listen.metrics = "127.0.0.1:0".into();
    settings
}

#[tokio::test]
async fn tls_to_the_core_is_verified_unless_danger_insecure_is_set() {
    let core = TestCore::start().await;
    let (_, token, _) = ldap_outpost(&core).await;
    let target = revision(&core).await;

    // The core's self-signed certificate, trusted through REDOUBT_CA_FILE: REST and wss work.
    let state = tempfile::tempdir().expect("tempdir");
    let mut settings = https_settings(&core, &token, state.path());
    settings.ca_file = core.ca_file().display().to_string();
    let trusted = redoubt_outpost::start(settings).await.expect("start");
    tokio::time::timeout(Duration::from_secs(10), trusted.wait_for_revision(target))
        .await
        .expect("configured over HTTPS");
    tokio::time::timeout(Duration::from_secs(10), trusted.wait_connected(true))
        .await
        .expect("wss channel up");
    trusted.stop().await;

    // Not trusted: no configuration, not ready, still alive.
    let state = tempfile::tempdir().expect("tempdir");
    let untrusted = redoubt_outpost::start(https_settings(&core, &token, state.path()))
        .await
        .expect("start");
    let mut attempts = 0;
    while attempts < 20 && untrusted.config().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        attempts += 1;
    }
    assert!(
        untrusted.config().is_none(),
        "an unverified core must not configure the outpost"
    );
    assert_eq!(ready(&untrusted).await, 503);
    untrusted.stop().await;

    // REDOUBT_DANGER_INSECURE skips verification, on request only.
    let state = tempfile::tempdir().expect("tempdir");
    let mut settings = https_settings(&core, &token, state.path());
    settings.danger_insecure = true;
    let insecure = redoubt_outpost::start(settings).await.expect("start");
    tokio::time::timeout(Duration::from_secs(10), insecure.wait_for_revision(target))
        .await
        .expect("configured");
    insecure.stop().await;
}

#[tokio::test]
async fn the_core_serves_its_api_over_https() {
    let core = TestCore::start().await;
    let pem = std::fs::read(core.ca_file()).expect("certificate");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("pem")])
        .build()
        .expect("client");
    let users = client
        .get(format!("{}/api/v1/users", core.https_url))
        .bearer_auth(&core.admin_token)
        .send()
        .await
        .expect("https request");
    assert_eq!(users.status(), 200);
    let key = core.data_dir().join("tls.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );
}
