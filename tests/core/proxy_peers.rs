//! The proxy outpost behind real peers: Debian's nginx (`auth_request`) and Caddy
//! (`forward_auth`) running the configurations in `examples/`, an echo upstream that shows which
//! headers arrived, and headless Chromium walking the login through the core's pages.

use redoubt_tests::peers::upstream::{BIG_CHUNK, Upstream, big_byte};
use redoubt_tests::peers::{browser, caddy, nginx};
use serde_json::Value;
use std::net::SocketAddr;

/// A loopback address that is not listening (the outpost in configuration checks).
fn placeholder_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

#[tokio::test]
async fn the_nginx_example_passes_nginx_t() {
    if !nginx::available() {
        return;
    }
    let site = nginx::Site {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        server_name: "app.redoubt.localhost".into(),
        outpost: placeholder_addr(),
        upstream: placeholder_addr(),
    };
    let conf = nginx::site_conf(&site).expect("placeholders in the example");
    let (ok, output) = nginx::check(&conf).await.expect("nginx -t runs");
    assert!(
        ok,
        "nginx -t refused examples/nginx/redoubt.conf:\n{output}"
    );
    // And a broken one is refused, so the check can fail.
    let (ok, _) = nginx::check(&conf.replace("auth_request ", "auth_requets "))
        .await
        .expect("nginx -t runs");
    assert!(!ok, "nginx -t accepted an unknown directive");
}

#[tokio::test]
async fn the_caddy_example_is_adapted_by_caddy() {
    if !caddy::available() {
        return;
    }
    let sites = caddy::Sites {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        server_names: [
            "app1.redoubt.localhost".into(),
            "app2.redoubt.localhost".into(),
        ],
        outpost: placeholder_addr(),
        upstream: placeholder_addr(),
    };
    let caddyfile = caddy::site_caddyfile(&sites).expect("placeholders in the example");
    let (ok, output) = caddy::check(&caddyfile).await.expect("caddy adapt runs");
    assert!(
        ok,
        "caddy adapt refused examples/caddy/Caddyfile:\n{output}"
    );
    let json: Value = serde_json::from_str(&output).expect("caddy adapt prints JSON");
    // The client's identity headers are deleted before forward_auth copies the outpost's in.
    let text = json.to_string();
    let delete = text.find(r#""delete":["X-Redoubt-Username"]"#);
    let copy = text.find("{http.reverse_proxy.header.X-Redoubt-Username}");
    assert!(
        matches!((delete, copy), (Some(d), Some(c)) if d < c),
        "request_header must run before forward_auth: {text}"
    );
    let (ok, _) = caddy::check(&caddyfile.replace("forward_auth", "forward_oath"))
        .await
        .expect("caddy adapt runs");
    assert!(!ok, "caddy adapt accepted an unknown directive");
}

/// The forward_domain tests rely on Chromium resolving `*.localhost` to the loopback address
/// and keeping a cookie for the parent domain; this shows it does, through nginx to the echo
/// upstream (WebSocket and a streamed body included).
#[tokio::test]
async fn chromium_reaches_subdomains_of_localhost_through_nginx() {
    if !nginx::available() || !browser::available() {
        return;
    }
    let upstream = Upstream::start().await.expect("upstream");
    let listen = nginx::Nginx::free_addr().expect("port");
    let conf = format!(
        "map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}\n\
         server {{ listen {listen}; location / {{ proxy_pass http://{up}; proxy_http_version 1.1;\n\
         proxy_set_header Host $http_host; proxy_set_header Upgrade $http_upgrade;\n\
         proxy_set_header Connection $connection_upgrade; }} }}",
        up = upstream.addr
    );
    let server = nginx::Nginx::start(&conf, &[listen], "1")
        .await
        .expect("nginx starts");
    let browser = browser::Browser::start().await.expect("chromium starts");
    for host in ["app1.redoubt.localhost", "app2.redoubt.localhost"] {
        let url = format!("http://{host}:{}/hello?x=1", listen.port());
        browser.goto(&url).await.expect("navigate");
        let text = browser.body_text().await.expect("text");
        let echo: Value = serde_json::from_str(&text).expect("the echo's JSON");
        assert_eq!(echo["path"], "/hello");
        assert_eq!(echo["query"], "x=1");
        assert_eq!(echo["headers"]["host"], format!("{host}:{}", listen.port()));
        if host.starts_with("app1") {
            browser
                .add_cookie(serde_json::json!({"name": "shared", "value": "1",
                                                "domain": "redoubt.localhost"}))
                .await
                .expect("cookie");
        } else {
            assert_eq!(echo["headers"]["cookie"], "shared=1", "{echo}");
        }
    }
    // A WebSocket and a large streamed body through nginx to the upstream.
    let ws_url = format!("ws://{listen}/ws");
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("websocket through nginx");
    use futures_util::{SinkExt, StreamExt};
    socket
        .send(tokio_tungstenite::tungstenite::Message::text("ping 1"))
        .await
        .expect("send");
    let reply = socket.next().await.expect("reply").expect("message");
    assert_eq!(reply.into_text().expect("text").as_str(), "ping 1");
    let size = 3 * BIG_CHUNK + 17;
    let body = reqwest::get(format!("http://{listen}/big?bytes={size}"))
        .await
        .expect("big")
        .bytes()
        .await
        .expect("body");
    assert_eq!(body.len(), size);
    assert!(body.iter().enumerate().all(|(i, b)| *b == big_byte(i)));
    browser.quit().await;
    drop(server);
}
