//! The application behind the proxy in peer tests: answers every request with a JSON echo of
//! what it received (`{method, path, query, headers}`), so tests can assert the identity
//! headers and that spoofed ones never arrive; `/ws` echoes WebSocket messages; `/big` streams a
//! large body (`?bytes=N`, 8 MiB by default) in 64 KiB chunks of a known pattern.

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::stream;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// Size of one chunk of `/big`.
pub const BIG_CHUNK: usize = 64 * 1024;
/// Default size of `/big`.
pub const BIG_DEFAULT: usize = 8 * 1024 * 1024;

/// The byte at `offset` of a `/big` body, so a client can check every byte it received.
pub fn big_byte(offset: usize) -> u8 {
    // A pattern that does not repeat at the chunk size, so a lost or doubled chunk shows.
    (offset % 251) as u8
}

/// A running echo upstream; stops on drop.
pub struct Upstream {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Upstream {
    /// Starts the upstream on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/ws", get(websocket))
            .route("/big", get(big))
            .fallback(any(echo));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            stop: Some(tx),
        })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The JSON echo of `request`: header names in lower case, repeated headers joined by `, `.
async fn echo(request: Request) -> Response {
    let mut headers = Map::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let body = json!({
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "query": request.uri().query().unwrap_or_default(),
        "headers": headers,
    });
    axum::Json(body).into_response()
}

async fn websocket(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo_socket)
}

async fn echo_socket(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(text),
            Message::Binary(bytes) => Message::Binary(bytes),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

async fn big(Query(query): Query<HashMap<String, String>>) -> Response {
    let total = query
        .get("bytes")
        .and_then(|b| b.parse::<usize>().ok())
        .unwrap_or(BIG_DEFAULT)
        .min(1 << 30);
    let chunks = stream::unfold(0usize, move |offset| async move {
        if offset >= total {
            return None;
        }
        let end = (offset + BIG_CHUNK).min(total);
        let chunk: Vec<u8> = (offset..end).map(big_byte).collect();
        Some((Ok::<_, std::convert::Infallible>(chunk), end))
    });
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
