//! A bare control-channel client for tests: speaks the wire protocol directly, so the core side
//! is checked independently of the outpost runtime.

use futures_util::{SinkExt, StreamExt};
use redoubt_outpost_proto::PROTOCOL_VERSION;
use redoubt_outpost_proto::control::{CHANNEL_PATH, CoreMessage, Hello, OutpostMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open control channel.
pub struct ChannelClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What came from the core.
#[derive(Debug)]
pub enum Received {
    Message(CoreMessage),
    Closed(Option<CloseFrame>),
}

/// A hello as a test outpost sends it.
pub fn hello(instance_id: &str, revision: Option<i64>) -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        software_version: redoubt_core::VERSION.to_owned(),
        build: "test".into(),
        hostname: "test-host".into(),
        instance_id: instance_id.into(),
        revision,
    }
}

impl ChannelClient {
    /// Opens the channel at `base` (http://...) with `token`; the HTTP error when refused.
    pub async fn connect(base: &str, token: &str) -> Result<Self, WsError> {
        let url = format!("{}{CHANNEL_PATH}", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .map_err(|_| WsError::Utf8(String::new()))?,
        );
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { socket })
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &OutpostMessage) {
        let text = serde_json::to_string(message).expect("encode");
        self.socket.send(Message::text(text)).await.expect("send");
    }

    /// Sends raw text.
    pub async fn send_raw(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next message or the close frame, waiting at most 10 s.
    pub async fn recv(&mut self) -> Received {
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), self.socket.next())
                .await
                .expect("the core answered within 10 s");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Received::Message(
                        serde_json::from_str(&text).expect("valid core message"),
                    );
                }
                Some(Ok(Message::Close(frame))) => return Received::Closed(frame),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next message, which must not be a close.
    pub async fn message(&mut self) -> CoreMessage {
        match self.recv().await {
            Received::Message(m) => m,
            Received::Closed(frame) => panic!("channel closed: {frame:?}"),
        }
    }

    /// Sends hello and returns the messages up to the first snapshot or change set.
    pub async fn handshake(&mut self, hello: Hello) -> CoreMessage {
        self.send(&OutpostMessage::Hello(hello)).await;
        match self.message().await {
            CoreMessage::Welcome { .. } => {}
            other => panic!("expected welcome, got {other:?}"),
        }
        self.message().await
    }
}
