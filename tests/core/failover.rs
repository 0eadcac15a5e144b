//! Outposts that keep working through core failures, with the real `redoubt-core` binary:
//! `kill -9` with LDAP and RADIUS outposts connected and writes in flight, then everything
//! converges; two replicas on PostgreSQL with an outpost that knows both URLs, one replica
//! killed: the outpost serves the next change from the other within seconds, the instances that
//! knew only the dead one show as disconnected, and the outpost returns when its replica does.

use redoubt_tests::core_process::CoreProcess;
use redoubt_tests::database::{TestDatabase, postgres_url};
use redoubt_tests::http::Api;
use redoubt_tests::ldap::{BASE, ldap_tool, ldap_utils_available, user_dn};
use redoubt_tests::radius::{SECRET, poll, radius_utils_available, radtest};
use redoubt_tests::start_outpost_on_wall_clock;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A provider of `kind` named `name`, an application for it open to everyone, and an outpost
/// serving it with `outpost_settings`; returns the outpost's id and token.
async fn served(
    api: &Api,
    kind: &str,
    name: &str,
    settings: Value,
    outpost_settings: Value,
) -> (i64, String) {
    let provider = api
        .post(
            "/api/v1/providers",
            json!({"name": name, "kind": kind, "settings": settings}),
        )
        .await
        .expect(201);
    let provider_id = provider["id"].as_i64().expect("id");
    api.post(
        "/api/v1/applications",
        json!({"slug": name, "name": name, "provider_id": provider_id}),
    )
    .await
    .expect(201);
    let created = api
        .post(
            "/api/v1/outposts",
            json!({"name": format!("{name}-outpost"), "kind": kind,
                   "provider_ids": [provider_id], "settings": outpost_settings}),
        )
        .await
        .expect(201);
    (
        created["outpost"]["id"].as_i64().expect("outpost id"),
        created["token"].as_str().expect("token").to_owned(),
    )
}

async fn create_user(api: &Api, name: &str) {
    api.post(
        "/api/v1/users",
        json!({"username": name, "password": format!("{name}-password")}),
    )
    .await
    .expect(201);
}

async fn ldap_whoami(ldap: std::net::SocketAddr, name: &str) -> bool {
    let url = format!("ldap://{ldap}");
    let dn = user_dn(name);
    let password = format!("{name}-password");
    let out = ldap_tool(
        "ldapwhoami",
        &["-x", "-H", &url, "-D", &dn, "-w", &password],
        std::path::Path::new("/dev/null"),
    )
    .await;
    out.code == 0 && out.stdout.contains(&format!("dn:{dn}"))
}

fn secret_key() -> String {
    redoubt_core::auth::token::generate().expect("randomness")
}

#[tokio::test]
async fn kill_9_with_writes_in_flight_then_ldap_and_radius_outposts_converge() {
    if !ldap_utils_available() || !radius_utils_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    let admin = redoubt_core::auth::token::generate().expect("randomness");
    let mut core = CoreProcess::start(
        &dir.path().join("core"),
        &database.url,
        &secret_key(),
        &admin,
    )
    .await;
    create_user(&core.api, "alice").await;
    let (_, ldap_token) = served(
        &core.api,
        "ldap",
        "directory",
        json!({"base_dn": BASE}),
        json!({}),
    )
    .await;
    let (_, radius_token) = served(
        &core.api,
        "radius",
        "wifi",
        json!({"shared_secret": SECRET, "client_networks": ["127.0.0.0/8"]}),
        json!({}),
    )
    .await;
    let ldap_state = tempfile::tempdir().expect("state");
    let radius_state = tempfile::tempdir().expect("state");
    let ldap_outpost =
        start_outpost_on_wall_clock(&core.url, &ldap_token, ldap_state.path(), |_| {}).await;
    let radius_outpost =
        start_outpost_on_wall_clock(&core.url, &radius_token, radius_state.path(), |_| {}).await;
    let revision = core.revision().await;
    ldap_outpost.wait_for_revision(revision).await;
    radius_outpost.wait_for_revision(revision).await;
    let ldap = ldap_outpost.listening("ldap").await;
    let radius = radius_outpost.listening("radius").await;
    assert!(
        ldap_whoami(ldap, "alice").await,
        "alice binds before the kill"
    );
    assert!(
        radtest(radius, SECRET, "alice", "alice-password")
            .await
            .is("Access-Accept")
    );

    // Writes in flight: users created one after another until the core dies under them.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let dying = Arc::new(AtomicBool::new(false));
    let writer = {
        let url = format!("{}/api/v1/users", core.url);
        let token = core.admin_token.clone();
        let acknowledged = acknowledged.clone();
        let dying = dying.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..10_000 {
                let name = format!("w{i:05}");
                let reply = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"username": name}))
                    .send()
                    .await;
                match reply {
                    Ok(r) if r.status() == 201 => acknowledged.lock().expect("lock").push(name),
                    Ok(r) => assert!(dying.load(Ordering::SeqCst), "HTTP {}", r.status()),
                    Err(_) if dying.load(Ordering::SeqCst) => return,
                    Err(error) => panic!("the core failed before the kill: {error}"),
                }
            }
        })
    };
    poll(Duration::from_secs(30), || async {
        (acknowledged.lock().expect("lock").len() >= 25).then_some(())
    })
    .await
    .expect("the writer gets going");
    dying.store(true, Ordering::SeqCst);
    core.kill().await;
    writer.await.expect("the writer saw only the kill");
    let acknowledged = acknowledged.lock().expect("lock").clone();
    core.restart().await;
    let restarted = Instant::now();

    // Every write the API acknowledged survived.
    let users = core
        .api
        .get("/api/v1/users?page_size=1000")
        .await
        .expect(200);
    let names: Vec<&str> = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    for name in &acknowledged {
        assert!(
            names.contains(&name.as_str()),
            "{name} was acknowledged, then lost"
        );
    }

    // A change after the restart reaches both outposts, which serve it.
    create_user(&core.api, "dave").await;
    let revision = core.revision().await;
    let converge = async {
        ldap_outpost.wait_for_revision(revision).await;
        radius_outpost.wait_for_revision(revision).await;
    };
    tokio::time::timeout(Duration::from_secs(30), converge)
        .await
        .expect("both outposts reach the latest revision after the restart");
    let converged = restarted.elapsed();
    eprintln!(
        "kill -9 after {} acknowledged writes; both outposts at revision {revision} {converged:?} after the restart",
        acknowledged.len()
    );
    assert!(
        ldap_whoami(ldap, "dave").await,
        "dave binds after the restart"
    );
    assert!(
        radtest(radius, SECRET, "dave", "dave-password")
            .await
            .is("Access-Accept")
    );
    assert!(ldap_outpost.is_connected() && radius_outpost.is_connected());
}

/// The endpoint an outpost's metrics say it uses.
async fn current_endpoint(metrics: std::net::SocketAddr) -> Option<String> {
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| l.starts_with("redoubt_outpost_core_endpoint{"))
        .find(|l| l.ends_with(" 1"))
        .and_then(|l| l.split('"').nth(1))
        .map(str::to_owned)
}

/// Whether instance `instance` of outpost `id` is shown connected by `api`.
async fn shown_connected(api: &Api, id: i64, instance: &str) -> Option<bool> {
    let list = api
        .get(&format!("/api/v1/outposts/{id}/instances"))
        .await
        .expect(200);
    list.as_array()?
        .iter()
        .find(|i| i["instance_id"] == instance)
        .and_then(|i| i["connected"].as_bool())
}

#[tokio::test]
async fn an_outpost_given_two_replicas_follows_the_live_one_and_returns() {
    if postgres_url().is_none() {
        eprintln!(
            "SKIPPED on SQLite: replicas share a PostgreSQL database (set REDOUBT_TEST_DATABASE_URL)"
        );
        return;
    }
    if !ldap_utils_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::create(dir.path()).await;
    let admin = redoubt_core::auth::token::generate().expect("randomness");
    let secret = secret_key();
    let first = CoreProcess::start(&dir.path().join("a"), &database.url, &secret, &admin).await;
    let second = CoreProcess::start(&dir.path().join("b"), &database.url, &secret, &admin).await;
    let (outpost_id, token) = served(
        &first.api,
        "ldap",
        "directory",
        json!({"base_dn": BASE}),
        json!({"heartbeat_interval_seconds": 1}),
    )
    .await;
    let state = tempfile::tempdir().expect("state");
    let urls = format!("{},{}", first.url, second.url);
    let outpost = start_outpost_on_wall_clock(&urls, &token, state.path(), |s| {
        s.core_failback_seconds = 1;
    })
    .await;
    outpost.wait_for_revision(first.revision().await).await;
    let ldap = outpost.listening("ldap").await;
    let preferred = current_endpoint(outpost.metrics_addr)
        .await
        .expect("the outpost names the endpoint it uses");
    let (mut victim, survivor) = if preferred == first.url {
        (first, second)
    } else {
        assert_eq!(preferred, second.url);
        (second, first)
    };
    // Another instance that knows only the victim.
    let lone_state = tempfile::tempdir().expect("state");
    let lone = start_outpost_on_wall_clock(&victim.url, &token, lone_state.path(), |_| {}).await;
    lone.wait_connected(true).await;
    poll(Duration::from_secs(10), || async {
        shown_connected(&survivor.api, outpost_id, &lone.instance_id)
            .await
            .filter(|c| *c)
    })
    .await
    .expect("the survivor sees the lone instance connected (through the shared database)");

    victim.kill().await;
    let killed = Instant::now();
    create_user(&survivor.api, "erin").await;
    let revision = survivor.revision().await;
    tokio::time::timeout(Duration::from_secs(15), outpost.wait_for_revision(revision))
        .await
        .expect("the outpost serves the change from the survivor");
    let followed = killed.elapsed();
    eprintln!("replica killed; new change served through the other replica after {followed:?}");
    assert!(
        followed < Duration::from_secs(10),
        "failover took {followed:?}"
    );
    assert_eq!(
        current_endpoint(outpost.metrics_addr).await.as_deref(),
        Some(survivor.url.as_str())
    );
    // Credential checks go to the survivor too.
    assert!(
        ldap_whoami(ldap, "erin").await,
        "erin binds through the survivor"
    );
    // The lone instance's replica died: every replica shows it disconnected within the
    // heartbeat timeout (3 x 1 s), while the instance that moved shows connected.
    let shown = poll(Duration::from_secs(15), || async {
        shown_connected(&survivor.api, outpost_id, &lone.instance_id)
            .await
            .filter(|c| !*c)
            .map(|_| killed.elapsed())
    })
    .await
    .expect("the lone instance is shown disconnected");
    eprintln!("the dead replica's instance shown disconnected after {shown:?}");
    assert_eq!(
        shown_connected(&survivor.api, outpost_id, &outpost.instance_id).await,
        Some(true)
    );

    // The replica comes back: the outpost returns to the endpoint it prefers.
    victim.restart().await;
    let back = Instant::now();
    poll(Duration::from_secs(20), || async {
        (current_endpoint(outpost.metrics_addr).await.as_deref() == Some(victim.url.as_str()))
            .then_some(())
    })
    .await
    .expect("the outpost returns to its preferred replica");
    eprintln!(
        "returned to the preferred replica {:?} after it restarted",
        back.elapsed()
    );
    outpost.wait_connected(true).await;
    create_user(&victim.api, "frank").await;
    let revision = victim.revision().await;
    tokio::time::timeout(Duration::from_secs(15), outpost.wait_for_revision(revision))
        .await
        .expect("changes flow again through the returned-to replica");
}
