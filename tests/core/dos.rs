//! Denial of service on the HTTP listeners: idle and slow clients from one address must not
//! starve anyone else (core HTTP, HTTPS and metrics; the outpost's proxy and metrics), request
//! heads must arrive whole within the header timeout (first request and keep-alive), and
//! clients that have completed a request never count against their address.

use redoubt_tests::slowloris::{
    closed_count, connect_from, exchange, get_request, hold_idle, timed_get, trickle_until_closed,
};
use redoubt_tests::{CoreOptions, TestCore, start_outpost_with};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const BYSTANDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CROWD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// What "answered fast" means with thousands of idle sockets on a loaded test machine.
const FAST: Duration = Duration::from_secs(3);

fn addr_of(url: &str) -> SocketAddr {
    let host = url
        .rsplit("://")
        .next()
        .unwrap_or(url)
        .trim_end_matches('/');
    host.replace("localhost", "127.0.0.1")
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

async fn small_core() -> TestCore {
    TestCore::start_with(CoreOptions {
        tweak: Some(Box::new(|s| {
            s.limits.max_connections = 1000;
            s.limits.unproven_connections_per_source = 50;
            s.limits.header_timeout_seconds = 1;
            s.limits.tls_handshake_timeout_seconds = 1;
        })),
    })
    .await
}

/// `idle` connections from one address (more than the listener's connection cap, fewer than the
/// cap plus the kernel's backlog of 1024, so without the per-source bound they fill every slot
/// and the backlog takes the rest), then a request from another address must be answered at
/// once; the connections beyond the attacker's cap are closed at once.
async fn assert_not_starved(listener: SocketAddr, path: &str, idle: usize) {
    let mut held = hold_idle(ATTACKER, listener, idle).await;
    assert!(held.len() > 100, "the attacker holds connections");
    let (status, took) = timed_get(BYSTANDER, listener, path, FAST)
        .await
        .unwrap_or_else(|e| panic!("{listener}{path} starved by idle connections: {e}"));
    assert_eq!(status, 200, "{listener}{path}");
    assert!(took < FAST, "{listener}{path} took {took:?}");
    // The attacker's connections beyond its cap were closed at once.
    let closed = closed_count(&mut held, Duration::from_secs(3)).await;
    assert!(
        closed >= idle - 100,
        "only {closed} of {idle} idle connections were closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_do_not_starve_the_core() {
    let core = small_core().await;
    assert_not_starved(addr_of(&core.url), "/-/health/live", 1500).await;
    assert_not_starved(addr_of(&core.metrics_url), "/-/health/ready", 600).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_must_arrive_whole_in_time() {
    let core = small_core().await;
    let http = addr_of(&core.url);
    // First request: 1 s handshake + 1 s head, whatever trickles in.
    let mut slow = connect_from(ATTACKER, http).await.expect("connect");
    let kept = trickle_until_closed(
        &mut slow,
        b"GET /-/health/live HTTP/1.1\r\nHost: localhost\r\n",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await
    .expect("a trickled first head is cut off");
    assert!(kept < Duration::from_secs(5), "kept for {kept:?}");
    // A kept-alive connection: the second head has the header timeout too.
    let mut alive = connect_from(ATTACKER, http).await.expect("connect");
    let status = exchange(&mut alive, &get_request("/-/health/live"), FAST)
        .await
        .expect("first request");
    assert_eq!(status, 200);
    let kept = trickle_until_closed(
        &mut alive,
        b"GET /-/health/live HTTP/1.1\r\nHost: localhost\r\n",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await
    .expect("a trickled keep-alive head is cut off");
    assert!(kept < Duration::from_secs(4), "kept for {kept:?}");
    // A TLS client that never finishes its handshake is cut off too.
    let https = addr_of(&core.https_url);
    let mut silent = connect_from(ATTACKER, https).await.expect("connect");
    let kept = trickle_until_closed(
        &mut silent,
        b"\x16\x03\x01",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await
    .expect("an unfinished TLS handshake is cut off");
    assert!(kept < Duration::from_secs(4), "kept for {kept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_made_a_request_never_count_against_their_address() {
    let core = small_core().await;
    let http = addr_of(&core.url);
    // 200 kept-alive connections from one address (four times its unproven cap), like
    // outposts behind one NAT: each made a request, so all stay usable.
    let mut crowd = Vec::new();
    for _ in 0..200 {
        let mut stream = connect_from(CROWD, http).await.expect("connect");
        let status = exchange(&mut stream, &get_request("/-/health/live"), FAST)
            .await
            .expect("a member of the crowd is served");
        assert_eq!(status, 200);
        crowd.push(stream);
    }
    for stream in &mut crowd {
        let status = exchange(stream, &get_request("/-/health/ready"), FAST)
            .await
            .expect("kept-alive connections keep working");
        assert_eq!(status, 200);
    }
    let (status, _) = timed_get(CROWD, http, "/-/health/live", FAST)
        .await
        .expect("and new ones are admitted");
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_do_not_starve_an_outpost() {
    let core = TestCore::start().await;
    let (_, token) = core
        .create_served_provider(
            "proxy",
            "dos",
            json!({"mode": "forward_single", "external_host": "http://app.localhost"}),
        )
        .await;
    let state = tempfile::tempdir().expect("state dir");
    let outpost = start_outpost_with(&core.url, &token, state.path(), |s| {
        s.limits.max_connections = 1000;
        s.limits.unproven_connections_per_source = 50;
        s.limits.header_timeout_seconds = 1;
        s.limits.tls_handshake_timeout_seconds = 1;
    })
    .await;
    let proxy = tokio::time::timeout(Duration::from_secs(20), outpost.listening("http"))
        .await
        .expect("the proxy listens");
    // The proxy answers its own ping-like page (unknown host: 404 page) to the bystander.
    let mut held = hold_idle(ATTACKER, proxy, 1500).await;
    let (status, took) = timed_get(BYSTANDER, proxy, "/outpost.redoubt/ping", FAST)
        .await
        .expect("the proxy is starved by idle connections");
    assert!(status < 500, "{status}");
    assert!(took < FAST, "took {took:?}");
    assert!(closed_count(&mut held, Duration::from_secs(3)).await >= 1400);
    assert_not_starved(outpost.metrics_addr, "/-/health/live", 600).await;
    let mut slow = connect_from(ATTACKER, proxy).await.expect("connect");
    let kept = trickle_until_closed(
        &mut slow,
        b"GET / HTTP/1.1\r\nHost: app.localhost\r\n",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await
    .expect("a trickled head is cut off by the proxy");
    assert!(kept < Duration::from_secs(5), "kept for {kept:?}");
    outpost.stop().await;
}

/// Another source, for the LDAP message deadline (the attacker's own address is at its cap).
const TRICKLER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_idle_and_slow_clients_from_one_address_do_not_starve_others() {
    use ldap3_proto::proto::LdapResultCode;
    use redoubt_tests::ldap::{setup_with, user_dn};
    use redoubt_tests::ldap_client::LdapClient;
    let core = TestCore::start().await;
    let setup = setup_with(&core, 0, json!({}), |s| {
        s.limits.ldap_max_connections = 1000;
        s.limits.unproven_connections_per_source = 20;
        s.limits.ldap_message_timeout_seconds = 1;
    })
    .await;
    let ldap = setup.ldap;
    let bind = |source| async move {
        let stream = connect_from(source, ldap).await.expect("connect");
        let mut client = LdapClient::over(stream).expect("client");
        let code = tokio::time::timeout(FAST, client.bind(&user_dn("alice"), "alice-password"))
            .await
            .expect("bind answered in time")
            .expect("bind answered");
        (code, client)
    };
    // 1,500 idle connections from one address: all but 20 are closed at once, and another
    // address binds as usual.
    let mut held = hold_idle(ATTACKER, ldap, 1500).await;
    let (code, _) = bind(BYSTANDER).await;
    assert_eq!(code, LdapResultCode::Success);
    assert!(closed_count(&mut held, Duration::from_secs(3)).await >= 1400);
    // Clients that bound no longer count: 60 bound connections from one address (three times
    // the cap) all stay usable, and more are admitted.
    let mut crowd = Vec::new();
    for _ in 0..60 {
        let (code, client) = bind(CROWD).await;
        assert_eq!(code, LdapResultCode::Success);
        crowd.push(client);
    }
    for client in &mut crowd {
        let code = client
            .bind(&user_dn("bob"), "bob-password")
            .await
            .expect("the bound connection still works");
        assert_eq!(code, LdapResultCode::Success);
    }
    // A message that has begun (a SEQUENCE of 4096 octets) must arrive whole within the
    // message timeout, whatever trickles in.
    let mut slow = connect_from(TRICKLER, ldap).await.expect("connect");
    let kept = trickle_until_closed(
        &mut slow,
        b"\x30\x84\x00\x00\x10\x00",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await
    .expect("a trickled LDAP message is cut off");
    assert!(kept < Duration::from_secs(4), "kept for {kept:?}");
    setup.outpost.stop().await;
}
