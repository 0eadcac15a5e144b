//! Health, metrics, the OpenAPI document and the event log.

use redoubt_tests::{TestCore, promtool_check};
use serde_json::json;

#[tokio::test]
async fn health_on_both_ports() {
    let core = TestCore::start().await;
    for base in [&core.url, &core.metrics_url] {
        let live = reqwest::get(format!("{base}/-/health/live"))
            .await
            .expect("live");
        assert_eq!(live.status(), 200);
        let ready = reqwest::get(format!("{base}/-/health/ready"))
            .await
            .expect("ready");
        assert_eq!(ready.status(), 200);
    }
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_requests() {
    let core = TestCore::start().await;
    core.api.get("/api/v1/users").await.expect(200);
    core.api_with("bad").get("/api/v1/users").await.expect(401);
    let text = reqwest::get(format!("{}/metrics", core.metrics_url))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert!(
        text.contains(
            r#"redoubt_http_requests_total{method="GET",route="/api/v1/users",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"redoubt_http_requests_total{method="GET",route="/api/v1/users",status="401"} 1"#
    ));
    assert!(text.contains(r#"redoubt_objects{kind="user"} 1"#));
    assert!(text.contains("redoubt_database_up 1"));
    assert!(text.contains("redoubt_build_info{"));
    promtool_check(&text);
}

#[tokio::test]
async fn openapi_document_covers_every_resource() {
    let core = TestCore::start().await;
    let schema = reqwest::get(format!("{}/api/v1/schema.json", core.url))
        .await
        .expect("schema")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(schema["openapi"], "3.1.0");
    for path in [
        "/api/v1/users",
        "/api/v1/users/{id}/password",
        "/api/v1/users/{id}/totp",
        "/api/v1/groups/{id}/members",
        "/api/v1/applications/{id}/groups",
        "/api/v1/providers",
        "/api/v1/outposts/{id}/rotate-token",
        "/api/v1/tokens",
        "/api/v1/events",
        "/api/v1/outpost/credentials/verify",
        "/api/v1/auth/login",
    ] {
        assert!(
            schema["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(schema["components"]["schemas"].get("UserDto").is_some());
    assert!(
        schema["components"]["securitySchemes"]
            .get("bearer")
            .is_some()
    );
}

#[tokio::test]
async fn events_filter_by_action_actor_outcome_and_time() {
    let core = TestCore::start().await;
    core.api
        .post("/api/v1/users", json!({"username": "gina"}))
        .await
        .expect(201);
    core.clock.advance(3600);
    core.api
        .post("/api/v1/groups", json!({"name": "g"}))
        .await
        .expect(201);
    let creates = core
        .api
        .get("/api/v1/events?action=user_create&actor=admin")
        .await
        .expect(200);
    assert_eq!(creates["total"], 1);
    assert_eq!(creates["items"][0]["target"], "gina");
    assert_eq!(creates["items"][0]["source_address"], "127.0.0.1");
    let recent = core
        .api
        .get("/api/v1/events?since=2027-01-15T08:30:00Z")
        .await
        .expect(200);
    assert_eq!(
        recent["total"], 1,
        "only the group creation is after the cut: {recent}"
    );
    assert_eq!(recent["items"][0]["action"], "group_create");
    core.api
        .get("/api/v1/events?since=yesterday")
        .await
        .expect(400);
    assert_eq!(
        core.api
            .get("/api/v1/events?outcome=failure")
            .await
            .expect(200)["total"],
        0
    );
}
