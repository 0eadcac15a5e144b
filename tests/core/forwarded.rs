//! Proxy mode and forwarded headers, with real nginx in front: a client that spoofs
//! `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Host` or `Forwarded` cannot make the application
//! believe it, whether it goes through a trusted nginx (`proxy.trusted_proxies`) or straight
//! to the outpost, and the outpost's own session cookie never reaches the application.

use redoubt_tests::TestCore;
use redoubt_tests::peers::login_flow::{self, Credentials, HttpBrowser};
use redoubt_tests::peers::served::{echo_of, session_cookie, start_proxy_outpost_with};
use redoubt_tests::peers::upstream::Upstream;
use redoubt_tests::peers::{free_addr, nginx};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const HOST: &str = "app.redoubt.localhost";
/// The browser's own address: not a trusted proxy.
const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 7);

/// GETs `url` from [`CLIENT`] with `headers`, `HOST` resolved to the loopback: the echo.
async fn echo_from_client(url: &str, headers: &[(&str, &str)]) -> Value {
    redoubt_tests::peers::crypto();
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(CLIENT))
        .resolve(HOST, SocketAddr::from(([127, 0, 0, 1], 0)))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), 200, "{url}");
    echo_of(&response.text().await.expect("body"))
}

fn header<'a>(echo: &'a Value, name: &str) -> &'a str {
    echo["headers"][name].as_str().unwrap_or_default()
}

#[tokio::test]
async fn spoofed_forwarded_headers_and_the_session_cookie_never_reach_the_application() {
    if !nginx::available() {
        return;
    }
    let core = TestCore::start().await;
    let everyone = core.create_group("everyone").await;
    core.create_member(
        json!({"username": "bob", "name": "Bob", "email": "bob@example.com",
               "password": "bob-password-1"}),
        &[everyone],
    )
    .await;
    let upstream = Upstream::start().await.expect("upstream");
    let front = free_addr().expect("port");
    let app = format!("http://{HOST}:{}", front.port());
    let (provider_id, token) = core
        .create_served_provider(
            "proxy",
            "app",
            json!({"mode": "proxy", "external_host": app, "internal_host": upstream.url()}),
        )
        .await;
    let state = tempfile::tempdir().expect("state dir");
    // nginx reaches the outpost from 127.0.0.1, the one trusted proxy.
    let outpost = start_proxy_outpost_with(&core, &token, state.path(), |s| {
        s.proxy.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let direct = tokio::time::timeout(Duration::from_secs(20), outpost.listening("http"))
        .await
        .expect("the proxy listens");
    let conf = format!(
        "server {{\n\
           listen {front};\n\
           server_name {HOST};\n\
           location / {{\n\
             proxy_pass http://{direct};\n\
             proxy_set_header Host $http_host;\n\
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             proxy_set_header X-Real-IP $remote_addr;\n\
             proxy_set_header X-Forwarded-Proto $scheme;\n\
             proxy_set_header X-Forwarded-Host $http_host;\n\
           }}\n\
         }}\n"
    );
    let _nginx = nginx::Nginx::start(&conf, &[front], "1")
        .await
        .expect("nginx starts");
    let mut browser = HttpBrowser::new().expect("client");
    let page = login_flow::login(
        &mut browser,
        &format!("{app}/first"),
        &Credentials {
            username: "bob",
            password: "bob-password-1",
            totp: None,
        },
    )
    .await
    .expect("the login through nginx goes through");
    assert_eq!(page.status, 200, "{}", page.body);
    let session = session_cookie(&browser, provider_id);
    let cookie = format!("theme=dark; {session}; app=1");
    let spoofed = [
        ("cookie", cookie.as_str()),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=6.6.6.6"),
    ];

    // Through nginx (trusted): the chain is kept as evidence, the client is the address nginx
    // saw, and the host and scheme are nginx's.
    let echo = echo_from_client(&format!("{app}/via-nginx"), &spoofed).await;
    assert_eq!(echo["path"], "/via-nginx");
    assert_eq!(header(&echo, "x-redoubt-username"), "bob", "{echo}");
    assert_eq!(
        header(&echo, "x-forwarded-for"),
        format!("6.6.6.6, {CLIENT}, 127.0.0.1")
    );
    assert_eq!(header(&echo, "x-real-ip"), CLIENT.to_string());
    assert_eq!(
        header(&echo, "x-forwarded-host"),
        format!("{HOST}:{}", front.port())
    );
    assert_eq!(header(&echo, "x-forwarded-proto"), "http");
    assert_eq!(header(&echo, "cookie"), "theme=dark; app=1", "{echo}");

    // Straight to the outpost (untrusted): every claim replaced.
    let straight = format!("http://{HOST}:{}/direct", direct.port());
    let echo = echo_from_client(&straight, &spoofed).await;
    assert_eq!(echo["path"], "/direct");
    assert_eq!(header(&echo, "x-redoubt-username"), "bob", "{echo}");
    assert_eq!(header(&echo, "x-forwarded-for"), CLIENT.to_string());
    assert_eq!(header(&echo, "x-real-ip"), CLIENT.to_string());
    assert_eq!(
        header(&echo, "x-forwarded-host"),
        format!("{HOST}:{}", direct.port())
    );
    assert_eq!(header(&echo, "x-forwarded-proto"), "http");
    assert!(echo["headers"].get("forwarded").is_none(), "{echo}");
    assert_eq!(header(&echo, "cookie"), "theme=dark; app=1", "{echo}");
    outpost.stop().await;
}
