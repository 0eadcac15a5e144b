//! The core's OpenID Connect provider over real HTTP: discovery, JWKS and key rotation, the
//! authorization code flow with PKCE, client authentication (basic, post, public, proxy
//! outposts), refresh rotation and reuse detection, UserInfo, introspection, revocation and
//! RP-initiated logout; then an independent relying party (Python authlib) against it.

use crate::login::Browser;
use redoubt_core::oidc::{jwt, keys, pkce};
use redoubt_tests::{CoreOptions, TEST_EPOCH, TestCore};
use serde_json::{Value, json};

const REDIRECT: &str = "https://app.example/callback";
const LOGOUT_TARGET: &str = "https://app.example/bye";

/// A registered relying party.
pub(crate) struct Rp {
    client_id: String,
    secret: Option<String>,
    provider_id: i64,
    application_id: i64,
}

async fn register(core: &TestCore, client_id: &str, public: bool) -> Rp {
    let created = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": client_id, "kind": "oidc", "settings": {
                "client_id": client_id,
                "client_type": if public { "public" } else { "confidential" },
                "redirect_uris": [REDIRECT],
                "post_logout_redirect_uris": [LOGOUT_TARGET],
            }}),
        )
        .await
        .expect(201);
    let provider_id = created["id"].as_i64().expect("id");
    let app = core
        .api
        .post(
            "/api/v1/applications",
            json!({"slug": client_id, "name": client_id, "provider_id": provider_id}),
        )
        .await
        .expect(201);
    Rp {
        client_id: client_id.to_owned(),
        secret: created["client_secret"].as_str().map(str::to_owned),
        provider_id,
        application_id: app["id"].as_i64().expect("id"),
    }
}

fn random_verifier() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("random");
    data_encoding::BASE64URL_NOPAD.encode(&bytes)
}

pub(crate) fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .expect("absolute redirect")
        .query_pairs()
        .into_owned()
        .collect()
}

/// Runs the browser part of the flow; returns the code.
async fn authorize(browser: &mut Browser, rp: &Rp, scope: &str, challenge: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &rp.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1");
    if let Some(challenge) = challenge {
        query
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
    }
    let page = browser
        .get(&format!("/oauth/authorize?{}", query.finish()))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.location.expect("location");
    assert!(location.starts_with(REDIRECT), "{location}");
    let params = query_of(&location);
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], browser.base);
    params["code"].clone()
}

pub(crate) async fn post_form(
    url: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn exchange(core: &TestCore, rp: &Rp, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    let basic = rp.secret.as_deref().map(|s| (rp.client_id.as_str(), s));
    if basic.is_none() {
        form.push(("client_id", &rp.client_id));
    }
    post_form(&format!("{}/oauth/token", core.url), basic, &form).await
}

async fn jwks_keys(core: &TestCore) -> Vec<jwt::VerifyingKey> {
    let set: Value = reqwest::get(format!("{}/oauth/jwks", core.url))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    set["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| keys::verifying_key(k).expect("P-256 key"))
        .collect()
}

pub(crate) async fn verified(core: &TestCore, token: &str) -> Value {
    jwt::verify(token, &jwks_keys(core).await)
        .expect("signature verifies with the JWKS")
        .claims
}

async fn userinfo(core: &TestCore, access_token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/oauth/userinfo", core.url))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A core with alice (in group `staff` under `everyone`) signed in at a browser, and a
/// confidential client.
pub(crate) async fn signed_in() -> (TestCore, Browser, Rp, i64) {
    signed_in_at(TEST_EPOCH).await
}

/// [`signed_in`] with the core's clock starting at `start`.
pub(crate) async fn signed_in_at(start: i64) -> (TestCore, Browser, Rp, i64) {
    let core = TestCore::start_at(CoreOptions::default(), start).await;
    let everyone = core.create_group("everyone").await;
    let staff = core.create_group("staff").await;
    core.nest_group(staff, everyone).await;
    let alice = core
        .create_member(
            json!({"username": "alice", "name": "Alice Example", "email": "alice@example.com", "password": "alice-password"}),
            &[staff],
        )
        .await;
    let rp = register(&core, "grafana", false).await;
    let mut browser = Browser::new(&core.url);
    assert_eq!(
        browser.login("alice", "alice-password", None).await.status,
        303
    );
    (core, browser, rp, alice)
}

#[tokio::test]
async fn discovery_and_jwks_describe_an_es256_provider() {
    let core = TestCore::start().await;
    let doc: Value = reqwest::get(format!("{}/.well-known/openid-configuration", core.url))
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["issuer"], core.url);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{}/oauth/authorize", core.url)
    );
    assert_eq!(doc["token_endpoint"], format!("{}/oauth/token", core.url));
    assert_eq!(doc["jwks_uri"], format!("{}/oauth/jwks", core.url));
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{}/oauth/end-session", core.url)
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    let keys = jwks_keys(&core).await;
    assert_eq!(keys.len(), 1, "the first key is made on first use");
    let set: Value = reqwest::get(format!("{}/oauth/jwks", core.url))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(set["keys"][0]["kty"], "EC");
    assert_eq!(set["keys"][0]["alg"], "ES256");
    assert!(set["keys"][0].get("d").is_none(), "no private material");
    // A configured external URL is the issuer whatever the Host header.
    let configured = TestCore::start_with(redoubt_tests::CoreOptions {
        tweak: Some(Box::new(|s| {
            s.external_url = "https://id.example.com/".into()
        })),
    })
    .await;
    let doc: Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        configured.url
    ))
    .await
    .expect("discovery")
    .json()
    .await
    .expect("json");
    assert_eq!(doc["issuer"], "https://id.example.com");
    assert_eq!(doc["token_endpoint"], "https://id.example.com/oauth/token");
}

#[tokio::test]
async fn oidc_providers_get_a_secret_once_and_never_reach_outposts() {
    let core = TestCore::start().await;
    let rp = register(&core, "wiki", false).await;
    let secret = rp.secret.clone().expect("secret in the create answer");
    let stored = core
        .api
        .get(&format!("/api/v1/providers/{}", rp.provider_id))
        .await
        .expect(200);
    assert!(stored.get("client_secret").is_none());
    assert_eq!(
        stored["settings"]["client_secret_sha256"],
        redoubt_core::oidc::clients::secret_hash(&secret)
    );
    // An update keeps the secret.
    core.api
        .patch(
            &format!("/api/v1/providers/{}", rp.provider_id),
            json!({"settings": {"client_id": "wiki", "redirect_uris": [REDIRECT]}}),
        )
        .await
        .expect(200);
    let stored = core
        .api
        .get(&format!("/api/v1/providers/{}", rp.provider_id))
        .await
        .expect(200);
    assert_eq!(
        stored["settings"]["client_secret_sha256"],
        redoubt_core::oidc::clients::secret_hash(&secret)
    );
    let taken = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "wiki2", "kind": "oidc", "settings": {"client_id": "wiki", "redirect_uris": [REDIRECT]}}),
        )
        .await
        .expect(400);
    assert!(
        taken["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("already used")
    );
    let outpost = core
        .api
        .post(
            "/api/v1/outposts",
            json!({"name": "o", "kind": "oidc", "provider_ids": []}),
        )
        .await
        .expect(400);
    assert!(
        outpost["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("served by the core")
    );
    core.api
        .post(
            "/api/v1/outposts",
            json!({"name": "p", "kind": "proxy", "provider_ids": [rp.provider_id]}),
        )
        .await
        .expect(400);
}

#[tokio::test]
async fn code_flow_with_pkce_and_basic_auth_issues_verifiable_tokens() {
    let (core, mut browser, rp, alice) = signed_in().await;
    let verifier = random_verifier();
    let code = authorize(
        &mut browser,
        &rp,
        "openid profile email groups",
        Some(&pkce::challenge_s256(&verifier)),
    )
    .await;
    let (status, tokens) = exchange(&core, &rp, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    let id = verified(&core, tokens["id_token"].as_str().expect("id token")).await;
    assert_eq!(id["iss"], core.url);
    assert_eq!(id["aud"], "grafana");
    assert_eq!(id["sub"], alice.to_string());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["name"], "Alice Example");
    assert_eq!(id["email"], "alice@example.com");
    let mut groups: Vec<String> = serde_json::from_value(id["groups"].clone()).expect("groups");
    groups.sort();
    assert_eq!(groups, ["everyone", "staff"], "nested groups included");
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        id["auth_time"],
        id["auth_time_ms"].as_i64().expect("ms") / 1000
    );
    assert_eq!(
        id["at_hash"],
        jwt::at_hash(tokens["access_token"].as_str().expect("access"))
    );
    let access = verified(&core, tokens["access_token"].as_str().expect("access")).await;
    assert_eq!(access["client_id"], "grafana");
    assert_eq!(access["sid"], id["sid"]);
    assert!(access["jti"].as_str().is_some());

    // The code is single use; reusing it revokes what it issued.
    let (status, reused) = exchange(&core, &rp, &code, Some(&verifier)).await;
    assert_eq!(status, 400);
    assert_eq!(reused["error"], "invalid_grant");
    assert_eq!(
        userinfo(&core, tokens["access_token"].as_str().expect("a"))
            .await
            .0,
        401
    );
    let (status, _) = post_form(
        &format!("{}/oauth/token", core.url),
        Some(("grafana", rp.secret.as_deref().expect("secret"))),
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("r"),
            ),
        ],
    )
    .await;
    assert_eq!(status, 400);
    // The token endpoint and the login are counted, and the revocation is in force.
    let metrics = reqwest::get(format!("{}/metrics", core.metrics_url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            r#"redoubt_oidc_token_requests_total{grant="authorization_code",result="issued"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"redoubt_credential_checks_total{result="success",source="login"}"#),
        "{metrics}"
    );
    assert!(redoubt_tests::promtool_check(&metrics));
}

#[tokio::test]
async fn token_endpoint_checks_client_code_binding_and_pkce() {
    let (core, mut browser, rp, _) = signed_in().await;
    let secret = rp.secret.clone().expect("secret");
    // client_secret_post works.
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (status, tokens) = post_form(
        &format!("{}/oauth/token", core.url),
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "grafana"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    // A wrong secret is invalid_client with a challenge.
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", core.url))
        .basic_auth("grafana", Some("wrong"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}",
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    // Another redirect URI than the authorization request's is refused.
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (status, body) = post_form(
        &format!("{}/oauth/token", core.url),
        Some(("grafana", &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example/other"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // A wrong PKCE verifier is refused.
    let verifier = random_verifier();
    let code = authorize(
        &mut browser,
        &rp,
        "openid",
        Some(&pkce::challenge_s256(&verifier)),
    )
    .await;
    let (status, body) = exchange(&core, &rp, &code, Some(&random_verifier())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Codes last 60 seconds.
    let code = authorize(&mut browser, &rp, "openid", None).await;
    core.clock.advance(61);
    let (status, body) = exchange(&core, &rp, &code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = post_form(
        &format!("{}/oauth/token", core.url),
        Some(("grafana", &secret)),
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn public_clients_must_use_s256() {
    let (core, mut browser, _, _) = signed_in().await;
    let spa = register(&core, "spa", true).await;
    assert!(spa.secret.is_none());
    for extra in [
        "",
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
    ] {
        let page = browser
            .get(&format!(
                "/oauth/authorize?response_type=code&client_id=spa&redirect_uri={}&scope=openid&state=s{extra}",
                url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(page.status, 303);
        let params = query_of(&page.location.expect("location"));
        assert_eq!(params["error"], "invalid_request");
        assert_eq!(params["state"], "s");
    }
    let verifier = random_verifier();
    let code = authorize(
        &mut browser,
        &spa,
        "openid",
        Some(&pkce::challenge_s256(&verifier)),
    )
    .await;
    let (status, tokens) = exchange(&core, &spa, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{tokens}");
}

#[tokio::test]
async fn authorization_errors_never_redirect_to_unknown_places() {
    let (core, mut browser, _rp, _) = signed_in().await;
    for query in [
        "response_type=code&client_id=grafana&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid",
        "response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid",
        "response_type=code&client_id=grafana&scope=openid",
        "client_id=grafana&client_id=grafana",
    ] {
        let page = browser.get(&format!("/oauth/authorize?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        assert!(page.location.is_none(), "{query}");
        assert!(page.body.contains("role=\"alert\""));
    }
    // With a registered URI, errors go back to the client.
    let page = browser
        .get("/oauth/authorize?response_type=token&client_id=grafana&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid&state=x")
        .await;
    let params = query_of(&page.location.expect("location"));
    assert_eq!(params["error"], "unsupported_response_type");
    let page = browser
        .get("/oauth/authorize?response_type=code&client_id=grafana&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=profile")
        .await;
    assert_eq!(
        query_of(&page.location.expect("location"))["error"],
        "invalid_scope"
    );
    // Not signed in: to the login page and back; prompt=none says login_required.
    let mut stranger = Browser::new(&core.url);
    let query = "response_type=code&client_id=grafana&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid&state=x";
    let page = stranger.get(&format!("/oauth/authorize?{query}")).await;
    let location = page.location.expect("location");
    assert!(
        location.starts_with("/login?next=%2Foauth%2Fauthorize%3F"),
        "{location}"
    );
    let page = stranger
        .get(&format!("/oauth/authorize?{query}&prompt=none"))
        .await;
    assert_eq!(
        query_of(&page.location.expect("location"))["error"],
        "login_required"
    );
    let next = url::form_urlencoded::parse(location.trim_start_matches("/login?").as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .expect("next");
    let done = stranger.login("alice", "alice-password", Some(&next)).await;
    assert_eq!(done.location.as_deref(), Some(next.as_str()));
    let page = stranger.get(&next).await;
    assert!(query_of(&page.location.expect("location")).contains_key("code"));
    // prompt=login sends a signed-in user to the login page again.
    let page = browser
        .get(&format!("/oauth/authorize?{query}&prompt=login"))
        .await;
    let location = page.location.expect("location");
    assert!(location.starts_with("/login?next="));
    assert!(!location.contains("prompt"), "the way back does not loop");
    // max_age: an older login must be repeated.
    core.clock.advance(20);
    let page = browser
        .get(&format!("/oauth/authorize?{query}&max_age=3600"))
        .await;
    assert!(query_of(&page.location.expect("location")).contains_key("code"));
    let page = browser
        .get(&format!("/oauth/authorize?{query}&max_age=10"))
        .await;
    let location = page.location.expect("location");
    assert!(
        location.starts_with("/login?next=") && !location.contains("max_age"),
        "{location}"
    );
}

#[tokio::test]
async fn application_groups_decide_who_may_sign_in() {
    let (core, mut browser, rp, _) = signed_in().await;
    let admins = core.create_group("app-admins").await;
    core.api
        .post(
            &format!("/api/v1/applications/{}/groups", rp.application_id),
            json!({"group_id": admins}),
        )
        .await
        .expect(204);
    let page = browser
        .get("/oauth/authorize?response_type=code&client_id=grafana&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid&state=x")
        .await;
    assert_eq!(
        query_of(&page.location.expect("location"))["error"],
        "access_denied"
    );
    // Membership through a nested group counts.
    let groups = core
        .api
        .get("/api/v1/groups?search=everyone")
        .await
        .expect(200);
    let everyone = groups["items"][0]["id"].as_i64().expect("group");
    core.api
        .post(
            &format!("/api/v1/applications/{}/groups", rp.application_id),
            json!({"group_id": everyone}),
        )
        .await
        .expect(204);
    authorize(&mut browser, &rp, "openid", None).await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let (core, mut browser, rp, alice) = signed_in().await;
    let secret = rp.secret.clone().expect("secret");
    let code = authorize(&mut browser, &rp, "openid email", None).await;
    let (_, first) = exchange(&core, &rp, &code, None).await;
    let refresh = |token: String| {
        let url = format!("{}/oauth/token", core.url);
        let secret = secret.clone();
        async move {
            post_form(
                &url,
                Some(("grafana", &secret)),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let (status, second) = refresh(first["refresh_token"].as_str().expect("r").to_owned()).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let id = verified(&core, second["id_token"].as_str().expect("id")).await;
    assert_eq!(id["sub"], alice.to_string());
    assert!(id.get("nonce").is_none());
    // Narrowing is fine, widening is not.
    let (status, body) = post_form(
        &format!("{}/oauth/token", core.url),
        Some(("grafana", &secret)),
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                second["refresh_token"].as_str().expect("r"),
            ),
            ("scope", "openid groups"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // Replaying the rotated-out token revokes the family: the current one dies too.
    let (status, body) = refresh(first["refresh_token"].as_str().expect("r").to_owned()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(second["refresh_token"].as_str().expect("r").to_owned()).await;
    assert_eq!(status, 400);
    let events = core
        .api
        .get("/api/v1/events?action=oidc_grant_reuse")
        .await
        .expect(200);
    assert_eq!(events["items"][0]["detail"]["grant"], "refresh_token");
    assert_eq!(events["items"][0]["source_address"], "127.0.0.1");
    assert_eq!(
        userinfo(&core, second["access_token"].as_str().expect("a"))
            .await
            .0,
        401
    );
    // Another client's token is unknown to this one.
    let other = register(&core, "other", false).await;
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (_, tokens) = exchange(&core, &rp, &code, None).await;
    let (status, _) = post_form(
        &format!("{}/oauth/token", core.url),
        Some(("other", other.secret.as_deref().expect("secret"))),
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("r"),
            ),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = refresh(tokens["refresh_token"].as_str().expect("r").to_owned()).await;
    assert_eq!(
        status, 200,
        "the owner's token was not burnt by the other client"
    );
}

#[tokio::test]
async fn disabled_users_get_no_more_tokens() {
    let (core, mut browser, rp, alice) = signed_in().await;
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (_, tokens) = exchange(&core, &rp, &code, None).await;
    core.api
        .patch(
            &format!("/api/v1/users/{alice}"),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    assert_eq!(
        userinfo(&core, tokens["access_token"].as_str().expect("a"))
            .await
            .0,
        401
    );
    let (status, _) = post_form(
        &format!("{}/oauth/token", core.url),
        Some(("grafana", rp.secret.as_deref().expect("secret"))),
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("r"),
            ),
        ],
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn userinfo_answers_by_scope() {
    let (core, mut browser, rp, alice) = signed_in().await;
    let code = authorize(&mut browser, &rp, "openid email", None).await;
    let (_, tokens) = exchange(&core, &rp, &code, None).await;
    let access = tokens["access_token"].as_str().expect("a");
    let (status, info) = userinfo(&core, access).await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], alice.to_string());
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
    assert!(info.get("preferred_username").is_none(), "no profile scope");
    assert!(info.get("groups").is_none(), "no groups scope");
    let (status, info) = post_form(
        &format!("{}/oauth/userinfo", core.url),
        None,
        &[("access_token", access)],
    )
    .await;
    assert_eq!(
        (status, info["sub"].clone()),
        (200, json!(alice.to_string()))
    );
    let response = reqwest::Client::new()
        .get(format!("{}/oauth/userinfo", core.url))
        .bearer_auth("not.a.token")
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .contains("invalid_token")
    );
    // The ID token is not an access token.
    assert_eq!(
        userinfo(&core, tokens["id_token"].as_str().expect("id"))
            .await
            .0,
        401
    );
    core.clock.advance(601);
    assert_eq!(userinfo(&core, access).await.0, 401, "expired");
}

#[tokio::test]
async fn introspection_and_revocation() {
    let (core, mut browser, rp, alice) = signed_in().await;
    let secret = rp.secret.clone().expect("secret");
    let code = authorize(&mut browser, &rp, "openid profile", None).await;
    let (_, tokens) = exchange(&core, &rp, &code, None).await;
    let access = tokens["access_token"].as_str().expect("a").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("r").to_owned();
    let introspect = |token: String, user: &'static str, password: String| {
        let url = format!("{}/oauth/introspect", core.url);
        async move { post_form(&url, Some((user, &password)), &[("token", &token)]).await }
    };
    let (status, info) = introspect(access.clone(), "grafana", secret.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], alice.to_string());
    assert_eq!(info["client_id"], "grafana");
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["token_type"], "Bearer");
    assert!(info["sid"].is_string() && info["auth_time_ms"].is_i64());
    let (_, info) = introspect(refresh.clone(), "grafana", secret.clone()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    let (status, _) = introspect(access.clone(), "grafana", "wrong".into()).await;
    assert_eq!(status, 401);
    let (_, info) = introspect("garbage".into(), "grafana", secret.clone()).await;
    assert_eq!(info, json!({"active": false}));

    // Revoke the access token: inactive, and UserInfo refuses it; the refresh token lives on.
    let (status, _) = post_form(
        &format!("{}/oauth/revoke", core.url),
        Some(("grafana", &secret)),
        &[("token", &access)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        introspect(access.clone(), "grafana", secret.clone())
            .await
            .1["active"],
        false
    );
    assert_eq!(userinfo(&core, &access).await.0, 401);
    assert_eq!(
        introspect(refresh.clone(), "grafana", secret.clone())
            .await
            .1["active"],
        true
    );
    // Revoking the refresh token ends the grant.
    let (status, _) = post_form(
        &format!("{}/oauth/revoke", core.url),
        Some(("grafana", &secret)),
        &[("token", &refresh)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        introspect(refresh.clone(), "grafana", secret.clone())
            .await
            .1["active"],
        false
    );
    let (status, _) = post_form(
        &format!("{}/oauth/token", core.url),
        Some(("grafana", &secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 400);
    // Unknown tokens: still 200.
    let (status, _) = post_form(
        &format!("{}/oauth/revoke", core.url),
        Some(("grafana", &secret)),
        &[("token", "nope")],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn proxy_clients_authenticate_with_their_outpost_token() {
    let (core, mut browser, rp, _) = signed_in().await;
    let (proxy_id, outpost_token) = core
        .create_served_provider(
            "proxy",
            "intranet",
            json!({"mode": "forward_single", "external_host": "https://intranet.example", "session_validity_seconds": 3600}),
        )
        .await;
    let client_id = format!("proxy-{proxy_id}");
    let callback = "https://intranet.example/outpost.redoubt/callback";
    let page = browser
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid+profile+groups&state=s",
            url::form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let code = query_of(&page.location.expect("location"))["code"].clone();
    let (status, tokens) = post_form(
        &format!("{}/oauth/token", core.url),
        Some((&client_id, &outpost_token)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", callback),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id = verified(&core, tokens["id_token"].as_str().expect("id")).await;
    assert_eq!(
        id["exp"].as_i64().expect("exp") - id["iat"].as_i64().expect("iat"),
        3600,
        "session validity"
    );
    // Another outpost's token (not serving this provider) is no good.
    let (_, stranger_token) = core
        .create_served_provider(
            "proxy",
            "other",
            json!({"mode": "forward_single", "external_host": "https://other.example"}),
        )
        .await;
    let (status, _) = post_form(
        &format!("{}/oauth/introspect", core.url),
        Some((&client_id, &stranger_token)),
        &[("token", tokens["access_token"].as_str().expect("a"))],
    )
    .await;
    assert_eq!(status, 401);
    // Introspection by the proxy: active while the user may use the proxy's application.
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (_, grafana) = exchange(&core, &rp, &code, None).await;
    let grafana_access = grafana["access_token"].as_str().expect("a").to_owned();
    let introspect = || {
        let url = format!("{}/oauth/introspect", core.url);
        let (client_id, token, access) = (
            client_id.clone(),
            outpost_token.clone(),
            grafana_access.clone(),
        );
        async move {
            post_form(&url, Some((&client_id, &token)), &[("token", &access)])
                .await
                .1
        }
    };
    let seen = introspect().await;
    assert_eq!(seen["active"], true);
    assert_eq!(
        seen["client_id"], "grafana",
        "the client the token was issued to"
    );
    assert_eq!(
        seen["preferred_username"], "alice",
        "a proxy sees the whole profile"
    );
    assert!(seen["groups"].as_array().is_some_and(|g| g.len() == 2));
    let app = core
        .api
        .get("/api/v1/applications?search=intranet")
        .await
        .expect(200);
    let app_id = app["items"][0]["id"].as_i64().expect("app");
    let admins = core.create_group("app-admins").await;
    core.api
        .post(
            &format!("/api/v1/applications/{app_id}/groups"),
            json!({"group_id": admins}),
        )
        .await
        .expect(204);
    assert_eq!(introspect().await["active"], false);
    // Foreign callback hosts are refused as a page.
    let page = browser
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid",
            url::form_urlencoded::byte_serialize(b"https://evil.example/outpost.redoubt/callback").collect::<String>()
        ))
        .await;
    assert_eq!(page.status, 400);
}

#[tokio::test]
async fn end_session_signs_out_and_returns_only_to_registered_uris() {
    let (core, mut browser, rp, _) = signed_in().await;
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (_, tokens) = exchange(&core, &rp, &code, None).await;
    let hint = tokens["id_token"].as_str().expect("id").to_owned();
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    // A GET, even with a valid hint, changes nothing: it asks the user to confirm.
    let mut other = Browser::new(&core.url);
    other.login("alice", "alice-password", None).await;
    let page = other
        .get(&format!(
            "/oauth/end-session?id_token_hint={hint}&post_logout_redirect_uri={}",
            encode("https://evil.example/")
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out?"), "{}", page.body);
    assert!(page.body.contains(&hint), "the hint is carried by the form");
    assert_eq!(
        other.get("/account").await.status,
        200,
        "not yet signed out"
    );
    // A POST without the browser's CSRF token (a cross-site form) changes nothing either.
    let page = other
        .post(
            "/oauth/end-session",
            &[
                ("id_token_hint", &hint),
                ("csrf", "forged-forged-forged-forged-forged-forged"),
            ],
        )
        .await;
    assert!(page.body.contains("Sign out?"));
    assert_eq!(
        other.get("/account").await.status,
        200,
        "not yet signed out"
    );
    // Confirmed, to an unregistered target: signed out, but no redirect.
    let csrf = other.csrf();
    let page = other
        .post(
            "/oauth/end-session",
            &[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", "https://evil.example/"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.location.is_none());
    assert!(page.body.contains("You are signed out"));
    assert_eq!(other.get("/account").await.status, 303);
    // A registered one, with state.
    let mut third = Browser::new(&core.url);
    third.login("alice", "alice-password", None).await;
    let page = third
        .get(&format!(
            "/oauth/end-session?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye-1",
            encode(LOGOUT_TARGET)
        ))
        .await;
    assert_eq!(page.status, 200);
    let csrf = third.csrf();
    let page = third
        .post(
            "/oauth/end-session",
            &[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", LOGOUT_TARGET),
                ("state", "bye-1"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("https://app.example/bye?state=bye-1")
    );
    assert!(!third.cookies.contains_key("redoubt_session"));
    // The hint's session (the first browser's) was ended too: its tokens stop working.
    assert_eq!(
        userinfo(&core, tokens["access_token"].as_str().expect("a"))
            .await
            .0,
        401
    );
    assert_eq!(browser.get("/account").await.status, 303);
    // Without a hint the user confirms first (CSRF-protected).
    let mut fourth = Browser::new(&core.url);
    fourth.login("alice", "alice-password", None).await;
    let page = fourth.get("/oauth/end-session").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out?"));
    assert_eq!(
        fourth.get("/account").await.status,
        200,
        "not yet signed out"
    );
    let csrf = fourth.csrf();
    let page = fourth.post("/oauth/end-session", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200);
    assert_eq!(fourth.get("/account").await.status, 303);
}

#[tokio::test]
async fn key_rotation_keeps_issued_tokens_verifiable() {
    let (core, mut browser, rp, _) = signed_in().await;
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (_, before) = exchange(&core, &rp, &code, None).await;
    let old_kid = jwt::verify(
        before["id_token"].as_str().expect("id"),
        &jwks_keys(&core).await,
    )
    .expect("verifies")
    .header["kid"]
        .clone();
    core.api_with("")
        .post("/api/v1/oidc/keys/rotate", json!({}))
        .await
        .expect(401);
    let rotated = core
        .api
        .post("/api/v1/oidc/keys/rotate", json!({}))
        .await
        .expect(200);
    assert_eq!(rotated["algorithm"], "ES256");
    assert_ne!(rotated["kid"], old_kid);
    let keys = jwks_keys(&core).await;
    assert_eq!(keys.len(), 2, "the retired key is still published");
    jwt::verify(before["id_token"].as_str().expect("id"), &keys).expect("old token verifies");
    assert_eq!(
        userinfo(&core, before["access_token"].as_str().expect("a"))
            .await
            .0,
        200
    );
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (_, after) = exchange(&core, &rp, &code, None).await;
    let verified_after =
        jwt::verify(after["id_token"].as_str().expect("id"), &keys).expect("new verifies");
    assert_eq!(verified_after.header["kid"], rotated["kid"]);
    let schema = core.api.get("/api/v1/schema.json").await.expect(200);
    assert!(schema["paths"].get("/api/v1/oidc/keys/rotate").is_some());
    // After the retention period the old key is gone.
    core.clock.advance(32 * 86_400);
    assert_eq!(jwks_keys(&core).await.len(), 1);
}

const PYTHON_RP: &str = r#"
import json, re, sys, requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import jwt, JsonWebKey
from authlib.common.security import generate_token

issuer, client_id, secret, redirect_uri, username, password = sys.argv[1:7]
meta = requests.get(issuer + "/.well-known/openid-configuration").json()
assert meta["issuer"] == issuer, meta
browser = requests.Session()
form = browser.get(issuer + "/login").text
csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
r = browser.post(issuer + "/login", data={"csrf": csrf, "username": username, "password": password}, allow_redirects=False)
assert r.status_code == 303, r.status_code

client = OAuth2Session(client_id, secret, scope="openid profile email groups", redirect_uri=redirect_uri,
                       code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
verifier = generate_token(48)
nonce = generate_token(20)
url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
r = browser.get(url, allow_redirects=False)
assert r.status_code in (302, 303), (r.status_code, r.text)
token = client.fetch_token(meta["token_endpoint"], authorization_response=r.headers["Location"], code_verifier=verifier)
jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"]).json())
claims = jwt.decode(token["id_token"], jwks, claims_options={
    "iss": {"essential": True, "value": issuer},
    "aud": {"essential": True, "value": client_id},
    "nonce": {"essential": True, "value": nonce},
})
claims.validate()
header = json.loads(__import__("base64").urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))
info = client.get(meta["userinfo_endpoint"]).json()
refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
client.revoke_token(meta["revocation_endpoint"], token=refreshed["refresh_token"], token_type_hint="refresh_token")
print(json.dumps({"alg": header["alg"], "claims": dict(claims), "userinfo": info,
                  "refreshed": "id_token" in refreshed and refreshed["refresh_token"] != token["refresh_token"]}))
"#;

#[tokio::test]
async fn an_independent_relying_party_signs_in() {
    let python = std::path::Path::new("/usr/bin/python3");
    let available = python.exists()
        && std::process::Command::new(python)
            .args(["-c", "import authlib, requests"])
            .status()
            .is_ok_and(|s| s.success());
    if !available {
        assert!(
            !redoubt_tests::peers_required(),
            "python3-authlib is required but missing"
        );
        eprintln!("SKIPPED: python3-authlib not installed");
        return;
    }
    // authlib checks `exp` and `iat` against the machine's clock: the core's starts there too.
    let (core, _, rp, alice) = signed_in_at(redoubt_tests::machine_time()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("rp.py");
    std::fs::write(&script, PYTHON_RP).expect("script");
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .args([
            core.url.as_str(),
            rp.client_id.as_str(),
            rp.secret.as_deref().expect("secret"),
            REDIRECT,
            "alice",
            "alice-password",
        ])
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "relying party failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("json result");
    assert_eq!(result["alg"], "ES256");
    assert_eq!(result["claims"]["sub"], alice.to_string());
    assert_eq!(result["claims"]["preferred_username"], "alice");
    assert_eq!(result["userinfo"]["email"], "alice@example.com");
    assert_eq!(result["refreshed"], true);
}

#[tokio::test]
async fn deleting_the_client_ends_its_tokens() {
    let (core, mut browser, rp, _) = signed_in().await;
    let code = authorize(&mut browser, &rp, "openid", None).await;
    let (_, tokens) = exchange(&core, &rp, &code, None).await;
    let access = tokens["access_token"].as_str().expect("a");
    assert_eq!(userinfo(&core, access).await.0, 200);
    core.api
        .delete(&format!("/api/v1/providers/{}", rp.provider_id))
        .await
        .expect(204);
    assert_eq!(userinfo(&core, access).await.0, 401);
}

#[tokio::test]
async fn bad_input_never_causes_a_server_error() {
    let (core, mut browser, _rp, _) = signed_in().await;
    let garbage = [
        "",
        "%",
        "%ff%fe=%00",
        "client_id=grafana&redirect_uri=%zz",
        "a=1&a=2",
        "token=a.b.c&client_id=grafana",
        "grant_type=authorization_code&code=%00",
        "id_token_hint=eyJhbGciOiJub25lIn0.e30.",
    ];
    for path in [
        "/oauth/authorize",
        "/oauth/token",
        "/oauth/userinfo",
        "/oauth/introspect",
        "/oauth/revoke",
        "/oauth/end-session",
        "/login",
        "/logout",
        "/account/password",
        "/account/totp/confirm",
    ] {
        for input in garbage {
            let page = browser.post(path, &[("raw", input)]).await;
            assert!(
                page.status.as_u16() < 500,
                "POST {path} {input}: {}",
                page.status
            );
            let raw = reqwest::Client::new()
                .post(format!("{}{path}", core.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .header(
                    "cookie",
                    "redoubt_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                )
                .body(input.as_bytes().to_vec())
                .send()
                .await
                .expect("raw post");
            assert!(
                raw.status().as_u16() < 500,
                "raw POST {path} {input}: {}",
                raw.status()
            );
            let page = browser.get(&format!("{path}?{input}")).await;
            assert!(
                page.status.as_u16() < 500,
                "GET {path}?{input}: {}",
                page.status
            );
        }
    }
    // Tampered cookies are "not signed in".
    let mut tampered = Browser::new(&core.url);
    tampered
        .cookies
        .insert("redoubt_session".into(), "v1.%%%".into());
    tampered.cookies.insert("redoubt_csrf".into(), "x".into());
    assert_eq!(tampered.get("/account").await.status, 303);
    let page = tampered
        .get("/oauth/authorize?response_type=code&client_id=grafana&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid")
        .await;
    assert!(page.location.expect("location").starts_with("/login?next="));
    // A raw, oversized Authorization header is refused cleanly too.
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", core.url))
        .header("authorization", format!("Basic {}", "A".repeat(6000)))
        .body("grant_type=refresh_token&refresh_token=x")
        .send()
        .await
        .expect("token");
    assert!(response.status().as_u16() < 500);
}

#[tokio::test]
async fn browser_applications_may_call_the_token_endpoints_cross_origin() {
    let core = TestCore::start().await;
    let client = reqwest::Client::new();
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/oauth/userinfo", core.url),
        )
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap_or_default()
            .contains("authorization")
    );
    let token = client
        .post(format!("{}/oauth/token", core.url))
        .header("origin", "https://spa.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&client_id=nobody")
        .send()
        .await
        .expect("token");
    assert_eq!(token.status(), 401);
    assert_eq!(token.headers()["access-control-allow-origin"], "*");
    assert!(
        token
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    // Browser navigations and the server-side endpoints do not answer cross-origin reads.
    let authorize = client
        .get(format!("{}/oauth/authorize", core.url))
        .header("origin", "https://spa.example")
        .send()
        .await
        .expect("authorize");
    assert!(
        authorize
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn proxy_clients_get_upstream_basic_credentials_from_attributes() {
    let (core, mut browser, _, alice) = signed_in().await;
    core.api
        .patch(
            &format!("/api/v1/users/{alice}"),
            json!({"attributes": {"legacy_user": "ALICE", "legacy_password": "s3cret:pw"}}),
        )
        .await
        .expect(200);
    let settings = |basic: serde_json::Value| json!({"mode": "forward_single", "external_host": "https://legacy.example", "basic_auth": basic});
    let (proxy_id, outpost_token) = core
        .create_served_provider(
            "proxy",
            "legacy",
            settings(json!({"username_attribute": "legacy_user", "password_attribute": "legacy_password"})),
        )
        .await;
    let client_id = format!("proxy-{proxy_id}");
    let callback = "https://legacy.example/outpost.redoubt/callback";
    let mut exchange_once = async || {
        let page = browser
            .get(&format!(
                "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid+profile&state=s",
                url::form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let code = query_of(&page.location.expect("location"))["code"].clone();
        let (status, tokens) = post_form(
            &format!("{}/oauth/token", core.url),
            Some((&client_id, &outpost_token)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", callback),
            ],
        )
        .await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    };
    let tokens = exchange_once().await;
    assert_eq!(
        tokens["upstream_basic_auth"],
        json!({"username": "ALICE", "password": "s3cret:pw"})
    );
    // Without a username attribute the Redoubt username is used; a missing password attribute
    // means no credentials at all.
    core.api
        .patch(
            &format!("/api/v1/providers/{proxy_id}"),
            json!({"settings": settings(json!({"password_attribute": "legacy_password"}))}),
        )
        .await
        .expect(200);
    assert_eq!(
        exchange_once().await["upstream_basic_auth"]["username"],
        "alice"
    );
    core.api
        .patch(
            &format!("/api/v1/providers/{proxy_id}"),
            json!({"settings": settings(json!({"password_attribute": "nope"}))}),
        )
        .await
        .expect(200);
    assert!(exchange_once().await.get("upstream_basic_auth").is_none());
}
