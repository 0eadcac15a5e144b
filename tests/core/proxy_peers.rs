//! The proxy outpost behind real peers: Debian's nginx (`auth_request`) and Caddy
//! (`forward_auth`) running the configurations in `examples/`, an echo upstream that shows which
//! headers arrived, and headless Chromium walking the login through the core's pages.

use futures_util::{SinkExt, StreamExt};
use redoubt_core::auth::totp;
use redoubt_core::clock::{Clock, ManualClock};
use redoubt_tests::TestCore;
use redoubt_tests::peers::browser::Browser;
use redoubt_tests::peers::login_flow::{self, Credentials, HttpBrowser};
use redoubt_tests::peers::served::{
    Served, echo_of, get_with, listening, location, serve, session_cookie, start_proxy_outpost,
};
use redoubt_tests::peers::upstream::{BIG_CHUNK, BIG_DEFAULT, Upstream, big_byte};
use redoubt_tests::peers::{browser, caddy, free_addr, nginx};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

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
    let listen = free_addr().expect("port");
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
        let echo = browser_echo(&browser).await;
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

// ---------------------------------------------------------------------------------------------
// End to end: a core, a proxy outpost in-process, the peers in front of it, the echo upstream.

/// The test user: `alice`, password [`ALICE_PASSWORD`], in the group `staff`, with TOTP.
struct Alice {
    id: i64,
    secret: Vec<u8>,
    clock: ManualClock,
}

const ALICE_PASSWORD: &str = "alice-password-1";

impl Alice {
    async fn create(core: &TestCore) -> Self {
        let staff = core.create_group("staff").await;
        let id = core
            .create_member(
                json!({"username": "alice", "name": "Alice Liddell",
                       "email": "alice@example.com", "password": ALICE_PASSWORD}),
                &[staff],
            )
            .await;
        let enrolled = core
            .api
            .post(
                &format!("/api/v1/users/{id}/totp"),
                json!({"name": "phone"}),
            )
            .await
            .expect(201);
        let secret = data_encoding::BASE32_NOPAD
            .decode(enrolled["secret"].as_str().expect("secret").as_bytes())
            .expect("base32");
        Self {
            id,
            secret,
            clock: core.clock.clone(),
        }
    }

    /// A TOTP code for the next time step (a code is accepted once, so every login moves the
    /// core's clock on by one step first).
    fn next_code(&self) -> String {
        self.clock.advance(30);
        let step = totp::step_at(self.clock.now());
        totp::hotp(&self.secret, u64::try_from(step).expect("positive step"))
    }

    /// Logs in over HTTP starting at `url`; returns the last page and the client with the cookies.
    async fn login_http(&self, url: &str) -> (login_flow::Page, HttpBrowser) {
        let mut client = HttpBrowser::new().expect("client");
        let code = || self.next_code();
        let credentials = Credentials {
            username: "alice",
            password: ALICE_PASSWORD,
            totp: Some(&code),
        };
        let page = login_flow::login(&mut client, url, &credentials)
            .await
            .expect("the login goes through");
        (page, client)
    }

    /// Logs in with Chromium at `app_url` (which must send the browser to the core's login
    /// page) and waits until the browser is back on the application.
    async fn login_browser(&self, browser: &Browser, core: &TestCore, app_url: &str) {
        browser.goto(app_url).await.expect("open the app");
        let login_page = browser.current_url().await.expect("url");
        assert!(
            login_page.starts_with(&format!("{}/login", core.url)),
            "not sent to the login page: {login_page}"
        );
        let username = browser.find("input[name=username]").await.expect("field");
        browser.send_keys(&username, "alice").await.expect("type");
        let password = browser.find("input[type=password]").await.expect("field");
        browser
            .send_keys(&password, ALICE_PASSWORD)
            .await
            .expect("type");
        let submit = browser.find("button[type=submit]").await.expect("button");
        browser.click(&submit).await.expect("submit");
        // The second step asks for the code.
        let code = browser.find("input[name=code]").await.expect("TOTP field");
        browser
            .send_keys(&code, &self.next_code())
            .await
            .expect("type");
        let submit = browser.find("button[type=submit]").await.expect("button");
        browser.click(&submit).await.expect("submit");
        let origin = origin_of(app_url);
        browser
            .wait_for_url(Duration::from_secs(10), |u| u.starts_with(&origin))
            .await
            .expect("back at the application");
    }
}

/// The upstream's JSON echo shown in the browser (waiting for the page to be there).
async fn browser_echo(browser: &Browser) -> Value {
    browser
        .wait_for_text(|text| serde_json::from_str::<Value>(text.trim()).ok())
        .await
        .expect("the upstream's echo in the browser")
}

/// `scheme://host:port` of `url`.
fn origin_of(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("url");
    parsed.origin().ascii_serialization()
}

/// The upstream saw no identity header at all.
fn assert_no_identity(echo: &Value) {
    let headers = echo["headers"].as_object().expect("headers");
    let identity: Vec<&String> = headers
        .keys()
        .filter(|k| k.starts_with("x-redoubt-"))
        .collect();
    assert!(
        identity.is_empty(),
        "identity headers reached the upstream: {echo}"
    );
}

fn assert_identity(echo: &Value) {
    let headers = &echo["headers"];
    assert_eq!(headers["x-redoubt-username"], "alice", "{echo}");
    assert_eq!(headers["x-redoubt-email"], "alice@example.com", "{echo}");
    assert_eq!(headers["x-redoubt-name"], "Alice Liddell", "{echo}");
    assert!(
        headers["x-redoubt-groups"]
            .as_str()
            .is_some_and(|g| g.contains("staff")),
        "{echo}"
    );
    assert!(
        headers["x-redoubt-uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{echo}"
    );
}

/// Chromium through nginx `auth_request` (examples/nginx/redoubt.conf): the application sends
/// the browser to the core's login page; password, then TOTP; back at the application, which
/// receives the identity headers; skip paths need no login; sign-out ends the session.
#[tokio::test]
async fn chromium_logs_in_through_nginx_with_password_and_totp() {
    if !nginx::available() || !browser::available() {
        return;
    }
    let core = TestCore::start().await;
    let alice = Alice::create(&core).await;
    let upstream = Upstream::start().await.expect("upstream");
    let listen = free_addr().expect("port");
    let host = "app.redoubt.localhost";
    let app = format!("http://{host}:{}", listen.port());
    let served = serve(
        &core,
        "app",
        json!({"mode": "forward_single", "external_host": app,
               "skip_path_regex": ["^/public/"]}),
        None,
    )
    .await;
    let _nginx = nginx::Nginx::start_site(&nginx::Site {
        listen,
        server_name: host.into(),
        outpost: served.http,
        upstream: upstream.addr,
    })
    .await
    .expect("nginx starts");
    let browser = Browser::start().await.expect("chromium starts");

    alice
        .login_browser(&browser, &core, &format!("{app}/dashboard?tab=1"))
        .await;
    assert_eq!(
        browser.current_url().await.expect("url"),
        format!("{app}/dashboard?tab=1"),
        "back where the login started"
    );
    let echo = browser_echo(&browser).await;
    assert_eq!(echo["path"], "/dashboard");
    assert_eq!(echo["query"], "tab=1");
    assert_identity(&echo);
    let cookie = browser
        .cookie(&format!("redoubt_proxy_{}", served.provider_id))
        .await
        .expect("cookies")
        .expect("the outpost's session cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Lax", "{cookie}");

    // A skip path passes without a session and without identity headers, even ones the
    // client sent itself.
    let public = get_with(
        &format!("{app}/public/info"),
        None,
        &[
            ("X-Redoubt-Username", "mallory"),
            ("X-Redoubt-Groups", "admins"),
        ],
    )
    .await;
    assert_eq!(public.status(), 200);
    let echo = echo_of(&public.text().await.expect("body"));
    assert_eq!(echo["path"], "/public/info");
    assert_no_identity(&echo);
    // Anything else without a session goes to the start page.
    let anonymous = get_with(&format!("{app}/private"), None, &[]).await;
    assert_eq!(anonymous.status(), 302);
    assert!(
        location(&anonymous).starts_with(&format!("{app}/outpost.redoubt/start?rd=")),
        "{}",
        location(&anonymous)
    );

    // Sign-out: the core asks first (a GET changes nothing), then the session ends there and,
    // through the revocation, here; the app asks for a login again.
    browser
        .goto(&format!("{app}/outpost.redoubt/sign_out"))
        .await
        .expect("sign out");
    assert!(
        browser
            .body_text()
            .await
            .expect("text")
            .contains("Do you want to sign out"),
        "a confirmation page"
    );
    let confirm = browser.find("button[type=submit]").await.expect("button");
    browser.click(&confirm).await.expect("confirm");
    browser
        .wait_for_text(|text| (!text.contains("Do you want to sign out")).then_some(()))
        .await
        .expect("signed out");
    browser
        .goto(&format!("{app}/dashboard"))
        .await
        .expect("open");
    let url = browser.current_url().await.expect("url");
    assert!(
        url.starts_with(&format!("{}/login", core.url)),
        "still logged in after signing out: {url}"
    );
    browser.quit().await;
}

/// Through nginx with the session from an HTTP login: identity headers a client sends itself
/// never reach the application; the session survives an outpost restart (same token and
/// state dir), works on a second replica, and ends within a second of disabling the user.
#[tokio::test]
async fn sessions_survive_restarts_work_on_replicas_and_end_when_the_user_is_disabled() {
    if !nginx::available() {
        return;
    }
    let core = TestCore::start().await;
    let alice = Alice::create(&core).await;
    let upstream = Upstream::start().await.expect("upstream");
    let listen = free_addr().expect("port");
    let host = "app.redoubt.localhost";
    let app = format!("http://{host}:{}", listen.port());
    let served = serve(
        &core,
        "app",
        json!({"mode": "forward_single", "external_host": app}),
        None,
    )
    .await;
    let _nginx = nginx::Nginx::start_site(&nginx::Site {
        listen,
        server_name: host.into(),
        outpost: served.http,
        upstream: upstream.addr,
    })
    .await
    .expect("nginx starts");
    let (page, client) = alice.login_http(&format!("{app}/start-here")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.url.as_str(), format!("{app}/start-here"));
    assert_identity(&echo_of(&page.body));
    let cookie = session_cookie(&client, served.provider_id);

    // Spoofed identity headers are replaced or dropped.
    let spoofed = get_with(
        &format!("{app}/x"),
        Some(&cookie),
        &[
            ("X-Redoubt-Username", "mallory"),
            ("X-Redoubt-Groups", "admins"),
            ("X-authentik-username", "mallory"),
        ],
    )
    .await;
    assert_eq!(spoofed.status(), 200);
    let echo = echo_of(&spoofed.text().await.expect("body"));
    assert_identity(&echo);
    assert!(
        !echo["headers"]["x-redoubt-groups"]
            .to_string()
            .contains("admins")
    );
    let spoofed_anonymous = get_with(
        &format!("{app}/x"),
        None,
        &[("X-Redoubt-Username", "alice")],
    )
    .await;
    assert_eq!(spoofed_anonymous.status(), 302, "no session, no entry");

    // Restart: stop the outpost and start it again on the same port with the same token and
    // state; the same cookie still works.
    let Served {
        provider_id: _,
        token,
        state,
        outpost,
        http,
    } = served;
    outpost.stop().await;
    let restarted = start_proxy_outpost(&core, &token, state.path(), Some(http)).await;
    let after_restart = get_with(&format!("{app}/again"), Some(&cookie), &[]).await;
    assert_eq!(
        after_restart.status(),
        200,
        "the session survives a restart"
    );
    assert_identity(&echo_of(&after_restart.text().await.expect("body")));

    // A second replica (same token, own state dir and instance) accepts the same cookie.
    let replica_state = tempfile::tempdir().expect("state");
    let replica = start_proxy_outpost(&core, &token, replica_state.path(), None).await;
    let replica_http = listening(&replica).await;
    let checked = get_with(
        &format!("http://{replica_http}/outpost.redoubt/auth/nginx"),
        Some(&cookie),
        &[
            ("Host", host),
            ("X-Original-URL", &format!("{app}/replica")),
        ],
    )
    .await;
    assert_eq!(checked.status(), 200, "the replica accepts the session");
    assert_eq!(
        checked
            .headers()
            .get("x-redoubt-username")
            .and_then(|v| v.to_str().ok()),
        Some("alice")
    );

    // Disabling the user ends the session on every replica within a second.
    core.api
        .patch(
            &format!("/api/v1/users/{}", alice.id),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    let disabled_at = Instant::now();
    loop {
        let through_nginx = get_with(&format!("{app}/after"), Some(&cookie), &[]).await;
        let on_replica = get_with(
            &format!("http://{replica_http}/outpost.redoubt/auth/nginx"),
            Some(&cookie),
            &[("Host", host), ("X-Original-URL", &format!("{app}/after"))],
        )
        .await;
        if through_nginx.status() == 302 && on_replica.status() == 401 {
            break;
        }
        assert!(
            disabled_at.elapsed() < Duration::from_secs(1),
            "the session still works {:?} after disabling the user: nginx {}, replica {}",
            disabled_at.elapsed(),
            through_nginx.status(),
            on_replica.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replica.stop().await;
    restarted.stop().await;
}

/// Forged, tampered and foreign cookies count as no session (a login redirect, never a 500),
/// and the start page refuses to send anyone to a host it does not protect.
#[tokio::test]
async fn forged_cookies_and_open_redirects_are_refused() {
    if !nginx::available() {
        return;
    }
    let core = TestCore::start().await;
    let alice = Alice::create(&core).await;
    let upstream = Upstream::start().await.expect("upstream");
    let listen = free_addr().expect("port");
    let host = "app.redoubt.localhost";
    let app = format!("http://{host}:{}", listen.port());
    let served = serve(
        &core,
        "app",
        json!({"mode": "forward_single", "external_host": app}),
        None,
    )
    .await;
    let _nginx = nginx::Nginx::start_site(&nginx::Site {
        listen,
        server_name: host.into(),
        outpost: served.http,
        upstream: upstream.addr,
    })
    .await
    .expect("nginx starts");
    let (_, client) = alice.login_http(&format!("{app}/")).await;
    let cookie = session_cookie(&client, served.provider_id);
    let (name, value) = cookie.split_once('=').expect("name=value");
    let mut flipped = value.as_bytes().to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let forged = [
        format!("{name}={flipped}"),
        format!("{name}={}", &value[..value.len() / 2]),
        format!("{name}="),
        format!("{name}=%00%ff{}", "A".repeat(3000)),
        format!("{name}=not base64 at all!"),
        // Another provider's cookie name with this one's value.
        format!("redoubt_proxy_{}={value}", served.provider_id + 1),
    ];
    for forged in &forged {
        let response = get_with(&format!("{app}/secret"), Some(forged), &[]).await;
        assert_eq!(
            response.status(),
            302,
            "cookie `{forged}` is no session: {}",
            response.status()
        );
        assert!(location(&response).contains("/outpost.redoubt/start?rd="));
        let direct = get_with(
            &format!("http://{}/outpost.redoubt/auth/nginx", served.http),
            Some(forged),
            &[("Host", host), ("X-Original-URL", &format!("{app}/secret"))],
        )
        .await;
        assert_eq!(direct.status(), 401, "cookie `{forged}`");
    }
    // Forged or replayed login state at the callback: refused with a page, never a session.
    // A client in the middle of a login (it holds the outpost's login-state cookie).
    let mut mid_login = HttpBrowser::new().expect("client");
    let start = url::Url::parse(&format!("{app}/outpost.redoubt/start?rd={app}/")).expect("url");
    let started = mid_login.send(&start, None, &[]).await.expect("start");
    assert_eq!(started.status, 302);
    for query in [
        "code=made-up&state=forged".to_owned(),
        format!("code=made-up&state={}", "A".repeat(5000)),
        "state=&code=".to_owned(),
        "error=access_denied&state=x".to_owned(),
        String::new(),
    ] {
        let callback =
            url::Url::parse(&format!("{app}/outpost.redoubt/callback?{query}")).expect("url");
        let page = mid_login
            .send(&callback, None, &[])
            .await
            .expect("callback");
        assert!(
            page.status.is_client_error() || page.status.is_redirection(),
            "callback?{query} answered {}",
            page.status
        );
        assert!(
            mid_login
                .jar
                .get(&format!("redoubt_proxy_{}", served.provider_id))
                .is_none(),
            "callback?{query} opened a session"
        );
    }
    // The genuine cookie still works.
    let genuine = get_with(&format!("{app}/secret"), Some(&cookie), &[]).await;
    assert_eq!(genuine.status(), 200);

    // Open redirects: the start page never sends the browser to a host it does not protect,
    // neither at once nor after the login.
    for target in [
        "https://evil.example/",
        "//evil.example/",
        "http://evil.example@app.redoubt.localhost/",
        "javascript:alert(1)",
    ] {
        let start = format!(
            "{app}/outpost.redoubt/start?rd={}",
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        );
        let response = get_with(&start, None, &[]).await;
        let to = location(&response);
        assert!(
            response.status().as_u16() < 500 && !to.contains("evil.example"),
            "start?rd={target} answered {} to `{to}`",
            response.status()
        );
        // Completing the login from there lands on the application or an error page, never
        // off the machine (the client refuses to leave it, which would fail the login).
        let mut fresh = HttpBrowser::new().expect("client");
        let code = || alice.next_code();
        let credentials = Credentials {
            username: "alice",
            password: ALICE_PASSWORD,
            totp: Some(&code),
        };
        match login_flow::login(&mut fresh, &start, &credentials).await {
            Ok(page) => assert!(
                page.url.host_str() != Some("evil.example") && page.status.as_u16() < 500,
                "start?rd={target} ended at {} {}",
                page.status,
                page.url
            ),
            Err(error) => assert!(
                !error.to_string().contains("refusing to leave the machine"),
                "start?rd={target}: {error}"
            ),
        }
    }
}

/// `forward_domain` through Caddy (examples/caddy/Caddyfile): one login on app1 covers app2
/// under the same cookie domain.
#[tokio::test]
async fn forward_domain_through_caddy_covers_two_subdomains() {
    if !caddy::available() || !browser::available() {
        return;
    }
    let core = TestCore::start().await;
    let alice = Alice::create(&core).await;
    let upstream = Upstream::start().await.expect("upstream");
    let listen = free_addr().expect("port");
    let names = [
        "app1.redoubt.localhost".to_owned(),
        "app2.redoubt.localhost".to_owned(),
    ];
    let app1 = format!("http://{}:{}", names[0], listen.port());
    let app2 = format!("http://{}:{}", names[1], listen.port());
    let served = serve(
        &core,
        "apps",
        json!({"mode": "forward_domain", "external_host": app1,
               "cookie_domain": "redoubt.localhost", "skip_path_regex": ["^/health$"]}),
        None,
    )
    .await;
    let caddy = caddy::Caddy::start_sites(&caddy::Sites {
        listen,
        server_names: names.clone(),
        outpost: served.http,
        upstream: upstream.addr,
    })
    .await
    .expect("caddy starts");
    let browser = Browser::start().await.expect("chromium starts");
    alice
        .login_browser(&browser, &core, &format!("{app1}/one"))
        .await;
    let echo = browser_echo(&browser).await;
    assert_eq!(echo["path"], "/one", "{}", caddy.log());
    assert_identity(&echo);
    // app2: no login page, straight to the application with the same identity.
    browser
        .goto(&format!("{app2}/two"))
        .await
        .expect("open app2");
    assert_eq!(
        browser.current_url().await.expect("url"),
        format!("{app2}/two")
    );
    let echo = browser_echo(&browser).await;
    assert_eq!(
        echo["headers"]["host"],
        format!("{}:{}", names[1], listen.port())
    );
    assert_identity(&echo);
    // A client's own identity headers do not pass Caddy either.
    let cookie = browser
        .cookie(&format!("redoubt_proxy_{}", served.provider_id))
        .await
        .expect("cookies")
        .expect("session cookie");
    assert_eq!(cookie["domain"], ".redoubt.localhost", "{cookie}");
    let header = format!(
        "{}={}",
        cookie["name"].as_str().unwrap_or_default(),
        cookie["value"].as_str().unwrap_or_default()
    );
    let spoofed = get_with(
        &format!("{app2}/spoof"),
        Some(&header),
        &[
            ("X-Redoubt-Username", "mallory"),
            ("X-Redoubt-Jwt", "forged"),
        ],
    )
    .await;
    assert_eq!(spoofed.status(), 200);
    let echo = echo_of(&spoofed.text().await.expect("body"));
    assert_identity(&echo);
    assert_ne!(echo["headers"]["x-redoubt-jwt"], "forged");
    // On a skip path the outpost answers without identity: Caddy must not pass the client's.
    let public = get_with(
        &format!("{app2}/health"),
        None,
        &[
            ("X-Redoubt-Username", "mallory"),
            ("X-Redoubt-Email", "m@evil.example"),
        ],
    )
    .await;
    assert_eq!(public.status(), 200);
    assert_no_identity(&echo_of(&public.text().await.expect("body")));
    // Without a session Caddy sends the browser to log in.
    let anonymous = get_with(&format!("{app2}/private"), None, &[]).await;
    assert_eq!(anonymous.status(), 302, "{}", caddy.log());
    browser.quit().await;
}

/// Proxy mode: the outpost is the reverse proxy. A WebSocket and a large streamed body pass
/// through it after the login; oversized headers get 431.
#[tokio::test]
async fn proxy_mode_carries_websockets_and_streams_and_refuses_oversized_headers() {
    let core = TestCore::start().await;
    let alice = Alice::create(&core).await;
    let upstream = Upstream::start().await.expect("upstream");
    let listen = free_addr().expect("port");
    let host = format!("proxied.redoubt.localhost:{}", listen.port());
    let app = format!("http://{host}");
    let served = serve(
        &core,
        "proxied",
        json!({"mode": "proxy", "external_host": app, "internal_host": upstream.url()}),
        Some(listen),
    )
    .await;
    let (page, client) = alice.login_http(&format!("{app}/first")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let echo = echo_of(&page.body);
    assert_eq!(echo["path"], "/first");
    assert_identity(&echo);
    let cookie = session_cookie(&client, served.provider_id);

    // WebSocket echo through the outpost.
    let stream = tokio::net::TcpStream::connect(served.http)
        .await
        .expect("connect");
    let mut request = format!("ws://{host}/ws")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    let (mut socket, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("the WebSocket upgrade passes the outpost");
    assert_eq!(response.status(), 101);
    for i in 0..3 {
        let text = format!("message {i}");
        socket
            .send(Message::text(text.clone()))
            .await
            .expect("send");
        let reply = socket.next().await.expect("reply").expect("message");
        assert_eq!(reply.into_text().expect("text").as_str(), text);
    }
    socket
        .send(Message::binary(vec![7u8; 100_000]))
        .await
        .expect("send");
    let reply = socket.next().await.expect("reply").expect("message");
    assert_eq!(reply.into_data().len(), 100_000);
    let _ = socket.close(None).await;
    // Without a session the upgrade does not reach the upstream.
    let stream = tokio::net::TcpStream::connect(served.http)
        .await
        .expect("connect");
    let anonymous = tokio_tungstenite::client_async(
        format!("ws://{host}/ws")
            .into_client_request()
            .expect("request"),
        stream,
    )
    .await;
    assert!(anonymous.is_err(), "an anonymous WebSocket was let through");

    // A streamed body of 8 MiB arrives whole.
    let big = get_with(&format!("{app}/big"), Some(&cookie), &[]).await;
    assert_eq!(big.status(), 200);
    let body = big.bytes().await.expect("body");
    assert_eq!(body.len(), BIG_DEFAULT);
    assert!(body.iter().enumerate().all(|(i, b)| *b == big_byte(i)));

    // An oversized header: 431, from the outpost itself.
    let huge = "a".repeat(128 * 1024);
    let response = get_with(&format!("{app}/x"), Some(&cookie), &[("X-Huge", &huge)]).await;
    assert_eq!(response.status(), 431);
}

/// A malformed cookie at the proxy outpost (non-UTF-8 bytes, quotes, a forged session under the
/// right name) is no cookie: the browser is sent to sign in, never a 500, and the upstream is
/// never reached.
#[tokio::test]
async fn malformed_cookie_bytes_at_the_proxy_are_no_cookie() {
    let core = TestCore::start().await;
    let upstream = Upstream::start().await.expect("upstream");
    let host = "app.redoubt.localhost:8080";
    let served = serve(
        &core,
        "app",
        json!({"mode": "proxy", "external_host": format!("http://{host}"),
               "internal_host": format!("http://{}", upstream.addr)}),
        None,
    )
    .await;
    let name = format!("redoubt_proxy_{}", served.provider_id);
    let addr = served.http.to_string();
    let cookies: Vec<Vec<u8>> = vec![
        [name.as_bytes(), b"=\xff\xfe\x80".as_slice()].concat(),
        [
            name.as_bytes(),
            b"=\"unterminated; other=\xc3\x28".as_slice(),
        ]
        .concat(),
        [name.as_bytes(), b"=v1.%zz%; =; ;;".as_slice()].concat(),
        [
            b"junk=\xff; ".as_slice(),
            name.as_bytes(),
            b"=not-a-sealed-session".as_slice(),
        ]
        .concat(),
    ];
    for cookie in &cookies {
        let request = [
            format!("GET /private HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nCookie: ")
                .into_bytes(),
            cookie.clone(),
            b"\r\n\r\n".to_vec(),
        ]
        .concat();
        let status = crate::login::raw_status(&addr, &request).await;
        assert_eq!(
            status,
            302,
            "{:?}: expected the sign-in redirect",
            String::from_utf8_lossy(cookie)
        );
    }
}
