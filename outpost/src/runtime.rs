//! The outpost runtime: start from the persisted state if there is one, fetch the configuration,
//! hold a control-channel session with the core, apply what it pushes, persist it, and reconnect
//! with backoff whenever the session ends, for as long as the process runs.

use crate::apply::{ChangeSummary, apply_changes};
use crate::backoff::{Backoff, os_random};
use crate::endpoints::{CoreEndpoints, Endpoint, Next, Rotation};
use crate::module::{ModuleContext, ProtocolModule};
use crate::observe::OutpostMetrics;
use crate::settings::OutpostSettings;
use crate::state::StateStore;
use futures_util::{SinkExt, StreamExt};
use redoubt_outpost_proto::PROTOCOL_VERSION;
use redoubt_outpost_proto::config::ConfigSnapshot;
use redoubt_outpost_proto::control::{
    CHANNEL_PATH, ChangeSet, CloseCode, CoreMessage, Hello, MAX_MESSAGE_BYTES, OutpostMessage,
    close_reason, heartbeat_period, outpost_silence_limit,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{
    CloseFrame, WebSocketConfig, frame::coding::CloseCode as WsCloseCode,
};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A session that lasted this long resets the backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(60);
/// After the core refused the token or the protocol, wait at least this long between attempts.
const REFUSED_FLOOR: Duration = Duration::from_secs(30);
/// Longest wait for the TCP, TLS and WebSocket handshakes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for one outgoing message to be written.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest random delay before reconnecting at once (after a lost session, or to the next
/// endpoint), so a fleet of outposts does not arrive in the same millisecond.
const IMMEDIATE_JITTER: Duration = Duration::from_millis(250);
/// Longest wait for the preferred endpoint's readiness check.
const FAILBACK_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for the core to answer a close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "the core refused this outpost's token ({0}); set REDOUBT_TOKEN to the outpost's current token"
    )]
    TokenRefused(String),
    #[error("the core refused this outpost: {0}")]
    Incompatible(String),
    #[error("cannot reach the core at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("the core closed the control channel: {0}")]
    Closed(String),
    #[error("the control channel broke: {0}")]
    Broken(String),
    #[error("the core sent a malformed message: {0}")]
    Malformed(String),
}

/// Everything the runtime shares with the rest of the process.
pub struct Runtime {
    pub settings: OutpostSettings,
    /// Where the core is: the control channel and REST calls use the current endpoint.
    pub endpoints: Arc<CoreEndpoints>,
    pub tls: Arc<rustls::ClientConfig>,
    pub state: StateStore,
    pub metrics: Arc<OutpostMetrics>,
    pub config: watch::Sender<Option<Arc<ConfigSnapshot>>>,
    pub connected: watch::Sender<bool>,
    /// The protocol module, started with the first configuration.
    pub module: tokio::sync::Mutex<ModuleSlot>,
    /// What a module is started with.
    pub module_context: ModuleContext,
    pub instance_id: String,
    pub hostname: String,
}

/// The protocol module's state.
pub enum ModuleSlot {
    /// Not started yet (no configuration, or starting failed and is retried with the next one).
    Waiting,
    Running(Arc<dyn ProtocolModule>),
    /// This build has no module for the outpost's kind.
    Missing,
}

/// How a session ended without an error.
enum End {
    Stopped,
    Lost,
    /// The preferred endpoint is back: reconnect there.
    FailBack,
}

/// What outlives one session: the backoff, the endpoint rotation and whether the channel was
/// ever up.
#[derive(Default)]
struct Attempts {
    backoff: Backoff,
    rotation: Rotation,
    welcomed: bool,
    /// Whether the current session got as far as the core's welcome.
    up: bool,
}

impl Runtime {
    /// Records that the control channel is `up` or not: the `connected` signal, the metric, and
    /// the contact record Status-Server and readiness read (set here, in the same step, so no
    /// answer sees a configuration from the channel before the channel counts as up).
    fn set_connected(&self, up: bool) {
        self.connected.send_replace(up);
        self.metrics.connected.set(i64::from(up));
        self.module_context.contact.channel(up);
    }

    /// Runs until `stop` turns true.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        if let Some(snapshot) = self.state.load() {
            tracing::info!(
                revision = snapshot.revision,
                path = %self.state.path().display(),
                "serving the persisted configuration until the core answers"
            );
            self.publish(snapshot, &ChangeSummary::snapshot(), false)
                .await;
        }
        let mut attempts = Attempts::default();
        self.show_endpoint();
        loop {
            let started = Instant::now();
            attempts.up = false;
            let result = self.session(&mut attempts, stop.clone()).await;
            self.set_connected(false);
            if matches!(result, Ok(End::Stopped)) {
                return;
            }
            if started.elapsed() >= HEALTHY_SESSION {
                attempts.backoff.reset();
            }
            let refused = matches!(
                result,
                Err(SessionError::TokenRefused(_) | SessionError::Incompatible(_))
            );
            if refused {
                attempts.backoff.at_least(REFUSED_FLOOR);
            }
            let next = if matches!(result, Ok(End::FailBack)) {
                self.switch_to(self.endpoints.preferred());
                Next::Now
            } else if attempts.up && !refused {
                // The channel was up: the core closed it, restarted or the network blinked.
                // A new attempt may well work at once; the backoff starts when one fails.
                attempts.rotation.lost()
            } else {
                let len = self.endpoints.all().len();
                let (index, next) = attempts
                    .rotation
                    .failed(self.endpoints.current_index(), len);
                if next == Next::Backoff {
                    // Every endpoint failed: names may resolve to other addresses by now.
                    self.endpoints.resolve().await;
                }
                self.switch_to(index);
                next
            };
            let delay = match next {
                // A little jitter, so a fleet does not arrive in the same millisecond.
                Next::Now => IMMEDIATE_JITTER.mul_f64(os_random()),
                Next::Backoff => attempts.backoff.next_delay(os_random()),
            };
            let retry = format!("retrying in {:.1} s", delay.as_secs_f64());
            let unready = if self.config.borrow().is_none() {
                "; not ready: no configuration yet"
            } else {
                ""
            };
            match result {
                Ok(End::FailBack) => tracing::info!(
                    "the preferred core endpoint {} is back; moving to it",
                    self.endpoints.current().label()
                ),
                Ok(_) => tracing::warn!("the control channel to the core was lost; {retry}"),
                Err(error) if refused => tracing::error!("{error}; {retry}{unready}"),
                Err(error) => tracing::warn!("{error}; {retry}{unready}"),
            }
            let mut stop = stop.clone();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }

    /// Makes endpoint `index` current (logged and counted when it changes).
    fn switch_to(&self, index: usize) {
        let before = self.endpoints.current_index();
        if before == index {
            return;
        }
        self.endpoints.set_current(index);
        self.metrics.endpoint_switches.inc();
        tracing::info!(
            endpoint = %self.endpoints.current().label(),
            "using another core endpoint"
        );
        self.show_endpoint();
    }

    /// Publishes which endpoint is in use.
    fn show_endpoint(&self) {
        let current = self.endpoints.current_index();
        self.metrics.core_endpoint.reset();
        for (index, endpoint) in self.endpoints.all().iter().enumerate() {
            self.metrics
                .core_endpoint
                .with_label_values(&[&endpoint.label()])
                .set(i64::from(index == current));
        }
    }

    /// Whether the preferred endpoint answers its readiness check (asked while another one is
    /// in use).
    async fn preferred_is_back(&self) -> bool {
        let preferred = self.endpoints.preferred();
        let Some(endpoint) = self.endpoints.all().get(preferred).cloned() else {
            return false;
        };
        let probe = endpoint
            .http
            .get(format!("{}/-/health/ready", endpoint.base_url))
            .timeout(FAILBACK_PROBE_TIMEOUT)
            .send();
        matches!(probe.await, Ok(response) if response.status().is_success())
    }

    fn held(&self) -> Option<Arc<ConfigSnapshot>> {
        self.config.borrow().clone()
    }

    /// Makes `snapshot` current: persists it (unless it came from the state file), tells the
    /// module, updates metrics.
    async fn publish(&self, snapshot: ConfigSnapshot, summary: &ChangeSummary, persist: bool) {
        let snapshot = Arc::new(snapshot);
        if persist {
            let state = self.state.clone();
            let to_save = snapshot.clone();
            match tokio::task::spawn_blocking(move || state.save(&to_save)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "cannot persist the configuration; serving it anyway")
                }
                Err(error) => tracing::warn!(%error, "persisting the configuration failed"),
            }
        }
        let outpost = &snapshot.config.outpost;
        self.metrics.info.reset();
        self.metrics
            .info
            .with_label_values(&[&outpost.name, outpost.kind.as_str(), crate::VERSION])
            .set(1);
        self.metrics.applied_revision.set(snapshot.revision);
        self.metrics
            .last_update
            .set(self.module_context.clock.now());
        self.apply_to_module(&snapshot, summary).await;
        self.config.send_replace(Some(snapshot));
    }

    /// Hands `snapshot` to the protocol module, starting it first if needed.
    async fn apply_to_module(&self, snapshot: &Arc<ConfigSnapshot>, summary: &ChangeSummary) {
        let mut slot = self.module.lock().await;
        if matches!(*slot, ModuleSlot::Waiting) {
            let kind = snapshot.config.outpost.kind;
            match crate::module::start(kind, self.module_context.clone(), snapshot.clone()).await {
                Ok(Some(module)) => {
                    tracing::info!(kind = kind.as_str(), "protocol module started");
                    *slot = ModuleSlot::Running(module);
                    return;
                }
                Ok(None) => {
                    tracing::warn!(
                        "this build has no protocol module for {} outposts; holding configuration only",
                        kind.as_str()
                    );
                    *slot = ModuleSlot::Missing;
                }
                Err(error) => {
                    tracing::error!(
                        "cannot start the {} module: {error:#}; retrying with the next configuration",
                        kind.as_str()
                    );
                }
            }
        }
        if let ModuleSlot::Running(module) = &*slot {
            module.apply(snapshot.clone(), summary);
        }
    }

    /// `GET /api/v1/outpost/config`.
    async fn fetch(&self) -> Result<ConfigSnapshot, SessionError> {
        let endpoint = self.endpoints.current();
        crate::fetch::fetch_config(
            &endpoint.http,
            &endpoint.base_url,
            self.settings.token.trim(),
        )
        .await
    }

    /// Opens the WebSocket (TLS as configured), bounded by [`CONNECT_TIMEOUT`].
    async fn connect(&self) -> Result<Socket, SessionError> {
        let endpoint = self.endpoints.current();
        let base = endpoint.base_url.as_str();
        let url = format!("{}{CHANNEL_PATH}", base.replacen("http", "ws", 1));
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| SessionError::Broken(e.to_string()))?;
        let bearer = format!("Bearer {}", self.settings.token.trim());
        request.headers_mut().insert(
            "authorization",
            bearer.parse().map_err(|_| {
                SessionError::TokenRefused("the token has characters a header cannot carry".into())
            })?,
        );
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connector = tokio_tungstenite::Connector::Rustls(self.tls.clone());
        let unreachable = |cause: String| SessionError::Unreachable {
            url: endpoint.label(),
            cause,
        };
        let stream = tcp_connect(&endpoint).await.map_err(unreachable)?;
        let handshake = tokio_tungstenite::client_async_tls_with_config(
            request,
            stream,
            Some(config),
            Some(connector),
        );
        match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(WsError::Http(response))) if response.status() == 401 => Err(
                SessionError::TokenRefused("HTTP 401 on the control channel".into()),
            ),
            Ok(Err(WsError::Http(response))) if response.status() == 403 => Err(
                SessionError::TokenRefused("HTTP 403: not an outpost token".into()),
            ),
            Ok(Err(error)) => Err(unreachable(crate::fetch::error_chain(&error))),
            Err(_) => Err(unreachable(format!(
                "no WebSocket handshake within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// One session: fetch the configuration if none is held, connect, hello, then apply, ack and
    /// heartbeat until the channel ends or `stop` turns true.
    async fn session(
        &self,
        attempts: &mut Attempts,
        mut stop: watch::Receiver<bool>,
    ) -> Result<End, SessionError> {
        if self.held().is_none() {
            let snapshot = tokio::select! {
                fetched = self.fetch() => fetched?,
                () = stopped(&mut stop) => return Ok(End::Stopped),
            };
            tracing::info!(
                outpost = %snapshot.config.outpost.name,
                kind = snapshot.config.outpost.kind.as_str(),
                revision = snapshot.revision,
                "fetched the configuration from the core"
            );
            self.publish(snapshot, &ChangeSummary::snapshot(), true)
                .await;
        }
        let mut socket = tokio::select! {
            socket = self.connect() => socket?,
            () = stopped(&mut stop) => return Ok(End::Stopped),
        };
        let hello = OutpostMessage::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            software_version: crate::VERSION.to_owned(),
            build: option_env!("REDOUBT_BUILD").unwrap_or("dev").to_owned(),
            hostname: self.hostname.clone(),
            instance_id: self.instance_id.clone(),
            revision: self.held().map(|s| s.revision),
        });
        send(&mut socket, &hello).await?;
        let mut period = heartbeat_period(None);
        let mut heartbeat = ticker(period);
        let failback_every = Duration::from_secs(self.settings.core_failback_seconds.max(1));
        let failback_enabled = self.settings.core_failback_seconds > 0;
        let mut failback = ticker(failback_every);
        let mut deadline = Instant::now() + silence_limit(period);
        loop {
            tokio::select! {
                message = socket.next() => {
                    deadline = Instant::now() + silence_limit(period);
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                        Some(Ok(Message::Binary(_))) => {
                            close(&mut socket, WsCloseCode::Unsupported, "binary messages are not part of the protocol").await;
                            return Err(SessionError::Malformed("a binary message".into()));
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(WsError::Capacity(error))) => {
                            close(&mut socket, WsCloseCode::Size, "message too large").await;
                            return Err(SessionError::Malformed(error.to_string()));
                        }
                        Some(Err(error)) => return Err(SessionError::Broken(error.to_string())),
                        None => return Ok(End::Lost),
                    };
                    let message: CoreMessage = match serde_json::from_str(&text) {
                        Ok(message) => message,
                        Err(error) => {
                            close(&mut socket, WsCloseCode::Protocol, "malformed message").await;
                            return Err(SessionError::Malformed(error.to_string()));
                        }
                    };
                    let applied = match message {
                        CoreMessage::Welcome { heartbeat_interval_seconds, core_version } => {
                            self.metrics.messages.with_label_values(&["welcome"]).inc();
                            period = heartbeat_period(Some(heartbeat_interval_seconds));
                            heartbeat = ticker(period);
                            deadline = Instant::now() + silence_limit(period);
                            self.set_connected(true);
                            if attempts.welcomed {
                                self.metrics.reconnects.inc();
                            }
                            attempts.welcomed = true;
                            attempts.up = true;
                            attempts.backoff.reset();
                            attempts.rotation.succeeded();
                            tracing::info!(%core_version, heartbeat_seconds = period.as_secs(), "control channel up");
                            continue;
                        }
                        CoreMessage::Snapshot(snapshot) => {
                            self.metrics.messages.with_label_values(&["snapshot"]).inc();
                            let revision = snapshot.revision;
                            self.publish(snapshot, &ChangeSummary::snapshot(), true).await;
                            tracing::info!(revision, "applied a snapshot");
                            revision
                        }
                        CoreMessage::Changes(set) => {
                            self.metrics.messages.with_label_values(&["changes"]).inc();
                            self.apply_set(set).await?
                        }
                    };
                    send(&mut socket, &OutpostMessage::Ack { revision: applied }).await?;
                }
                () = stopped(&mut stop) => {
                    close(&mut socket, WsCloseCode::Away, "the outpost is shutting down").await;
                    return Ok(End::Stopped);
                }
                _ = failback.tick(), if failback_enabled
                    && self.endpoints.current_index() != self.endpoints.preferred() =>
                {
                    if self.preferred_is_back().await {
                        close(&mut socket, WsCloseCode::Normal, "returning to the preferred core endpoint").await;
                        return Ok(End::FailBack);
                    }
                }
                _ = heartbeat.tick() => {
                    let applied_revision = self.held().map_or(0, |s| s.revision);
                    send(&mut socket, &OutpostMessage::Heartbeat { applied_revision }).await?;
                    // The core's WebSocket answers with a pong: proof the connection still works.
                    send_frame(&mut socket, Message::Ping(Default::default())).await?;
                }
                () = tokio::time::sleep_until(deadline) => {
                    close(&mut socket, WsCloseCode::Away, "nothing heard from the core").await;
                    return Err(SessionError::Broken(format!(
                        "nothing heard from the core for {} s",
                        silence_limit(period).as_secs()
                    )));
                }
            }
        }
    }

    /// Applies a change set that follows the held revision; anything else means the outpost
    /// missed something, so it re-reads the whole configuration. Returns the revision now held.
    async fn apply_set(&self, set: ChangeSet) -> Result<i64, SessionError> {
        match self.held() {
            Some(held) if held.revision == set.from_revision => {
                let mut next = (*held).clone();
                let summary = apply_changes(&mut next.config, &set.items);
                next.revision = set.revision;
                tracing::debug!(
                    revision = set.revision,
                    items = set.items.len(),
                    "applied changes"
                );
                let persist = !set.items.is_empty() || held.revision != set.revision;
                self.publish(next, &summary, persist).await;
                Ok(set.revision)
            }
            held => {
                tracing::info!(
                    from = set.from_revision,
                    held = held.map(|h| h.revision),
                    "changes do not follow the held revision; fetching the configuration"
                );
                let snapshot = self.fetch().await?;
                let revision = snapshot.revision;
                self.publish(snapshot, &ChangeSummary::snapshot(), true)
                    .await;
                Ok(revision)
            }
        }
    }
}

/// Opens the TCP connection to `endpoint` (its pinned address, or its host name), bounded by
/// [`crate::endpoints::CONNECT_TIMEOUT`] so a dead replica does not delay the failover.
async fn tcp_connect(endpoint: &Endpoint) -> Result<TcpStream, String> {
    let parsed = url::Url::parse(&endpoint.base_url).map_err(|e| e.to_string())?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let connect = async {
        match endpoint.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => {
                let host = parsed
                    .host_str()
                    .unwrap_or_default()
                    .trim_matches(['[', ']']);
                TcpStream::connect((host, port)).await
            }
        }
    };
    match tokio::time::timeout(crate::endpoints::CONNECT_TIMEOUT, connect).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no TCP connection within {} s",
            crate::endpoints::CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// A heartbeat ticker whose first tick is one `period` from now.
fn ticker(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// Nothing heard from the core (not even a pong) for this long: the connection is dead even if
/// TCP has not noticed (see `control::outpost_silence_limit`).
fn silence_limit(period: Duration) -> Duration {
    outpost_silence_limit(period)
}

async fn send(socket: &mut Socket, message: &OutpostMessage) -> Result<(), SessionError> {
    let text = serde_json::to_string(message).map_err(|e| SessionError::Broken(e.to_string()))?;
    send_frame(socket, Message::text(text)).await
}

/// Sends one frame, bounded by [`SEND_TIMEOUT`] so a stalled connection cannot hang the session.
async fn send_frame(socket: &mut Socket, message: Message) -> Result<(), SessionError> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await {
        Ok(result) => result.map_err(|e| SessionError::Broken(e.to_string())),
        Err(_) => Err(SessionError::Broken(format!(
            "a message could not be sent within {} s",
            SEND_TIMEOUT.as_secs()
        ))),
    }
}

/// Closes with `code` and `reason`, and waits (briefly) for the core's answering close frame.
async fn close(socket: &mut Socket, code: WsCloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: close_reason(reason).into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if socket.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = socket.next().await {}
        }
    })
    .await;
}

/// Turns the core's close frame into one readable error.
fn closed(frame: Option<CloseFrame>) -> SessionError {
    let Some(frame) = frame else {
        return SessionError::Closed("without a reason".into());
    };
    let reason = frame.reason.to_string();
    match CloseCode::from_code(u16::from(frame.code)) {
        Some(CloseCode::TokenRefused) => SessionError::TokenRefused(reason),
        Some(CloseCode::IncompatibleProtocol) => SessionError::Incompatible(reason),
        _ => SessionError::Closed(format!("{reason} (code {})", u16::from(frame.code))),
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frames_become_one_readable_error() {
        let frame = |code: u16, reason: &'static str| {
            Some(CloseFrame {
                code: WsCloseCode::from(code),
                reason: reason.into(),
            })
        };
        assert!(matches!(
            closed(frame(4001, "token rotated")),
            SessionError::TokenRefused(r) if r == "token rotated"
        ));
        assert!(matches!(
            closed(frame(4002, "protocol 2 vs 1")),
            SessionError::Incompatible(_)
        ));
        assert_eq!(
            closed(frame(4005, "the core is shutting down")).to_string(),
            "the core closed the control channel: the core is shutting down (code 4005)"
        );
        assert_eq!(
            SessionError::TokenRefused("HTTP 401".into()).to_string(),
            "the core refused this outpost's token (HTTP 401); set REDOUBT_TOKEN to the outpost's current token"
        );
    }

    #[test]
    fn silence_limit_covers_three_heartbeats() {
        assert_eq!(
            silence_limit(Duration::from_secs(10)),
            Duration::from_secs(90)
        );
        assert_eq!(
            silence_limit(Duration::from_secs(30)),
            Duration::from_secs(90)
        );
        assert_eq!(
            silence_limit(heartbeat_period(Some(300))),
            Duration::from_secs(90),
            "the longest period is clamped to what the core accepts"
        );
    }
}
