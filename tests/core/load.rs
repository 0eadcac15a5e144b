//! Load from some clients must not deny service to others (issue 13): expensive LDAP searches
//! on many connections leave another client's bind and search answered, a time limit of one
//! second on a huge search answers timeLimitExceeded, the outpost's control channel stays up
//! with fresh heartbeats through it all, and RADIUS datagrams the kernel drops for a full
//! receive buffer show in `redoubt_radius_receive_drops_total`.

use ldap3_proto::proto::{LdapFilter, LdapResultCode, LdapSubstringFilter};
use redoubt_tests::ldap::{BASE, LdapSetup, dns, ldap_tool, ldap_utils_available, setup, user_dn};
use redoubt_tests::ldap_client::LdapClient;
use redoubt_tests::radius::{SECRET, access_request, metric};
use redoubt_tests::{TestCore, promtool_check, start_outpost_with};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Users whose `tags` hold [`TAGS`] values each: a filter of many substring terms on `tags`
/// costs seconds per search, however fast the machine.
const HEAVY_USERS: usize = 64;
const TAGS: usize = 3000;
/// Substring terms in the expensive filter (the filter bound is 1024).
const TERMS: usize = 1000;
/// Connections sending expensive searches back to back.
const LOADERS: usize = 24;
/// What "answered" means for a simple search on a machine whose CPUs the load keeps busy.
const GENEROUS: Duration = Duration::from_secs(10);

/// The expensive filter as LDAP text: substrings that no tag contains.
fn expensive_filter_text() -> String {
    let terms: String = (0..TERMS).map(|i| format!("(tags=*absent{i}*)")).collect();
    format!("(|{terms})")
}

fn expensive_filter() -> LdapFilter {
    LdapFilter::Or(
        (0..TERMS)
            .map(|i| {
                LdapFilter::Substring(
                    "tags".into(),
                    LdapSubstringFilter {
                        initial: None,
                        any: vec![format!("absent{i}")],
                        final_: None,
                    },
                )
            })
            .collect(),
    )
}

/// The heavy users, created before the outpost starts so it reads them in one snapshot.
async fn heavy_users(core: &TestCore) {
    let tags: Vec<String> = (0..TAGS).map(|j| format!("tag-value-{j:05}")).collect();
    for i in 0..HEAVY_USERS {
        core.create_member(
            json!({"username": format!("heavy{i:03}"), "attributes": {"tags": tags}}),
            &[],
        )
        .await;
    }
}

/// `LOADERS` connections bound as alice, each sending the expensive search (time limit
/// `timelimit`) until `stop`; returns their tasks once alice's bind is cached; they count
/// answered searches in `answered`.
async fn start_load(
    ldap: SocketAddr,
    timelimit: i32,
    stop: &Arc<AtomicBool>,
    answered: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    // One bind first: its verdict is cached, so the loaders' binds never wait for the core.
    let mut first = LdapClient::connect(ldap).await.expect("connect");
    let code = first
        .bind(&user_dn("alice"), "alice-password")
        .await
        .expect("bind");
    assert_eq!(code, LdapResultCode::Success);
    let mut loaders = Vec::new();
    for _ in 0..LOADERS {
        let (stop, answered) = (stop.clone(), answered.clone());
        loaders.push(tokio::spawn(async move {
            let mut client = LdapClient::connect(ldap).await.expect("connect");
            let code = client
                .bind(&user_dn("alice"), "alice-password")
                .await
                .expect("bind");
            assert_eq!(code, LdapResultCode::Success);
            while !stop.load(Ordering::Relaxed) {
                match client
                    .search_within(BASE, expensive_filter(), &["*", "+"], timelimit)
                    .await
                {
                    Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                    Err(_) => return,
                };
            }
        }));
    }
    loaders
}

/// Bob's bind and search with `ldapsearch`; returns how long it took.
async fn simple_search(s: &LdapSetup) -> Duration {
    let url = format!("ldap://{}", s.ldap);
    let dn = user_dn("bob");
    let started = Instant::now();
    let out = tokio::time::timeout(
        GENEROUS,
        ldap_tool(
            "ldapsearch",
            &[
                "-x",
                "-LLL",
                "-H",
                &url,
                "-D",
                &dn,
                "-w",
                "bob-password",
                "-b",
                BASE,
                "(uid=bob)",
                "uid",
            ],
            &s.ca.ca_file,
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("a simple search was not answered within {GENEROUS:?}"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(dns(&out.stdout), [user_dn("bob")]);
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_ldap_searches_do_not_starve_other_clients() {
    if !ldap_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    heavy_users(&core).await;
    let s = setup(&core, 0, json!({})).await;
    let url = format!("ldap://{}", s.ldap);

    // A time limit of one second on a search that needs far more: timeLimitExceeded (3).
    let dn = user_dn("alice");
    let filter = expensive_filter_text();
    let started = Instant::now();
    let limited = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url,
            "-D",
            &dn,
            "-w",
            "alice-password",
            "-l",
            "1",
            "-b",
            BASE,
            &filter,
        ],
        &s.ca.ca_file,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(limited.code, 3, "timeLimitExceeded: {limited:?}");
    eprintln!("timelimit=1 on the expensive search answered in {took:?}");

    // Expensive searches on many connections, back to back: a simple bind and search from
    // another client is still answered, again and again.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let loaders = start_load(s.ldap, 2, &stop, &answered).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        slowest = slowest.max(simple_search(&s).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for loader in loaders {
        let _ = tokio::time::timeout(Duration::from_secs(30), loader).await;
    }
    eprintln!(
        "under {LOADERS} expensive searchers ({} answered): slowest simple search {slowest:?}",
        answered.load(Ordering::Relaxed)
    );
    assert!(
        answered.load(Ordering::Relaxed) > 0,
        "the expensive searches were answered too"
    );
    s.outpost.stop().await;
}

/// The outpost's id in the core.
async fn outpost_id(core: &TestCore, name: &str) -> i64 {
    let list = core
        .api
        .get(&format!("/api/v1/outposts?search={name}"))
        .await
        .expect(200);
    list["items"][0]["id"].as_i64().expect("outpost id")
}

async fn outpost_metrics(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

/// The instances the core lists as connected.
async fn connected_instances(core: &TestCore, id: i64) -> Vec<Value> {
    let list = core
        .api
        .get(&format!("/api/v1/outposts/{id}/instances"))
        .await
        .expect(200);
    list.as_array()
        .expect("a list")
        .iter()
        .filter(|i| i["connected"] == true)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_channel_stays_up_under_ldap_load() {
    let core = TestCore::start().await;
    heavy_users(&core).await;
    let s = setup(&core, 0, json!({})).await;
    // Heartbeats every second (read at hello): start the outpost again to take it.
    let id = outpost_id(&core, "directory-outpost").await;
    core.api
        .patch(
            &format!("/api/v1/outposts/{id}"),
            json!({"settings": {"heartbeat_interval_seconds": 1}}),
        )
        .await
        .expect(200);
    let LdapSetup {
        outpost,
        ca,
        outpost_token,
        state,
        ..
    } = s;
    outpost.stop().await;
    let (cert, key) = (ca.cert_file.clone(), ca.key_file.clone());
    let outpost = start_outpost_with(&core.url, &outpost_token, state.path(), |s| {
        s.tls.cert_file = cert.display().to_string();
        s.tls.key_file = key.display().to_string();
    })
    .await;
    outpost.wait_connected(true).await;
    let ldap = outpost.listening("ldap").await;
    // The core lists the new instance alone once it has flushed the old one's departure.
    let instance = Value::from(outpost.instance_id.clone());
    loop {
        let connected = connected_instances(&core, id).await;
        if let [one] = connected.as_slice()
            && one["instance_id"] == instance
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_seen = connected_instances(&core, id).await[0]["last_seen"].clone();

    // Eight heartbeat periods of expensive searches on many connections (server-side time
    // limit: 3 s each): the core keeps hearing the outpost (its clock kept in step with
    // real time), and the outpost never loses the channel.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let loaders = start_load(ldap, 3, &stop, &answered).await;
    let mut unhealthy = 0;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        core.clock.advance(1);
        let text = outpost_metrics(outpost.metrics_addr).await;
        assert_eq!(
            metric(&text, "redoubt_outpost_channel_connected"),
            1.0,
            "the outpost lost its channel"
        );
        let connected = connected_instances(&core, id).await;
        assert_eq!(connected.len(), 1, "{connected:?}");
        assert_eq!(connected[0]["instance_id"], instance, "the same session");
        if connected[0]["healthy"] != true {
            unhealthy += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for loader in loaders {
        let _ = tokio::time::timeout(Duration::from_secs(30), loader).await;
    }
    let text = outpost_metrics(outpost.metrics_addr).await;
    assert_eq!(
        metric(&text, "redoubt_outpost_reconnects_total"),
        0.0,
        "the outpost reconnected"
    );
    let last = connected_instances(&core, id).await;
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0]["instance_id"], instance);
    assert_ne!(last[0]["last_seen"], first_seen, "heartbeats kept arriving");
    eprintln!(
        "{} expensive searches answered; polls where the core saw the instance unhealthy: {unhealthy} of 8",
        answered.load(Ordering::Relaxed)
    );
    assert!(answered.load(Ordering::Relaxed) > 0);
    outpost.stop().await;
}

/// A free UDP port on the loopback.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// The `/proc/net/udp` row of the socket bound to `port` on the loopback, split in fields.
fn udp_row(port: u16) -> Option<Vec<String>> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        (fields.get(1) == Some(&local)).then_some(fields)
    })
}

/// The kernel's drop count for the UDP socket bound to `port` on the loopback.
fn kernel_drops(port: u16) -> Option<u64> {
    udp_row(port)?.get(12)?.parse().ok()
}

/// Waits until the socket on `port` has nothing left to read (`rx_queue` is 0).
async fn drained(port: u16) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let queued = udp_row(port)
            .and_then(|row| row.get(4).cloned())
            .and_then(|tx_rx| {
                let rx = tx_rx.split(':').nth(1)?.to_owned();
                u64::from_str_radix(&rx, 16).ok()
            });
        if queued == Some(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the outpost did not read what was queued");
}

/// Runs the outpost binary as a process for `token` with its RADIUS ports on the loopback and
/// `buffer` as `limits.udp_receive_buffer_bytes` (None: the default); returns the process, the
/// authentication address and the metrics address.
async fn radius_process(
    core: &TestCore,
    token: &str,
    state: &std::path::Path,
    buffer: Option<usize>,
) -> (tokio::process::Child, SocketAddr, SocketAddr) {
    let auth: SocketAddr = format!("127.0.0.1:{}", free_udp_port())
        .parse()
        .expect("addr");
    let metrics: SocketAddr = format!(
        "127.0.0.1:{}",
        redoubt_tests::bench::free_port().expect("port")
    )
    .parse()
    .expect("addr");
    let mut command = tokio::process::Command::new(redoubt_tests::outpost_binary());
    command
        .arg("run")
        .env("REDOUBT_URL", &core.url)
        .env("REDOUBT_TOKEN", token)
        .env("REDOUBT_STATE_DIR", state)
        .env("REDOUBT_LISTEN__METRICS", metrics.to_string())
        .env("REDOUBT_LISTEN__RADIUS", auth.to_string())
        .env(
            "REDOUBT_LISTEN__RADIUS_ACCOUNTING",
            format!("127.0.0.1:{}", free_udp_port()),
        )
        .env("REDOUBT_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(bytes) = buffer {
        command.env(
            "REDOUBT_LIMITS__UDP_RECEIVE_BUFFER_BYTES",
            bytes.to_string(),
        );
    }
    let child = command.spawn().expect("the outpost starts");
    // Up once its metrics list the receive drops of its bound RADIUS socket.
    let started = Instant::now();
    loop {
        let text = reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .ok()
            .map(|r| r.text());
        if let Some(text) = text
            && let Ok(text) = text.await
            && text.contains("redoubt_radius_receive_drops_total{port=\"auth\"}")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the RADIUS outpost did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, auth, metrics)
}

fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args([name, &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Sends `count` Access-Requests (signed with another secret, so the outpost drops them at
/// once when it reads them) to `server` as fast as the socket takes them.
async fn burst(server: SocketAddr, count: usize) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for i in 0..count {
        let (bytes, _) =
            access_request((i % 256) as u8, "not-the-secret", "alice", "pw", &[], true);
        socket.send_to(&bytes, server).await.expect("send");
    }
}

/// The drops metric once it has caught up with the kernel's count.
async fn drops_metric(metrics: SocketAddr, kernel: u64) -> f64 {
    let started = Instant::now();
    loop {
        let text = outpost_metrics(metrics).await;
        let value = metric(&text, "redoubt_radius_receive_drops_total{port=\"auth\"}");
        if value >= kernel as f64 || started.elapsed() > Duration::from_secs(10) {
            promtool_check(&text);
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 20,000 Access-Requests while the outpost is stopped (SIGSTOP) and then while it reads, with a
/// tiny receive buffer and with the default; the metric follows the kernel's count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radius_receive_drops_are_exported() {
    const BURST: usize = 20_000;
    let core = TestCore::start().await;
    let (_, token) = core
        .create_served_provider(
            "radius",
            "burst",
            json!({"shared_secret": SECRET, "client_networks": ["127.0.0.0/8"]}),
        )
        .await;
    let mut figures = Vec::new();
    let buffers = [
        ("tiny (4 KiB)", Some(4096)),
        // What the outpost had before the setting: the system's default (net.core.rmem_default).
        ("system default", Some(0)),
        ("default (8 MiB asked)", None),
    ];
    for (label, buffer) in buffers {
        let state = tempfile::tempdir().expect("state dir");
        let (mut child, auth, metrics) = radius_process(&core, &token, state.path(), buffer).await;
        let port = auth.port();
        assert_eq!(kernel_drops(port), Some(0));
        // A paused reader: the kernel holds what the buffer takes and drops the rest.
        signal(&child, "-STOP");
        burst(auth, BURST).await;
        let paused = kernel_drops(port).expect("the socket is listed");
        signal(&child, "-CONT");
        let exported = drops_metric(metrics, paused).await;
        assert_eq!(
            exported, paused as f64,
            "{label}: the metric is the kernel's count"
        );
        // A reader at work (once it has read the backlog): only what arrives faster than it
        // reads is dropped.
        drained(port).await;
        burst(auth, BURST).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let reading = kernel_drops(port).expect("listed") - paused;
        let exported = drops_metric(metrics, paused + reading).await;
        assert_eq!(exported, (paused + reading) as f64, "{label}");
        figures.push((label, paused, reading));
        let _ = child.kill().await;
    }
    for (label, paused, reading) in &figures {
        eprintln!(
            "{label} buffer: {paused} of {BURST} dropped with the reader paused, {reading} of {BURST} while it reads"
        );
    }
    let (tiny_paused, default_paused) = (figures[0].1, figures[2].1);
    assert!(tiny_paused > 0, "a tiny buffer drops a paused burst");
    assert!(
        default_paused < tiny_paused,
        "the default buffer holds more: {default_paused} vs {tiny_paused} dropped"
    );
}
