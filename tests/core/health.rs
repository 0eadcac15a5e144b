//! Honest outpost health with a real core stopped and started: `/-/health/ready` and
//! `redoubt_outpost_core_status` across connect and disconnect, Status-Server answered only
//! while the core counts as reachable, FreeRADIUS as a proxy failing over to its next home
//! server while the core is down and coming back when it returns, and unbound providers
//! counted by the outpost.

use redoubt_tests::peers::freeradius::{
    CHECK_INTERVAL, FALLBACK_MESSAGE, FreeRadiusProxy, PROXY_SECRET,
};
use redoubt_tests::radius::{
    RadReply, RadiusSetup, SECRET, metric, poll, radclient, radclient_auth, radius_utils_available,
    setup,
};
use redoubt_tests::{TestCore, promtool_check, start_outpost};
use serde_json::{Value, json};
use std::time::Duration;

/// Makes the test outpost's heartbeat period one second (the period the health rule uses).
async fn heartbeat_every_second(core: &TestCore, s: &RadiusSetup) {
    let list = core
        .api
        .get("/api/v1/outposts?search=wifi-outpost")
        .await
        .expect(200);
    let id = list["items"][0]["id"].as_i64().expect("outpost id");
    core.api
        .patch(
            &format!("/api/v1/outposts/{id}"),
            json!({"settings": {"heartbeat_interval_seconds": 1}}),
        )
        .await
        .expect(200);
    s.outpost.wait_for_revision(core.revision().await).await;
}

async fn ready(outpost: &redoubt_outpost::RunningOutpost) -> (u16, Value) {
    let response = reqwest::get(format!("http://{}/-/health/ready", outpost.metrics_addr))
        .await
        .expect("ready");
    let code = response.status().as_u16();
    (code, response.json().await.expect("ready is JSON"))
}

async fn metrics(outpost: &redoubt_outpost::RunningOutpost) -> String {
    reqwest::get(format!("http://{}/metrics", outpost.metrics_addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

/// Asserts the gauge is 1 for `state` and 0 for the other two.
async fn assert_core_status(outpost: &redoubt_outpost::RunningOutpost, state: &str) {
    let text = metrics(outpost).await;
    for label in ["connected", "degraded", "disconnected"] {
        let expected = if label == state { 1.0 } else { 0.0 };
        assert_eq!(
            metric(
                &text,
                &format!("redoubt_outpost_core_status{{state=\"{label}\"}}")
            ),
            expected,
            "{label}: {text}"
        );
    }
    promtool_check(&text);
}

/// Polls the ready endpoint until its `status` is `wanted`.
async fn ready_until(
    outpost: &redoubt_outpost::RunningOutpost,
    wanted: &str,
    limit: Duration,
) -> (u16, Value) {
    poll(limit, || async {
        let (code, body) = ready(outpost).await;
        (body["status"] == wanted).then_some((code, body))
    })
    .await
    .unwrap_or_else(|| panic!("ready did not say {wanted} within {limit:?}"))
}

async fn status_server(s: &RadiusSetup) -> RadReply {
    radclient(s.auth, "status", SECRET, "Message-Authenticator = 0x00", 1).await
}

#[tokio::test]
async fn ready_metric_and_status_server_follow_the_core() {
    if !radius_utils_available() {
        return;
    }
    let mut core = TestCore::start().await;
    let s = setup(&core, json!({})).await;
    heartbeat_every_second(&core, &s).await;
    let (code, body) = ready(&s.outpost).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "connected", "{body}");
    assert_eq!(body["revision"], core.revision().await, "{body}");
    assert_core_status(&s.outpost, "connected").await;
    assert!(status_server(&s).await.is("Access-Accept"));

    core.stop().await;
    s.outpost.wait_connected(false).await;
    // One heartbeat period after the channel went down, the outpost is degraded: still ready
    // (it serves what it holds), but Status-Server gets no answer so a NAS fails over.
    let (code, body) = ready_until(&s.outpost, "degraded", Duration::from_secs(10)).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cached credentials")),
        "{body}"
    );
    assert_core_status(&s.outpost, "degraded").await;
    let silent = status_server(&s).await;
    assert_eq!(silent.code, None, "no Status-Server answer: {silent:?}");
    let text = metrics(&s.outpost).await;
    assert!(
        metric(
            &text,
            "redoubt_radius_dropped_total{reason=\"not_serving\"}"
        ) >= 1.0,
        "{text}"
    );

    core.restart_stopped().await;
    tokio::time::timeout(Duration::from_secs(60), s.outpost.wait_connected(true))
        .await
        .expect("the outpost reconnects within 60 s");
    let (code, body) = ready(&s.outpost).await;
    assert_eq!(
        (code, &body["status"]),
        (200, &json!("connected")),
        "{body}"
    );
    assert_core_status(&s.outpost, "connected").await;
    assert!(status_server(&s).await.is("Access-Accept"));
    s.outpost.stop().await;
}

#[tokio::test]
async fn an_outpost_with_nothing_to_serve_is_disconnected_and_not_ready() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let state = tempfile::tempdir().expect("state dir");
    let outpost = start_outpost(&format!("http://{addr}"), "rdt_nothing", state.path()).await;
    let (code, body) = ready(&outpost).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "disconnected", "{body}");
    assert_core_status(&outpost, "disconnected").await;
    outpost.stop().await;
}

#[tokio::test]
async fn unbound_providers_are_counted_by_the_outpost() {
    let core = TestCore::start().await;
    let provider = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "lonely", "kind": "radius", "settings":
                   {"shared_secret": SECRET, "client_networks": ["127.0.0.0/8"]}}),
        )
        .await
        .expect(201);
    let provider_id = provider["id"].as_i64().expect("id");
    let created = core
        .api
        .post(
            "/api/v1/outposts",
            json!({"name": "lonely-outpost", "kind": "radius", "provider_ids": [provider_id]}),
        )
        .await
        .expect(201);
    let token = created["token"].as_str().expect("token");
    let state = tempfile::tempdir().expect("state dir");
    let outpost = start_outpost(&core.url, token, state.path()).await;
    let unbound = || async {
        metric(
            &metrics(&outpost).await,
            "redoubt_outpost_unbound_providers",
        )
    };
    outpost.wait_for_revision(core.revision().await).await;
    poll(Duration::from_secs(5), || async {
        (unbound().await == 1.0).then_some(())
    })
    .await
    .expect("the unbound provider is counted");

    let app = core
        .api
        .post(
            "/api/v1/applications",
            json!({"slug": "lonely", "name": "Lonely", "provider_id": provider_id}),
        )
        .await
        .expect(201);
    outpost.wait_for_revision(core.revision().await).await;
    poll(Duration::from_secs(5), || async {
        (unbound().await == 0.0).then_some(())
    })
    .await
    .expect("a bound provider is not counted");

    let app_id = app["id"].as_i64().expect("id");
    core.api
        .delete(&format!("/api/v1/applications/{app_id}"))
        .await
        .expect(200);
    outpost.wait_for_revision(core.revision().await).await;
    poll(Duration::from_secs(5), || async {
        (unbound().await == 1.0).then_some(())
    })
    .await
    .expect("unbound again: counted again");
    outpost.stop().await;
}

/// Sends an Access-Request through the proxy.
async fn through_proxy(proxy: &FreeRadiusProxy, user: &str) -> RadReply {
    radclient_auth(
        proxy.addr,
        PROXY_SECRET,
        user,
        &format!("{user}-password"),
        "",
    )
    .await
}

fn from_fallback(reply: &RadReply) -> bool {
    reply.is("Access-Accept") && reply.value("Reply-Message").as_deref() == Some(FALLBACK_MESSAGE)
}

fn from_outpost(reply: &RadReply) -> bool {
    reply.is("Access-Accept") && reply.value("Reply-Message").is_none()
}

/// Polls the proxy's view of the outpost until it is `wanted`.
async fn outpost_state_until(proxy: &FreeRadiusProxy, wanted: &str, limit: Duration) {
    let reached = poll(limit, || async {
        let state = proxy.outpost_state().await.expect("radmin");
        (state == wanted).then_some(())
    })
    .await;
    assert!(
        reached.is_some(),
        "FreeRADIUS did not mark the outpost {wanted} within {limit:?} (now {}):\n{}",
        proxy.outpost_state().await.unwrap_or_default(),
        proxy.log()
    );
}

#[tokio::test]
async fn a_freeradius_proxy_fails_over_while_the_core_is_down_and_returns() {
    if !radius_utils_available() || !redoubt_tests::peers::freeradius::available() {
        return;
    }
    let mut core = TestCore::start().await;
    let s = setup(&core, json!({})).await;
    heartbeat_every_second(&core, &s).await;
    let proxy = FreeRadiusProxy::start(s.auth, SECRET)
        .await
        .expect("freeradius starts");

    // The core is up: the outpost answers through the proxy.
    let reply = through_proxy(&proxy, "alice").await;
    assert!(from_outpost(&reply), "{reply:?}\n{}", proxy.log());
    assert_eq!(proxy.outpost_state().await.expect("radmin"), "alive");

    let stopped = std::time::Instant::now();
    core.stop().await;
    s.outpost.wait_connected(false).await;
    ready_until(&s.outpost, "degraded", Duration::from_secs(10)).await;
    // bob never logged in, so the outpost has no verdict for him: the request times out at
    // the proxy, which makes the outpost a zombie and asks it Status-Server. The outpost stays
    // silent, so the proxy marks it dead and sends every request to the fallback.
    let failed_over = poll(Duration::from_secs(30), || async {
        let reply = through_proxy(&proxy, "bob").await;
        from_fallback(&reply).then_some(())
    })
    .await;
    assert!(
        failed_over.is_some(),
        "the proxy never failed over:\n{}",
        proxy.log()
    );
    outpost_state_until(&proxy, "dead", Duration::from_secs(10)).await;
    eprintln!(
        "figure: core stopped -> FreeRADIUS marks the outpost dead: {:.1} s",
        stopped.elapsed().as_secs_f64()
    );
    // It stays dead while the core is down: two status checks go unanswered.
    let deadline = tokio::time::Instant::now() + CHECK_INTERVAL * 2 + Duration::from_secs(1);
    while tokio::time::Instant::now() < deadline {
        assert_eq!(
            proxy.outpost_state().await.expect("radmin"),
            "dead",
            "{}",
            proxy.log()
        );
        let reply = through_proxy(&proxy, "carol").await;
        assert!(from_fallback(&reply), "{reply:?}");
    }
    let text = metrics(&s.outpost).await;
    assert!(
        metric(
            &text,
            "redoubt_radius_dropped_total{reason=\"not_serving\"}"
        ) >= 2.0,
        "the outpost left the status checks unanswered: {text}"
    );

    // The core is back: the outpost answers Status-Server again, the proxy revives it after
    // three answers, and requests go to the outpost again.
    core.restart_stopped().await;
    let restarted = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(60), s.outpost.wait_connected(true))
        .await
        .expect("the outpost reconnects within 60 s");
    let reconnected = restarted.elapsed();
    outpost_state_until(&proxy, "alive", CHECK_INTERVAL * 5).await;
    eprintln!(
        "figure: core restarted -> outpost reconnected {:.1} s -> FreeRADIUS marks it alive {:.1} s",
        reconnected.as_secs_f64(),
        restarted.elapsed().as_secs_f64()
    );
    let reply = through_proxy(&proxy, "bob").await;
    assert!(from_outpost(&reply), "{reply:?}\n{}", proxy.log());
    s.outpost.stop().await;
}
