//! A Rust stand-in for the RAC browser client: opens `/rac/{slug}/ws?ticket=...` with the
//! sign-in cookie and the page's `Origin`, decodes every [`ServerMessage`], draws each frame's
//! tiles into a local RGBA [`Framebuffer`] when its `FrameEnd` arrives (and acknowledges it,
//! as the browser does), and keeps everything else it was told (hello, resizes, cursor,
//! clipboard texts, statuses, the end and the close) in a [`RacView`] tests wait on.
//! [`SessionBrowser`] plays the same browser against an in-process session, without a socket.

mod framebuffer;
mod link;

pub use framebuffer::{DecodedTile, Framebuffer, decode_tile};
pub use link::SessionBrowser;

use anyhow::{Context, anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use redoubt_outpost_proto::rac::{
    BrowserMessage, EndReason, RdpCredentials, ServerMessage, SpecialCombo,
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the `wait_for*` helpers wait by default.
pub const WAIT_DEADLINE: Duration = Duration::from_secs(15);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Writer = Arc<tokio::sync::Mutex<SplitSink<Socket, Message>>>;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct RacClientOptions {
    /// `ws://host:port/rac/{slug}/ws?ticket=...`.
    pub url: String,
    /// The `Cookie` header (the outpost's sign-in cookie), empty for none.
    pub cookie: String,
    /// The `Origin` header (the outpost's own origin, `http://host:port`), empty for none.
    pub origin: String,
    /// Acknowledge each frame when it is drawn (what the browser does). Off, the client
    /// plays a browser that stopped drawing.
    pub auto_ack: bool,
    /// A `Host` header other than the URL's (a name such as `desk.localhost` that the system
    /// resolver does not know, reached at a loopback address); empty for the URL's.
    pub host: String,
}

impl RacClientOptions {
    /// Options for `url` with `cookie` and `origin`, acknowledging frames.
    pub fn new(url: &str, cookie: &str, origin: &str) -> Self {
        Self {
            url: url.to_owned(),
            cookie: cookie.to_owned(),
            origin: origin.to_owned(),
            auto_ack: true,
            host: String::new(),
        }
    }
}

/// The `Hello` the outpost sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    pub width: u16,
    pub height: u16,
    pub features: u32,
    pub connection_id: String,
    pub endpoint_name: String,
}

/// The pointer shape the outpost asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CursorState {
    /// No cursor message yet, or `CursorDefault`.
    #[default]
    Default,
    Hidden,
    /// A custom shape: its hotspot and PNG.
    Custom {
        hot_x: u16,
        hot_y: u16,
        png: Vec<u8>,
    },
}

/// How the WebSocket closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The close code (1005 when the close frame had none, 1006 when the connection dropped
    /// without one).
    pub code: u16,
    pub reason: String,
}

/// Everything the client has been told so far.
#[derive(Debug, Clone, Default)]
pub struct RacView {
    pub hello: Option<Hello>,
    /// The picture as of the last `FrameEnd` (allocated at `Hello`, reallocated at `Resize`).
    pub framebuffer: Option<Framebuffer>,
    /// How many frames were drawn, and the last one's `seq`.
    pub frames: u64,
    pub last_seq: Option<u32>,
    /// Tiles received by encoding: fill, PNG, JPEG.
    pub tiles: [u64; 3],
    /// Every `Resize` (width, height), in order.
    pub resizes: Vec<(u16, u16)>,
    pub cursor: CursorState,
    /// Every text the remote desktop copied, in order.
    pub clipboard: Vec<String>,
    /// Every `Status` text, in order.
    pub statuses: Vec<String>,
    /// The `Ended` message, if any.
    pub ended: Option<(EndReason, String)>,
    pub closed: Option<Closed>,
    /// The first thing this client could not follow (an undecodable message, a tile outside
    /// the desktop, a JPEG tile); the `wait_for*` helpers fail on it at once.
    pub error: Option<String>,
    /// Tiles of the frame in progress (drawn at its `FrameEnd`).
    pending: Vec<DecodedTile>,
}

impl RacView {
    /// Takes one server message as the browser would: decodes it and updates the view;
    /// returns the `seq` to acknowledge when it ended a frame. Undecodable bytes are recorded
    /// in [`RacView::error`].
    pub fn receive(&mut self, bytes: &[u8]) -> Option<u32> {
        match ServerMessage::decode(bytes) {
            Ok(message) => apply(self, message),
            Err(error) => {
                self.error
                    .get_or_insert(format!("undecodable message: {error}"));
                None
            }
        }
    }

    /// The RGB colour at (`x`, `y`) of the last drawn frame.
    pub fn rgb(&self, x: u16, y: u16) -> Option<[u8; 3]> {
        self.framebuffer.as_ref()?.rgb(x, y)
    }
}

/// A connected test browser. Dropping it drops the connection (without a close frame); use
/// [`RacClient::close`] for an orderly close.
pub struct RacClient {
    view: Arc<Mutex<RacView>>,
    changed: watch::Sender<u64>,
    writer: Writer,
    reader: tokio::task::JoinHandle<()>,
}

/// Why the WebSocket could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The outpost answered the handshake with an HTTP error (bad ticket, wrong origin, no
    /// sign-in, no such desktop, outpost full).
    Refused { status: u16, body: String },
    /// Anything else (the connection failed, a malformed URL).
    Failed(anyhow::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { status, body } => write!(f, "refused with {status}: {body}"),
            Self::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl RacClient {
    /// Opens the WebSocket and starts reading.
    pub async fn connect(options: RacClientOptions) -> Result<Self, ConnectError> {
        let mut request = options
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| ConnectError::Failed(anyhow!(e).context("the WebSocket URL")))?;
        for (name, value) in [
            ("cookie", &options.cookie),
            ("origin", &options.origin),
            ("host", &options.host),
        ] {
            if !value.is_empty() {
                let value = HeaderValue::from_str(value)
                    .map_err(|e| ConnectError::Failed(anyhow!(e).context(name)))?;
                request.headers_mut().insert(name, value);
            }
        }
        // Without Nagle, as browsers open WebSockets: an ack must not wait for a delayed TCP ACK.
        let socket = match tokio_tungstenite::connect_async_with_config(request, None, true).await {
            Ok((socket, _)) => socket,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                return Err(ConnectError::Refused {
                    status: response.status().as_u16(),
                    body,
                });
            }
            Err(error) => {
                return Err(ConnectError::Failed(
                    anyhow!(error).context("open the WebSocket"),
                ));
            }
        };
        let (sink, stream) = socket.split();
        let view = Arc::new(Mutex::new(RacView::default()));
        let changed = watch::Sender::new(0);
        let writer = Arc::new(tokio::sync::Mutex::new(sink));
        let reader = tokio::spawn(read_loop(
            stream,
            view.clone(),
            changed.clone(),
            writer.clone(),
            options.auto_ack,
        ));
        Ok(Self {
            view,
            changed,
            writer,
            reader,
        })
    }

    fn lock(&self) -> MutexGuard<'_, RacView> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of everything received so far.
    pub fn view(&self) -> RacView {
        self.lock().clone()
    }

    /// The RGBA pixel at (`x`, `y`) of the last drawn frame.
    pub fn pixel(&self, x: u16, y: u16) -> Option<[u8; 4]> {
        self.lock().framebuffer.as_ref()?.pixel(x, y)
    }

    /// The RGB colour at (`x`, `y`) of the last drawn frame.
    pub fn rgb(&self, x: u16, y: u16) -> Option<[u8; 3]> {
        self.lock().rgb(x, y)
    }

    /// Waits up to [`WAIT_DEADLINE`] until `check` finds what it wants in the view; fails at
    /// once when the client hit an error, or when the socket closed without it.
    pub async fn wait_for<R>(
        &self,
        what: &str,
        check: impl FnMut(&RacView) -> Option<R>,
    ) -> anyhow::Result<R> {
        self.wait_for_within(WAIT_DEADLINE, what, check).await
    }

    /// [`Self::wait_for`] with its own deadline.
    pub async fn wait_for_within<R>(
        &self,
        deadline: Duration,
        what: &str,
        mut check: impl FnMut(&RacView) -> Option<R>,
    ) -> anyhow::Result<R> {
        let until = tokio::time::Instant::now() + deadline;
        let mut changes = self.changed.subscribe();
        loop {
            {
                let view = self.lock();
                if let Some(found) = check(&view) {
                    return Ok(found);
                }
                if let Some(error) = &view.error {
                    bail!("waiting for {what}: the client failed: {error}");
                }
                if let Some(closed) = &view.closed {
                    bail!(
                        "waiting for {what}: the socket closed ({} {:?}); ended: {:?}",
                        closed.code,
                        closed.reason,
                        view.ended
                    );
                }
            }
            if tokio::time::timeout_at(until, changes.changed())
                .await
                .is_err()
            {
                let view = self.lock();
                bail!(
                    "no {what} within {deadline:?} (hello: {}, frames: {}, statuses: {:?}, ended: {:?})",
                    view.hello.is_some(),
                    view.frames,
                    view.statuses,
                    view.ended
                );
            }
        }
    }

    /// Waits for the `Hello`.
    pub async fn wait_for_hello(&self) -> anyhow::Result<Hello> {
        self.wait_for("the hello", |v| v.hello.clone()).await
    }

    /// Waits until the drawn picture shows `rgb` at (`x`, `y`).
    pub async fn wait_for_rgb(&self, x: u16, y: u16, rgb: [u8; 3]) -> anyhow::Result<()> {
        self.wait_for(&format!("{rgb:02x?} at ({x}, {y})"), |v| {
            (v.rgb(x, y) == Some(rgb)).then_some(())
        })
        .await
    }

    /// Waits for `Ended` (it may come with or without a close).
    pub async fn wait_for_ended(&self) -> anyhow::Result<(EndReason, String)> {
        let what = "an ended message";
        let until = tokio::time::Instant::now() + WAIT_DEADLINE;
        let mut changes = self.changed.subscribe();
        loop {
            {
                let view = self.lock();
                if let Some(ended) = &view.ended {
                    return Ok(ended.clone());
                }
                if let Some(closed) = &view.closed {
                    bail!("the socket closed without {what}: {closed:?}");
                }
            }
            if tokio::time::timeout_at(until, changes.changed())
                .await
                .is_err()
            {
                bail!("no {what} within {WAIT_DEADLINE:?}");
            }
        }
    }

    /// Waits until the socket is closed; returns how.
    pub async fn wait_for_close(&self) -> anyhow::Result<Closed> {
        let until = tokio::time::Instant::now() + WAIT_DEADLINE;
        let mut changes = self.changed.subscribe();
        loop {
            if let Some(closed) = self.lock().closed.clone() {
                return Ok(closed);
            }
            if tokio::time::timeout_at(until, changes.changed())
                .await
                .is_err()
            {
                bail!("the socket did not close within {WAIT_DEADLINE:?}");
            }
        }
    }

    /// Waits until the remote desktop copied `text`.
    pub async fn wait_for_clipboard(&self, text: &str) -> anyhow::Result<()> {
        self.wait_for(&format!("the clipboard text {text:?}"), |v| {
            v.clipboard.iter().any(|t| t == text).then_some(())
        })
        .await
    }

    /// Sends `message`.
    pub async fn send(&self, message: &BrowserMessage) -> anyhow::Result<()> {
        self.send_raw(message.encode()).await
    }

    /// Sends `bytes` as one binary message, encoded or not (for malformed-input tests).
    pub async fn send_raw(&self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.writer
            .lock()
            .await
            .send(Message::binary(bytes))
            .await
            .context("send")
    }

    /// A key going down or up (`code` as `KeyboardEvent.code`, `key` as `KeyboardEvent.key`).
    pub async fn key(&self, down: bool, code: &str, key: &str) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Key {
            down,
            code: code.to_owned(),
            key: key.to_owned(),
        })
        .await
    }

    /// A key pressed and released.
    pub async fn key_press(&self, code: &str, key: &str) -> anyhow::Result<()> {
        self.key(true, code, key).await?;
        self.key(false, code, key).await
    }

    /// Text typed as characters.
    pub async fn unicode(&self, text: &str) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Unicode {
            text: text.to_owned(),
        })
        .await
    }

    /// The pointer at (`x`, `y`) with `buttons` held (1 left, 2 right, 4 middle, 8 back,
    /// 16 forward).
    pub async fn mouse(&self, x: u16, y: u16, buttons: u8) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Mouse { x, y, buttons }).await
    }

    /// A wheel turn (120 per notch; positive `dy` scrolls down, positive `dx` right).
    pub async fn wheel(&self, dx: i16, dy: i16) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Wheel { dx, dy }).await
    }

    /// Text copied in the browser.
    pub async fn clipboard(&self, text: &str) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Clipboard {
            text: text.to_owned(),
        })
        .await
    }

    /// The desktop size the browser wants.
    pub async fn resize(&self, width: u16, height: u16) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Resize { width, height }).await
    }

    /// Acknowledges frame `seq` (automatic unless `auto_ack` is off).
    pub async fn ack(&self, seq: u32) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Ack { seq }).await
    }

    /// Lock-key state (1 caps, 2 num, 4 scroll, 8 kana).
    pub async fn sync_locks(&self, locks: u8) -> anyhow::Result<()> {
        self.send(&BrowserMessage::SyncLocks { locks }).await
    }

    /// Credentials in prompt mode (the first message).
    pub async fn credentials(
        &self,
        username: &str,
        domain: Option<&str>,
        password: &str,
    ) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Credentials(RdpCredentials {
            username: username.to_owned(),
            domain: domain.map(str::to_owned),
            password: password.to_owned(),
        }))
        .await
    }

    /// A toolbar key combination.
    pub async fn special(&self, combo: SpecialCombo) -> anyhow::Result<()> {
        self.send(&BrowserMessage::Special { combo }).await
    }

    /// The tab lost focus.
    pub async fn release_all(&self) -> anyhow::Result<()> {
        self.send(&BrowserMessage::ReleaseAll).await
    }

    /// Closes the WebSocket with 1000 (the user closed the tab) and waits for the outpost's
    /// answer.
    pub async fn close(&self) -> anyhow::Result<Closed> {
        self.writer
            .lock()
            .await
            .send(Message::Close(Some(
                tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 1000.into(),
                    reason: "closed by the test".into(),
                },
            )))
            .await
            .context("send close")?;
        self.wait_for_close().await
    }
}

impl Drop for RacClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads until the socket ends, updating `view` and waking waiters after each message.
async fn read_loop(
    mut stream: SplitStream<Socket>,
    view: Arc<Mutex<RacView>>,
    changed: watch::Sender<u64>,
    writer: Writer,
    auto_ack: bool,
) {
    let lock = || view.lock().unwrap_or_else(PoisonError::into_inner);
    let notify = || changed.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let closed = match stream.next().await {
            Some(Ok(Message::Binary(bytes))) => {
                let ack = {
                    let mut view = lock();
                    match ServerMessage::decode(&bytes) {
                        Ok(message) => apply(&mut view, message),
                        Err(error) => {
                            view.error
                                .get_or_insert(format!("undecodable message: {error}"));
                            None
                        }
                    }
                };
                if let (Some(seq), true) = (ack, auto_ack) {
                    let message = Message::binary(BrowserMessage::Ack { seq }.encode());
                    let _ = writer.lock().await.send(message).await;
                }
                None
            }
            Some(Ok(Message::Close(frame))) => Some(match frame {
                Some(frame) => Closed {
                    code: frame.code.into(),
                    reason: frame.reason.to_string(),
                },
                None => Closed {
                    code: 1005,
                    reason: String::new(),
                },
            }),
            Some(Ok(Message::Text(text))) => {
                lock()
                    .error
                    .get_or_insert(format!("a text message: {}", text.as_str()));
                None
            }
            Some(Ok(_)) => None,
            Some(Err(error)) => Some(Closed {
                code: 1006,
                reason: error.to_string(),
            }),
            None => Some(Closed {
                code: 1006,
                reason: "the connection ended".into(),
            }),
        };
        if let Some(closed) = closed {
            lock().closed.get_or_insert(closed);
            notify();
            return;
        }
        notify();
    }
}

/// Applies one message to the view; returns the `seq` to acknowledge after a `FrameEnd`.
fn apply(view: &mut RacView, message: ServerMessage) -> Option<u32> {
    match message {
        ServerMessage::Hello {
            version,
            width,
            height,
            features,
            connection_id,
            endpoint_name,
        } => {
            view.framebuffer = Some(Framebuffer::new(width, height));
            view.hello = Some(Hello {
                version,
                width,
                height,
                features,
                connection_id,
                endpoint_name,
            });
        }
        ServerMessage::Tile {
            x,
            y,
            w,
            h,
            encoding,
            data,
        } => {
            view.tiles[encoding as usize] += 1;
            let fits = view.framebuffer.as_ref().is_some_and(|fb| {
                u32::from(x) + u32::from(w) <= u32::from(fb.width())
                    && u32::from(y) + u32::from(h) <= u32::from(fb.height())
            });
            if !fits {
                view.error.get_or_insert(format!(
                    "tile {w}x{h} at ({x}, {y}) outside the desktop (or before the hello)"
                ));
                return None;
            }
            match decode_tile(x, y, w, h, encoding, &data) {
                Ok(tile) => view.pending.push(tile),
                Err(error) => {
                    view.error.get_or_insert(format!("{error:#}"));
                }
            }
        }
        ServerMessage::FrameEnd { seq, .. } => {
            let tiles = std::mem::take(&mut view.pending);
            if let Some(framebuffer) = view.framebuffer.as_mut() {
                for tile in &tiles {
                    if let Err(error) = framebuffer.draw(tile) {
                        view.error.get_or_insert(format!("{error:#}"));
                    }
                }
            }
            view.frames += 1;
            view.last_seq = Some(seq);
            return Some(seq);
        }
        ServerMessage::Resize { width, height } => {
            view.framebuffer = Some(Framebuffer::new(width, height));
            view.pending.clear();
            view.resizes.push((width, height));
        }
        ServerMessage::Cursor { hot_x, hot_y, png } => {
            view.cursor = CursorState::Custom { hot_x, hot_y, png };
        }
        ServerMessage::CursorDefault => view.cursor = CursorState::Default,
        ServerMessage::CursorHidden => view.cursor = CursorState::Hidden,
        ServerMessage::Clipboard { text } => view.clipboard.push(text),
        ServerMessage::Ended { reason, message } => view.ended = Some((reason, message)),
        ServerMessage::Status { text } => view.statuses.push(text),
    }
    None
}

#[cfg(test)]
mod tests;
