//! The embedded proxy outpost: the core creates it, runs it in-process, and hands it the
//! requests for `/outpost.redoubt/` and for the hosts of its proxy-mode providers, while every
//! other request still reaches the core's own routes.

use redoubt_tests::{CoreOptions, TestCore};
use serde_json::json;
use std::time::{Duration, Instant};

async fn embedded_core() -> TestCore {
    TestCore::start_with(CoreOptions {
        tweak: Some(Box::new(|s| s.embedded_outpost.enabled = true)),
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Polls `probe` until it returns `Some`, for at most `limit`.
async fn within<T, F, Fut>(limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_core_runs_its_own_proxy_outpost() {
    let core = embedded_core().await;
    let http = client();
    // It exists as an ordinary proxy outpost, and connects.
    let outposts = core.api.get("/api/v1/outposts").await.expect(200);
    let embedded = outposts["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["name"] == "embedded")
        .cloned()
        .expect("the embedded outpost");
    assert_eq!(embedded["kind"], "proxy");
    let id = embedded["id"].as_i64().expect("id");
    within(Duration::from_secs(10), || async {
        let r = http
            .get(format!("{}/outpost.redoubt/ping", core.url))
            .send()
            .await
            .ok()?;
        (r.status() == 204).then_some(())
    })
    .await;
    // A proxy-mode provider on another host, attached to it.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = core.url.rsplit(':').next().expect("port").to_owned();
    let external = format!("http://app.localhost:{port}");
    let provider = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "app", "kind": "proxy", "settings": {
                "mode": "proxy", "external_host": external,
                "internal_host": format!("http://{}", upstream.local_addr().expect("addr")),
            }}),
        )
        .await
        .expect(201);
    let provider_id = provider["id"].as_i64().expect("id");
    core.api
        .post(
            "/api/v1/applications",
            json!({"slug": "app", "name": "App", "provider_id": provider_id}),
        )
        .await
        .expect(201);
    core.api
        .patch(
            &format!("/api/v1/outposts/{id}"),
            json!({"provider_ids": [provider_id]}),
        )
        .await
        .expect(200);
    // Requests for the app's host go to the outpost, which sends the browser to log in at the
    // core; requests for the core's own host still reach the core.
    let location = within(Duration::from_secs(5), || async {
        let r = http
            .get(format!("{}/some/page", core.url))
            .header("host", format!("app.localhost:{port}"))
            .send()
            .await
            .ok()?;
        if r.status() != 302 {
            return None;
        }
        r.headers()
            .get("location")?
            .to_str()
            .ok()
            .map(str::to_owned)
    })
    .await;
    assert!(
        location.starts_with(&format!("{external}/outpost.redoubt/start")),
        "{location}"
    );
    let app = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(
            "app.localhost",
            core.url[7..].parse().expect("core address"),
        )
        .build()
        .expect("client");
    let start = app.get(&location).send().await.expect("start");
    let authorize = start.headers()["location"].to_str().expect("location");
    assert!(
        authorize.contains("/oauth/authorize?")
            && authorize.contains(&format!("client_id=proxy-{provider_id}")),
        "{authorize}"
    );
    let info = core.api.get("/api/v1/info").await.expect(200);
    assert!(info["version"].is_string());
    let login = http
        .get(format!("{}/login", core.url))
        .send()
        .await
        .expect("login page");
    assert_eq!(login.status(), 200);
    // nginx configured without X-Original-URL: an error page (never a redirect) and, once, an
    // event in the core naming the problem.
    for _ in 0..3 {
        let r = http
            .get(format!("{}/outpost.redoubt/auth/nginx", core.url))
            .send()
            .await
            .expect("auth");
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
    }
    let events = within(Duration::from_secs(5), || async {
        let events = core
            .api
            .get("/api/v1/events?action=proxy_misconfigured")
            .await
            .expect(200);
        (events["total"] == 1).then_some(events)
    })
    .await;
    let event = &events["items"][0];
    assert_eq!(event["outcome"], "failure", "{event}");
    assert_eq!(event["detail"]["reverse_proxy"], "nginx", "{event}");
    // Its metrics are part of the core's, and valid.
    let metrics = http
        .get(format!("{}/metrics", core.metrics_url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("redoubt_proxy_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("redoubt_outpost_"), "{metrics}");
    assert!(redoubt_tests::promtool_check(&metrics));
}

#[tokio::test]
async fn switched_off_it_neither_exists_nor_answers() {
    let core = TestCore::start().await;
    let outposts = core.api.get("/api/v1/outposts").await.expect(200);
    assert_eq!(outposts["total"], 0);
    let r = client()
        .get(format!("{}/outpost.redoubt/ping", core.url))
        .send()
        .await
        .expect("ping");
    assert_eq!(r.status(), 404);
}
