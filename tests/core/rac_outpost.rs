//! The RAC outpost end to end with a real RDP server in-process (`ironrdp-server`, TLS and NLA)
//! and a Rust WebSocket client playing the browser: sign in through the outpost's single sign-on,
//! list and open a desktop, exact pixels, keys, Unicode, mouse, resize, clipboard both ways, a
//! revocation ending the connection within a second, wrong NLA credentials, a pinned key that
//! does not match, and malformed browser messages.

use redoubt_outpost_proto::rac::{BrowserMessage, EndReason};
use redoubt_tests::TestCore;
use redoubt_tests::peers::login_flow::{Credentials, HttpBrowser, login};
use redoubt_tests::peers::rdp_server::{
    InputEvent, RdpTestCredentials, RdpTestOptions, RdpTestSecurity, RdpTestServer, keys,
    pattern_rgb, unicode_text,
};
use redoubt_tests::peers::served::{listening, start_proxy_outpost};
use redoubt_tests::peers::{crypto, free_addr};
use redoubt_tests::rac_client::{RacClient, RacClientOptions};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USER: &str = "carol";
const PASSWORD: &str = "carol-Desk-Password-1";

/// A RAC provider for one endpoint, its outpost, and a signed-in browser.
struct Desk {
    provider_id: i64,
    user_id: i64,
    port: u16,
    origin: String,
    cookie: String,
    browser: HttpBrowser,
    _state: tempfile::TempDir,
    outpost: redoubt_outpost::RunningOutpost,
}

impl Desk {
    async fn open(core: &TestCore, endpoint: Value) -> Self {
        Self::open_with(core, endpoint, json!({})).await
    }

    /// [`Desk::open`] with more provider settings.
    async fn open_with(core: &TestCore, endpoint: Value, provider: Value) -> Self {
        crypto();
        let addr = free_addr().expect("free port");
        let origin = format!("http://desk.localhost:{}", addr.port());
        let mut settings = json!({"external_host": origin, "endpoints": [endpoint]});
        if let (Some(target), Some(extra)) = (settings.as_object_mut(), provider.as_object()) {
            target.extend(extra.clone());
        }
        let (provider_id, token) = core.create_served_provider("rac", "desk", settings).await;
        let user_id = core
            .create_member(json!({"username": USER, "password": PASSWORD}), &[])
            .await;
        let state = tempfile::tempdir().expect("state dir");
        let outpost = start_proxy_outpost(core, &token, state.path(), Some(addr)).await;
        // The module binds its listener after the first configuration: wait for it.
        listening(&outpost).await;
        let mut browser = HttpBrowser::new().expect("browser");
        let page = login(
            &mut browser,
            &format!("{origin}/"),
            &Credentials {
                username: USER,
                password: PASSWORD,
                totp: None,
            },
        )
        .await
        .expect("sign in through the outpost");
        assert!(
            page.body.contains("/rac/desk"),
            "the list offers the desktop: {}",
            page.body
        );
        let name = format!("redoubt_rac_{provider_id}");
        let cookie = browser
            .jar
            .get(&name)
            .map(|c| format!("{}={}", c.name, c.value))
            .unwrap_or_else(|| panic!("no {name} cookie"));
        Self {
            provider_id,
            user_id,
            port: addr.port(),
            origin,
            cookie,
            browser,
            _state: state,
            outpost,
        }
    }

    /// Opens the session page and returns its ticket.
    async fn ticket(&mut self) -> String {
        let page = self
            .browser
            .get(&format!("{}/rac/desk", self.origin))
            .await
            .expect("session page");
        assert_eq!(page.status, 200, "{}", page.body);
        let start = page
            .body
            .find("data-ticket=\"")
            .map(|i| i + "data-ticket=\"".len())
            .expect("a ticket on the page");
        let end = page.body[start..].find('"').expect("ticket end") + start;
        page.body[start..end].to_owned()
    }

    fn options(&self, ticket: &str) -> RacClientOptions {
        let mut options = RacClientOptions::new(
            &format!("ws://127.0.0.1:{}/rac/desk/ws?ticket={ticket}", self.port),
            &self.cookie,
            &self.origin,
        );
        options.host = format!("desk.localhost:{}", self.port);
        options
    }

    async fn connect(&mut self) -> RacClient {
        let ticket = self.ticket().await;
        RacClient::connect(self.options(&ticket))
            .await
            .expect("the WebSocket opens")
    }
}

fn endpoint(server: &RdpTestServer, extra: Value) -> Value {
    let mut endpoint = json!({
        "slug": "desk", "name": "Desk", "host": server.addr().to_string(),
        "auth_mode": "static", "lossless": true, "security": "tls",
    });
    if let (Some(target), Some(extra)) = (endpoint.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    endpoint
}

async fn set_credentials(core: &TestCore, provider_id: i64, username: &str, password: &str) {
    core.api
        .put(
            &format!("/api/v1/providers/{provider_id}/rac/endpoints/desk/credentials"),
            json!({"username": username, "password": password}),
        )
        .await
        .expect(204);
}

async fn events(core: &TestCore, action: &str) -> Vec<Value> {
    let listed = core
        .api
        .get(&format!("/api/v1/events?action={action}"))
        .await
        .expect(200);
    listed["items"].as_array().cloned().unwrap_or_default()
}

/// Samples of the known pattern the picture must show exactly.
fn samples(width: u16, height: u16) -> Vec<(u16, u16)> {
    vec![
        (5, 5),
        (width - 5, 5),
        (5, height / 2 + 5),
        (width - 5, height / 2 + 5),
        (width / 2, height - 3),
        (width / 2 + 1, height - 3),
        (width / 3, height - 9),
    ]
}

#[tokio::test]
async fn rac_shows_the_desktop_and_carries_input_resize_and_clipboard() {
    let core = TestCore::start().await;
    let server = RdpTestServer::start(RdpTestOptions::default())
        .await
        .expect("RDP server");
    let mut desk = Desk::open(&core, endpoint(&server, json!({}))).await;
    set_credentials(&core, desk.provider_id, "rdp-user", "rdp-pass").await;
    let client = desk.connect().await;
    let hello = client.wait_for_hello().await.expect("hello");
    assert_eq!((hello.width, hello.height), server.size());
    assert_eq!(hello.endpoint_name, "Desk");
    // Exact pixels of the known pattern.
    for (x, y) in samples(hello.width, hello.height) {
        let expected = pattern_rgb(hello.width, hello.height, x, y);
        client
            .wait_for_rgb(x, y, expected)
            .await
            .expect("the pattern");
    }
    // The static credentials reached the server's logon.
    let logon = server
        .credentials()
        .wait_for("the logon", |c| c.first().cloned())
        .await
        .expect("logon");
    assert_eq!(logon.username, "rdp-user");
    // A change on the server reaches the picture.
    server.push_fill(
        redoubt_tests::peers::rdp_server::Rect {
            x: 100,
            y: 100,
            width: 40,
            height: 30,
        },
        [0x12, 0x34, 0x56],
    );
    client
        .wait_for_rgb(120, 110, [0x12, 0x34, 0x56])
        .await
        .expect("the update");
    // Keys as scancodes, Unicode text, the mouse.
    server.input().clear();
    client.key_press("KeyA", "a").await.expect("key");
    client
        .key_press("ArrowLeft", "ArrowLeft")
        .await
        .expect("key");
    client.unicode("é").await.expect("unicode");
    client.mouse(300, 200, 1).await.expect("mouse down");
    client.mouse(300, 200, 0).await.expect("mouse up");
    let typed = server
        .input()
        .wait_for("keys, text and the mouse", |events| {
            let done = events
                .iter()
                .any(|e| matches!(e, InputEvent::Button { down: false, .. }));
            done.then(|| events.to_vec())
        })
        .await
        .expect("input");
    assert_eq!(
        keys(&typed),
        [
            (0x1E, false, true),
            (0x1E, false, false),
            (0x4B, true, true),
            (0x4B, true, false)
        ]
    );
    assert_eq!(unicode_text(&typed), "é");
    // Ctrl+Alt+Del from the toolbar, and AltGr (right Alt, extended) as the physical key.
    server.input().clear();
    client
        .send(&BrowserMessage::Special {
            combo: redoubt_outpost_proto::rac::SpecialCombo::CtrlAltDel,
        })
        .await
        .expect("ctrl+alt+del");
    client
        .key_press("AltRight", "AltGraph")
        .await
        .expect("altgr");
    let combo = server
        .input()
        .wait_for("ctrl+alt+del and altgr", |events| {
            (keys(events).len() >= 8).then(|| keys(events))
        })
        .await
        .expect("keys");
    assert_eq!(
        combo,
        [
            (0x1D, false, true),
            (0x38, false, true),
            (0x53, true, true),
            (0x53, true, false),
            (0x38, false, false),
            (0x1D, false, false),
            (0x38, true, true),
            (0x38, true, false),
        ]
    );
    assert!(
        typed.contains(&InputEvent::Move { x: 300, y: 200 }),
        "{typed:?}"
    );
    // Clipboard both ways.
    server.copy_on_remote("from the desk");
    client
        .wait_for_clipboard("from the desk")
        .await
        .expect("remote copy");
    client
        .clipboard("from the browser")
        .await
        .expect("clipboard");
    server
        .clipboard_received()
        .wait_for("the pasted text", |t| {
            t.iter().find(|t| *t == "from the browser").cloned()
        })
        .await
        .expect("browser copy reaches the server");
    // The desktop follows the browser's size.
    client.resize(1280, 720).await.expect("resize");
    server
        .layouts()
        .wait_for("the layout", |l| {
            l.iter()
                .find(|l| l.width == 1280 && l.height == 720)
                .copied()
        })
        .await
        .expect("layout request");
    client
        .wait_for("the new size", |v| {
            v.resizes.contains(&(1280, 720)).then_some(())
        })
        .await
        .expect("resized picture");
    for (x, y) in samples(1280, 720) {
        client
            .wait_for_rgb(x, y, pattern_rgb(1280, 720, x, y))
            .await
            .expect("the pattern at the new size");
    }
    // Revoking the user's sessions ends the connection within a second.
    let revoked = Instant::now();
    core.api
        .post(
            &format!("/api/v1/users/{}/sessions/revoke", desk.user_id),
            json!({}),
        )
        .await
        .expect(204);
    let (reason, message) = client.wait_for_ended().await.expect("ended");
    assert_eq!(reason, EndReason::Revoked, "{message}");
    // Typically tens of milliseconds; the bound leaves room for a loaded CI machine.
    assert!(
        revoked.elapsed() < Duration::from_millis(1500),
        "{:?}",
        revoked.elapsed()
    );
    // The metrics say what happened and pass promtool.
    let metrics = reqwest::get(format!("http://{}/metrics", desk.outpost.metrics_addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for line in [
        "redoubt_rac_connections_total{result=\"ok\"} 1",
        "redoubt_rac_disconnects_total{reason=\"revoked\"} 1",
        "redoubt_rac_connections_active 0",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(redoubt_tests::promtool_check(&metrics));
    // Audit events: granted, started (with the key fingerprint), ended.
    let started = events(&core, "rac_connection_started").await;
    assert!(
        started
            .iter()
            .any(|e| e.to_string().contains(server.public_key_sha256())),
        "{started:?}"
    );
    let ended = events(&core, "rac_connection_ended").await;
    assert!(!ended.is_empty());
    assert!(!events(&core, "rac_connection_granted").await.is_empty());
}

#[tokio::test]
async fn rac_nla_logs_on_and_refuses_wrong_credentials() {
    let core = TestCore::start().await;
    let server = RdpTestServer::start(RdpTestOptions {
        security: RdpTestSecurity::Nla(RdpTestCredentials::new("nla-user", "nla-pass")),
        ..RdpTestOptions::default()
    })
    .await
    .expect("RDP server");
    let mut desk = Desk::open(&core, endpoint(&server, json!({"security": "nla"}))).await;
    set_credentials(&core, desk.provider_id, "nla-user", "wrong-pass").await;
    let client = desk.connect().await;
    let (reason, message) = client.wait_for_ended().await.expect("ended");
    assert_eq!(reason, EndReason::AuthFailed, "{message}");
    assert!(message.contains("user name or password"), "{message}");
    let failed = events(&core, "rac_connection_failed").await;
    assert!(
        failed.iter().any(|e| e.to_string().contains("auth_failed")),
        "{failed:?}"
    );

    set_credentials(&core, desk.provider_id, "nla-user", "nla-pass").await;
    let client = desk.connect().await;
    let hello = client.wait_for_hello().await.expect("hello over NLA");
    let (x, y) = (5, 5);
    client
        .wait_for_rgb(x, y, pattern_rgb(hello.width, hello.height, x, y))
        .await
        .expect("the pattern over NLA");
}

#[tokio::test]
async fn rac_refuses_a_server_whose_key_is_not_the_pinned_one() {
    let core = TestCore::start().await;
    let server = RdpTestServer::start(RdpTestOptions::default())
        .await
        .expect("RDP server");
    let mut desk = Desk::open(
        &core,
        endpoint(
            &server,
            json!({"server_public_key_sha256": "00".repeat(32)}),
        ),
    )
    .await;
    set_credentials(&core, desk.provider_id, "rdp-user", "rdp-pass").await;
    let client = desk.connect().await;
    let (reason, message) = client.wait_for_ended().await.expect("ended");
    assert_eq!(reason, EndReason::Tls, "{message}");
    assert!(message.contains("pinned"), "{message}");
    assert!(
        server.credentials().snapshot().is_empty(),
        "no credentials were sent"
    );
}

#[tokio::test]
async fn rac_websocket_refuses_bad_tickets_origins_and_messages() {
    let core = TestCore::start().await;
    let server = RdpTestServer::start(RdpTestOptions::default())
        .await
        .expect("RDP server");
    let mut desk = Desk::open(&core, endpoint(&server, json!({}))).await;
    set_credentials(&core, desk.provider_id, "rdp-user", "rdp-pass").await;
    // Another origin, a forged ticket, a spent ticket.
    let ticket = desk.ticket().await;
    let mut foreign = desk.options(&ticket);
    foreign.origin = "http://evil.localhost".into();
    assert!(RacClient::connect(foreign).await.is_err());
    assert!(RacClient::connect(desk.options("forged")).await.is_err());
    // The refusals above spent nothing: the ticket works once, then never again.
    let client = RacClient::connect(desk.options(&ticket))
        .await
        .expect("the ticket opens the socket");
    client.wait_for_hello().await.expect("hello");
    assert!(
        RacClient::connect(desk.options(&ticket)).await.is_err(),
        "a spent ticket is refused"
    );
    // A malformed message closes the socket with 1007 and a reason.
    client.send_raw(vec![0x83, 1]).await.expect("send");
    let closed = client.wait_for_close().await.expect("closed");
    assert_eq!(closed.code, 1007, "{closed:?}");
    assert!(!closed.reason.is_empty());
    // An unknown message type: 1003.
    let client = desk.connect().await;
    client.wait_for_hello().await.expect("hello");
    client
        .send(&BrowserMessage::ReleaseAll)
        .await
        .expect("valid message");
    client.send_raw(vec![0x7f]).await.expect("send");
    assert_eq!(client.wait_for_close().await.expect("closed").code, 1003);
}

/// What the page sends in prompt mode for `typed-user`.
fn typed_credentials(password: &str) -> BrowserMessage {
    BrowserMessage::Credentials(redoubt_outpost_proto::rac::RdpCredentials {
        username: "typed-user".into(),
        domain: None,
        password: password.into(),
    })
}

#[tokio::test]
async fn rac_prompt_mode_idle_and_expiry_end_connections() {
    let core = TestCore::start().await;
    let typed = RdpTestCredentials::new("typed-user", "typed-pass");
    let server = RdpTestServer::start(RdpTestOptions {
        security: RdpTestSecurity::TlsRequiring(typed.clone()),
        ..RdpTestOptions::default()
    })
    .await
    .expect("RDP server");
    let mut desk = Desk::open_with(
        &core,
        endpoint(
            &server,
            json!({"auth_mode": "prompt", "username": "typed-user"}),
        ),
        json!({"idle_timeout_seconds": 1, "connection_expiry_seconds": 3}),
    )
    .await;
    // Prompt mode: the page sends the typed credentials first; they reach the logon.
    let client = desk.connect().await;
    client
        .send(&typed_credentials("typed-pass"))
        .await
        .expect("credentials");
    client
        .wait_for_hello()
        .await
        .expect("hello after the prompt");
    let logon = server
        .credentials()
        .wait_for("the logon", |c| c.first().cloned())
        .await
        .expect("logon");
    assert_eq!(logon.username, "typed-user");
    // No input for a second: idle.
    let (reason, message) = client.wait_for_ended().await.expect("ended");
    assert_eq!(reason, EndReason::Idle, "{message}");
    // Input all along: the connection lasts until its expiry.
    let client = desk.connect().await;
    client
        .send(&typed_credentials("typed-pass"))
        .await
        .expect("credentials");
    client.wait_for_hello().await.expect("hello");
    let started = Instant::now();
    let ended = loop {
        if let Some(ended) = client.view().ended {
            break ended;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no expiry");
        let _ = client.mouse(10, 10, 0).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ended.0, EndReason::Expired, "{}", ended.1);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Wrong typed credentials against a server that checks them: no desktop.
    let client = desk.connect().await;
    client
        .send(&typed_credentials("not-it"))
        .await
        .expect("credentials");
    let (reason, message) = client.wait_for_ended().await.expect("ended");
    assert!(
        matches!(
            reason,
            EndReason::AuthFailed | EndReason::Protocol | EndReason::Server
        ),
        "{reason:?}: {message}"
    );
}

#[tokio::test]
async fn rac_limits_lost_access_unreachable_servers_and_slow_browsers() {
    let core = TestCore::start().await;
    let server = RdpTestServer::start(RdpTestOptions::default())
        .await
        .expect("RDP server");
    let mut desk = Desk::open(&core, endpoint(&server, json!({"maximum_connections": 1}))).await;
    set_credentials(&core, desk.provider_id, "rdp-user", "rdp-pass").await;
    // Only members of `desk-users` may open it from now on; the user is one.
    let group = core.create_group("desk-users").await;
    core.api
        .post(
            &format!("/api/v1/groups/{group}/members"),
            json!({"user_id": desk.user_id}),
        )
        .await
        .expect(204);
    core.bind_group("desk", group).await;
    // A browser that stops drawing (no acks) gets at most two frames while the desktop keeps
    // changing; once it acknowledges, one frame brings the latest picture.
    let ticket = desk.ticket().await;
    let mut slow = desk.options(&ticket);
    slow.auto_ack = false;
    let client = RacClient::connect(slow).await.expect("socket");
    let hello = client.wait_for_hello().await.expect("hello");
    client
        .wait_for("the first frame", |v| (v.frames >= 1).then_some(()))
        .await
        .expect("a frame");
    for i in 0..40u8 {
        server.push_fill(
            redoubt_tests::peers::rdp_server::Rect {
                x: u16::from(i) * 10,
                y: 200,
                width: 10,
                height: 10,
            },
            [i, 0x80, 0x40],
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        client.view().frames <= 2,
        "{} frames without an ack",
        client.view().frames
    );
    let seq = client.view().last_seq.expect("a frame end");
    client.ack(seq).await.expect("ack");
    client
        .wait_for_rgb(395, 205, [39, 0x80, 0x40])
        .await
        .expect("the latest picture after the ack");
    assert!(hello.width > 0);
    // The endpoint's limit: a second connection is refused while the first lasts.
    let second = desk.connect().await;
    let (reason, message) = second.wait_for_ended().await.expect("refused");
    assert_eq!(reason, EndReason::LimitReached, "{message}");
    // Leaving the group ends the connection.
    core.api
        .delete(&format!("/api/v1/groups/{group}/members/{}", desk.user_id))
        .await
        .expect(204);
    let (reason, message) = client.wait_for_ended().await.expect("ended");
    assert_eq!(reason, EndReason::Denied, "{message}");
}

#[tokio::test]
async fn rac_says_what_to_fix_when_the_server_is_unreachable() {
    let core = TestCore::start().await;
    let closed = free_addr().expect("a port nobody listens on");
    let mut desk = Desk::open(
        &core,
        json!({"slug": "desk", "name": "Desk", "host": closed.to_string(), "auth_mode": "static"}),
    )
    .await;
    set_credentials(&core, desk.provider_id, "rdp-user", "rdp-pass").await;
    let client = desk.connect().await;
    let (reason, message) = client.wait_for_ended().await.expect("ended");
    assert_eq!(reason, EndReason::Unreachable, "{message}");
    assert!(message.contains("cannot be reached"), "{message}");
    let failed = events(&core, "rac_connection_failed").await;
    assert!(
        failed.iter().any(|e| e.to_string().contains("unreachable")),
        "{failed:?}"
    );
}
