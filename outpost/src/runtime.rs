//! The outpost runtime: start from the persisted state if there is one, fetch the configuration,
//! hold a control-channel session with the core, apply what it pushes, persist it, and reconnect
//! with backoff whenever the session ends, for as long as the process runs.

use crate::apply::{ChangeSummary, apply_changes};
use crate::backoff::{Backoff, os_random};
use crate::module::ProtocolModule;
use crate::observe::OutpostMetrics;
use crate::settings::OutpostSettings;
use crate::state::StateStore;
use futures_util::{SinkExt, StreamExt};
use redoubt_outpost_proto::PROTOCOL_VERSION;
use redoubt_outpost_proto::config::ConfigSnapshot;
use redoubt_outpost_proto::control::{
    CHANNEL_PATH, CloseCode, CoreMessage, DEFAULT_HEARTBEAT_SECONDS, Hello, MAX_MESSAGE_BYTES,
    OutpostMessage,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{
    CloseFrame, WebSocketConfig, frame::coding::CloseCode as WsCloseCode,
};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A session that lasted this long resets the backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(60);
/// After the core refused the token or the protocol, wait at least this long between attempts.
const REFUSED_FLOOR: Duration = Duration::from_secs(30);

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
    #[error("cannot keep the configuration: {0}")]
    State(String),
}

/// Everything the runtime shares with the rest of the process.
pub struct Runtime {
    pub settings: OutpostSettings,
    pub http: reqwest::Client,
    pub tls: Arc<rustls::ClientConfig>,
    pub state: StateStore,
    pub metrics: Arc<OutpostMetrics>,
    pub config: watch::Sender<Option<Arc<ConfigSnapshot>>>,
    pub connected: watch::Sender<bool>,
    pub module: Option<Arc<dyn ProtocolModule>>,
    pub instance_id: String,
    pub hostname: String,
}

enum End {
    Stopped,
    Lost,
}

impl Runtime {
    /// Runs until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if let Some(snapshot) = self.state.load() {
            tracing::info!(
                revision = snapshot.revision,
                path = %self.state.path().display(),
                "serving the persisted configuration until the core answers"
            );
            self.publish(snapshot, &ChangeSummary::snapshot(), false)
                .await;
        }
        let mut backoff = Backoff::default();
        let mut first = true;
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                result = self.session(&mut backoff, stop.clone()) => result,
                // Only while connecting: an open session closes itself cleanly on stop.
                _ = stopped(&mut stop), if !*self.connected.borrow() => Ok(End::Stopped),
            };
            self.connected.send_replace(false);
            self.metrics.connected.set(0);
            match result {
                Ok(End::Stopped) => return,
                Ok(End::Lost) => tracing::warn!("the control channel to the core was lost"),
                Err(error @ (SessionError::TokenRefused(_) | SessionError::Incompatible(_))) => {
                    tracing::error!("{error}");
                    backoff.at_least(REFUSED_FLOOR);
                }
                Err(error) => tracing::warn!("{error}"),
            }
            if started.elapsed() >= HEALTHY_SESSION {
                backoff.reset();
            }
            if !first {
                self.metrics.reconnects.inc();
            }
            first = false;
            if self.config.borrow().is_none() {
                tracing::warn!("not ready: no configuration yet; retrying");
            }
            let delay = backoff.next_delay(os_random());
            tracing::info!(
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "reconnecting to the core"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => return,
            }
        }
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
        self.metrics.last_update.set(now_seconds());
        match &self.module {
            Some(module) => module.apply(snapshot.clone(), summary),
            None if self.config.borrow().is_none() => tracing::info!(
                kind = outpost.kind.as_str(),
                "no protocol module for this outpost type in this build yet; holding configuration only"
            ),
            None => {}
        }
        self.config.send_replace(Some(snapshot));
    }

    /// `GET /api/v1/outpost/config`.
    async fn fetch_config(&self) -> Result<ConfigSnapshot, SessionError> {
        let url = format!("{}/api/v1/outpost/config", self.settings.base_url());
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.settings.token.trim())
            .send()
            .await
            .map_err(|e| SessionError::Unreachable {
                url: self.settings.base_url().to_owned(),
                cause: error_chain(&e),
            })?;
        match response.status().as_u16() {
            200 => response
                .json()
                .await
                .map_err(|e| SessionError::Malformed(e.to_string())),
            401 => Err(SessionError::TokenRefused(
                "HTTP 401: unknown, rotated or deleted".into(),
            )),
            403 => Err(SessionError::TokenRefused(
                "HTTP 403: this is not an outpost token".into(),
            )),
            status => Err(SessionError::Closed(format!(
                "GET {url} answered HTTP {status}"
            ))),
        }
    }

    async fn session(
        &self,
        backoff: &mut Backoff,
        mut stop: watch::Receiver<bool>,
    ) -> Result<End, SessionError> {
        if self.held().is_none() {
            let snapshot = self.fetch_config().await?;
            tracing::info!(
                outpost = %snapshot.config.outpost.name,
                kind = snapshot.config.outpost.kind.as_str(),
                revision = snapshot.revision,
                "fetched the configuration from the core"
            );
            self.publish(snapshot, &ChangeSummary::snapshot(), true)
                .await;
        }
        let url = format!(
            "{}{CHANNEL_PATH}",
            self.settings.base_url().replacen("http", "ws", 1)
        );
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
        let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            false,
            Some(connector),
        )
        .await
        .map_err(|e| match e {
            WsError::Http(response) if response.status() == 401 => {
                SessionError::TokenRefused("HTTP 401 on the control channel".into())
            }
            WsError::Http(response) if response.status() == 403 => {
                SessionError::TokenRefused("HTTP 403: not an outpost token".into())
            }
            other => SessionError::Unreachable {
                url: self.settings.base_url().to_owned(),
                cause: other.to_string(),
            },
        })?;
        let hello = OutpostMessage::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            software_version: crate::VERSION.to_owned(),
            build: option_env!("REDOUBT_BUILD").unwrap_or("dev").to_owned(),
            hostname: self.hostname.clone(),
            instance_id: self.instance_id.clone(),
            revision: self.held().map(|s| s.revision),
        });
        send(&mut socket, &hello).await?;
        let mut heartbeat = tokio::time::interval(Duration::from_secs(DEFAULT_HEARTBEAT_SECONDS));
        heartbeat.reset();
        loop {
            tokio::select! {
                message = socket.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(SessionError::Broken(e.to_string())),
                        None => return Ok(End::Lost),
                    };
                    let message: CoreMessage = match serde_json::from_str(&text) {
                        Ok(m) => m,
                        Err(e) => {
                            let _ = socket.close(Some(CloseFrame { code: WsCloseCode::Protocol, reason: "malformed message".into() })).await;
                            return Err(SessionError::Malformed(e.to_string()));
                        }
                    };
                    let applied = match message {
                        CoreMessage::Welcome { heartbeat_interval_seconds, core_version } => {
                            self.metrics.messages.with_label_values(&["welcome"]).inc();
                            let period = Duration::from_secs(heartbeat_interval_seconds.clamp(1, 300));
                            heartbeat = tokio::time::interval(period);
                            heartbeat.reset();
                            self.connected.send_replace(true);
                            self.metrics.connected.set(1);
                            backoff.reset();
                            tracing::info!(%core_version, "control channel up");
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
                            let held = self.held();
                            match held {
                                Some(held) if held.revision == set.from_revision => {
                                    let mut next = (*held).clone();
                                    let summary = apply_changes(&mut next.config, &set.items);
                                    next.revision = set.revision;
                                    if !set.items.is_empty() {
                                        tracing::debug!(revision = set.revision, items = set.items.len(), "applied changes");
                                    }
                                    self.publish(next, &summary, !set.items.is_empty() || held.revision != set.revision).await;
                                    set.revision
                                }
                                _ => {
                                    // Not a continuation of what we hold: re-read the whole config.
                                    tracing::info!(from = set.from_revision, "changes do not follow the held revision; fetching the configuration");
                                    let snapshot = self.fetch_config().await?;
                                    let revision = snapshot.revision;
                                    self.publish(snapshot, &ChangeSummary::snapshot(), true).await;
                                    revision
                                }
                            }
                        }
                    };
                    send(&mut socket, &OutpostMessage::Ack { revision: applied }).await?;
                }
                _ = stopped(&mut stop) => {
                    let frame = CloseFrame { code: WsCloseCode::Away, reason: "the outpost is shutting down".into() };
                    let _ = socket.close(Some(frame)).await;
                    return Ok(End::Stopped);
                }
                _ = heartbeat.tick() => {
                    let applied_revision = self.held().map_or(0, |s| s.revision);
                    send(&mut socket, &OutpostMessage::Heartbeat { applied_revision }).await?;
                }
            }
        }
    }
}

async fn send<S>(socket: &mut S, message: &OutpostMessage) -> Result<(), SessionError>
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    let text = serde_json::to_string(message).map_err(|e| SessionError::Broken(e.to_string()))?;
    socket
        .send(Message::text(text))
        .await
        .map_err(|e| SessionError::Broken(e.to_string()))
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

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An error with its causes, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
