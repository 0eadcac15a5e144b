//! One browser connection to a desktop: the WebSocket handshake (ticket, `Origin`, the
//! outpost's session cap), then, on the upgraded socket, the prompt for credentials (prompt
//! mode), the grant from the core (fresh access check, limits across replicas, static
//! credentials), connecting to the RDP server, the session, and the reports that become audit
//! events. The socket's reader and writer run beside the session so a slow browser never stalls
//! the RDP reader.

use crate::Shared;
use crate::connect::ConnectError;
use crate::connect::{ConnectTarget, connect, parse_pin};
use crate::metrics::RacMetrics;
use crate::rdp_clipboard::ChannelBackend;
use crate::registry::Holder;
use crate::session::{self, BrowserLink, Outgoing, SessionControl, SessionEnd, SessionSettings};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use redoubt_outpost::proxy::Peer;
use redoubt_outpost::proxy::body::ProxyBody;
use redoubt_outpost::proxy::session::Session;
use redoubt_outpost::proxy::state::ProviderView;
use redoubt_outpost_proto::provider::{
    ClipboardPolicy, RacAuthMode, RacEndpoint, RacProviderSettings,
};
use redoubt_outpost_proto::rac::RdpCredentials;
use redoubt_outpost_proto::rac::{
    BROWSER_PROTOCOL_VERSION, BrowserMessage, EndReason, GRANTS_PATH, GrantRefusal, GrantRefused,
    MAX_BROWSER_MESSAGE_BYTES, REPORTS_PATH, RacConnectionEvent, RacConnectionReport, RacGrant,
    RacGrantRequest, RacUser, ServerMessage, features,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

/// Longest wait for the user to submit credentials in prompt mode.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// What the handshake decided.
pub enum Accepted {
    /// 101: the session runs on the upgraded socket.
    Upgrade(Response<ProxyBody>),
    /// Refused before upgrading, with a sentence.
    Refused(StatusCode, String),
}

/// Checks the WebSocket handshake for `slug` and starts the connection on the upgraded socket.
pub fn accept(
    shared: &Arc<Shared>,
    mut request: Request<redoubt_outpost::proxy::upstream::UpstreamBody>,
    provider: &Arc<ProviderView>,
    session: &Arc<Session>,
    slug: &str,
    peer: Peer,
) -> Accepted {
    let headers = request.headers();
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return Accepted::Refused(
            StatusCode::BAD_REQUEST,
            "This address takes a WebSocket.".into(),
        );
    };
    if !upgrade {
        return Accepted::Refused(
            StatusCode::BAD_REQUEST,
            "This address takes a WebSocket.".into(),
        );
    }
    // Browsers send cookies with cross-site WebSocket handshakes: only our own pages may open one.
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !origin.eq_ignore_ascii_case(&provider.origin) {
        return Accepted::Refused(
            StatusCode::FORBIDDEN,
            "The connection must be opened from this outpost's own page.".into(),
        );
    }
    let ticket = request
        .uri()
        .query()
        .and_then(|q| url_param(q, "ticket"))
        .unwrap_or_default();
    let keys = shared.proxy_state().keys.clone();
    if let Err(error) = shared.spent.redeem(
        &keys,
        provider.id,
        &ticket,
        &session.sid,
        slug,
        shared.clock.now(),
    ) {
        return Accepted::Refused(StatusCode::FORBIDDEN, format!("{error}."));
    }
    let initial_size = request.uri().query().and_then(initial_size);
    let state = shared.state();
    let Some((settings, endpoint)) = state.endpoint(provider.id, slug) else {
        return Accepted::Refused(StatusCode::NOT_FOUND, "There is no such desktop.".into());
    };
    if shared.registry.len() >= shared.max_sessions {
        shared.metrics.connection("outpost_full");
        return Accepted::Refused(StatusCode::SERVICE_UNAVAILABLE, "This outpost holds as many connections as it may; try again later or ask your administrator.".into());
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let accept_key = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let job = Job {
        shared: shared.clone(),
        provider_id: provider.id,
        settings: settings.clone(),
        endpoint: endpoint.clone(),
        session: session.clone(),
        peer,
        initial_size,
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(MAX_BROWSER_MESSAGE_BYTES))
                    .max_frame_size(Some(MAX_BROWSER_MESSAGE_BYTES));
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                job.run(socket).await;
            }
            Err(error) => tracing::debug!(%error, "the WebSocket upgrade did not complete"),
        }
    });
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    Accepted::Upgrade(response)
}

/// The browser's size from the handshake's `width` and `height` (device pixels), adjusted as
/// a monitor layout would be; `None` when either is missing or not a number.
fn initial_size(query: &str) -> Option<(u16, u16)> {
    let width = url_param(query, "width")?.parse::<u16>().ok()?;
    let height = url_param(query, "height")?.parse::<u16>().ok()?;
    let (width, height) = ironrdp_displaycontrol::pdu::MonitorLayoutEntry::adjust_display_size(
        u32::from(width),
        u32::from(height),
    );
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

fn url_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

struct Job {
    shared: Arc<Shared>,
    provider_id: i64,
    settings: Arc<RacProviderSettings>,
    endpoint: RacEndpoint,
    session: Arc<Session>,
    peer: Peer,
    /// The browser's size at the handshake: where a desktop that follows it starts.
    initial_size: Option<(u16, u16)>,
}

impl Job {
    async fn run(self, socket: Socket) {
        let opened = Instant::now();
        let (sink, mut stream) = socket.split();
        let (to_browser, outgoing) = mpsc::channel::<Outgoing>(16);
        let writer = tokio::spawn(write_socket(sink, outgoing));
        let ended = self.connect_and_run(&mut stream, &to_browser, opened).await;
        if let Some((reason, message)) = ended {
            let ended = ServerMessage::Ended { reason, message }.encode();
            let _ = to_browser.send(Outgoing::Messages(vec![ended])).await;
            let _ = to_browser
                .send(Outgoing::Close(1000, reason.label().to_owned()))
                .await;
        }
        drop(to_browser);
        let _ = writer.await;
    }

    /// Everything from the open socket to the end; `Some` is what to tell the browser.
    async fn connect_and_run(
        &self,
        stream: &mut futures_util::stream::SplitStream<Socket>,
        to_browser: &mpsc::Sender<Outgoing>,
        opened: Instant,
    ) -> Option<(EndReason, String)> {
        let shared = &self.shared;
        let prompted = if self.endpoint.auth_mode == RacAuthMode::Prompt {
            match tokio::time::timeout(PROMPT_TIMEOUT, next_message(stream)).await {
                Ok(Ok(Some(BrowserMessage::Credentials(credentials)))) => Some(credentials),
                Ok(Ok(None)) | Ok(Err(_)) => return None,
                Ok(Ok(Some(_))) => {
                    return Some((
                        EndReason::BadMessage,
                        "The page must send the credentials first; reload it.".into(),
                    ));
                }
                Err(_) => {
                    return Some((
                        EndReason::Timeout,
                        "No credentials were entered in time; reload the page to try again.".into(),
                    ));
                }
            }
        } else {
            None
        };
        let _ = to_browser
            .send(Outgoing::Messages(vec![
                ServerMessage::Status {
                    text: format!("Connecting to {}…", self.endpoint.name),
                }
                .encode(),
            ]))
            .await;
        let grant = match self.grant().await {
            Ok(grant) => grant,
            Err((reason, message)) => {
                shared.metrics.connection(reason.label());
                return Some((reason, message));
            }
        };
        let credentials = match (grant.credentials.clone(), prompted) {
            (Some(credentials), _) => credentials,
            (None, Some(credentials)) => credentials,
            (None, None) => {
                self.report(
                    &grant.connection_id,
                    RacConnectionEvent::Failed {
                        reason: EndReason::AuthFailed,
                        detail: "no credentials".into(),
                    },
                )
                .await;
                return Some((
                    EndReason::AuthFailed,
                    "No credentials are set for this desktop. Ask your administrator.".into(),
                ));
            }
        };
        let Some((host, port)) = self.endpoint.host_port() else {
            return Some((EndReason::Removed, session::end_message(EndReason::Removed)));
        };
        let (width, height) = match (self.endpoint.width, self.endpoint.height) {
            (Some(w), Some(h)) => (w, h),
            _ => self.initial_size.unwrap_or((1024, 768)),
        };
        let target = ConnectTarget {
            host: host.to_owned(),
            port,
            security: self.endpoint.security,
            pin_sha256: self
                .endpoint
                .server_public_key_sha256
                .as_deref()
                .and_then(parse_pin),
            width,
            height,
            keyboard_layout: self.endpoint.keyboard_layout,
            client_name: "redoubt".into(),
        };
        let mut features_bits = 0;
        if self.endpoint.clipboard.to_browser() {
            features_bits |= features::CLIPBOARD_TO_BROWSER;
        }
        if self.endpoint.clipboard.to_remote() {
            features_bits |= features::CLIPBOARD_TO_REMOTE;
        }
        let follow = self.endpoint.width.is_none();
        if follow {
            features_bits |= features::RESIZE;
        }
        if self.endpoint.unicode_keyboard {
            features_bits |= features::UNICODE_KEYBOARD;
        }
        let connection_id = grant.connection_id.clone();
        let control = shared.registry.insert(
            &connection_id,
            Holder {
                provider_id: self.provider_id,
                endpoint: self.endpoint.slug(),
                user_id: self.session.user_id,
                sid: self.session.sid.clone(),
                auth_time_ms: self.session.auth_time_ms,
            },
        );
        // The expiry runs on this outpost's clock from now (the grant's `expires_at` is the
        // core's view, used for its leases; the two clocks need not agree to the second).
        let expires_in = self.settings.connection_expiry_seconds;
        let settings = SessionSettings {
            connection_id: connection_id.clone(),
            lossless: self.endpoint.lossless,
            unicode_keyboard: self.endpoint.unicode_keyboard,
            follow_browser_size: follow,
            idle_timeout: (self.settings.idle_timeout_seconds > 0)
                .then(|| Duration::from_secs(self.settings.idle_timeout_seconds)),
            expires_at: Instant::now() + Duration::from_secs(expires_in),
            clipboard: self.endpoint.clipboard,
            clipboard_max_bytes: usize::try_from(self.endpoint.clipboard_max_bytes)
                .unwrap_or(usize::MAX),
        };
        let (browser_tx, browser_rx) = mpsc::channel(256);
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let rdp = RdpJob {
            target,
            credentials,
            hello: ServerMessage::Hello {
                version: BROWSER_PROTOCOL_VERSION,
                width: 0,
                height: 0,
                features: features_bits,
                connection_id: connection_id.clone(),
                endpoint_name: self.endpoint.name.clone(),
            },
            link: BrowserLink {
                from_browser: browser_rx,
                to_browser: to_browser.clone(),
            },
            control,
            settings,
            metrics: shared.metrics.clone(),
        };
        let session_task = shared.rdp.spawn_pinned(move || rdp.run(outcome_tx));
        let started = match outcome_rx.await {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => {
                shared.registry.remove(&connection_id);
                let reason = error.reason();
                tracing::info!(connection = %connection_id, endpoint = %self.endpoint.slug(), %error, "connecting to the remote desktop failed");
                shared.metrics.connection(reason.label());
                self.report(
                    &connection_id,
                    RacConnectionEvent::Failed {
                        reason,
                        detail: error.to_string(),
                    },
                )
                .await;
                return Some((reason, error.user_message()));
            }
            Err(_) => {
                shared.registry.remove(&connection_id);
                shared.metrics.connection(EndReason::Error.label());
                self.report(
                    &connection_id,
                    RacConnectionEvent::Failed {
                        reason: EndReason::Error,
                        detail: "the connection task ended".into(),
                    },
                )
                .await;
                return Some((EndReason::Error, session::end_message(EndReason::Error)));
            }
        };
        shared.metrics.connection("ok");
        shared
            .metrics
            .connect_duration
            .observe(opened.elapsed().as_secs_f64());
        shared.metrics.connections_active.inc();
        self.report(
            &connection_id,
            RacConnectionEvent::Started {
                security: started.security.into(),
                server_key_sha256: started.server_key_sha256,
                width: started.width,
                height: started.height,
            },
        )
        .await;
        let reader = read_socket(stream, browser_tx, to_browser.clone());
        tokio::pin!(session_task);
        let joined = tokio::select! {
            end = &mut session_task => end,
            () = reader => session_task.await,
        };
        let end = joined.unwrap_or_else(|error| {
            tracing::error!(connection = %connection_id, %error, "the remote-desktop session task failed");
            SessionEnd::before_start(EndReason::Error)
        });
        shared.registry.remove(&grant.connection_id);
        shared.metrics.connections_active.dec();
        shared
            .metrics
            .disconnect(end.reason, end.duration.as_secs_f64());
        self.report(
            &grant.connection_id,
            RacConnectionEvent::Ended {
                reason: end.reason,
                duration_seconds: end.duration.as_secs(),
                bytes_from_server: end.bytes_from_server,
                bytes_to_browser: end.bytes_to_browser,
                clipboard_transfers: end.clipboard_transfers,
            },
        )
        .await;
        (end.reason != EndReason::User).then_some((end.reason, end.message))
    }

    /// Asks the core for the grant; a refusal becomes what to tell the user.
    async fn grant(&self) -> Result<RacGrant, (EndReason, String)> {
        let request = RacGrantRequest {
            provider_id: self.provider_id,
            endpoint: self.endpoint.slug(),
            user: RacUser {
                user_id: self.session.user_id,
                sid: self.session.sid.clone(),
                auth_time_ms: self.session.auth_time_ms,
            },
            client_address: Some(self.peer.addr.ip().to_string()),
            instance_id: self.shared.instance_id.clone(),
        };
        match self
            .shared
            .core
            .post_refusable::<_, RacGrant, GrantRefused>(GRANTS_PATH, &request)
            .await
        {
            Ok(Ok(grant)) => Ok(grant),
            Ok(Err(refused)) => {
                let reason = match refused.reason {
                    GrantRefusal::LimitReached => EndReason::LimitReached,
                    GrantRefusal::SessionEnded => EndReason::Revoked,
                    GrantRefusal::UnknownEndpoint => EndReason::Removed,
                    GrantRefusal::NotInGroup | GrantRefusal::NoCredentials => EndReason::Denied,
                };
                let message = match refused.reason {
                    GrantRefusal::NoCredentials => {
                        "No credentials are set for this desktop. Ask your administrator.".into()
                    }
                    _ => session::end_message(reason),
                };
                Err((reason, message))
            }
            Err(error) => {
                tracing::warn!(%error, "the core did not grant a connection");
                let message = if error.is_unreachable() {
                    "The outpost cannot reach Redoubt to check your access; new connections need it. Try again in a moment."
                } else {
                    "Redoubt refused the connection. Sign in again, or ask your administrator."
                };
                Err((EndReason::Denied, message.into()))
            }
        }
    }

    /// Sends a report to the core (best effort; the core also ends unrenewed leases).
    async fn report(&self, connection_id: &str, what: RacConnectionEvent) {
        let report = RacConnectionReport {
            connection_id: connection_id.to_owned(),
            what,
        };
        if let Err(error) = self
            .shared
            .core
            .post_json::<_, Option<serde_json::Value>>(REPORTS_PATH, &report)
            .await
        {
            tracing::warn!(%error, connection = %connection_id, "cannot report the connection to the core");
        }
    }
}

/// Why reading the socket stopped.
enum ReadError {
    Closed,
    Bad(u16, String),
}

async fn next_message(
    stream: &mut futures_util::stream::SplitStream<Socket>,
) -> Result<Option<BrowserMessage>, ReadError> {
    loop {
        match stream.next().await {
            None | Some(Err(_)) => return Ok(None),
            Some(Ok(Message::Binary(bytes))) => {
                return BrowserMessage::decode(&bytes)
                    .map(Some)
                    .map_err(|e| ReadError::Bad(e.close_code(), e.to_string()));
            }
            Some(Ok(Message::Close(_))) => return Err(ReadError::Closed),
            Some(Ok(Message::Text(_))) => {
                return Err(ReadError::Bad(
                    1003,
                    "text messages are not part of the protocol".into(),
                ));
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Forwards browser messages to the session until the socket ends or sends something bad
/// (closed with the decoder's code and reason).
async fn read_socket(
    stream: &mut futures_util::stream::SplitStream<Socket>,
    to_session: mpsc::Sender<BrowserMessage>,
    to_browser: mpsc::Sender<Outgoing>,
) {
    loop {
        match next_message(stream).await {
            Ok(Some(message)) => {
                if to_session.send(message).await.is_err() {
                    return;
                }
            }
            Ok(None) | Err(ReadError::Closed) => return,
            Err(ReadError::Bad(code, reason)) => {
                tracing::info!(%reason, "a browser sent a malformed message");
                let reason: String = reason.chars().take(100).collect();
                let _ = to_browser.send(Outgoing::Close(code, reason)).await;
                return;
            }
        }
    }
}

/// Writes what the session queues, then closes.
async fn write_socket(
    mut sink: futures_util::stream::SplitSink<Socket, Message>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    while let Some(item) = outgoing.recv().await {
        match item {
            Outgoing::Messages(messages) => {
                for message in messages {
                    if sink.feed(Message::Binary(message.into())).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            Outgoing::Close(code, reason) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: redoubt_outpost_proto::control::close_reason(&reason).into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                return;
            }
        }
    }
    let _ = sink.close().await;
}

/// What the RDP side tells the connection once the server answered.
struct Started {
    security: &'static str,
    server_key_sha256: String,
    width: u16,
    height: u16,
}

/// The RDP side of a connection, run on a pinned local task: connect, send `Hello`, run the
/// session.
struct RdpJob {
    target: ConnectTarget,
    credentials: RdpCredentials,
    /// `Hello` with the features set; the size is filled in once connected.
    hello: ServerMessage,
    link: BrowserLink,
    control: SessionControl,
    settings: SessionSettings,
    metrics: Arc<RacMetrics>,
}

impl RdpJob {
    async fn run(self, outcome: oneshot::Sender<Result<Started, ConnectError>>) -> SessionEnd {
        let (backend, clip_events) = if self.settings.clipboard == ClipboardPolicy::None {
            (None, None)
        } else {
            let (backend, events) = ChannelBackend::new();
            (Some(backend), Some(events))
        };
        let connected = match connect(&self.target, &self.credentials, backend).await {
            Ok(connected) => connected,
            Err(error) => {
                let reason = error.reason();
                let _ = outcome.send(Err(error));
                return SessionEnd::before_start(reason);
            }
        };
        drop(self.credentials);
        let desktop = connected.result.desktop_size;
        let hello = match self.hello {
            ServerMessage::Hello {
                version,
                features,
                connection_id,
                endpoint_name,
                ..
            } => ServerMessage::Hello {
                version,
                width: desktop.width,
                height: desktop.height,
                features,
                connection_id,
                endpoint_name,
            },
            other => other,
        };
        // The browser learns the size before any tile.
        let sent = self
            .link
            .to_browser
            .send(Outgoing::Messages(vec![hello.encode()]))
            .await;
        let _ = outcome.send(Ok(Started {
            security: connected.security,
            server_key_sha256: connected.server_key_sha256.clone(),
            width: desktop.width,
            height: desktop.height,
        }));
        if sent.is_err() {
            return SessionEnd::before_start(EndReason::User);
        }
        session::run(
            connected,
            self.link,
            self.control,
            self.settings,
            self.metrics,
            clip_events,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::initial_size;

    #[test]
    fn the_initial_size_comes_from_the_handshake_adjusted_like_a_layout() {
        assert_eq!(
            initial_size("ticket=t&width=781&height=363"),
            Some((780, 363))
        );
        assert_eq!(initial_size("width=50&height=9000"), Some((200, 8192)));
        assert_eq!(initial_size("width=800&height=99999"), None);
        assert_eq!(initial_size("width=x&height=600"), None);
        assert_eq!(initial_size("ticket=t&width=800"), None);
    }
}
