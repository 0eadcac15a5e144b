//! The core's login and account pages, driven like a browser without JavaScript: cookies carried
//! by hand, forms posted as `application/x-www-form-urlencoded`.

use redoubt_core::auth::totp;
use redoubt_core::clock::Clock;
use redoubt_tests::TestCore;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

/// One answer as a browser sees it.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) body: String,
}

impl Page {
    /// The value of the hidden (or other) input named `name`.
    pub(crate) fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(
            self.body[start..end]
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    }
}

/// A cookie-carrying client that does not follow redirects.
pub(crate) struct Browser {
    pub(crate) base: String,
    client: reqwest::Client,
    pub(crate) cookies: BTreeMap<String, String>,
}

impl Browser {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser using `client` (which must not follow redirects), e.g. one trusting a CA.
    pub(crate) fn with_client(base: &str, client: reqwest::Client) -> Self {
        Self {
            base: base.to_owned(),
            client,
            cookies: BTreeMap::new(),
        }
    }

    fn url(&self, target: &str) -> String {
        if target.starts_with("http") {
            target.to_owned()
        } else {
            format!("{}{target}", self.base)
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie_header: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let request = if cookie_header.is_empty() {
            request
        } else {
            request.header("cookie", cookie_header.join("; "))
        };
        let response = request.send().await.expect("request reaches the core");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        for cookie in &set_cookies {
            let first = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = first.split_once('=') {
                if value.is_empty() || cookie.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    pub(crate) async fn get(&mut self, target: &str) -> Page {
        let request = self.client.get(self.url(target));
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, target: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(self.url(target))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Opens the login page and signs in with a password (no TOTP); returns the last answer.
    pub(crate) async fn login(
        &mut self,
        username: &str,
        password: &str,
        next: Option<&str>,
    ) -> Page {
        let form = self.get("/login").await;
        let csrf = form.field("csrf").expect("csrf field");
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", password),
        ];
        if let Some(next) = next {
            fields.push(("next", next));
        }
        self.post("/login", &fields).await
    }

    pub(crate) fn csrf(&self) -> String {
        self.cookies
            .get("redoubt_csrf")
            .or_else(|| self.cookies.get("__Host-redoubt_csrf"))
            .cloned()
            .unwrap_or_default()
    }
}

pub(crate) async fn create_user(core: &TestCore, username: &str, password: &str) -> i64 {
    core.api
        .post(
            "/api/v1/users",
            json!({"username": username, "name": "Alice Example", "email": format!("{username}@example.com"), "password": password}),
        )
        .await
        .expect(201)["id"]
        .as_i64()
        .expect("id")
}

/// Enrols TOTP through the admin API; returns the raw secret.
pub(crate) async fn enrol_totp(core: &TestCore, user_id: i64) -> Vec<u8> {
    let enrolled = core
        .api
        .post(
            &format!("/api/v1/users/{user_id}/totp"),
            json!({"name": "phone"}),
        )
        .await
        .expect(201);
    data_encoding::BASE32_NOPAD
        .decode(enrolled["secret"].as_str().expect("secret").as_bytes())
        .expect("base32")
}

pub(crate) fn code_at(secret: &[u8], now: i64) -> String {
    totp::hotp(secret, u64::try_from(totp::step_at(now)).expect("positive"))
}

#[tokio::test]
async fn login_page_is_accessible_and_sets_a_locked_down_session() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    let mut browser = Browser::new(&core.url);
    let form = browser.get("/login").await;
    assert_eq!(form.status, 200);
    for needle in [
        "<html lang=\"en\">",
        "<label for=\"username\">",
        "autocomplete=\"username\"",
        "<label for=\"password\">",
        "autocomplete=\"current-password\"",
        "type=\"password\"",
    ] {
        assert!(form.body.contains(needle), "missing {needle}");
    }
    let csrf_cookie = form
        .set_cookies
        .iter()
        .find(|c| c.starts_with("redoubt_csrf="))
        .expect("csrf cookie");
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));

    let done = browser.login("alice", "alice-password", None).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account"));
    let session = done
        .set_cookies
        .iter()
        .find(|c| c.starts_with("redoubt_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    assert!(session.contains("Max-Age=43200"));
    assert!(!session.contains("alice"), "the cookie is sealed");

    let account = browser.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(
        account
            .body
            .contains("<strong id=\"username\">alice</strong>")
    );
    let again = browser.get("/login").await;
    assert!(
        again
            .body
            .contains("You are signed in as <strong>alice</strong>")
    );

    // The attempt is an event of the shared credential check, from the TCP peer.
    let events = core
        .api
        .get("/api/v1/events?action=credential_check&target=alice")
        .await
        .expect(200);
    assert_eq!(events["items"][0]["actor"], "login");
    assert_eq!(events["items"][0]["outcome"], "success");
    assert_eq!(events["items"][0]["source_address"], "127.0.0.1");

    // A forged session cookie is just "not logged in".
    let mut forged = Browser::new(&core.url);
    forged.cookies.insert(
        "redoubt_session".into(),
        "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
    );
    let page = forged.get("/account").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/login?next=%2Faccount"));
}

#[tokio::test]
async fn bad_password_is_refused_with_an_alert_and_limits_are_shared() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    let mut browser = Browser::new(&core.url);
    let page = browser.login("alice", "wrong-password", None).await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("role=\"alert\""));
    assert!(
        page.body.contains("value=\"alice\""),
        "the username is kept"
    );
    assert!(!browser.cookies.contains_key("redoubt_session"));
    for _ in 0..4 {
        browser.login("alice", "wrong-password", None).await;
    }
    // Five failures from this address: the pair's lock now refuses even the right password.
    let locked = browser.login("alice", "alice-password", None).await;
    assert_eq!(locked.status, 429);
    assert!(locked.body.contains("Too many failed attempts"));
    let verify = core
        .api
        .get("/api/v1/events?action=credential_refused&target=alice")
        .await
        .expect(200);
    assert_eq!(verify["items"][0]["detail"]["reason"], "locked_pair");
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_refused() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    let mut browser = Browser::new(&core.url);
    browser.get("/login").await;
    let missing = browser
        .post(
            "/login",
            &[("username", "alice"), ("password", "alice-password")],
        )
        .await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("role=\"alert\""));
    assert!(!browser.cookies.contains_key("redoubt_session"));
    let wrong = browser
        .post(
            "/login",
            &[
                ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    // A cross-site form has no cookie at all.
    let mut stranger = Browser::new(&core.url);
    let forged = stranger
        .post(
            "/login",
            &[
                ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(!stranger.cookies.contains_key("redoubt_session"));
}

#[tokio::test]
async fn next_goes_only_to_local_paths() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    for (next, expected) in [
        ("https://evil.example/phish", "/account"),
        ("//evil.example/phish", "/account"),
        ("/\\evil.example", "/account"),
        (
            "/oauth/authorize?client_id=x",
            "/oauth/authorize?client_id=x",
        ),
    ] {
        let mut browser = Browser::new(&core.url);
        let page = browser.login("alice", "alice-password", Some(next)).await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location.as_deref(), Some(expected), "next={next}");
    }
    // The form itself never echoes a foreign next.
    let mut browser = Browser::new(&core.url);
    let form = browser.get("/login?next=https%3A%2F%2Fevil.example").await;
    assert_eq!(form.field("next").as_deref(), Some("/account"));
}

#[tokio::test]
async fn totp_users_give_a_code_in_a_second_step() {
    let core = TestCore::start().await;
    let user_id = create_user(&core, "alice", "alice-password").await;
    let secret = enrol_totp(&core, user_id).await;
    let mut browser = Browser::new(&core.url);
    let step = browser
        .login("alice", "alice-password", Some("/account"))
        .await;
    assert_eq!(step.status, 200, "{}", step.body);
    assert!(step.body.contains("autocomplete=\"one-time-code\""));
    assert!(step.body.contains("inputmode=\"numeric\""));
    assert!(
        !step.body.contains("alice-password"),
        "the password is not carried"
    );
    assert!(!browser.cookies.contains_key("redoubt_session"));
    let pending = step.field("pending").expect("pending token");
    let csrf = browser.csrf();

    let wrong = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("code", "000000"),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("role=\"alert\""));

    let code = code_at(&secret, core.clock.now());
    let done = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("code", &code),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(browser.cookies.contains_key("redoubt_session"));
    // The same code again (another browser) is a replay.
    let mut other = Browser::new(&core.url);
    let step = other.login("alice", "alice-password", None).await;
    let pending = step.field("pending").expect("pending");
    let csrf = other.csrf();
    let replay = other
        .post(
            "/login",
            &[("csrf", &csrf), ("pending", &pending), ("code", &code)],
        )
        .await;
    assert_eq!(replay.status, 401);

    // A pending token expires.
    core.clock.advance(301);
    let late = other
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("code", &code_at(&secret, core.clock.now())),
            ],
        )
        .await;
    assert_eq!(late.status, 400);
    assert!(late.body.contains("took too long"));
}

#[tokio::test]
async fn password_change_ends_other_sessions_and_keeps_this_one() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    let mut here = Browser::new(&core.url);
    let mut elsewhere = Browser::new(&core.url);
    here.login("alice", "alice-password", None).await;
    elsewhere.login("alice", "alice-password", None).await;
    core.clock.advance(1);
    let csrf = here.csrf();
    let mismatch = here
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "alice-password"),
                ("new_password", "new-password-1"),
                ("confirm_password", "other"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert!(mismatch.body.contains("do not match"));
    let wrong = here
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "nope-nope"),
                ("new_password", "new-password-1"),
                ("confirm_password", "new-password-1"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let no_csrf = here
        .post(
            "/account/password",
            &[
                ("current_password", "alice-password"),
                ("new_password", "new-password-1"),
                ("confirm_password", "new-password-1"),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    let changed = here
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "alice-password"),
                ("new_password", "new-password-1"),
                ("confirm_password", "new-password-1"),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(changed.body.contains("Your password has been changed"));
    assert_eq!(
        here.get("/account").await.status,
        200,
        "this browser stays signed in"
    );
    assert_eq!(
        elsewhere.get("/account").await.status,
        303,
        "the other session has ended"
    );
    assert_eq!(
        Browser::new(&core.url)
            .login("alice", "new-password-1", None)
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn totp_enrolment_shows_a_qr_code_and_needs_a_code() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    let mut browser = Browser::new(&core.url);
    browser.login("alice", "alice-password", None).await;
    let mut elsewhere = Browser::new(&core.url);
    elsewhere.login("alice", "alice-password", None).await;
    core.clock.advance(1);
    let csrf = browser.csrf();
    let page = browser.post("/account/totp", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<svg"), "a QR code");
    assert!(page.body.contains("otpauth://totp/Redoubt:alice?secret="));
    let secret_text = page
        .body
        .split("<code id=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("secret shown");
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_text.as_bytes())
        .expect("base32");
    let pending = page.field("pending").expect("pending");
    let wrong = browser
        .post(
            "/account/totp/confirm",
            &[("csrf", &csrf), ("pending", &pending), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("role=\"alert\""));
    let code = code_at(&secret, core.clock.now());
    let saved = browser
        .post(
            "/account/totp/confirm",
            &[("csrf", &csrf), ("pending", &pending), ("code", &code)],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("Authenticator apps set up: 1."));
    assert_eq!(browser.get("/account").await.status, 200);
    assert_eq!(elsewhere.get("/account").await.status, 303);
    // From now on a login asks for a code, and the enrolment code cannot be replayed.
    let mut next = Browser::new(&core.url);
    let step = next.login("alice", "alice-password", None).await;
    assert_eq!(step.status, 200);
    let pending = step.field("pending").expect("pending");
    let csrf = next.csrf();
    let replay = next
        .post(
            "/login",
            &[("csrf", &csrf), ("pending", &pending), ("code", &code)],
        )
        .await;
    assert_eq!(replay.status, 401);
    core.clock.advance(30);
    let ok = next
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("code", &code_at(&secret, core.clock.now())),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
}

#[tokio::test]
async fn logout_revokes_the_session() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    let mut browser = Browser::new(&core.url);
    browser.login("alice", "alice-password", None).await;
    let stolen = browser
        .cookies
        .get("redoubt_session")
        .cloned()
        .expect("session");
    let csrf = browser.csrf();
    let out = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 200);
    assert!(
        out.set_cookies
            .iter()
            .any(|c| c.starts_with("redoubt_session=;") && c.contains("Max-Age=0"))
    );
    assert!(!browser.cookies.contains_key("redoubt_session"));
    // The old cookie value no longer works either.
    let mut replay = Browser::new(&core.url);
    replay.cookies.insert("redoubt_session".into(), stolen);
    assert_eq!(replay.get("/account").await.status, 303);
}

#[tokio::test]
async fn disabled_users_lose_their_session() {
    let core = TestCore::start().await;
    let user_id = create_user(&core, "alice", "alice-password").await;
    let mut browser = Browser::new(&core.url);
    browser.login("alice", "alice-password", None).await;
    assert_eq!(browser.get("/account").await.status, 200);
    core.api
        .patch(
            &format!("/api/v1/users/{user_id}"),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    assert_eq!(browser.get("/account").await.status, 303);
}

#[tokio::test]
async fn over_https_cookies_are_secure() {
    let core = TestCore::start().await;
    let pem = std::fs::read(core.ca_file()).expect("certificate");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("pem")])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = client
        .get(format!("{}/login", core.https_url))
        .send()
        .await
        .expect("https");
    let csrf_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-redoubt_csrf="))
        .expect("csrf cookie")
        .to_owned();
    assert!(csrf_cookie.ends_with("; Secure"), "{csrf_cookie}");
    assert!(
        csrf_cookie.contains("; Path=/;") && !csrf_cookie.contains("Domain"),
        "{csrf_cookie}"
    );
    let doc: serde_json::Value = client
        .get(format!(
            "{}/.well-known/openid-configuration",
            core.https_url
        ))
        .send()
        .await
        .expect("https")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["issuer"], core.https_url);
}

fn https_client(core: &TestCore) -> reqwest::Client {
    let pem = std::fs::read(core.ca_file()).expect("certificate");
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("pem")])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn over_https_the_session_lives_in_host_prefixed_cookies_only() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    let mut browser = Browser::with_client(&core.https_url, https_client(&core));
    let page = browser.login("alice", "alice-password", None).await;
    assert_eq!(page.status, 303);
    let session = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-redoubt_session="))
        .expect("a __Host- session cookie");
    assert!(
        session.contains("; Path=/;")
            && session.ends_with("; Secure")
            && !session.contains("Domain"),
        "{session}"
    );
    assert!(
        browser.cookies.keys().all(|k| k.starts_with("__Host-")),
        "{:?}",
        browser.cookies
    );
    assert_eq!(browser.get("/account").await.status, 200);
    // The same value under the unprefixed name (as a sibling host or plain HTTP could set it)
    // is not a session over HTTPS.
    let value = browser
        .cookies
        .get("__Host-redoubt_session")
        .cloned()
        .expect("session");
    let mut planted = Browser::with_client(&core.https_url, https_client(&core));
    planted.cookies.insert("redoubt_session".into(), value);
    assert_eq!(planted.get("/account").await.status, 303);
    // Sign-out clears the prefixed cookie.
    let csrf = browser.csrf();
    let page = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert!(
        page.set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-redoubt_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        page.set_cookies
    );
    assert_eq!(browser.get("/account").await.status, 303);
}

/// Sends `request` (bytes) over a fresh TCP connection; returns the status code of the answer.
pub(crate) async fn raw_status(addr: &str, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&answer);
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"))
}

#[tokio::test]
async fn malformed_cookie_bytes_are_no_cookie_never_a_500() {
    let core = TestCore::start().await;
    create_user(&core, "alice", "alice-password").await;
    let mut browser = Browser::new(&core.url);
    browser.login("alice", "alice-password", None).await;
    let session = browser
        .cookies
        .get("redoubt_session")
        .cloned()
        .expect("session");
    let addr = core.url.trim_start_matches("http://").to_owned();
    let cookies: [&[u8]; 6] = [
        b"redoubt_session=\xff\xfe\x80; redoubt_csrf=\xc3\x28",
        b"redoubt_session=%zz%; redoubt_csrf=%",
        b"redoubt_session=\"unterminated; redoubt_csrf==",
        b"=; ;;; redoubt_session",
        b"redoubt_session=a\x7fb",
        b"redoubt_session=v1.\xf0\x9f\x92\xa9",
    ];
    for cookie in cookies {
        for (method, path) in [
            ("GET", "/login"),
            ("GET", "/account"),
            ("GET", "/oauth/end-session"),
            (
                "GET",
                "/oauth/authorize?response_type=code&client_id=x&redirect_uri=https%3A%2F%2Fa%2Fcb",
            ),
            ("POST", "/logout"),
            ("POST", "/account/password"),
        ] {
            let mut request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\nCookie: "
            )
            .into_bytes();
            request.extend_from_slice(cookie);
            request.extend_from_slice(b"\r\n\r\n");
            let status = raw_status(&addr, &request).await;
            assert!(
                status < 500,
                "{method} {path} with {:?}: {status}",
                String::from_utf8_lossy(cookie)
            );
            if path == "/account" {
                // 303 to the login page; 400 when the HTTP layer refuses the header itself
                // (control characters are not header octets).
                assert!(
                    matches!(status, 303 | 400),
                    "a malformed cookie is not a session: {status} for {:?}",
                    String::from_utf8_lossy(cookie)
                );
            }
        }
    }
    // A malformed neighbour does not hide a well-formed session cookie.
    let request = [
        format!("GET /account HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: junk=")
            .into_bytes(),
        b"\xff\xfe".to_vec(),
        format!("; redoubt_session={session}\r\n\r\n").into_bytes(),
    ]
    .concat();
    assert_eq!(raw_status(&addr, &request).await, 200);
}
