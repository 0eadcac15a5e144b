//! The outpost runtime against a scripted stand-in for the core (REST config endpoint and the
//! control-channel WebSocket), so each step of the protocol is driven and checked from the
//! core's side: hello, welcome, change sets and acks, gaps that force a re-fetch, heartbeats,
//! close codes, malformed and oversized messages, and a clean close on stop.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use redoubt_outpost::settings::OutpostSettings;
use redoubt_outpost::{RunningOutpost, start};
use redoubt_outpost_proto::config::{
    ConfigSnapshot, Directory, DirectoryUser, OutpostConfig, OutpostInfo, OutpostKind,
};
use redoubt_outpost_proto::control::{
    CHANNEL_PATH, ChangeItem, ChangeSet, CoreMessage, MAX_MESSAGE_BYTES, OutpostMessage,
};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const TOKEN: &str = "rdt_fake_core_token";
/// Every wait in these tests is bounded; nothing sleeps to wait for readiness.
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Fake {
    snapshot: Arc<Mutex<ConfigSnapshot>>,
    fetches: Arc<AtomicUsize>,
    sessions: mpsc::UnboundedSender<WebSocket>,
}

struct Harness {
    url: String,
    snapshot: Arc<Mutex<ConfigSnapshot>>,
    fetches: Arc<AtomicUsize>,
    sessions: mpsc::UnboundedReceiver<WebSocket>,
    _state: tempfile::TempDir,
    state_dir: std::path::PathBuf,
}

fn user(id: i64, username: &str) -> DirectoryUser {
    DirectoryUser {
        id,
        username: username.into(),
        name: String::new(),
        email: String::new(),
        is_active: true,
        attributes: Default::default(),
        group_ids: vec![],
        credential_epoch: 0,
        has_totp: false,
        created_at: 0,
        updated_at: 0,
    }
}

fn snapshot(revision: i64, users: Vec<DirectoryUser>) -> ConfigSnapshot {
    ConfigSnapshot {
        revision,
        config: OutpostConfig {
            sessions: None,
            outpost: OutpostInfo {
                id: 1,
                name: "ldap-1".into(),
                kind: OutpostKind::Ldap,
                settings: Value::Null,
            },
            providers: vec![],
            directory: Some(Directory {
                users,
                groups: vec![],
            }),
        },
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

async fn config(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    fake.fetches.fetch_add(1, Ordering::SeqCst);
    let snapshot = fake.snapshot.lock().expect("lock").clone();
    axum::Json(snapshot).into_response()
}

async fn channel(
    State(fake): State<Fake>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _ = fake.sessions.send(socket);
        })
}

async fn fake_core(initial: ConfigSnapshot) -> Harness {
    let (tx, rx) = mpsc::unbounded_channel();
    let fake = Fake {
        snapshot: Arc::new(Mutex::new(initial)),
        fetches: Arc::new(AtomicUsize::new(0)),
        sessions: tx,
    };
    let app = Router::new()
        .route("/api/v1/outpost/config", get(config))
        .route(CHANNEL_PATH, get(channel))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let state = tempfile::tempdir().expect("tempdir");
    Harness {
        url: format!("http://{addr}"),
        snapshot: fake.snapshot,
        fetches: fake.fetches,
        sessions: rx,
        state_dir: state.path().to_owned(),
        _state: state,
    }
}

impl Harness {
    fn settings(&self) -> OutpostSettings {
        let mut settings = OutpostSettings {
            url: self.url.clone(),
            token: TOKEN.into(),
            state_dir: self.state_dir.clone(),
            ..Default::default()
        };
        settings.listen.metrics = "127.0.0.1:0".into();
        settings
    }

    async fn session(&mut self) -> WebSocket {
        tokio::time::timeout(LIMIT, self.sessions.recv())
            .await
            .expect("the outpost connects in time")
            .expect("the fake core runs")
    }
}

/// The next text message from the outpost, skipping pings.
async fn next_message(socket: &mut WebSocket) -> OutpostMessage {
    loop {
        let message = tokio::time::timeout(LIMIT, socket.recv())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("a valid message"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// The close frame the outpost sends, skipping everything else.
async fn next_close(socket: &mut WebSocket) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(LIMIT, socket.recv())
            .await
            .expect("a close frame in time")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Close(frame) = message {
            let frame = frame.expect("a close frame with a code");
            return (frame.code, frame.reason.to_string());
        }
    }
}

async fn send(socket: &mut WebSocket, message: &CoreMessage) {
    let text = serde_json::to_string(message).expect("encode");
    socket.send(Message::text(text)).await.expect("send");
}

async fn welcome(socket: &mut WebSocket, heartbeat_interval_seconds: u64) {
    send(
        socket,
        &CoreMessage::Welcome {
            heartbeat_interval_seconds,
            core_version: "0.0.0-fake".into(),
        },
    )
    .await;
}

async fn hello_revision(socket: &mut WebSocket, outpost: &RunningOutpost) -> Option<i64> {
    match next_message(socket).await {
        OutpostMessage::Hello(hello) => {
            assert_eq!(
                hello.protocol_version,
                redoubt_outpost_proto::PROTOCOL_VERSION
            );
            assert_eq!(hello.software_version, redoubt_outpost::VERSION);
            assert_eq!(hello.instance_id, outpost.instance_id);
            assert!(!hello.build.is_empty());
            hello.revision
        }
        other => panic!("expected hello, got {other:?}"),
    }
}

async fn fetch(outpost: &RunningOutpost, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{}{path}", outpost.metrics_addr))
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn applies_changes_acks_heartbeats_refetches_on_a_gap_and_closes_cleanly() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut core = fake_core(snapshot(5, vec![user(1, "ada")])).await;
    let outpost = start(core.settings()).await.expect("start");
    let held = tokio::time::timeout(LIMIT, outpost.wait_for_revision(5))
        .await
        .expect("configured over REST");
    assert_eq!(held.config.outpost.name, "ldap-1");
    assert_eq!(fetch(&outpost, "/-/health/ready").await.0, 200);

    let mut socket = core.session().await;
    assert_eq!(hello_revision(&mut socket, &outpost).await, Some(5));
    welcome(&mut socket, 1).await;
    tokio::time::timeout(LIMIT, outpost.wait_connected(true))
        .await
        .expect("connected");

    // A change set that follows the held revision: applied and acknowledged.
    send(
        &mut socket,
        &CoreMessage::Changes(ChangeSet {
            from_revision: 5,
            revision: 6,
            items: vec![ChangeItem::UserUpserted {
                user: user(2, "brook"),
            }],
        }),
    )
    .await;
    assert_eq!(
        next_message(&mut socket).await,
        OutpostMessage::Ack { revision: 6 }
    );
    let applied = outpost.config().expect("config");
    let users = &applied.config.directory.as_ref().expect("directory").users;
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["ada", "brook"]
    );

    // A gap (from 9, the outpost holds 6): not applied; the whole config is fetched again.
    *core.snapshot.lock().expect("lock") = snapshot(12, vec![user(3, "cy")]);
    let fetches = core.fetches.load(Ordering::SeqCst);
    send(
        &mut socket,
        &CoreMessage::Changes(ChangeSet {
            from_revision: 9,
            revision: 10,
            items: vec![ChangeItem::UserDeleted { id: 1 }],
        }),
    )
    .await;
    assert_eq!(
        next_message(&mut socket).await,
        OutpostMessage::Ack { revision: 12 }
    );
    assert_eq!(core.fetches.load(Ordering::SeqCst), fetches + 1);
    assert_eq!(outpost.config().expect("config").revision, 12);

    // Heartbeats every interval from the welcome (1 s here), carrying the applied revision.
    assert_eq!(
        next_message(&mut socket).await,
        OutpostMessage::Heartbeat {
            applied_revision: 12
        }
    );

    // Metrics.
    let (status, metrics) = fetch(&outpost, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "redoubt_outpost_channel_connected 1",
        "redoubt_outpost_applied_revision 12",
        "redoubt_outpost_info{kind=\"ldap\",outpost=\"ldap-1\"",
        "redoubt_outpost_messages_received_total{type=\"changes\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }

    // Persisted privately, for the outpost identity only.
    let state = std::fs::read_to_string(core.state_dir.join("state.json")).expect("state");
    assert!(state.contains("\"revision\":12") && !state.contains(TOKEN));

    // Stop: a normal close frame ("going away"), answered by the core.
    let stopping = tokio::spawn(outpost.stop());
    let (code, reason) = next_close(&mut socket).await;
    assert_eq!(code, 1001, "{reason}");
    while let Some(Ok(_)) = socket.recv().await {}
    tokio::time::timeout(LIMIT, stopping)
        .await
        .expect("stops in time")
        .expect("stop task");
}

#[tokio::test]
async fn malformed_and_oversized_messages_close_with_a_reason_and_the_outpost_reconnects() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut core = fake_core(snapshot(3, vec![])).await;
    let outpost = start(core.settings()).await.expect("start");

    let mut socket = core.session().await;
    assert_eq!(hello_revision(&mut socket, &outpost).await, Some(3));
    welcome(&mut socket, 10).await;
    socket
        .send(Message::text("{\"type\":\"changes\",\"from_rev"))
        .await
        .expect("send");
    let (code, reason) = next_close(&mut socket).await;
    assert_eq!((code, reason.as_str()), (1002, "malformed message"));
    drop(socket);

    // Reconnects (the welcome reset the backoff) and still holds revision 3.
    let socket = core.session().await;
    let (mut sink, mut stream) = socket.split();
    let first = tokio::time::timeout(LIMIT, stream.next())
        .await
        .expect("hello in time")
        .expect("open")
        .expect("frame");
    let Message::Text(text) = first else {
        panic!("expected hello, got {first:?}");
    };
    let hello: OutpostMessage = serde_json::from_str(&text).expect("hello");
    assert!(matches!(hello, OutpostMessage::Hello(h) if h.revision == Some(3)));
    // One byte over the limit: refused from the frame header, the body is never buffered.
    let writer = tokio::spawn(async move {
        let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
        let _ = sink.send(Message::text(huge)).await;
    });
    let code = loop {
        let message = tokio::time::timeout(LIMIT, stream.next())
            .await
            .expect("a close frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Close(frame) = message {
            break frame.expect("code").code;
        }
    };
    assert_eq!(code, 1009);
    writer.abort();
    assert_eq!(outpost.config().expect("still held").revision, 3);
    assert_eq!(fetch(&outpost, "/-/health/ready").await.0, 200);
    outpost.stop().await;
}

#[tokio::test]
async fn a_refused_token_is_retried_slowly_and_never_crashes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut core = fake_core(snapshot(1, vec![])).await;
    let outpost = start(core.settings()).await.expect("start");
    let mut socket = core.session().await;
    hello_revision(&mut socket, &outpost).await;
    socket
        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
            code: 4001,
            reason: "the outpost's token was rotated".into(),
        })))
        .await
        .expect("close");
    while let Some(Ok(_)) = socket.recv().await {}
    // Not within a second: after a refusal the backoff waits at least 15 s (30 s with jitter).
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), core.sessions.recv())
            .await
            .is_err(),
        "reconnected too quickly after the token was refused"
    );
    assert!(!outpost.is_connected());
    assert_eq!(fetch(&outpost, "/-/health/ready").await.0, 200);
    outpost.stop().await;
}

#[tokio::test]
async fn wrong_token_or_unreachable_core_is_not_ready_but_alive() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let core = fake_core(snapshot(1, vec![])).await;
    let mut settings = core.settings();
    settings.token = "rdt_wrong".into();
    let wrong = start(settings).await.expect("start");
    let (status, body) = fetch(&wrong, "/-/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no configuration yet"), "{body}");
    assert_eq!(fetch(&wrong, "/-/health/live").await.0, 200);
    assert!(wrong.config().is_none());
    wrong.stop().await;

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let mut settings = core.settings();
    settings.url = format!("http://{addr}");
    let down = start(settings).await.expect("start");
    assert_eq!(fetch(&down, "/-/health/ready").await.0, 503);
    assert!(!down.is_connected());
    down.stop().await;
}
