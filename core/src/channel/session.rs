//! One outpost session on the control channel: hello, initial snapshot or catch-up, then pushed
//! changes, acks and heartbeats until either side closes.

use super::batch::{self, Action, Batch};
use super::{ChannelHub, MAX_CATCH_UP, convert, snapshot};
use crate::api::AppState;
use crate::api::extract::OutpostIdentity;
use crate::model::{NewEvent, Outcome};
use crate::net::PeerAddr;
use crate::store::{InstanceRecord, StoreError};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use redoubt_outpost_proto::PROTOCOL_VERSION;
use redoubt_outpost_proto::config::OutpostKind;
use redoubt_outpost_proto::control::{
    ChangeItem, ChangeSet, CloseCode, CoreMessage, Hello, MAX_OUTPOST_MESSAGE_BYTES,
    OutpostMessage, close_reason, heartbeat_period, missed_heartbeat_limit,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET /api/v1/outpost/ws`: upgrade an outpost's authenticated request to the control channel.
pub async fn channel_handler(
    identity: OutpostIdentity,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let hub = state.hub.clone();
    upgrade
        .max_message_size(MAX_OUTPOST_MESSAGE_BYTES)
        .max_frame_size(MAX_OUTPOST_MESSAGE_BYTES)
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .on_upgrade(move |socket| async move {
            let mut session = Session::new(hub, identity, peer.ip().to_string(), socket);
            session.run().await;
        })
}

/// Why a session ends.
struct Close {
    code: CloseCode,
    reason: String,
}

impl Close {
    fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

impl From<StoreError> for Close {
    fn from(error: StoreError) -> Self {
        tracing::warn!(%error, "control channel: database error; closing the session");
        Self::new(
            CloseCode::ShuttingDown,
            "the core cannot reach its database; reconnect shortly",
        )
    }
}

struct Session {
    hub: Arc<ChannelHub>,
    outpost_id: i64,
    token_id: i64,
    remote: String,
    socket: WebSocket,
    kind: OutpostKind,
    outpost_name: String,
    heartbeat: Duration,
    instance_id: String,
    /// The newest revision sent to the outpost.
    sent: i64,
    /// When the newest unacknowledged revision was sent, for the push-latency metric.
    unacked: Option<(i64, Instant)>,
}

impl Session {
    fn new(
        hub: Arc<ChannelHub>,
        identity: OutpostIdentity,
        remote: String,
        socket: WebSocket,
    ) -> Self {
        Self {
            hub,
            outpost_id: identity.outpost_id,
            token_id: identity.token_id,
            remote,
            socket,
            kind: OutpostKind::Proxy,
            outpost_name: String::new(),
            heartbeat: heartbeat_period(None),
            instance_id: String::new(),
            sent: 0,
            unacked: None,
        }
    }

    async fn run(&mut self) {
        let result = self.serve().await;
        let now = self.hub.store.now();
        if !self.instance_id.is_empty() {
            self.hub
                .registry
                .disconnect(self.outpost_id, &self.instance_id, now);
            self.hub
                .metrics
                .outposts_connected
                .set(i64::try_from(self.hub.registry.connected()).unwrap_or(0));
            tokio::spawn(self.event(
                "outpost_disconnect",
                match &result {
                    Ok(()) => "closed by the outpost".to_owned(),
                    Err(close) => close.reason.clone(),
                },
            ));
        }
        if let Err(close) = result {
            tracing::info!(outpost = self.outpost_id, instance = %self.instance_id, code = close.code.code(), reason = %close.reason, "closing outpost session");
            let frame = CloseFrame {
                code: close.code.code(),
                reason: Utf8Bytes::from(close_reason(&close.reason)),
            };
            let _ = self.socket.send(Message::Close(Some(frame))).await;
        }
    }

    async fn serve(&mut self) -> Result<(), Close> {
        let hello = self.await_hello().await?;
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(Close::new(
                CloseCode::IncompatibleProtocol,
                format!(
                    "this core speaks control protocol {PROTOCOL_VERSION}, the outpost speaks {}; \
                     run redoubt-outpost {} to match the core",
                    hello.protocol_version,
                    crate::VERSION
                ),
            ));
        }
        if hello.instance_id.is_empty()
            || hello.instance_id.len() > 128
            || hello.hostname.len() > 255
        {
            return Err(Close::new(
                CloseCode::ProtocolViolation,
                "hello: instance_id or hostname is missing or too long",
            ));
        }
        let hub = self.hub.clone();
        let setup = hub
            .setup
            .acquire()
            .await
            .map_err(|_| Close::new(CloseCode::ShuttingDown, "the core is shutting down"))?;
        let mut batches = self.hub.subscribe();
        let outpost = Box::pin(self.hub.store.outpost(self.outpost_id)).await?;
        self.kind = convert::kind(outpost.kind);
        self.outpost_name = outpost.name.clone();
        self.heartbeat = heartbeat_period(
            outpost
                .settings
                .get("heartbeat_interval_seconds")
                .and_then(serde_json::Value::as_u64),
        );
        self.instance_id = hello.instance_id.clone();
        let now = self.hub.store.now();
        self.hub.registry.connect(InstanceRecord {
            outpost_id: self.outpost_id,
            instance_id: hello.instance_id.clone(),
            hostname: hello.hostname.clone(),
            software_version: hello.software_version.clone(),
            build: hello.build.clone(),
            protocol_version: i64::from(hello.protocol_version),
            remote_address: self.remote.clone(),
            applied_revision: hello.revision,
            connected: true,
            connected_at: now,
            last_seen: now,
        });
        self.hub
            .metrics
            .outposts_connected
            .set(i64::try_from(self.hub.registry.connected()).unwrap_or(0));
        tokio::spawn(self.event(
            "outpost_connect",
            format!(
                "{} {} from {}",
                hello.hostname, hello.software_version, self.remote
            ),
        ));
        self.send(&CoreMessage::Welcome {
            heartbeat_interval_seconds: self.heartbeat.as_secs(),
            core_version: crate::VERSION.to_owned(),
        })
        .await?;
        Box::pin(self.initial_sync(hello.revision)).await?;
        drop(setup);

        let mut stop = self.hub.stop.clone();
        let limit = missed_heartbeat_limit(self.heartbeat);
        let mut deadline = Instant::now() + limit;
        loop {
            tokio::select! {
                message = self.socket.recv() => {
                    match message {
                        None | Some(Err(_)) => return Ok(()),
                        Some(Ok(Message::Close(_))) => return Ok(()),
                        Some(Ok(Message::Text(text))) => {
                            deadline = Instant::now() + limit;
                            self.on_message(&text)?;
                        }
                        Some(Ok(Message::Binary(_))) => {
                            return Err(Close::new(CloseCode::ProtocolViolation, "binary messages are not part of the protocol"));
                        }
                        Some(Ok(_)) => deadline = Instant::now() + limit,
                    }
                }
                batch = batches.recv() => match batch {
                    // Boxed: the futures of database work are large, and an idle session's task
                    // would otherwise reserve their size for its whole life.
                    Ok(batch) => Box::pin(self.on_batch(&batch)).await?,
                    Err(RecvError::Lagged(_)) => Box::pin(self.send_snapshot()).await?,
                    Err(RecvError::Closed) => return Err(Close::new(CloseCode::ShuttingDown, "the core is shutting down")),
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return Err(Close::new(CloseCode::Timeout, format!("no heartbeat for {} s", limit.as_secs())));
                }
                _ = stopped(&mut stop) => {
                    return Err(Close::new(CloseCode::ShuttingDown, "the core is shutting down; reconnect"));
                }
            }
        }
    }

    async fn await_hello(&mut self) -> Result<Hello, Close> {
        let message = tokio::time::timeout(HELLO_TIMEOUT, self.socket.recv())
            .await
            .map_err(|_| Close::new(CloseCode::Timeout, "no hello within 10 s"))?;
        match message {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<OutpostMessage>(&text) {
                Ok(OutpostMessage::Hello(hello)) => Ok(hello),
                Ok(_) => Err(Close::new(
                    CloseCode::ProtocolViolation,
                    "the first message must be hello",
                )),
                Err(e) => Err(Close::new(
                    CloseCode::ProtocolViolation,
                    format!("malformed hello: {e}"),
                )),
            },
            _ => Err(Close::new(
                CloseCode::ProtocolViolation,
                "the first message must be a text hello",
            )),
        }
    }

    fn on_message(&mut self, text: &str) -> Result<(), Close> {
        let message: OutpostMessage = serde_json::from_str(text).map_err(|e| {
            Close::new(
                CloseCode::ProtocolViolation,
                format!("malformed message: {e}"),
            )
        })?;
        let now = self.hub.store.now();
        match message {
            OutpostMessage::Hello(_) => {
                return Err(Close::new(
                    CloseCode::ProtocolViolation,
                    "hello may only be sent once",
                ));
            }
            OutpostMessage::Heartbeat { applied_revision } => {
                self.hub.registry.seen(
                    self.outpost_id,
                    &self.instance_id,
                    now,
                    Some(applied_revision),
                );
            }
            OutpostMessage::Ack { revision } => {
                if revision > self.sent {
                    // An outpost claiming a configuration it was never sent is confused or
                    // lying; its applied revision must not be recorded.
                    return Err(Close::new(
                        CloseCode::ProtocolViolation,
                        format!(
                            "acknowledged revision {revision}, but the newest sent is {}",
                            self.sent
                        ),
                    ));
                }
                if let Some((pending, sent_at)) = self.unacked
                    && revision >= pending
                {
                    self.hub
                        .metrics
                        .push_latency
                        .observe(sent_at.elapsed().as_secs_f64());
                    self.unacked = None;
                }
                self.hub
                    .registry
                    .seen(self.outpost_id, &self.instance_id, now, Some(revision));
            }
        }
        Ok(())
    }

    /// A snapshot when the outpost holds nothing, something too old, or something newer than
    /// the core knows (a restored database); otherwise the changes since its revision.
    async fn initial_sync(&mut self, held: Option<i64>) -> Result<(), Close> {
        let current = self.hub.store.current_revision().await?;
        match held {
            Some(held) if held >= 0 && held <= current && current - held <= MAX_CATCH_UP => {
                let mut from = held;
                let mut items = Vec::new();
                let mut needs_snapshot = false;
                while let Some(batch) = batch::read(&self.hub.store, from, 500).await? {
                    from = batch.to;
                    let (mut own, snapshot) = self.filter(&batch).await?;
                    items.append(&mut own);
                    needs_snapshot |= snapshot;
                }
                if needs_snapshot {
                    return self.send_snapshot().await;
                }
                self.sent = held;
                self.send_changes(from.max(held), items).await
            }
            _ => self.send_snapshot().await,
        }
    }

    async fn on_batch(&mut self, batch: &Batch) -> Result<(), Close> {
        if batch.to <= self.sent {
            return Ok(());
        }
        if batch.from > self.sent {
            // A gap: this session missed revisions. The change log is the truth.
            return self.send_snapshot().await;
        }
        let (items, snapshot) = self.filter(batch).await?;
        if snapshot {
            return self.send_snapshot().await;
        }
        self.send_changes(batch.to, items).await
    }

    /// The items of `batch` for this outpost, and whether it needs a snapshot instead.
    async fn filter(&mut self, batch: &Batch) -> Result<(Vec<ChangeItem>, bool), Close> {
        let held = self.sent;
        let mut items: Vec<ChangeItem> = batch
            .items
            .iter()
            .filter(|(revision, audience, _)| {
                *revision > held && audience.includes(self.kind, self.outpost_id)
            })
            .map(|(_, _, item)| item.clone())
            .collect();
        let mut snapshot = false;
        for (_, action) in batch
            .actions
            .iter()
            .filter(|(revision, _)| *revision > held)
        {
            match *action {
                Action::Deleted(id) if id == self.outpost_id => {
                    return Err(Close::new(
                        CloseCode::TokenRefused,
                        "this outpost was deleted in the core",
                    ));
                }
                Action::RevalidateToken(id) if id == self.outpost_id => {
                    if matches!(
                        self.hub.store.token(self.token_id).await,
                        Err(StoreError::NotFound(_))
                    ) {
                        return Err(Close::new(
                            CloseCode::TokenRefused,
                            "the core refused this outpost's token: it was rotated; set the new REDOUBT_TOKEN",
                        ));
                    }
                }
                Action::Snapshot(id) if id == self.outpost_id => snapshot = true,
                Action::SessionKeysRotated if !self.kind.needs_directory() => snapshot = true,
                Action::RefreshProviders => {
                    let outpost = self.hub.store.outpost(self.outpost_id).await?;
                    for provider in
                        snapshot::providers(&self.hub.store, &outpost.provider_ids).await?
                    {
                        items.push(ChangeItem::ProviderUpserted { provider });
                    }
                }
                _ => {}
            }
        }
        Ok((items, snapshot))
    }

    async fn send_snapshot(&mut self) -> Result<(), Close> {
        let (revision, text) = self.hub.snapshot_message(self.outpost_id).await?;
        self.send_text(&text).await?;
        self.sent = revision;
        self.unacked = Some((revision, Instant::now()));
        Ok(())
    }

    async fn send_changes(&mut self, revision: i64, items: Vec<ChangeItem>) -> Result<(), Close> {
        let set = ChangeSet {
            from_revision: self.sent,
            revision,
            items,
        };
        self.send(&CoreMessage::Changes(set)).await?;
        self.sent = revision;
        self.unacked = Some((revision, Instant::now()));
        Ok(())
    }

    async fn send(&mut self, message: &CoreMessage) -> Result<(), Close> {
        let text = serde_json::to_string(message)
            .map_err(|e| Close::new(CloseCode::ShuttingDown, format!("encoding failed: {e}")))?;
        self.send_text(&text).await
    }

    async fn send_text(&mut self, text: &str) -> Result<(), Close> {
        self.socket
            .send(Message::Text(Utf8Bytes::from(text)))
            .await
            .map_err(|_| Close::new(CloseCode::ShuttingDown, "the connection broke"))
    }

    fn event(
        &self,
        action: &'static str,
        detail: String,
    ) -> impl Future<Output = ()> + Send + 'static {
        let hub = self.hub.clone();
        let event = NewEvent {
            actor: format!("outpost:{}", self.outpost_id),
            action,
            target: self.outpost_name.clone(),
            source_address: self.remote.clone(),
            outcome: Outcome::Success,
            detail: serde_json::json!({ "instance_id": self.instance_id, "detail": detail }),
        };
        async move {
            if let Err(error) = hub.store.record_event(&event).await {
                tracing::warn!(%error, action, "could not record event");
            }
        }
    }
}

/// Resolves once `stop` turns true.
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
