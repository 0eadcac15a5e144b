//! The RAC session over this server, without the WebSocket: the tiles the session sends draw
//! exactly the server's picture (lossless), later fills follow, and keys, characters and
//! pointer events from the browser reach the server as the expected RDP input.

use super::*;
use crate::rac_client::{RacView, SessionBrowser};
use redoubt_outpost_proto::provider::{ClipboardPolicy, RdpSecurity};
use redoubt_outpost_proto::rac::{BrowserMessage, RdpCredentials};
use redoubt_outpost_rac::connect::{ConnectTarget, connect};
use redoubt_outpost_rac::metrics::RacMetrics;
use redoubt_outpost_rac::session::{self, SessionSettings};
use std::time::Instant;
use tokio::sync::watch;

const WIDTH: u16 = 320;
const HEIGHT: u16 = 200;
const WAIT: Duration = Duration::from_secs(15);

fn matches_server(view: &RacView, server: &RdpTestServer) -> bool {
    (0..HEIGHT).all(|y| (0..WIDTH).all(|x| view.rgb(x, y) == server.pixel(x, y)))
}

#[tokio::test]
async fn pixels_and_input_cross_the_session_exactly() {
    crate::peers::crypto();
    let server = RdpTestServer::start(RdpTestOptions {
        width: WIDTH,
        height: HEIGHT,
        ..Default::default()
    })
    .await
    .expect("server starts");
    let target = ConnectTarget {
        host: "127.0.0.1".into(),
        port: server.addr().port(),
        security: RdpSecurity::Tls,
        pin_sha256: None,
        width: WIDTH,
        height: HEIGHT,
        keyboard_layout: 0x409,
        client_name: "redoubt-test".into(),
    };
    let credentials = RdpCredentials {
        username: "bob".into(),
        domain: None,
        password: "pw".into(),
    };
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let connected = connect(&target, &credentials, None)
                .await
                .expect("connects");
            let (mut browser, link) = SessionBrowser::new(WIDTH, HEIGHT);
            let (_control_tx, control) = watch::channel(None);
            let metrics =
                Arc::new(RacMetrics::register(&prometheus::Registry::new()).expect("metrics"));
            let settings = SessionSettings {
                connection_id: "c-test".into(),
                lossless: true,
                unicode_keyboard: false,
                follow_browser_size: false,
                idle_timeout: None,
                expires_at: Instant::now() + Duration::from_secs(120),
                clipboard: ClipboardPolicy::Both,
                clipboard_max_bytes: 1 << 20,
            };
            let session = tokio::task::spawn_local(session::run(
                connected, link, control, settings, metrics, None,
            ));
            browser
                .until("the whole pattern", WAIT, |v| matches_server(v, &server))
                .await
                .expect("the pattern");
            assert_eq!(browser.view.tiles[2], 0, "no JPEG when lossless");

            let rect = Rect {
                x: 10,
                y: 150,
                width: 50,
                height: 30,
            };
            server.push_fill(rect, [0x12, 0x34, 0x56]).expect("inside");
            browser
                .until("the fill", WAIT, |v| {
                    v.rgb(30, 160) == Some([0x12, 0x34, 0x56])
                })
                .await
                .expect("the fill");
            assert!(matches_server(&browser.view, &server));

            server.input().clear();
            for (code, key) in [("KeyA", "a"), ("ArrowLeft", "ArrowLeft")] {
                for down in [true, false] {
                    browser
                        .send(BrowserMessage::Key {
                            down,
                            code: code.into(),
                            key: key.into(),
                        })
                        .await
                        .expect("sent");
                }
            }
            let seen = server
                .input()
                .wait_for("four key events", |events| {
                    let keys = keys(events);
                    (keys.len() >= 4).then_some(keys)
                })
                .await
                .expect("keys arrive");
            assert_eq!(
                seen,
                vec![
                    (0x1E, false, true),
                    (0x1E, false, false),
                    (0x4B, true, true),
                    (0x4B, true, false)
                ]
            );
            browser
                .send(BrowserMessage::Unicode {
                    text: "é€".into()
                })
                .await
                .expect("sent");
            server
                .input()
                .wait_for("the typed characters", |events| {
                    (unicode_text(events) == "é€").then_some(())
                })
                .await
                .expect("characters arrive");
            browser
                .send(BrowserMessage::Mouse {
                    x: 100,
                    y: 50,
                    buttons: 1,
                })
                .await
                .expect("sent");
            server
                .input()
                .wait_for("the move and the left button", |events| {
                    let moved = events.contains(&InputEvent::Move { x: 100, y: 50 });
                    let pressed = events.contains(&InputEvent::Button {
                        button: MouseButton::Left,
                        down: true,
                    });
                    (moved && pressed).then_some(())
                })
                .await
                .expect("pointer events arrive");
            browser
                .send(BrowserMessage::Wheel { dx: 0, dy: 120 })
                .await
                .expect("sent");
            let units = server
                .input()
                .wait_for("a wheel turn", |events| {
                    events.iter().find_map(|e| match e {
                        InputEvent::Wheel { units } => Some(*units),
                        _ => None,
                    })
                })
                .await
                .expect("the wheel arrives");
            assert!(
                units < 0,
                "scrolling down is a negative RDP wheel turn: {units}"
            );

            assert!(server.disconnect_client());
            let end = session.await.expect("the session task");
            assert_eq!(
                end.reason,
                redoubt_outpost_proto::rac::EndReason::Server,
                "{end:?}"
            );
        })
        .await;
}
