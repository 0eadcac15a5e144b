//! The RADIUS outpost against FreeRADIUS's `radclient` and `radtest`, and a minimal client of
//! our own for what the tools cannot show, with the outpost started in-process.

use redoubt_core::auth::totp;
use redoubt_core::clock::Clock;
use redoubt_tests::radius::{
    CHALLENGE_MESSAGE, RadReply, RadiusClient, RadiusSetup, SECRET, access_request,
    accounting_request, attr, check_reply, code, metric, poll, radclient, radclient_auth,
    radius_utils_available, radtest, setup, status_server,
};
use redoubt_tests::{TestCore, promtool_check};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a raw exchange waits for an answer that should come.
const ANSWER: Duration = Duration::from_secs(3);
/// How long to wait before concluding a request was dropped.
const SILENCE: Duration = Duration::from_millis(700);

async fn accept(s: &RadiusSetup, user: &str, password: &str) -> RadReply {
    radclient_auth(s.auth, SECRET, user, password, "").await
}

/// A dropped request: radclient waits one second once.
async fn expect_no_reply(s: &RadiusSetup, secret: &str, pairs: &str) {
    let reply = radclient(s.auth, "auth", secret, pairs, 1).await;
    assert_eq!(reply.code, None, "no reply at all: {reply:?}");
    assert!(
        reply.output.stdout.contains("No reply from server")
            || reply.output.stderr.contains("No reply from server"),
        "{reply:?}"
    );
}

/// The TOTP secret of a newly enrolled device of `user_id`.
async fn enroll_totp(core: &TestCore, user_id: i64) -> Vec<u8> {
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

fn code_now(core: &TestCore, secret: &[u8]) -> String {
    totp::hotp(
        secret,
        u64::try_from(totp::step_at(core.clock.now())).expect("step"),
    )
}

#[tokio::test]
async fn accepts_and_rejects_with_radtest_and_radclient() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, json!({})).await;

    let ok = radtest(s.auth, SECRET, "alice", "alice-password").await;
    assert!(ok.is("Access-Accept"), "radtest: {ok:?}");
    assert_eq!(ok.output.code, 0, "{ok:?}");
    let wrong = radtest(s.auth, SECRET, "alice", "not-her-password").await;
    assert!(wrong.is("Access-Reject"), "radtest: {wrong:?}");

    // radclient verifies the reply's Message-Authenticator and Response Authenticator; it
    // would print "invalid" and drop the reply otherwise.
    let ok = radclient_auth(
        s.auth,
        SECRET,
        "bob",
        "bob-password",
        "Proxy-State = 0x0102abcd, NAS-Identifier = \"ap-1\"",
    )
    .await;
    assert!(ok.is("Access-Accept"), "{ok:?}");
    assert_eq!(ok.output.code, 0, "{ok:?}");
    assert_eq!(ok.raw("Proxy-State"), Some("0x0102abcd"), "{ok:?}");
    assert!(!ok.output.stderr.contains("invalid"), "{ok:?}");
    // The core's event names the NAS (no Calling-Station-Id here: the NAS address counts for
    // the brute-force limit).
    let events = core
        .api
        .get("/api/v1/events?action=credential_check&target=bob")
        .await
        .expect(200);
    let event = &events["items"][0];
    assert_eq!(event["outcome"], "success", "{events}");
    assert_eq!(event["source_address"], "127.0.0.1", "{event}");
    assert_eq!(
        event["detail"]["client"]["nas_address"], "127.0.0.1",
        "{event}"
    );
    assert_eq!(
        event["detail"]["client"]["nas_identifier"], "ap-1",
        "{event}"
    );
    // With a Calling-Station-Id, that is the source: one device, not the whole NAS.
    let station = radclient_auth(
        s.auth,
        SECRET,
        "carol",
        "carol-password",
        "Calling-Station-Id = \"02-00-00-00-00-01\"",
    )
    .await;
    assert!(station.is("Access-Accept"), "{station:?}");
    let events = core
        .api
        .get("/api/v1/events?action=credential_check&target=carol")
        .await
        .expect(200);
    let event = &events["items"][0];
    assert_eq!(event["source_address"], "02-00-00-00-00-01", "{event}");
    assert_eq!(
        event["detail"]["client"]["calling_station_id"],
        "02-00-00-00-00-01"
    );

    let unknown = accept(&s, "mallory", "mallory-password").await;
    let bad = accept(&s, "bob", "not-bobs-password").await;
    assert!(unknown.is("Access-Reject"), "{unknown:?}");
    assert!(bad.is("Access-Reject"), "{bad:?}");
    let names = |r: &RadReply| {
        r.attributes
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&unknown),
        names(&bad),
        "no difference between unknown user and wrong password"
    );

    // Every reply carries a valid Message-Authenticator; Proxy-State comes back as sent.
    let client = RadiusClient::bind().await.expect("bind");
    for (id, user, password, expected) in [
        (1u8, "carol", "carol-password", code::ACCESS_ACCEPT),
        (2, "carol", "wrong-password", code::ACCESS_REJECT),
    ] {
        let (bytes, _) = access_request(
            id,
            SECRET,
            user,
            password,
            &[
                (attr::PROXY_STATE, b"first".to_vec()),
                (attr::PROXY_STATE, b"second".to_vec()),
            ],
            true,
        );
        let reply = client
            .exchange(s.auth, &bytes, ANSWER)
            .await
            .expect("io")
            .unwrap_or_else(|| panic!("{user}/{password}: no reply"));
        let (packet, has_ma) = check_reply(&bytes, &reply, SECRET)
            .unwrap_or_else(|e| panic!("{user}/{password}: {e}"));
        assert_eq!(packet.code, expected, "{packet:?}");
        assert!(has_ma, "a Message-Authenticator in every reply: {packet:?}");
        assert_eq!(
            packet.all(attr::PROXY_STATE),
            vec![&b"first"[..], &b"second"[..]],
            "Proxy-State copied in order"
        );
    }

    // The core logged the checks with the NAS's address.
    let events = core
        .api
        .get("/api/v1/events?action=credential_check")
        .await
        .expect(200);
    let text = events.to_string();
    assert!(text.contains("127.0.0.1"), "{text}");
    let metrics = s.metrics().await;
    for series in [
        "redoubt_radius_requests_total{code=\"access_request\",result=\"accept\"}",
        "redoubt_radius_requests_total{code=\"access_request\",result=\"reject\"}",
    ] {
        assert!(metric(&metrics, series) >= 2.0, "{series} in\n{metrics}");
    }
    assert!(metrics.contains("redoubt_radius_request_duration_seconds_bucket"));
    promtool_check(&metrics);
    s.outpost.stop().await;
}

#[tokio::test]
async fn message_authenticator_is_required_and_checked() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, json!({})).await;
    assert!(
        accept(&s, "alice", "alice-password")
            .await
            .is("Access-Accept")
    );

    // Without a Message-Authenticator (BlastRADIUS): silently dropped.
    expect_no_reply(
        &s,
        SECRET,
        "User-Name = \"alice\", User-Password = \"alice-password\"",
    )
    .await;
    // A wrong shared secret: the Message-Authenticator fails, never an Accept.
    let wrong_secret =
        radclient_auth(s.auth, "not-the-secret", "alice", "alice-password", "").await;
    assert!(
        !wrong_secret.is("Access-Accept"),
        "never an Accept with a wrong secret: {wrong_secret:?}"
    );
    assert_eq!(wrong_secret.code, None, "dropped: {wrong_secret:?}");

    // A tampered Message-Authenticator, and a tampered attribute under a good one.
    let client = RadiusClient::bind().await.expect("bind");
    let (mut bytes, _) = access_request(7, SECRET, "alice", "alice-password", &[], true);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert_eq!(
        client.exchange(s.auth, &bytes, SILENCE).await.expect("io"),
        None,
        "a wrong Message-Authenticator is dropped"
    );
    let (mut bytes, _) = access_request(8, SECRET, "alice", "alice-password", &[], true);
    bytes[22] ^= 0x20; // a letter of the User-Name
    assert_eq!(
        client.exchange(s.auth, &bytes, SILENCE).await.expect("io"),
        None,
        "a packet changed after signing is dropped"
    );
    // Garbage is dropped too, and the server keeps serving.
    for junk in [
        &b"hello"[..],
        &[1u8, 9, 0, 19][..],
        &[1u8, 9, 0, 40, 0, 0][..],
    ] {
        assert_eq!(
            client.exchange(s.auth, junk, SILENCE).await.expect("io"),
            None
        );
    }
    assert!(
        accept(&s, "alice", "alice-password")
            .await
            .is("Access-Accept")
    );

    let metrics = s.metrics().await;
    assert!(
        metric(
            &metrics,
            "redoubt_radius_dropped_total{reason=\"missing_message_authenticator\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "redoubt_radius_dropped_total{reason=\"bad_message_authenticator\"}"
        ) >= 3.0,
        "wrong secret, flipped MAC, changed name: {metrics}"
    );
    assert!(
        metric(
            &metrics,
            "redoubt_radius_dropped_total{reason=\"malformed\"}"
        ) >= 1.0,
        "{metrics}"
    );
    promtool_check(&metrics);
    s.outpost.stop().await;
}

#[tokio::test]
async fn requests_without_message_authenticator_are_answered_when_not_required() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, json!({"require_message_authenticator": false})).await;
    let plain = radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = \"alice\", User-Password = \"alice-password\"",
        2,
    )
    .await;
    assert!(plain.is("Access-Accept"), "{plain:?}");
    let client = RadiusClient::bind().await.expect("bind");
    let (bytes, _) = access_request(3, SECRET, "bob", "bob-password", &[], false);
    let reply = client
        .exchange(s.auth, &bytes, ANSWER)
        .await
        .expect("io")
        .expect("an answer without a Message-Authenticator in the request");
    let (packet, has_ma) = check_reply(&bytes, &reply, SECRET).expect("authentic");
    assert_eq!(packet.code, code::ACCESS_ACCEPT);
    assert!(has_ma, "the reply still carries one");
    // A wrong secret hides the password differently: never an Accept.
    let wrong = radclient(
        s.auth,
        "auth",
        "not-the-secret",
        "User-Name = \"alice\", User-Password = \"alice-password\"",
        1,
    )
    .await;
    assert!(!wrong.is("Access-Accept"), "{wrong:?}");
    // A present but wrong Message-Authenticator is still dropped.
    let (mut bytes, _) = access_request(4, SECRET, "alice", "alice-password", &[], true);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert_eq!(
        client.exchange(s.auth, &bytes, SILENCE).await.expect("io"),
        None
    );
    s.outpost.stop().await;
}

#[tokio::test]
async fn requests_from_unknown_networks_get_no_reply() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, json!({"client_networks": ["10.99.0.0/16"]})).await;
    expect_no_reply(
        &s,
        SECRET,
        "User-Name = \"alice\", User-Password = \"alice-password\", Message-Authenticator = 0x00",
    )
    .await;
    let client = RadiusClient::bind().await.expect("bind");
    let (bytes, _) = status_server(5, SECRET);
    assert_eq!(
        client.exchange(s.auth, &bytes, SILENCE).await.expect("io"),
        None
    );
    let metrics = s.metrics().await;
    assert!(
        metric(
            &metrics,
            "redoubt_radius_dropped_total{reason=\"unknown_client\"}"
        ) >= 2.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "redoubt_radius_requests_total{code=\"access_request\",result=\"accept\"}"
        ),
        0.0
    );
    promtool_check(&metrics);
    s.outpost.stop().await;
}

#[tokio::test]
async fn mfa_in_one_request_and_by_challenge() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, json!({})).await;
    let secret = enroll_totp(&core, s.users["carol"]).await;
    let revision = core.revision().await;
    tokio::time::timeout(
        Duration::from_secs(5),
        s.outpost.wait_for_revision(revision),
    )
    .await
    .expect("the enrolment arrives");

    // `password;123456` in one request.
    let code = code_now(&core, &secret);
    let one = accept(&s, "carol", &format!("carol-password;{code}")).await;
    assert!(one.is("Access-Accept"), "{one:?}");
    let replayed = accept(&s, "carol", &format!("carol-password;{code}")).await;
    assert!(
        replayed.is("Access-Reject"),
        "codes are single-use: {replayed:?}"
    );

    // A challenge is signed like every reply, and carries the prompt and a State.
    let client = RadiusClient::bind().await.expect("bind");
    let (bytes, _) = access_request(
        9,
        SECRET,
        "carol",
        "carol-password",
        &[(attr::PROXY_STATE, b"p".to_vec())],
        true,
    );
    let reply = client
        .exchange(s.auth, &bytes, ANSWER)
        .await
        .expect("io")
        .expect("a challenge");
    let (packet, has_ma) = check_reply(&bytes, &reply, SECRET).expect("authentic");
    assert_eq!(packet.code, code::ACCESS_CHALLENGE, "{packet:?}");
    assert!(has_ma, "a Message-Authenticator on the challenge");
    assert_eq!(
        packet.get(attr::REPLY_MESSAGE),
        Some(CHALLENGE_MESSAGE.as_bytes())
    );
    assert!(packet.get(attr::STATE).is_some_and(|v| !v.is_empty()));
    assert_eq!(packet.all(attr::PROXY_STATE), vec![&b"p"[..]]);

    // The password alone: a challenge, then the code with the State echoed.
    let challenge = accept(&s, "carol", "carol-password").await;
    assert!(challenge.is("Access-Challenge"), "{challenge:?}");
    assert_eq!(
        challenge.value("Reply-Message").as_deref(),
        Some(CHALLENGE_MESSAGE),
        "{challenge:?}"
    );
    let state = challenge.raw("State").expect("State").to_owned();
    assert!(state.starts_with("0x") && state.len() > 4, "{state}");
    // A wrong code answers the challenge with a Reject.
    core.clock.advance(30);
    let good = code_now(&core, &secret);
    let bad_code = if good == "000000" { "111111" } else { "000000" };
    let wrong = radclient_auth(
        s.auth,
        SECRET,
        "carol",
        bad_code,
        &format!("State = {state}"),
    )
    .await;
    assert!(wrong.is("Access-Reject"), "{wrong:?}");

    let challenge = accept(&s, "carol", "carol-password").await;
    assert!(challenge.is("Access-Challenge"), "{challenge:?}");
    let state = challenge.raw("State").expect("State").to_owned();
    let answered =
        radclient_auth(s.auth, SECRET, "carol", &good, &format!("State = {state}")).await;
    assert!(answered.is("Access-Accept"), "{answered:?}");
    // The State is spent.
    core.clock.advance(30);
    let later = code_now(&core, &secret);
    let again = radclient_auth(s.auth, SECRET, "carol", &later, &format!("State = {state}")).await;
    assert!(
        !again.is("Access-Accept"),
        "a State answers one challenge only: {again:?}"
    );
    // A wrong password never gets a challenge.
    let wrong_password = accept(&s, "carol", "not-carols-password").await;
    assert!(wrong_password.is("Access-Reject"), "{wrong_password:?}");

    // With MFA off for the provider, the password alone passes.
    core.api
        .patch(
            &format!("/api/v1/providers/{}", s.provider_id),
            json!({"settings": {"shared_secret": SECRET, "client_networks": ["127.0.0.0/8"],
                                "mfa": false}}),
        )
        .await
        .expect(200);
    let revision = core.revision().await;
    tokio::time::timeout(
        Duration::from_secs(5),
        s.outpost.wait_for_revision(revision),
    )
    .await
    .expect("the provider change arrives");
    let plain = accept(&s, "carol", "carol-password").await;
    assert!(plain.is("Access-Accept"), "mfa off: {plain:?}");

    let metrics = s.metrics().await;
    assert!(
        metric(
            &metrics,
            "redoubt_radius_requests_total{code=\"access_request\",result=\"challenge\"}"
        ) >= 2.0,
        "{metrics}"
    );
    s.outpost.stop().await;
}

#[tokio::test]
async fn reply_attributes_follow_group_rules() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let rules = json!({"reply_rules": [
        {"group": "staff", "vlan": "42", "class": "staff-class", "filter_id": "staff-acl",
         "session_timeout": 3600,
         "vendor_attributes": [
            {"vendor_id": 14988, "type": 8, "value": "10M/10M"},
            {"vendor_id": 9, "type": 1, "value": "shell:priv-lvl=15"},
            {"vendor_id": 99999, "type": 3, "format": "integer", "value": "7"}]},
        {"group": "everyone", "vlan": "99", "class": "everyone-class", "filter_id": "everyone-acl",
         "session_timeout": 60, "idle_timeout": 300},
        {"group": "vpn", "framed_ip_address_attribute": "ip", "framed_ip_netmask": "255.255.255.0",
         "framed_pool": "vpn-pool"},
        {"class": "all-class"}
    ]});
    let s = setup(&core, rules).await;

    // alice: staff (nested in everyone) and vpn.
    let alice = accept(&s, "alice", "alice-password").await;
    assert!(alice.is("Access-Accept"), "{alice:?}");
    let lines: Vec<String> = alice
        .attributes
        .iter()
        .map(|(n, v)| format!("{n} = {v}"))
        .collect();
    for expected in [
        "Tunnel-Type:0 = VLAN",
        "Tunnel-Medium-Type:0 = IEEE-802",
        "Session-Timeout = 3600",
        "Idle-Timeout = 300",
        "Mikrotik-Rate-Limit = \"10M/10M\"",
        "Cisco-AVPair = \"shell:priv-lvl=15\"",
        "Attr-26.99999.3 = 0x00000007",
        "Framed-IP-Address = 10.8.0.7",
        "Framed-IP-Netmask = 255.255.255.0",
        "Framed-Pool = \"vpn-pool\"",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected} in {lines:#?}"
        );
    }
    assert_eq!(
        alice.values("Tunnel-Private-Group-Id"),
        vec!["42".to_owned()],
        "the first rule's VLAN wins: {lines:#?}"
    );
    assert_eq!(alice.values("Tunnel-Type").len(), 1, "{lines:#?}");
    assert_eq!(alice.values("Session-Timeout").len(), 1, "{lines:#?}");
    assert_eq!(
        alice.values("Class"),
        vec!["staff-class", "everyone-class", "all-class"],
        "Class adds up in rule order"
    );
    assert_eq!(alice.values("Filter-Id"), vec!["staff-acl", "everyone-acl"]);

    // carol: no group, only the rule for everyone.
    let carol = accept(&s, "carol", "carol-password").await;
    assert!(carol.is("Access-Accept"), "{carol:?}");
    assert_eq!(carol.values("Class"), vec!["all-class"], "{carol:?}");
    for absent in [
        "Tunnel-Private-Group-Id",
        "Tunnel-Type",
        "Session-Timeout",
        "Filter-Id",
        "Framed-IP-Address",
        "Mikrotik-Rate-Limit",
    ] {
        assert!(carol.values(absent).is_empty(), "{absent} in {carol:?}");
    }
    // A Reject carries none of them.
    let reject = accept(&s, "alice", "wrong-password").await;
    assert!(reject.is("Access-Reject"));
    assert!(reject.values("Class").is_empty(), "{reject:?}");
    assert!(reject.values("Tunnel-Private-Group-Id").is_empty());
    s.outpost.stop().await;
}

#[tokio::test]
async fn retransmissions_are_answered_from_the_reply_cache() {
    let core = TestCore::start().await;
    let s = setup(&core, json!({})).await;
    let client = RadiusClient::bind().await.expect("bind");
    let (bytes, _) = access_request(42, SECRET, "bob", "bob-password", &[], true);
    let first = client
        .exchange(s.auth, &bytes, ANSWER)
        .await
        .expect("io")
        .expect("a reply");
    let (packet, _) = check_reply(&bytes, &first, SECRET).expect("authentic");
    assert_eq!(packet.code, code::ACCESS_ACCEPT);
    let checks = |core: &TestCore| {
        let api = core.api.clone();
        async move {
            api.get("/api/v1/events?action=credential_check&target=bob")
                .await
                .expect(200)["items"]
                .as_array()
                .expect("items")
                .len()
        }
    };
    let before = checks(&core).await;
    assert_eq!(before, 1, "one check in the core for the first request");
    let second = client
        .exchange(s.auth, &bytes, ANSWER)
        .await
        .expect("io")
        .expect("a reply to the retransmission");
    assert_eq!(first, second, "the identical reply, byte for byte");
    assert_eq!(checks(&core).await, 1, "no second credential check");
    let metrics = s.metrics().await;
    assert_eq!(
        metric(&metrics, "redoubt_radius_duplicates_total"),
        1.0,
        "{metrics}"
    );

    // The same identifier with a new authenticator is a new request, answered anew (from the
    // credential cache).
    let (fresh, _) = access_request(42, SECRET, "bob", "bob-password", &[], true);
    let third = client
        .exchange(s.auth, &fresh, ANSWER)
        .await
        .expect("io")
        .expect("a reply");
    assert_ne!(third, first);
    let (packet, _) = check_reply(&fresh, &third, SECRET).expect("authentic");
    assert_eq!(packet.code, code::ACCESS_ACCEPT);
    // The same bytes from another port are another client's request, not a duplicate.
    let other = RadiusClient::bind().await.expect("bind");
    let from_elsewhere = other
        .exchange(s.auth, &bytes, ANSWER)
        .await
        .expect("io")
        .expect("a reply");
    check_reply(&bytes, &from_elsewhere, SECRET).expect("authentic");
    let metrics = s.metrics().await;
    assert_eq!(
        metric(&metrics, "redoubt_radius_duplicates_total"),
        1.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "redoubt_radius_credential_cache_total{result=\"hit\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "redoubt_radius_credential_cache_total{result=\"miss\"}"
        ) >= 1.0,
        "{metrics}"
    );
    s.outpost.stop().await;
}

#[tokio::test]
async fn status_server_on_both_ports() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, json!({})).await;
    let auth = radclient(s.auth, "status", SECRET, "Message-Authenticator = 0x00", 2).await;
    assert!(auth.is("Access-Accept"), "{auth:?}");
    let acct = radclient(
        s.accounting,
        "status",
        SECRET,
        "Message-Authenticator = 0x00",
        2,
    )
    .await;
    assert!(acct.is("Accounting-Response"), "{acct:?}");

    let client = RadiusClient::bind().await.expect("bind");
    for (server, expected) in [
        (s.auth, code::ACCESS_ACCEPT),
        (s.accounting, code::ACCOUNTING_RESPONSE),
    ] {
        let (bytes, _) = status_server(client_id(server), SECRET);
        let reply = client
            .exchange(server, &bytes, ANSWER)
            .await
            .expect("io")
            .expect("Status-Server is answered");
        let (packet, _) = check_reply(&bytes, &reply, SECRET).expect("authentic");
        assert_eq!(packet.code, expected);
    }
    // Without its Message-Authenticator, Status-Server is dropped (RFC 5997).
    let bare = radclient(s.auth, "status", SECRET, "NAS-Identifier = \"probe\"", 1).await;
    assert_eq!(bare.code, None, "{bare:?}");
    // Codes that do not belong on a port are dropped.
    let (bytes, _) = access_request(10, SECRET, "alice", "alice-password", &[], true);
    assert_eq!(
        client
            .exchange(s.accounting, &bytes, SILENCE)
            .await
            .expect("io"),
        None,
        "no Access-Request on the accounting port"
    );
    let (bytes, _) = accounting_request(
        11,
        SECRET,
        &[
            (attr::ACCT_STATUS_TYPE, 1u32.to_be_bytes().to_vec()),
            (attr::USER_NAME, b"alice".to_vec()),
        ],
    );
    assert_eq!(
        client.exchange(s.auth, &bytes, SILENCE).await.expect("io"),
        None,
        "no accounting on the authentication port"
    );
    let metrics = s.metrics().await;
    assert!(
        metric(
            &metrics,
            "redoubt_radius_requests_total{code=\"status_server\",result=\"accept\"}"
        ) + metric(
            &metrics,
            "redoubt_radius_requests_total{code=\"status_server\",result=\"ok\"}"
        ) >= 4.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "redoubt_radius_dropped_total{reason=\"unsupported_code\"}"
        ) >= 2.0,
        "{metrics}"
    );
    s.outpost.stop().await;
}

fn client_id(addr: std::net::SocketAddr) -> u8 {
    u8::try_from(addr.port() % 250).expect("small") + 1
}

#[tokio::test]
async fn accounting_is_recorded_in_the_core() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, json!({})).await;
    let mut replies = Vec::new();
    let common = "User-Name = \"alice\", Acct-Session-Id = \"sess-0001\", \
                  NAS-IP-Address = 10.20.30.40, NAS-Identifier = \"switch-1\", \
                  Calling-Station-Id = \"00-11-22-33-44-55\", \
                  Called-Station-Id = \"AA-BB-CC-DD-EE-FF:corp\", Framed-IP-Address = 10.8.0.9";
    for extra in [
        "Acct-Status-Type = Start",
        "Acct-Status-Type = Interim-Update, Acct-Session-Time = 60, Acct-Input-Octets = 500",
        "Acct-Status-Type = Stop, Acct-Session-Time = 120, Acct-Input-Octets = 1000, \
         Acct-Output-Octets = 2000, Acct-Input-Packets = 10, Acct-Output-Packets = 20, \
         Acct-Terminate-Cause = User-Request",
    ] {
        let reply = radclient(
            s.accounting,
            "acct",
            SECRET,
            &format!("{common}, {extra}"),
            2,
        )
        .await;
        replies.push((extra, reply));
    }
    // Accounting-On from our own client (no user), without a Message-Authenticator.
    let client = RadiusClient::bind().await.expect("bind");
    let (on, _) = accounting_request(
        77,
        SECRET,
        &[
            (attr::ACCT_STATUS_TYPE, 7u32.to_be_bytes().to_vec()),
            (attr::ACCT_SESSION_ID, b"boot-1".to_vec()),
            (attr::NAS_IDENTIFIER, b"switch-2".to_vec()),
        ],
    );
    let on_reply = client
        .exchange(s.accounting, &on, ANSWER)
        .await
        .expect("io")
        .expect("Accounting-On is answered");
    let on_checked = check_reply(&on, &on_reply, SECRET);
    // A wrong secret: no response, nothing recorded.
    let forged = radclient(
        s.accounting,
        "acct",
        "not-the-secret",
        "User-Name = \"mallory\", Acct-Session-Id = \"x\", Acct-Status-Type = Start",
        1,
    )
    .await;
    assert_eq!(forged.code, None, "{forged:?}");

    let api = core.api.clone();
    let events = poll(Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let body = api
                .get("/api/v1/events?action=radius_accounting")
                .await
                .expect(200);
            let items = body["items"].as_array().cloned().unwrap_or_default();
            (items.len() >= 4).then_some(items)
        }
    })
    .await
    .expect("four accounting events within 10 s");
    assert_eq!(
        events.len(),
        4,
        "nothing recorded for the forged one: {events:#?}"
    );
    let by_status = |status: &str| -> Value {
        events
            .iter()
            .find(|e| e["detail"]["status"] == status)
            .cloned()
            .unwrap_or_else(|| panic!("a {status} event in {events:#?}"))
    };
    let start = by_status("start");
    assert_eq!(
        start["target"], "alice",
        "named as credential checks name users"
    );
    assert_eq!(start["detail"]["protocol"], "radius");
    assert_eq!(start["source_address"], "127.0.0.1", "{start}");
    let detail = &start["detail"];
    assert_eq!(detail["session_id"], "sess-0001");
    assert_eq!(detail["nas_ip_address"], "10.20.30.40");
    assert_eq!(detail["nas_identifier"], "switch-1");
    assert_eq!(detail["calling_station_id"], "00-11-22-33-44-55");
    assert_eq!(detail["called_station_id"], "AA-BB-CC-DD-EE-FF:corp");
    assert_eq!(detail["framed_ip_address"], "10.8.0.9");
    assert!(
        detail.get("session_time").is_none(),
        "absent stays absent: {detail}"
    );
    assert!(detail.get("terminate_cause").is_none(), "{detail}");
    let interim = by_status("interim_update");
    assert_eq!(interim["detail"]["session_time"], json!(60));
    assert_eq!(interim["detail"]["input_octets"], json!(500));
    let stop = by_status("stop");
    let detail = &stop["detail"];
    assert_eq!(detail["session_time"], json!(120));
    assert_eq!(detail["input_octets"], json!(1000));
    assert_eq!(detail["output_octets"], json!(2000));
    assert_eq!(detail["input_packets"], json!(10));
    assert_eq!(detail["output_packets"], json!(20));
    assert_eq!(detail["terminate_cause"], json!(1));
    let on = by_status("accounting_on");
    assert_eq!(on["detail"]["nas_identifier"], "switch-2");
    assert_eq!(on["detail"]["session_id"], "boot-1");

    // The responses authenticate the way NAS software (FreeRADIUS's library here) checks them.
    let (packet, _) = on_checked.unwrap_or_else(|e| panic!("Accounting-Response: {e}"));
    assert_eq!(packet.code, code::ACCOUNTING_RESPONSE);
    for (extra, reply) in &replies {
        assert!(
            reply.is("Accounting-Response"),
            "radclient accepts the response to {extra}: {reply:?}"
        );
    }

    let metrics = s.metrics().await;
    assert!(
        metric(
            &metrics,
            "redoubt_radius_requests_total{code=\"accounting_request\",result=\"ok\"}"
        ) >= 4.0,
        "{metrics}"
    );
    promtool_check(&metrics);
    s.outpost.stop().await;
}

#[tokio::test]
async fn password_change_in_the_core_applies_to_the_next_request() {
    if !radius_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, json!({})).await;
    assert!(accept(&s, "bob", "bob-password").await.is("Access-Accept"));
    // Warm: answered from the credential cache.
    assert!(accept(&s, "bob", "bob-password").await.is("Access-Accept"));
    core.api
        .put(
            &format!("/api/v1/users/{}/password", s.users["bob"]),
            json!({"password": "bob-rotated-password"}),
        )
        .await
        .expect(204);
    let revision = core.revision().await;
    tokio::time::timeout(
        Duration::from_secs(5),
        s.outpost.wait_for_revision(revision),
    )
    .await
    .expect("the change arrives");
    let old = poll(Duration::from_secs(5), || async {
        let reply = accept(&s, "bob", "bob-password").await;
        (!reply.is("Access-Accept")).then_some(reply)
    })
    .await
    .expect("the old password stops working within 5 s");
    assert!(old.is("Access-Reject"), "{old:?}");
    let new = accept(&s, "bob", "bob-rotated-password").await;
    assert!(new.is("Access-Accept"), "{new:?}");

    // A disabled user is refused on the next request too.
    core.api
        .patch(
            &format!("/api/v1/users/{}", s.users["bob"]),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    let disabled = poll(Duration::from_secs(5), || async {
        let reply = accept(&s, "bob", "bob-rotated-password").await;
        (!reply.is("Access-Accept")).then_some(reply)
    })
    .await
    .expect("a disabled user stops getting in within 5 s");
    assert!(disabled.is("Access-Reject"), "{disabled:?}");
    s.outpost.stop().await;
}

#[tokio::test]
async fn keeps_accepting_cached_users_with_the_core_stopped() {
    if !radius_utils_available() {
        return;
    }
    let mut core = TestCore::start().await;
    let s = setup(
        &core,
        json!({"reply_rules": [{"group": "staff", "vlan": "42"}]}),
    )
    .await;
    assert!(
        accept(&s, "alice", "alice-password")
            .await
            .is("Access-Accept")
    );
    core.stop().await;
    s.outpost.wait_connected(false).await;
    for _ in 0..3 {
        let warm = accept(&s, "alice", "alice-password").await;
        assert!(
            warm.is("Access-Accept"),
            "a cached user gets in without the core: {warm:?}"
        );
        assert_eq!(
            warm.values("Tunnel-Private-Group-Id"),
            vec!["42"],
            "with the same attributes"
        );
    }
    let wrong = accept(&s, "alice", "not-her-password").await;
    assert!(
        !wrong.is("Access-Accept"),
        "a wrong password never passes: {wrong:?}"
    );
    let cold = accept(&s, "bob", "bob-password").await;
    assert!(
        !cold.is("Access-Accept"),
        "nobody checks an uncached password: {cold:?}"
    );
    // Status-Server while the core is away: see `health.rs` (answered only within a heartbeat
    // period of the last contact, so a NAS fails over).
    let metrics = s.metrics().await;
    assert!(
        metric(
            &metrics,
            "redoubt_radius_credential_cache_total{result=\"hit\"}"
        ) >= 3.0,
        "{metrics}"
    );
    assert!(metrics.contains("redoubt_radius_request_duration_seconds_bucket"));
    promtool_check(&metrics);
    s.outpost.stop().await;
}
