//! Losing the database: at start a readable error and a non-zero exit; at run time 503s and a
//! recovery without a restart.

use redoubt_tests::database::postgres_url;
use redoubt_tests::proxy::CuttableProxy;
use redoubt_tests::{CoreOptions, TestCore, core_binary};
use std::net::ToSocketAddrs;

#[tokio::test]
async fn unreachable_database_at_start_is_one_readable_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new(core_binary())
        .args([
            "serve",
            "--listen-http",
            "127.0.0.1:0",
            "--listen-metrics",
            "127.0.0.1:0",
            "--listen-https",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--database-url",
            "postgres://redoubt:hunter2@127.0.0.1:1/redoubt",
        ])
        .env("REDOUBT_LOG_LEVEL", "error")
        .output()
        .await
        .expect("run redoubt-core");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got:\n{stderr}");
    assert!(
        lines[0].starts_with(
            "error: cannot open the database postgres://redoubt:********@127.0.0.1:1/redoubt"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password must not be printed"
    );
}

#[tokio::test]
async fn database_lost_at_runtime_turns_ready_503_then_recovers() {
    let Some(server) = postgres_url() else {
        eprintln!(
            "SKIPPED on SQLite: runtime database loss needs a networked database (set REDOUBT_TEST_DATABASE_URL)"
        );
        return;
    };
    let parsed = url::Url::parse(&server).expect("url");
    let target = (
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(5432),
    )
        .to_socket_addrs()
        .expect("resolve")
        .next()
        .expect("address");
    let proxy = CuttableProxy::start(target).await;
    let proxy_addr = proxy.addr;
    let core = TestCore::start_with(CoreOptions {
        tweak: Some(Box::new(move |settings| {
            let mut url = url::Url::parse(&settings.database_url).expect("url");
            let _ = url.set_host(Some("127.0.0.1"));
            let _ = url.set_port(Some(proxy_addr.port()));
            settings.database_url = url.to_string();
        })),
    })
    .await;
    core.api.get("/api/v1/users").await.expect(200);
    proxy.cut();
    let ready = reqwest::get(format!("{}/-/health/ready", core.url))
        .await
        .expect("ready");
    assert_eq!(ready.status(), 503);
    let failed = core.api.get("/api/v1/users").await;
    assert!(matches!(failed.status.as_u16(), 503 | 401), "{failed:?}");
    let failed = core
        .api
        .post("/api/v1/users", serde_json::json!({"username": "lost"}))
        .await;
    assert!(matches!(failed.status.as_u16(), 503 | 401), "{failed:?}");
    proxy.restore();
    // The pool reconnects on demand: the next requests succeed without a restart.
    let mut recovered = false;
    for _ in 0..50 {
        let ready = reqwest::get(format!("{}/-/health/ready", core.url))
            .await
            .expect("ready");
        if ready.status() == 200 {
            recovered = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(recovered, "ready did not come back");
    core.api
        .post("/api/v1/users", serde_json::json!({"username": "back"}))
        .await
        .expect(201);
}
