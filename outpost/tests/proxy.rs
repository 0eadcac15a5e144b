//! The proxy module over real sockets: a real upstream (echoing the headers and body it gets,
//! and a WebSocket echo), a stand-in for the core's token and introspection endpoints (checking
//! the client's Basic credentials, the PKCE verifier and the redirect URI, and signing nothing: the
//! outpost reads the ID token it gets straight from the core), and the module started the way the
//! runtime starts it, so configurations with revocations and rotated keys are applied directly.

#![cfg(feature = "proxy")]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use data_encoding::BASE64URL_NOPAD;
use futures_util::{SinkExt, StreamExt};
use redoubt_outpost::apply::ChangeSummary;
use redoubt_outpost::core_api::CoreApi;
use redoubt_outpost::module::{self, ModuleContext, ProtocolModule};
use redoubt_outpost::proxy::ProxyService;
use redoubt_outpost::settings::OutpostSettings;
use redoubt_outpost_proto::config::{
    ConfigSnapshot, OutpostConfig, OutpostInfo, OutpostKind, ProviderConfig,
};
use redoubt_outpost_proto::session::{SessionConfig, SessionKey, SessionRevocation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const TOKEN: &str = "rdt_proxy_outpost_token";
const LIMIT: Duration = Duration::from_secs(10);

fn key(id: u32, byte: u8) -> SessionKey {
    SessionKey {
        id,
        key: BASE64URL_NOPAD.encode(&[byte; 32]),
    }
}

/// The date the outpost under test reads (its clock is injected): 2027-01-15, whatever today is.
const NOW: i64 = 1_800_000_000;

fn now_s() -> i64 {
    NOW
}

/// Codes the stand-in core will redeem: code -> (nonce, PKCE challenge, redirect URI).
type Codes = Arc<Mutex<HashMap<String, (String, String, String)>>>;

#[derive(Clone)]
struct FakeCore {
    codes: Codes,
    issuer: String,
}

fn basic_ok(headers: &HeaderMap, client: &str) -> bool {
    let expected = format!(
        "Basic {}",
        data_encoding::BASE64.encode(format!("{client}:{TOKEN}").as_bytes())
    );
    headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes())
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn id_token(claims: Value) -> String {
    format!(
        "{}.{}.signature",
        BASE64URL_NOPAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#),
        BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
    )
}

async fn token(State(core): State<FakeCore>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let form = form(&body);
    let client = form.get("client_id").cloned().unwrap_or_default();
    if !basic_ok(&headers, &client) || client == "proxy-2" {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        );
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let Some((nonce, challenge, redirect_uri)) = core.codes.lock().expect("lock").remove(&code)
    else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        );
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let computed = BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()));
    if computed != challenge
        || form.get("redirect_uri") != Some(&redirect_uri)
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        );
    }
    let now = now_s();
    let token = id_token(json!({
        "iss": core.issuer, "aud": client, "exp": now + 300, "iat": now, "nonce": nonce,
        "sub": "42", "preferred_username": "alice", "name": "Alice Liddell",
        "email": "alice@example.com", "groups": ["staff", "admins"], "sid": "core-session-1",
        "auth_time": now, "auth_time_ms": now * 1000,
    }));
    (
        StatusCode::OK,
        axum::Json(
            json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": token}),
        ),
    )
}

async fn introspect(headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let form = form(&body);
    if !basic_ok(&headers, "proxy-1") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        );
    }
    let answer = match form.get("token").map(String::as_str) {
        Some("good-api-token") => {
            json!({"active": true, "client_id": "proxy-1", "exp": now_s() + 600,
            "sub": "43", "preferred_username": "robot", "groups": ["api"]})
        }
        Some("other-client-token") => {
            json!({"active": true, "client_id": "grafana", "exp": now_s() + 600,
            "sub": "44", "preferred_username": "mallory"})
        }
        _ => json!({"active": false}),
    };
    (StatusCode::OK, axum::Json(answer))
}

/// Echoes what it got: method, path, headers (as JSON) and the body length; `/ws` echoes
/// WebSocket messages; `/slow` answers after 3 s.
async fn echo(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut map = serde_json::Map::new();
    for (name, value) in &headers {
        map.insert(
            name.as_str().to_owned(),
            json!(String::from_utf8_lossy(value.as_bytes())),
        );
    }
    axum::Json(
        json!({"method": method.as_str(), "uri": uri.to_string(), "headers": map, "body_len": body.len()}),
    )
}

async fn ws(upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.next().await {
            if let WsMessage::Text(text) = message {
                let _ = socket
                    .send(WsMessage::Text(format!("echo: {text}").into()))
                    .await;
            }
        }
    })
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn snapshot(revision: i64, upstream: SocketAddr, sessions: SessionConfig) -> ConfigSnapshot {
    let provider = |id: i64, settings: Value| ProviderConfig {
        id,
        name: format!("p{id}"),
        kind: OutpostKind::Proxy,
        settings,
        application: None,
    };
    ConfigSnapshot {
        revision,
        config: OutpostConfig {
            outpost: OutpostInfo {
                id: 1,
                name: "proxy-1".into(),
                kind: OutpostKind::Proxy,
                settings: Value::Null,
            },
            providers: vec![
                provider(
                    1,
                    json!({"mode": "proxy", "external_host": "http://app.test",
                           "internal_host": format!("http://{upstream}"),
                           "skip_path_regex": ["^/public/"], "authentik_headers": true,
                           "accept_header_auth": true, "upstream_timeout_seconds": 1}),
                ),
                provider(
                    2,
                    json!({"mode": "forward_single", "external_host": "https://single.test"}),
                ),
                provider(
                    3,
                    json!({"mode": "forward_domain", "external_host": "https://auth.corp.test",
                           "cookie_domain": "corp.test"}),
                ),
                provider(
                    4,
                    json!({"mode": "proxy", "external_host": "http://down.test",
                           "internal_host": "http://127.0.0.1:1"}),
                ),
            ],
            directory: None,
            sessions: Some(sessions),
        },
    }
}

struct Harness {
    service: ProxyService,
    module: Arc<dyn ProtocolModule>,
    http: SocketAddr,
    https: Option<SocketAddr>,
    registry: prometheus::Registry,
    codes: Codes,
    upstream: SocketAddr,
    client: reqwest::Client,
    _stop: watch::Sender<bool>,
}

async fn harness(sessions: SessionConfig) -> Harness {
    harness_with(sessions, |_| {}).await
}

async fn harness_with(
    sessions: SessionConfig,
    adjust: impl FnOnce(&mut OutpostSettings),
) -> Harness {
    let codes: Codes = Arc::default();
    let core = serve(
        Router::new()
            .route("/oauth/token", post(token))
            .route("/oauth/introspect", post(introspect))
            .with_state(FakeCore {
                codes: codes.clone(),
                issuer: "http://id.test".into(),
            }),
    )
    .await;
    let upstream = serve(
        Router::new()
            .route("/ws", get(ws))
            .route("/slow", get(slow))
            .fallback(any(echo))
            .layer(axum::extract::DefaultBodyLimit::disable()),
    )
    .await;
    let mut settings = OutpostSettings {
        url: format!("http://{core}"),
        token: TOKEN.into(),
        ..OutpostSettings::default()
    };
    settings.listen.http = "127.0.0.1:0".into();
    settings.listen.https = "127.0.0.1:0".into();
    adjust(&mut settings);
    let tls = redoubt_outpost::tls::client_config("", false).expect("tls");
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .expect("client");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let registry = prometheus::Registry::new();
    let (listening, mut listening_rx) = watch::channel(module::Listening::new());
    let (stop, stop_rx) = watch::channel(false);
    let (proxy_service, mut service_rx) = watch::channel(None);
    let events_dir = tempfile::tempdir().expect("tempdir").keep();
    let (_connected_tx, connected) = watch::channel(false);
    let events = redoubt_outpost::event_queue::start(
        &events_dir,
        1 << 20,
        CoreApi::new(http.clone(), &settings.url, TOKEN),
        Arc::new(redoubt_outpost_proto::clock::ManualClock::new(NOW)),
        &registry,
        connected,
        stop_rx.clone(),
    )
    .expect("event queue")
    .queue;
    let context = ModuleContext {
        core: CoreApi::new(http, &settings.url, TOKEN),
        settings,
        registry: registry.clone(),
        listening,
        stop: stop_rx,
        proxy_service,
        external: Vec::new(),
        instance_id: "test".into(),
        clock: Arc::new(redoubt_outpost_proto::clock::ManualClock::new(NOW)),
        contact: Default::default(),
        events,
        background: Arc::default(),
    };
    let module = module::start(
        OutpostKind::Proxy,
        context,
        Arc::new(snapshot(1, upstream, sessions)),
    )
    .await
    .expect("start")
    .expect("the proxy module is compiled in");
    let http = *tokio::time::timeout(LIMIT, listening_rx.wait_for(|l| l.contains_key("http")))
        .await
        .expect("bound")
        .expect("listening")
        .get("http")
        .expect("http");
    let https = listening_rx.borrow().get("https").copied();
    let service = tokio::time::timeout(LIMIT, service_rx.wait_for(Option::is_some))
        .await
        .expect("published")
        .expect("service")
        .clone()
        .expect("service");
    Harness {
        service,
        module,
        http,
        https,
        registry,
        codes,
        upstream,
        client,
        _stop: stop,
    }
}

fn sessions(keys: Vec<SessionKey>, revocations: Vec<SessionRevocation>) -> SessionConfig {
    SessionConfig {
        keys,
        revocations,
        core_public_url: Some("http://id.test".into()),
    }
}

impl Harness {
    fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("http://{}{path}", self.http))
            .header("host", host)
    }

    /// Walks a login for `host` returning to `rd`: start, the core's part (recording the code),
    /// callback. Returns the session cookie (`name=value`).
    async fn login(&self, host: &str, rd: &str) -> String {
        let start = self
            .get(
                host,
                &format!("/outpost.redoubt/start?rd={}", urlencode(rd)),
            )
            .send()
            .await
            .expect("start");
        assert_eq!(start.status(), 302);
        let state_cookie = set_cookies(start.headers())
            .into_iter()
            .find(|c| c.starts_with("redoubt_proxy_state_"))
            .expect("state cookie");
        assert!(state_cookie.contains("Path=/outpost.redoubt/callback"));
        assert!(state_cookie.contains("HttpOnly"));
        let authorize = url::Url::parse(location(&start)).expect("authorize url");
        assert_eq!(authorize.origin().ascii_serialization(), "http://id.test");
        assert_eq!(authorize.path(), "/oauth/authorize");
        let q: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
        assert!(q["client_id"].starts_with("proxy-"));
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        self.codes.lock().expect("lock").insert(
            "code-1".into(),
            (
                q["nonce"].clone(),
                q["code_challenge"].clone(),
                q["redirect_uri"].clone(),
            ),
        );
        let callback = url::Url::parse(&q["redirect_uri"]).expect("redirect uri");
        let response = self
            .get(
                callback.host_str().expect("host"),
                &format!(
                    "{}?code=code-1&state={}",
                    callback.path(),
                    urlencode(&q["state"])
                ),
            )
            .header("cookie", cookie_pair(&state_cookie))
            .send()
            .await
            .expect("callback");
        assert_eq!(response.status(), 302, "{:?}", response.text().await);
        assert_eq!(location(&response), rd);
        let cookies = set_cookies(response.headers());
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with("redoubt_proxy_state_") && c.contains("Max-Age=0")),
            "the state cookie is deleted"
        );
        let session = cookies
            .into_iter()
            .find(|c| c.starts_with("redoubt_proxy_") && !c.starts_with("redoubt_proxy_state_"))
            .expect("session cookie");
        assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
        cookie_pair(&session)
    }

    fn metrics(&self) -> String {
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut text)
            .expect("encode");
        text
    }
}

/// `promtool check metrics` on `text`; skipped (with a note) when promtool is missing, unless
/// `REDOUBT_REQUIRE_PEERS=1`.
fn promtool_check(text: &str) {
    use std::io::Write;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            assert!(
                std::env::var("REDOUBT_REQUIRE_PEERS").as_deref() != Ok("1"),
                "promtool is required but missing: {error}"
            );
            eprintln!("SKIPPED promtool check: promtool not installed ({error})");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii")
}

fn set_cookies(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

#[tokio::test]
async fn proxy_mode_logs_in_passes_identity_streams_and_upgrades() {
    let h = harness(sessions(vec![key(1, 1)], vec![])).await;
    // Not logged in: to the login start, never a loop.
    let r = h.get("app.test", "/page?x=1").send().await.expect("get");
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        "http://app.test/outpost.redoubt/start?rd=http%3A%2F%2Fapp.test%2Fpage%3Fx%3D1"
    );
    // Skip paths pass without login, with spoofed identity headers removed.
    let r = h
        .get("app.test", "/public/logo.png")
        .header("x-redoubt-username", "root")
        .header("X-authentik-username", "root")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.expect("json");
    assert!(
        echoed["headers"].get("x-redoubt-username").is_none(),
        "{echoed}"
    );
    assert!(echoed["headers"].get("x-authentik-username").is_none());

    let cookie = h.login("app.test", "http://app.test/page?x=1").await;
    let r = h
        .get("app.test", "/page?x=1")
        .header("cookie", &cookie)
        .header("x-redoubt-username", "root")
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.expect("json");
    let headers = &echoed["headers"];
    assert_eq!(echoed["uri"], "/page?x=1");
    assert_eq!(headers["x-redoubt-username"], "alice");
    assert_eq!(headers["x-redoubt-groups"], "staff,admins");
    assert_eq!(headers["x-redoubt-email"], "alice@example.com");
    assert_eq!(headers["x-redoubt-name"], "Alice Liddell");
    assert_eq!(headers["x-redoubt-uid"], "42");
    assert_eq!(headers["x-authentik-username"], "alice");
    assert!(
        headers["x-redoubt-jwt"]
            .as_str()
            .expect("jwt")
            .ends_with(".signature")
    );
    // The client is no trusted proxy: the X-Forwarded-For it sent is replaced, not extended.
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "app.test");
    assert_eq!(headers["host"], h.upstream.to_string());

    // A request body of 8 MiB reaches the upstream whole (the outpost streams it through).
    let r = h
        .client
        .post(format!("http://{}/upload", h.http))
        .header("host", "app.test")
        .header("cookie", &cookie)
        .body(vec![b'x'; 8 * 1024 * 1024])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["body_len"], 8 * 1024 * 1024);
    assert_eq!(echoed["method"], "POST");

    // HTTP/2 without TLS (prior knowledge): the `:authority` picks the provider.
    let h2 = reqwest::Client::builder()
        .tls_backend_preconfigured(
            (*redoubt_outpost::tls::client_config("", false).expect("tls")).clone(),
        )
        .http2_prior_knowledge()
        .resolve("app.test", h.http)
        .build()
        .expect("client");
    let r = h2
        .get(format!("http://app.test:{}/h2", h.http.port()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("h2 get");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["headers"]["x-redoubt-username"], "alice");
    assert_eq!(
        echoed["headers"]["x-forwarded-host"],
        format!("app.test:{}", h.http.port())
    );

    // A WebSocket through proxy mode.
    let stream = tokio::net::TcpStream::connect(h.http)
        .await
        .expect("connect");
    let request = tokio_tungstenite::tungstenite::http::Request::builder()
        .uri("ws://app.test/ws")
        .header("host", "app.test")
        .header("cookie", &cookie)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .expect("request");
    let (mut socket, response) =
        tokio::time::timeout(LIMIT, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("in time")
            .expect("upgraded");
    assert_eq!(response.status(), 101);
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            "hello".into(),
        ))
        .await
        .expect("send");
    let reply = tokio::time::timeout(LIMIT, socket.next())
        .await
        .expect("in time")
        .expect("message")
        .expect("ok");
    assert_eq!(reply.into_text().expect("text").as_str(), "echo: hello");

    // Upstream failures are clean pages.
    let r = h
        .get("app.test", "/slow")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 504);
    let r = h.get("nowhere.test", "/").send().await.expect("get");
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("body").contains("nowhere.test"));

    let metrics = h.metrics();
    promtool_check(&metrics);
    for needle in [
        "redoubt_proxy_requests_total{mode=\"proxy\",result=\"allowed\"}",
        "redoubt_proxy_requests_total{mode=\"proxy\",result=\"upstream_timeout\"}",
        "redoubt_proxy_logins_total{result=\"success\"} 1",
        "redoubt_proxy_upstream_duration_seconds_count",
    ] {
        assert!(metrics.contains(needle), "{needle} missing");
    }
}

#[tokio::test]
async fn refused_logins_and_a_dead_upstream_are_clean_pages() {
    let h = harness(sessions(vec![key(1, 1)], vec![])).await;
    // The stand-in core refuses client proxy-2: the exchange fails, a clean page, no cookie.
    let start = h
        .get("single.test", "/outpost.redoubt/start")
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), 302);
    let state_cookie = set_cookies(start.headers())
        .into_iter()
        .find(|c| c.starts_with("redoubt_proxy_state_2_"))
        .expect("state cookie");
    assert!(state_cookie.contains("Secure"), "https external host");
    let authorize = url::Url::parse(location(&start)).expect("url");
    let q: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "proxy-2");
    assert_eq!(
        q["redirect_uri"],
        "https://single.test/outpost.redoubt/callback"
    );
    h.codes.lock().expect("lock").insert(
        "c".into(),
        (
            q["nonce"].clone(),
            q["code_challenge"].clone(),
            q["redirect_uri"].clone(),
        ),
    );
    let callback = |state: &str, cookie: &str| {
        h.get(
            "single.test",
            &format!(
                "/outpost.redoubt/callback?code=c&state={}",
                urlencode(state)
            ),
        )
        .header("cookie", cookie.to_owned())
        .send()
    };
    let r = callback(&q["state"], &cookie_pair(&state_cookie))
        .await
        .expect("callback");
    assert_eq!(r.status(), 502);
    assert!(set_cookies(r.headers()).is_empty());
    // Without the browser's state cookie, or with a forged state: refused, never a 500.
    let r = callback(&q["state"], "other=1").await.expect("callback");
    assert_eq!(r.status(), 400);
    let mut forged = q["state"].clone();
    let last = forged.pop().expect("char");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let r = callback(&forged, &cookie_pair(&state_cookie))
        .await
        .expect("callback");
    assert_eq!(r.status(), 400);
    let r = callback("garbage", "").await.expect("callback");
    assert_eq!(r.status(), 400);
    // A state for another provider does not open here.
    let r = h
        .get(
            "app.test",
            &format!(
                "/outpost.redoubt/callback?code=c&state={}",
                urlencode(&q["state"])
            ),
        )
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), 400);

    // A logged-in user of a provider whose upstream is down gets a 502 page.
    let cookie = h.login("down.test", "http://down.test/").await;
    let r = h
        .get("down.test", "/")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 502);
    assert!(r.text().await.expect("body").contains("cannot be reached"));
    let metrics = h.metrics();
    assert!(metrics.contains("redoubt_proxy_logins_total{result=\"refused\"} 1"));
    assert!(metrics.contains("redoubt_proxy_logins_total{result=\"bad_state\"} 4"));
    assert!(
        metrics
            .contains("redoubt_proxy_requests_total{mode=\"proxy\",result=\"upstream_error\"} 1")
    );
    let _ = h.module.kind();
}

#[tokio::test]
async fn forward_auth_per_reverse_proxy() {
    let h = harness(sessions(vec![key(1, 1)], vec![])).await;
    let auth = |path: &str| h.get("outpost.internal:9000", path);
    // nginx: 401 without a session; X-Original-URL names the app.
    let r = auth("/outpost.redoubt/auth/nginx")
        .header("x-original-url", "https://single.test/admin?x=1")
        .send()
        .await
        .expect("nginx");
    assert_eq!(r.status(), 401);
    // Traefik and Caddy: a redirect to the start on the app's host.
    for flavour in ["traefik", "caddy"] {
        let r = auth(&format!("/outpost.redoubt/auth/{flavour}"))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "single.test")
            .header("x-forwarded-uri", "/admin?x=1")
            .send()
            .await
            .expect("forward");
        assert_eq!(r.status(), 302, "{flavour}");
        assert_eq!(
            location(&r),
            "https://single.test/outpost.redoubt/start?rd=https%3A%2F%2Fsingle.test%2Fadmin%3Fx%3D1"
        );
    }
    // Envoy: the original path follows the endpoint, the host is the Host.
    let r = h
        .get("wiki.corp.test", "/outpost.redoubt/auth/envoy/docs?page=2")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("envoy");
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        "https://wiki.corp.test/outpost.redoubt/start?rd=https%3A%2F%2Fwiki.corp.test%2Fdocs%3Fpage%3D2"
    );
    // A request that does not say where the user was going: a clear 400 page, no redirect.
    let r = auth("/outpost.redoubt/auth/traefik")
        .send()
        .await
        .expect("bad");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("body").contains("X-Forwarded-Proto"));
    // An unknown host: 404 naming it.
    let r = auth("/outpost.redoubt/auth/nginx")
        .header("x-original-url", "https://stranger.test/")
        .send()
        .await
        .expect("unknown");
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("body").contains("stranger.test"));
    // Open redirects are refused at the start.
    for rd in [
        "https://evil.test/",
        "https://single.test.evil.test/",
        "//evil.test/",
    ] {
        let r = h
            .get(
                "single.test",
                &format!("/outpost.redoubt/start?rd={}", urlencode(rd)),
            )
            .send()
            .await
            .expect("start");
        assert_eq!(r.status(), 400, "{rd}");
        assert!(r.headers().get("location").is_none());
    }
    // forward_domain: log in on one subdomain, the cookie is for the whole domain and works on
    // another.
    let cookie = h
        .login("wiki.corp.test", "https://wiki.corp.test/start-page")
        .await;
    let r = auth("/outpost.redoubt/auth/nginx")
        .header("x-original-url", "https://git.corp.test/repo")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("nginx");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-redoubt-username"], "alice");
    assert_eq!(r.headers()["x-redoubt-groups"], "staff,admins");
    assert!(r.headers().get("x-authentik-username").is_none());
    // The same cookie is no good for another provider.
    let r = auth("/outpost.redoubt/auth/nginx")
        .header("x-original-url", "https://single.test/")
        .header(
            "cookie",
            cookie.replace("redoubt_proxy_3", "redoubt_proxy_2"),
        )
        .send()
        .await
        .expect("nginx");
    assert_eq!(r.status(), 401);
    // Forged, truncated and garbage cookies are logged out, never a 500.
    let value = cookie.split_once('=').expect("pair").1;
    for bad in [
        format!("redoubt_proxy_3={}", &value[..value.len() - 4]),
        format!("redoubt_proxy_3={}x", value),
        "redoubt_proxy_3=1.AAAA".to_owned(),
        "redoubt_proxy_3=%%%".to_owned(),
    ] {
        let r = auth("/outpost.redoubt/auth/nginx")
            .header("x-original-url", "https://git.corp.test/repo")
            .header("cookie", &bad)
            .send()
            .await
            .expect("nginx");
        assert_eq!(r.status(), 401, "{bad}");
    }
    // Sign-out changes nothing itself (a GET): it goes to the core's end-session with the ID
    // token, whose confirmed POST revokes the session everywhere.
    let r = h
        .get("wiki.corp.test", "/outpost.redoubt/sign_out")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("sign out");
    assert_eq!(r.status(), 302);
    assert!(
        location(&r)
            .starts_with("http://id.test/oauth/end-session?client_id=proxy-3&id_token_hint=")
    );
    assert!(
        set_cookies(r.headers()).is_empty(),
        "a GET clears no cookie"
    );
    // Ping.
    let r = auth("/outpost.redoubt/ping").send().await.expect("ping");
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn revocations_rotation_and_header_auth() {
    let h = harness(sessions(vec![key(1, 1)], vec![])).await;
    let cookie = h.login("app.test", "http://app.test/").await;
    let nginx = |cookie: &str| {
        h.get("outpost", "/outpost.redoubt/auth/nginx")
            .header("x-original-url", "http://app.test/x")
            .header("cookie", cookie.to_owned())
            .send()
    };
    assert_eq!(nginx(&cookie).await.expect("auth").status(), 200);
    // Key rotation: the old cookie still works and comes back sealed with the new key.
    h.module.apply(
        Arc::new(snapshot(
            2,
            h.upstream,
            sessions(vec![key(2, 2), key(1, 1)], vec![]),
        )),
        &ChangeSummary::snapshot(),
    );
    let r = nginx(&cookie).await.expect("auth");
    assert_eq!(r.status(), 200);
    let resealed = cookie_pair(&set_cookies(r.headers())[0]);
    assert!(resealed.starts_with("redoubt_proxy_1=2."), "{resealed}");
    // The old key leaves: only the resealed cookie works.
    h.module.apply(
        Arc::new(snapshot(3, h.upstream, sessions(vec![key(2, 2)], vec![]))),
        &ChangeSummary::snapshot(),
    );
    assert_eq!(nginx(&cookie).await.expect("auth").status(), 401);
    assert_eq!(nginx(&resealed).await.expect("auth").status(), 200);
    // A sign-out of another core session changes nothing; of this one, ends it at once.
    let revoke = |sid: Option<&str>| SessionRevocation {
        user_id: 42,
        session_id: sid.map(str::to_owned),
        revoked_at_ms: now_s() * 1000 + 1000,
    };
    let mut summary = ChangeSummary::default();
    summary.revoked_sessions.insert(42);
    h.module.apply(
        Arc::new(snapshot(
            4,
            h.upstream,
            sessions(vec![key(2, 2)], vec![revoke(Some("other"))]),
        )),
        &summary,
    );
    assert_eq!(nginx(&resealed).await.expect("auth").status(), 200);
    h.module.apply(
        Arc::new(snapshot(
            5,
            h.upstream,
            sessions(vec![key(2, 2)], vec![revoke(Some("other")), revoke(None)]),
        )),
        &summary,
    );
    assert_eq!(nginx(&resealed).await.expect("auth").status(), 401);
    let metrics = h.metrics();
    assert!(
        metrics.contains("redoubt_proxy_session_revocations_total 2"),
        "{metrics}"
    );
    assert!(metrics.contains("redoubt_proxy_sessions_rejected_total{reason=\"revoked\"} 1"));
    assert!(metrics.contains("redoubt_proxy_sessions_rejected_total{reason=\"unknown_key\"} 1"));

    // Bearer tokens (accept_header_auth on provider 1): introspected, only this client's.
    let bearer = |token: &str| {
        h.get("app.test", "/api")
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    let r = bearer("good-api-token").await.expect("bearer");
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["headers"]["x-redoubt-username"], "robot");
    let r = bearer("good-api-token").await.expect("cached");
    assert_eq!(r.status(), 200);
    assert_eq!(bearer("other-client-token").await.expect("b").status(), 401);
    assert_eq!(bearer("nonsense").await.expect("b").status(), 401);
    let metrics = h.metrics();
    assert!(
        metrics.contains("redoubt_proxy_header_auth_total{result=\"cached\",scheme=\"bearer\"} 1"),
        "{metrics}"
    );

    // Oversized headers: 431.
    let r = h
        .get("app.test", "/")
        .header("x-big", "a".repeat(100 * 1024))
        .send()
        .await
        .expect("big");
    assert_eq!(r.status(), 431);
}

#[tokio::test]
async fn https_with_a_certificate_serves_http2_and_marks_requests_secure() {
    let plain = harness(sessions(vec![key(1, 1)], vec![])).await;
    assert_eq!(plain.https, None, "no certificate: no HTTPS listener");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["app.test".to_owned()]).expect("cert");
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.cert.pem()).expect("write");
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).expect("write");
    let h = harness_with(sessions(vec![key(1, 1)], vec![]), |s| {
        s.tls.cert_file = cert_file.display().to_string();
        s.tls.key_file = key_file.display().to_string();
    })
    .await;
    let https = h.https.expect("HTTPS listener");
    let tls =
        redoubt_outpost::tls::client_config(&cert_file.display().to_string(), false).expect("tls");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .resolve("app.test", https)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = client
        .get(format!("https://app.test:{}/public/x", https.port()))
        .send()
        .await
        .expect("https");
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.expect("json");
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn the_service_answers_in_process() {
    let h = harness(sessions(vec![key(1, 1)], vec![])).await;
    let request = axum::http::Request::builder()
        .uri("/outpost.redoubt/auth/nginx")
        .header("x-original-url", "https://single.test/")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = h
        .service
        .handle(request, "192.0.2.1:1234".parse().expect("addr"))
        .await;
    assert_eq!(response.status(), 401);
    let request = axum::http::Request::builder()
        .uri("/page")
        .header("host", "app.test")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = h
        .service
        .handle(request, "192.0.2.1:1234".parse().expect("addr"))
        .await;
    assert_eq!(response.status(), 302);
}
