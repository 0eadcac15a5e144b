//! The client against a scripted WebSocket server: it sends the cookie and origin, draws a
//! frame only at its `FrameEnd` and acknowledges it, records clipboard, status, resize and the
//! end, reports a refused handshake, and encodes what it sends with the shared codec.
#![allow(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback returns its own large ErrorResponse"
)]

use super::*;
use redoubt_outpost_proto::rac::TileEncoding;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

fn png_rgb(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("header");
    let data = rgb.repeat((width * height) as usize);
    writer.write_image_data(&data).expect("data");
    writer.finish().expect("finish");
    out
}

fn binary(message: ServerMessage) -> Message {
    Message::binary(message.encode())
}

#[tokio::test]
async fn draws_frames_acks_them_and_records_the_rest() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut seen = (String::new(), String::new(), String::new());
        let check = |request: &Request, response: Response| {
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            seen = (
                header("cookie"),
                header("origin"),
                request.uri().to_string(),
            );
            Ok::<_, ErrorResponse>(response)
        };
        let mut socket = tokio_tungstenite::accept_hdr_async(stream, check)
            .await
            .expect("handshake");
        let hello = ServerMessage::Hello {
            version: 1,
            width: 8,
            height: 4,
            features: 7,
            connection_id: "c-1".into(),
            endpoint_name: "Desk".into(),
        };
        socket.send(binary(hello)).await.expect("hello");
        let tiles = [
            ServerMessage::Tile {
                x: 0,
                y: 0,
                w: 8,
                h: 4,
                encoding: TileEncoding::Fill,
                data: vec![0x33, 0x66, 0x99, 0xFF],
            },
            ServerMessage::Tile {
                x: 4,
                y: 2,
                w: 4,
                h: 2,
                encoding: TileEncoding::Png,
                data: png_rgb(4, 2, [1, 2, 3]),
            },
        ];
        for tile in tiles {
            socket.send(binary(tile)).await.expect("tile");
        }
        let first_message = socket.next().await.expect("a message").expect("ok");
        socket
            .send(binary(ServerMessage::FrameEnd {
                seq: 41,
                server_ms: 5,
            }))
            .await
            .expect("frame end");
        let ack = loop {
            match socket.next().await.expect("a message").expect("ok") {
                Message::Binary(bytes) => {
                    let message = BrowserMessage::decode(&bytes).expect("decodes");
                    if matches!(message, BrowserMessage::Ack { .. }) {
                        break message;
                    }
                }
                _ => continue,
            }
        };
        for message in [
            ServerMessage::Status {
                text: "Connecting".into(),
            },
            ServerMessage::Clipboard {
                text: "from the desktop".into(),
            },
            ServerMessage::CursorHidden,
            ServerMessage::Resize {
                width: 2,
                height: 2,
            },
            ServerMessage::Ended {
                reason: EndReason::Server,
                message: "The remote desktop logged off.".into(),
            },
        ] {
            socket.send(binary(message)).await.expect("send");
        }
        socket
            .send(Message::Close(Some(
                tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 1000.into(),
                    reason: "bye".into(),
                },
            )))
            .await
            .expect("close");
        (seen, first_message, ack)
    });

    let url = format!("ws://{addr}/rac/desk/ws?ticket=t1");
    let client = RacClient::connect(RacClientOptions::new(
        &url,
        "redoubt_rac_1=abc",
        &format!("http://{addr}"),
    ))
    .await
    .expect("connects");
    let hello = client.wait_for_hello().await.expect("hello");
    assert_eq!((hello.width, hello.height, hello.features), (8, 4, 7));
    assert_eq!(hello.endpoint_name, "Desk");
    // Tiles are not drawn before their frame ends.
    assert_eq!(client.rgb(0, 0), Some([0, 0, 0]));
    client
        .key_press("KeyA", "a")
        .await
        .expect("send while the frame is open");
    client
        .wait_for_rgb(0, 0, [0x33, 0x66, 0x99])
        .await
        .expect("frame drawn");
    assert_eq!(client.rgb(5, 3), Some([1, 2, 3]));
    assert_eq!(client.rgb(3, 3), Some([0x33, 0x66, 0x99]));
    assert_eq!(client.pixel(7, 3), Some([1, 2, 3, 0xFF]));
    let ended = client.wait_for_ended().await.expect("ended");
    assert_eq!(ended.0, EndReason::Server);
    let closed = client.wait_for_close().await.expect("closed");
    assert_eq!((closed.code, closed.reason.as_str()), (1000, "bye"));
    let view = client.view();
    assert_eq!(view.frames, 1);
    assert_eq!(view.last_seq, Some(41));
    assert_eq!(view.tiles, [1, 1, 0]);
    assert_eq!(view.statuses, vec!["Connecting".to_owned()]);
    assert_eq!(view.clipboard, vec!["from the desktop".to_owned()]);
    assert_eq!(view.cursor, CursorState::Hidden);
    assert_eq!(view.resizes, vec![(2, 2)]);
    assert_eq!(view.framebuffer.as_ref().map(|f| f.width()), Some(2));
    assert!(view.error.is_none(), "{:?}", view.error);

    let ((cookie, origin, uri), first_message, ack) = server.await.expect("server");
    assert_eq!(cookie, "redoubt_rac_1=abc");
    assert_eq!(origin, format!("http://{addr}"));
    assert_eq!(uri, "/rac/desk/ws?ticket=t1");
    let Message::Binary(first) = first_message else {
        panic!("expected a binary key message, got {first_message:?}");
    };
    assert_eq!(
        BrowserMessage::decode(&first).expect("decodes"),
        BrowserMessage::Key {
            down: true,
            code: "KeyA".into(),
            key: "a".into()
        }
    );
    assert_eq!(ack, BrowserMessage::Ack { seq: 41 });
    let error = client
        .wait_for_within(Duration::from_millis(10), "anything more", |_| None::<()>)
        .await
        .expect_err("closed");
    assert!(error.to_string().contains("closed"), "{error}");
}

#[tokio::test]
async fn a_refused_handshake_reports_the_status_and_a_bad_tile_fails_waits() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let refuse = |_: &Request, _: Response| {
            let mut response = ErrorResponse::new(Some("wrong origin".into()));
            *response.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::FORBIDDEN;
            Err(response)
        };
        let _ = tokio_tungstenite::accept_hdr_async(stream, refuse).await;
        let (stream, _) = listener.accept().await.expect("accept");
        let mut socket = tokio_tungstenite::accept_async(stream)
            .await
            .expect("handshake");
        let hello = ServerMessage::Hello {
            version: 1,
            width: 2,
            height: 2,
            features: 0,
            connection_id: "c".into(),
            endpoint_name: "d".into(),
        };
        socket.send(binary(hello)).await.expect("hello");
        let outside = ServerMessage::Tile {
            x: 1,
            y: 1,
            w: 2,
            h: 2,
            encoding: TileEncoding::Fill,
            data: vec![0, 0, 0, 255],
        };
        socket.send(binary(outside)).await.expect("tile");
        let _ = socket.next().await;
    });
    let url = format!("ws://{addr}/rac/d/ws?ticket=x");
    match RacClient::connect(RacClientOptions::new(&url, "", "")).await {
        Err(ConnectError::Refused { status, body }) => {
            assert_eq!(status, 403);
            assert_eq!(body, "wrong origin");
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal"),
    }
    let client = RacClient::connect(RacClientOptions::new(&url, "", ""))
        .await
        .expect("connects");
    let error = client
        .wait_for_rgb(0, 0, [1, 1, 1])
        .await
        .expect_err("the tile is outside the desktop");
    assert!(error.to_string().contains("outside the desktop"), "{error}");
}
