//! Bad input gets a clear problem+json answer.

use redoubt_tests::TestCore;
use serde_json::json;

#[tokio::test]
async fn malformed_bodies_name_the_problem() {
    let core = TestCore::start().await;
    let reply = core
        .api
        .post("/api/v1/users", json!({"username": "x", "nickname": "y"}))
        .await;
    assert_eq!(reply.content_type, "application/problem+json");
    let body = reply.expect(400);
    assert_eq!(body["type"], "https://redoubt.dev/problems/validation");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("nickname"),
        "{body}"
    );
    let missing = core
        .api
        .post("/api/v1/users", json!({"name": "no username"}))
        .await
        .expect(400);
    assert!(
        missing["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("username"),
        "{missing}"
    );
    let garbage = core
        .api
        .post_raw("/api/v1/users", b"{not json".to_vec())
        .await
        .expect(400);
    assert_eq!(garbage["status"], 400);
    let too_big = core
        .api
        .post_raw("/api/v1/users", vec![b' '; 2 * 1024 * 1024])
        .await;
    assert_eq!(too_big.status.as_u16(), 413, "{:?}", too_big.body);
    let bad_name = core
        .api
        .post("/api/v1/users", json!({"username": "a,b"}))
        .await
        .expect(400);
    assert!(
        bad_name["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("username")
    );
    let not_found = core.api.get("/api/v1/nothing-here").await.expect(404);
    assert_eq!(not_found["type"], "https://redoubt.dev/problems/not-found");
    core.api.get("/api/v1/users/not-a-number").await.expect(400);
    core.api
        .get("/api/v1/users?page_size=abc")
        .await
        .expect(400);
}

#[tokio::test]
async fn duplicates_conflict_even_when_racing() {
    let core = TestCore::start().await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let api = core.api.clone();
        tasks.push(tokio::spawn(async move {
            api.post("/api/v1/users", json!({"username": "racer"}))
                .await
                .status
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let users = core.api.get("/api/v1/users?search=racer").await.expect(200);
    assert_eq!(users["total"], 1);
    core.api
        .post("/api/v1/applications", json!({"slug": "app", "name": "A"}))
        .await
        .expect(201);
    let dup = core
        .api
        .post("/api/v1/applications", json!({"slug": "app", "name": "B"}))
        .await
        .expect(409);
    assert_eq!(dup["type"], "https://redoubt.dev/problems/conflict");
}

#[tokio::test]
async fn failed_multi_step_writes_leave_nothing_behind() {
    let core = TestCore::start().await;
    // The provider does not exist: the outpost, its links and its token must all be absent.
    core.api
        .post(
            "/api/v1/outposts",
            json!({"name": "ghost", "kind": "ldap", "provider_ids": [4242]}),
        )
        .await
        .expect(404);
    assert_eq!(
        core.api.get("/api/v1/outposts").await.expect(200)["total"],
        0
    );
    let tokens = core.api.get("/api/v1/tokens").await.expect(200);
    assert!(
        tokens
            .as_array()
            .expect("list")
            .iter()
            .all(|t| t["kind"] != "outpost")
    );
}
