//! One remote-desktop connection, from a connected RDP stream to its end: the loop that reads
//! the server's updates into the decoded image, marks changed cells, and (paced by the browser's
//! acknowledgements, latest frame wins) encodes the changed tiles on the blocking pool and sends
//! them; and that turns the browser's input, resizes and clipboard into RDP. It ends when the
//! server or the browser goes, or when [`SessionControl`] says so (expiry, idle, revocation,
//! outpost stop), and reports how it ended.

use crate::connect::{Connected, RdpFramed};
use crate::encode::{EncodeScratch, EncodeSettings, encode_tile};
use crate::input::InputState;
use crate::metrics::RacMetrics;
use crate::pacing::{Pacer, PacerConfig};
use crate::rdp_clipboard::ClipEvent;
use crate::tiles::{DirtyCells, Rect};
use bytes::BytesMut;
use futures_util::FutureExt as _;
use ironrdp_cliprdr::CliprdrClient;
use ironrdp_cliprdr::pdu::{ClipboardFormat, ClipboardFormatId, OwnedFormatDataResponse};
use ironrdp_connector::ConnectionResult;
use ironrdp_connector::connection_activation::ConnectionActivationState;
use ironrdp_core::WriteBuf;
use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::Action;
use ironrdp_session::image::DecodedImage;
use ironrdp_session::{ActiveStage, ActiveStageBuilder, ActiveStageOutput, fast_path};
use ironrdp_tokio::FramedWrite as _;
use redoubt_outpost_proto::provider::ClipboardPolicy;
use redoubt_outpost_proto::rac::{BrowserMessage, EndReason, ServerMessage, TileEncoding};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// What the browser side hands the session: decoded browser messages in, encoded server
/// messages out (the socket writer drains `to_browser`).
pub struct BrowserLink {
    pub from_browser: mpsc::Receiver<BrowserMessage>,
    pub to_browser: mpsc::Sender<Outgoing>,
}

/// Something for the socket writer.
#[derive(Debug)]
pub enum Outgoing {
    /// Encoded messages sent back to back (a frame's tiles and its `FrameEnd`).
    Messages(Vec<Vec<u8>>),
    /// Close the socket with this code and reason after the queued messages.
    Close(u16, String),
}

/// How a session is steered from outside (the registry): a reason to end now.
pub type SessionControl = watch::Receiver<Option<EndReason>>;

/// Per-connection settings from the endpoint.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub connection_id: String,
    pub lossless: bool,
    pub unicode_keyboard: bool,
    /// The desktop follows the browser's size (no fixed width/height, Display Control offered).
    pub follow_browser_size: bool,
    pub idle_timeout: Option<Duration>,
    /// When the connection must end.
    pub expires_at: Instant,
    pub clipboard: ClipboardPolicy,
    /// Largest clipboard text either way, in bytes.
    pub clipboard_max_bytes: usize,
}

/// How a session ended, for the report and the metrics.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    pub reason: EndReason,
    pub message: String,
    pub bytes_from_server: u64,
    pub bytes_to_browser: u64,
    pub clipboard_transfers: u64,
    pub duration: Duration,
}

impl SessionEnd {
    /// The end of a connection whose session never ran.
    pub fn before_start(reason: EndReason) -> Self {
        Self {
            reason,
            message: end_message(reason),
            bytes_from_server: 0,
            bytes_to_browser: 0,
            clipboard_transfers: 0,
            duration: Duration::ZERO,
        }
    }
}

/// Most drawing PDUs held back during one reactivation (xrdp sends a screenful or so).
const MAX_DEFERRED: usize = 4096;

/// PDUs already waiting that one turn of the loop takes before it builds a frame (bounded, so
/// a flood cannot keep input and frames waiting).
const MAX_PDUS_PER_TURN: usize = 64;

/// Frames taken by the sender at most this often, whatever the browser acknowledges.
const MAX_DELAY_BETWEEN_CHECKS: Duration = Duration::from_millis(250);

struct Run {
    stage: ActiveStage,
    image: DecodedImage,
    dirty: DirtyCells,
    pacer: Pacer,
    input: InputState,
    settings: SessionSettings,
    metrics: Arc<RacMetrics>,
    activation: ironrdp_connector::connection_activation::ConnectionActivationFactory,
    /// The I/O channel, where xrdp's short Deactivate All arrives.
    io_channel_id: u16,
    started: Instant,
    last_input: Instant,
    bytes_from_server: u64,
    bytes_to_browser: u64,
    clipboard_transfers: u64,
    unicode_keyboard: bool,
    /// An encode job in flight: its frame's sequence number.
    encoding: Option<tokio::task::JoinHandle<EncodedFrame>>,
    /// When an RDP update that is not yet on its way to the browser arrived.
    oldest_unsent: Option<Instant>,
    scratch: Option<EncodeScratch>,
    /// The clipboard channel's events (none when the endpoint's clipboard policy is `none`).
    clip_events: Option<std::sync::mpsc::Receiver<ClipEvent>>,
    /// What the browser last copied, handed to the server when it pastes.
    local_clipboard: Option<String>,
}

/// Runs the session to its end. Never panics on anything the server or the browser sends.
pub async fn run(
    connected: Connected,
    link: BrowserLink,
    mut control: SessionControl,
    settings: SessionSettings,
    metrics: Arc<RacMetrics>,
    clip_events: Option<std::sync::mpsc::Receiver<ClipEvent>>,
) -> SessionEnd {
    let Connected { framed, result, .. } = connected;
    let started = Instant::now();
    let ConnectionResult {
        io_channel_id,
        user_channel_id,
        message_channel_id,
        share_id,
        static_channels,
        desktop_size,
        enable_server_pointer,
        pointer_software_rendering,
        activation_factory,
        compression_type,
    } = result;
    let stage = ActiveStageBuilder {
        static_channels,
        user_channel_id,
        io_channel_id,
        message_channel_id,
        share_id,
        compression_type,
        enable_server_pointer,
        pointer_software_rendering,
    }
    .build();
    let (width, height) = (desktop_size.width, desktop_size.height);
    let mut run = Run {
        stage,
        image: DecodedImage::new(PixelFormat::RgbA32, width, height),
        dirty: DirtyCells::new(width, height),
        pacer: Pacer::new(PacerConfig::default()),
        input: InputState::new(),
        unicode_keyboard: settings.unicode_keyboard,
        settings,
        metrics,
        activation: activation_factory,
        io_channel_id,
        started,
        last_input: started,
        bytes_from_server: 0,
        bytes_to_browser: 0,
        clipboard_transfers: 0,
        encoding: None,
        oldest_unsent: None,
        scratch: Some(EncodeScratch::default()),
        clip_events,
        local_clipboard: None,
    };
    let (reason, message) = run.drive(framed, link, &mut control).await;
    SessionEnd {
        reason,
        message,
        bytes_from_server: run.bytes_from_server,
        bytes_to_browser: run.bytes_to_browser,
        clipboard_transfers: run.clipboard_transfers,
        duration: started.elapsed(),
    }
}

/// A frame's tiles, encoded off the loop.
struct EncodedFrame {
    seq: u32,
    messages: Vec<Vec<u8>>,
    /// Each tile's encoding and encode time, for the metrics.
    timings: Vec<(TileEncoding, f64)>,
}

/// What one turn of the loop saw.
enum Event {
    Pdu(std::io::Result<(Action, BytesMut)>),
    Browser(Option<BrowserMessage>),
    Encoded(Result<EncodedFrame, tokio::task::JoinError>),
    Tick,
    Control,
}

impl Run {
    async fn drive(
        &mut self,
        framed: RdpFramed,
        mut link: BrowserLink,
        control: &mut SessionControl,
    ) -> (EndReason, String) {
        let (mut reader, mut writer) = ironrdp_tokio::split_tokio_framed(framed);
        let to_browser = link.to_browser.clone();
        loop {
            if let Some(reason) = *control.borrow() {
                return (reason, end_message(reason));
            }
            let now = Instant::now();
            if now >= self.settings.expires_at {
                return (EndReason::Expired, end_message(EndReason::Expired));
            }
            if let Some(idle) = self.settings.idle_timeout
                && now.duration_since(self.last_input) >= idle
            {
                // Input that waited in the queue while this loop was busy still counts.
                while let Ok(message) = link.from_browser.try_recv() {
                    if let Err(error) = self.browser_message(message, &mut writer).await {
                        tracing::info!(connection = %self.settings.connection_id, %error, "sending to the RDP server failed");
                        return (EndReason::Server, end_message(EndReason::Server));
                    }
                }
                if Instant::now().duration_since(self.last_input) >= idle {
                    return (EndReason::Idle, end_message(EndReason::Idle));
                }
            }
            if self.encoding.is_none() {
                self.maybe_start_frame(now);
            }
            let wake = self.next_wake(now);
            let event = tokio::select! {
                pdu = reader.read_pdu() => Event::Pdu(pdu),
                message = link.from_browser.recv() => Event::Browser(message),
                done = async { match self.encoding.as_mut() { Some(job) => job.await, None => std::future::pending().await } } => Event::Encoded(done),
                () = tokio::time::sleep_until(wake.into()) => Event::Tick,
                _ = control.changed() => Event::Control,
            };
            match event {
                Event::Pdu(pdu) => {
                    if let Some(end) = self.pdu(pdu, &mut reader, &mut writer, &to_browser).await {
                        return end;
                    }
                    // What the server already sent belongs to the same update: take it all
                    // before the next frame is built, so an update leaves as one frame.
                    for _ in 0..MAX_PDUS_PER_TURN {
                        let Some(pdu) = reader.read_pdu().now_or_never() else {
                            break;
                        };
                        if let Some(end) =
                            self.pdu(pdu, &mut reader, &mut writer, &to_browser).await
                        {
                            return end;
                        }
                    }
                }
                Event::Browser(None) => return (EndReason::User, String::new()),
                Event::Browser(Some(message)) => {
                    if let Err(error) = self.browser_message(message, &mut writer).await {
                        tracing::info!(connection = %self.settings.connection_id, %error, "sending to the RDP server failed");
                        return (EndReason::Server, end_message(EndReason::Server));
                    }
                }
                Event::Encoded(done) => {
                    self.encoding = None;
                    match done {
                        Ok(EncodedFrame {
                            seq,
                            mut messages,
                            timings,
                        }) => {
                            for (encoding, seconds) in timings {
                                self.metrics.tile(encoding, seconds);
                            }
                            messages.push(
                                ServerMessage::FrameEnd {
                                    seq,
                                    server_ms: u32::try_from(self.started.elapsed().as_millis())
                                        .unwrap_or(u32::MAX),
                                }
                                .encode(),
                            );
                            let bytes: usize = messages.iter().map(Vec::len).sum();
                            self.bytes_to_browser += bytes as u64;
                            self.metrics.websocket_bytes_sent.inc_by(bytes as u64);
                            self.metrics.frames.inc();
                            if let Some(oldest) = self.oldest_unsent.take() {
                                self.metrics
                                    .frame_latency
                                    .observe(oldest.elapsed().as_secs_f64());
                            }
                            if to_browser.send(Outgoing::Messages(messages)).await.is_err() {
                                return (EndReason::User, String::new());
                            }
                        }
                        Err(error) => {
                            tracing::error!(connection = %self.settings.connection_id, %error, "encoding a frame failed");
                            return (EndReason::Error, end_message(EndReason::Error));
                        }
                    }
                }
                Event::Tick | Event::Control => {}
            }
        }
    }

    /// Handles one PDU read from the server (or the read's failure); `Some` ends the session.
    async fn pdu(
        &mut self,
        pdu: std::io::Result<(Action, BytesMut)>,
        reader: &mut RdpReader,
        writer: &mut RdpWriter,
        to_browser: &mpsc::Sender<Outgoing>,
    ) -> Option<(EndReason, String)> {
        let (action, frame) = match pdu {
            Ok(pdu) => pdu,
            Err(error) => {
                tracing::info!(connection = %self.settings.connection_id, %error, "the RDP server closed the connection");
                return Some((EndReason::Server, end_message(EndReason::Server)));
            }
        };
        self.bytes_from_server += frame.len() as u64;
        self.metrics.rdp_bytes_received.inc_by(frame.len() as u64);
        let handled = match self
            .server_frame(action, &frame, reader, writer, to_browser)
            .await
        {
            Ok(None) => self.clipboard_events(writer, to_browser).await,
            other => other,
        };
        match handled {
            Ok(end) => end,
            Err(error) => {
                tracing::info!(connection = %self.settings.connection_id, %error, "the RDP session failed");
                Some((EndReason::Protocol, end_message(EndReason::Protocol)))
            }
        }
    }

    /// When the loop must look again without any input: the pacer's next slot, the idle and
    /// expiry deadlines.
    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = now + MAX_DELAY_BETWEEN_CHECKS;
        if let Some(delay) = self.pacer.ready(now, self.dirty.is_dirty()) {
            wake = wake.min(now + delay);
        }
        wake = wake.min(self.settings.expires_at);
        if let Some(idle) = self.settings.idle_timeout {
            wake = wake.min(self.last_input + idle);
        }
        wake
    }

    /// Starts encoding a frame when cells are dirty and the pacer allows one now.
    fn maybe_start_frame(&mut self, now: Instant) {
        if !matches!(self.pacer.ready(now, self.dirty.is_dirty()), Some(delay) if delay.is_zero()) {
            return;
        }
        let stride = self.image.stride();
        let rects = self.dirty.take(self.image.data(), stride);
        if rects.is_empty() {
            self.oldest_unsent = None;
            return;
        }
        // Copy the changed tiles out (tight rows) so encoding runs off the loop.
        let data = self.image.data();
        let tiles: Vec<(Rect, Vec<u8>)> = rects
            .into_iter()
            .map(|rect| (rect, copy_rect(data, stride, rect)))
            .collect();
        let seq = self.pacer.next_seq();
        self.pacer.on_sent(seq, now);
        let settings = EncodeSettings {
            lossless: self.settings.lossless,
            jpeg_quality: self.pacer.jpeg_quality(),
            ..EncodeSettings::default()
        };
        let mut scratch = self.scratch.take().unwrap_or_default();
        self.encoding = Some(tokio::task::spawn_blocking(move || {
            let mut messages = Vec::with_capacity(tiles.len() + 1);
            let mut timings = Vec::with_capacity(tiles.len());
            for (rect, pixels) in tiles {
                let started = Instant::now();
                let local = Rect {
                    x: 0,
                    y: 0,
                    w: rect.w,
                    h: rect.h,
                };
                let (encoding, data) = encode_tile(
                    &pixels,
                    usize::from(rect.w) * 4,
                    local,
                    &settings,
                    &mut scratch,
                );
                timings.push((encoding, started.elapsed().as_secs_f64()));
                messages.push(
                    ServerMessage::Tile {
                        x: rect.x,
                        y: rect.y,
                        w: rect.w,
                        h: rect.h,
                        encoding,
                        data,
                    }
                    .encode(),
                );
            }
            EncodedFrame {
                seq,
                messages,
                timings,
            }
        }));
    }

    /// Handles one PDU from the server; `Some` ends the session.
    async fn server_frame(
        &mut self,
        action: Action,
        frame: &[u8],
        reader: &mut RdpReader,
        writer: &mut RdpWriter,
        to_browser: &mpsc::Sender<Outgoing>,
    ) -> Result<Option<(EndReason, String)>, SessionError> {
        if action == Action::X224
            && crate::reactivation::is_short_deactivate_all(frame, self.io_channel_id)
        {
            return self.reactivate_and_draw(reader, writer, to_browser).await;
        }
        let outputs = self
            .stage
            .process(&mut self.image, action, frame)
            .map_err(|e| SessionError::Rdp(e.to_string()))?;
        for output in outputs {
            match output {
                ActiveStageOutput::ResponseFrame(bytes) => {
                    write(writer, &bytes).await?;
                }
                ActiveStageOutput::GraphicsUpdate(region) => {
                    let x = region.left;
                    let y = region.top;
                    let w = region.right.saturating_sub(region.left).saturating_add(1);
                    let h = region.bottom.saturating_sub(region.top).saturating_add(1);
                    self.dirty.mark(x, y, w, h);
                    self.pacer.on_update();
                    self.oldest_unsent.get_or_insert_with(Instant::now);
                }
                ActiveStageOutput::PointerDefault => {
                    let _ = to_browser.try_send(Outgoing::Messages(vec![
                        ServerMessage::CursorDefault.encode(),
                    ]));
                }
                ActiveStageOutput::PointerHidden => {
                    let _ = to_browser.try_send(Outgoing::Messages(vec![
                        ServerMessage::CursorHidden.encode(),
                    ]));
                }
                ActiveStageOutput::PointerPosition { .. } => {}
                ActiveStageOutput::PointerBitmap(pointer) => {
                    if let Some(png) = crate::encode::encode_cursor_png(
                        pointer.width,
                        pointer.height,
                        &pointer.bitmap_data,
                    ) {
                        let message = ServerMessage::Cursor {
                            hot_x: pointer.hotspot_x,
                            hot_y: pointer.hotspot_y,
                            png,
                        };
                        let _ = to_browser.try_send(Outgoing::Messages(vec![message.encode()]));
                    }
                }
                ActiveStageOutput::Terminate(reason) => {
                    tracing::info!(connection = %self.settings.connection_id, reason = %reason.description(), "the RDP server ended the session");
                    return Ok(Some((EndReason::Server, end_message(EndReason::Server))));
                }
                ActiveStageOutput::DeactivateAll => {
                    if let Some(end) = self.reactivate_and_draw(reader, writer, to_browser).await? {
                        return Ok(Some(end));
                    }
                }
                ActiveStageOutput::MultitransportRequest(_) | ActiveStageOutput::AutoDetect(_) => {}
            }
        }
        Ok(None)
    }

    /// Reactivates, then handles the drawing that arrived during the finalization.
    async fn reactivate_and_draw(
        &mut self,
        reader: &mut RdpReader,
        writer: &mut RdpWriter,
        to_browser: &mpsc::Sender<Outgoing>,
    ) -> Result<Option<(EndReason, String)>, SessionError> {
        let deferred = self.reactivate(reader, writer, to_browser).await?;
        for (action, frame) in deferred {
            let handled =
                Box::pin(self.server_frame(action, &frame, reader, writer, to_browser)).await?;
            if handled.is_some() {
                return Ok(handled);
            }
        }
        Ok(None)
    }

    /// Another channel's data during a reactivation: its replies go out, the rest (the
    /// clipboard's events) is picked up after.
    async fn channel_data(
        &mut self,
        action: Action,
        frame: &[u8],
        writer: &mut RdpWriter,
    ) -> Result<(), SessionError> {
        let outputs = self
            .stage
            .process(&mut self.image, action, frame)
            .map_err(|e| SessionError::Rdp(e.to_string()))?;
        write_responses(writer, outputs).await
    }

    /// The Deactivation-Reactivation sequence (after a resize, Windows and xrdp send it): run
    /// the capability exchange again, then start over with an image of the new size. What the
    /// server sends meanwhile is routed by [`crate::reactivation::route`]; returns the drawing
    /// held back for the new desktop.
    async fn reactivate(
        &mut self,
        reader: &mut RdpReader,
        writer: &mut RdpWriter,
        to_browser: &mpsc::Sender<Outgoing>,
    ) -> Result<Vec<(Action, BytesMut)>, SessionError> {
        use crate::reactivation::{Route, route};
        use ironrdp_connector::Sequence as _;
        let mut sequence = self.activation.create();
        let mut buf = WriteBuf::new();
        let mut deferred = Vec::new();
        loop {
            buf.clear();
            if sequence.next_pdu_hint().is_none() {
                // The client's turn (Synchronize, Control, Font List): nothing to read.
                let written = sequence
                    .step_no_input(&mut buf)
                    .map_err(|e| SessionError::Rdp(e.to_string()))?;
                if written.size().is_some() {
                    write(writer, buf.filled()).await?;
                }
                continue;
            }
            let (action, frame) = reader
                .read_pdu()
                .await
                .map_err(|e| SessionError::Io(e.to_string()))?;
            self.bytes_from_server += frame.len() as u64;
            let demand_active_seen = !matches!(
                sequence.connection_activation_state(),
                ConnectionActivationState::CapabilitiesExchange
            );
            match route(action, &frame, self.io_channel_id, demand_active_seen) {
                Route::Sequence => {}
                Route::Drop => continue,
                Route::Defer => {
                    if deferred.len() >= MAX_DEFERRED {
                        return Err(SessionError::Rdp(
                            "too many updates during a reactivation".into(),
                        ));
                    }
                    deferred.push((action, frame));
                    continue;
                }
                Route::Channel => {
                    self.channel_data(action, &frame, writer).await?;
                    continue;
                }
            }
            buf.clear();
            let written = sequence
                .step(&frame, &mut buf)
                .map_err(|e| SessionError::Rdp(e.to_string()))?;
            if written.size().is_some() {
                write(writer, buf.filled()).await?;
            }
            if let ConnectionActivationState::Finalized {
                desktop_size,
                share_id,
                enable_server_pointer,
                pointer_software_rendering,
            } = sequence.connection_activation_state()
            {
                self.image =
                    DecodedImage::new(PixelFormat::RgbA32, desktop_size.width, desktop_size.height);
                self.dirty = DirtyCells::new(desktop_size.width, desktop_size.height);
                self.stage.set_fastpath_processor(
                    fast_path::ProcessorBuilder {
                        io_channel_id: sequence.io_channel_id(),
                        user_channel_id: sequence.user_channel_id(),
                        share_id,
                        enable_server_pointer,
                        pointer_software_rendering,
                        bulk_decompressor: None,
                    }
                    .build(),
                );
                self.stage.set_share_id(share_id);
                self.stage.set_enable_server_pointer(enable_server_pointer);
                self.metrics.resizes.inc();
                let message = ServerMessage::Resize {
                    width: desktop_size.width,
                    height: desktop_size.height,
                };
                to_browser
                    .send(Outgoing::Messages(vec![message.encode()]))
                    .await
                    .map_err(|_| SessionError::BrowserGone)?;
                return Ok(deferred);
            }
        }
    }

    /// Handles one message from the browser.
    async fn browser_message(
        &mut self,
        message: BrowserMessage,
        writer: &mut RdpWriter,
    ) -> Result<(), SessionError> {
        match &message {
            BrowserMessage::Ack { seq } => {
                self.pacer.on_ack(*seq, Instant::now());
                return Ok(());
            }
            BrowserMessage::Resize { width, height } => {
                if !self.settings.follow_browser_size {
                    return Ok(());
                }
                let (width, height) =
                    ironrdp_displaycontrol::pdu::MonitorLayoutEntry::adjust_display_size(
                        u32::from(*width),
                        u32::from(*height),
                    );
                if let Some(frame) = self.stage.encode_resize(width, height, None, None) {
                    let frame = frame.map_err(|e| SessionError::Rdp(e.to_string()))?;
                    write(writer, &frame).await?;
                }
                return Ok(());
            }
            BrowserMessage::Clipboard { text } => {
                if !self.settings.clipboard.to_remote()
                    || crate::clipboard::check_size(text.len(), self.settings.clipboard_max_bytes)
                        .is_err()
                {
                    return Ok(());
                }
                self.local_clipboard = Some(text.clone());
                let formats = [ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)];
                let messages = match self.stage.get_svc_processor_mut::<CliprdrClient>() {
                    Some(cliprdr) => cliprdr
                        .initiate_copy(&formats)
                        .map_err(|e| SessionError::Rdp(e.to_string()))?,
                    None => return Ok(()),
                };
                let frame = self
                    .stage
                    .process_svc_processor_messages(messages)
                    .map_err(|e| SessionError::Rdp(e.to_string()))?;
                write(writer, &frame).await?;
                return Ok(());
            }
            BrowserMessage::Credentials(_) => return Ok(()),
            _ => {}
        }
        self.last_input = Instant::now();
        let desktop = (self.image.width(), self.image.height());
        let events = self.input.event(&message, desktop, self.unicode_keyboard);
        if events.is_empty() {
            return Ok(());
        }
        self.metrics.input_event(&message);
        let outputs = self
            .stage
            .process_fastpath_input(&mut self.image, &events)
            .map_err(|e| SessionError::Rdp(e.to_string()))?;
        write_responses(writer, outputs).await
    }
}

impl Run {
    /// Answers what the clipboard channel asked or told after a server PDU.
    async fn clipboard_events(
        &mut self,
        writer: &mut RdpWriter,
        to_browser: &mpsc::Sender<Outgoing>,
    ) -> Result<Option<(EndReason, String)>, SessionError> {
        let events: Vec<ClipEvent> = match &self.clip_events {
            Some(events) => events.try_iter().collect(),
            None => return Ok(None),
        };
        for event in events {
            let Some(cliprdr) = self.stage.get_svc_processor_mut::<CliprdrClient>() else {
                return Ok(None);
            };
            let messages = match event {
                ClipEvent::FormatListRequested => {
                    let formats: Vec<ClipboardFormat> = match &self.local_clipboard {
                        Some(_) => vec![ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)],
                        None => Vec::new(),
                    };
                    cliprdr.initiate_copy(&formats)
                }
                ClipEvent::RemoteCopy { text: true } if self.settings.clipboard.to_browser() => {
                    cliprdr.initiate_paste(ClipboardFormatId::CF_UNICODETEXT)
                }
                ClipEvent::RemoteCopy { .. } => continue,
                ClipEvent::DataRequested { unicode_text } => {
                    let response = match (&self.local_clipboard, unicode_text) {
                        (Some(text), true) if self.settings.clipboard.to_remote() => {
                            self.clipboard_transfers += 1;
                            self.metrics
                                .clipboard_transfers
                                .with_label_values(&["to_remote"])
                                .inc();
                            OwnedFormatDataResponse::new_data(crate::clipboard::to_cf_unicodetext(
                                text,
                            ))
                        }
                        _ => OwnedFormatDataResponse::new_error(),
                    };
                    cliprdr.submit_format_data(response)
                }
                ClipEvent::Data(data) => {
                    let text = data.and_then(|bytes| {
                        crate::clipboard::from_cf_unicodetext_capped(
                            &bytes,
                            self.settings.clipboard_max_bytes,
                        )
                        .ok()
                    });
                    if let Some(text) = text
                        && self.settings.clipboard.to_browser()
                    {
                        self.clipboard_transfers += 1;
                        self.metrics
                            .clipboard_transfers
                            .with_label_values(&["to_browser"])
                            .inc();
                        let message = ServerMessage::Clipboard { text }.encode();
                        if to_browser
                            .send(Outgoing::Messages(vec![message]))
                            .await
                            .is_err()
                        {
                            return Err(SessionError::BrowserGone);
                        }
                    }
                    continue;
                }
            };
            let messages = messages.map_err(|e| SessionError::Rdp(e.to_string()))?;
            let frame = self
                .stage
                .process_svc_processor_messages(messages)
                .map_err(|e| SessionError::Rdp(e.to_string()))?;
            write(writer, &frame).await?;
        }
        Ok(None)
    }
}

/// The read half of the connection to the server.
type RdpReader =
    ironrdp_tokio::TokioFramed<tokio::io::ReadHalf<Box<dyn crate::connect::RdpStream>>>;
/// The write half of the connection to the server.
type RdpWriter =
    ironrdp_tokio::TokioFramed<tokio::io::WriteHalf<Box<dyn crate::connect::RdpStream>>>;

/// Writes `bytes` to the server (nothing when empty).
async fn write(writer: &mut RdpWriter, bytes: &[u8]) -> Result<(), SessionError> {
    if bytes.is_empty() {
        return Ok(());
    }
    writer
        .write_all(bytes)
        .await
        .map_err(|e| SessionError::Io(e.to_string()))
}

/// Writes the response frames among `outputs` to the server.
async fn write_responses(
    writer: &mut RdpWriter,
    outputs: Vec<ActiveStageOutput>,
) -> Result<(), SessionError> {
    for output in outputs {
        if let ActiveStageOutput::ResponseFrame(bytes) = output {
            write(writer, &bytes).await?;
        }
    }
    Ok(())
}

/// Why the loop stopped on its own.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("RDP: {0}")]
    Rdp(String),
    #[error("writing to the server: {0}")]
    Io(String),
    #[error("the browser is gone")]
    BrowserGone,
}

/// The pixels of `rect` from an image with `stride` bytes per row, as tight rows. Rectangles
/// come from the dirty-cell tracker, which clamps them to the image; anything outside reads as
/// black rather than panicking.
fn copy_rect(data: &[u8], stride: usize, rect: Rect) -> Vec<u8> {
    let row_bytes = usize::from(rect.w) * 4;
    let mut out = vec![0u8; row_bytes * usize::from(rect.h)];
    for row in 0..usize::from(rect.h) {
        let start = (usize::from(rect.y) + row) * stride + usize::from(rect.x) * 4;
        if let (Some(source), Some(target)) = (
            data.get(start..start + row_bytes),
            out.get_mut(row * row_bytes..(row + 1) * row_bytes),
        ) {
            target.copy_from_slice(source);
        }
    }
    out
}

/// The sentence shown for an end the user did not ask for.
pub fn end_message(reason: EndReason) -> String {
    match reason {
        EndReason::User => "You closed the connection.".into(),
        EndReason::Server => "The remote desktop ended the session (logged off or disconnected).".into(),
        EndReason::Expired => "The connection reached its time limit. Connect again to continue.".into(),
        EndReason::Idle => "The connection was closed after a period without input. Connect again to continue.".into(),
        EndReason::Revoked => "Your sign-in ended (signed out, password changed, access removed or account disabled).".into(),
        EndReason::Removed => "An administrator removed or changed this remote desktop.".into(),
        EndReason::Denied => "You may not open this remote desktop. Ask your administrator for access.".into(),
        EndReason::LimitReached => "Too many connections are open (for this desktop or for you). Close one and try again.".into(),
        EndReason::AuthFailed => "The remote desktop refused the user name or password.".into(),
        EndReason::Unreachable => "The remote desktop cannot be reached.".into(),
        EndReason::Tls => "The secure connection to the remote desktop failed.".into(),
        EndReason::Protocol => "The remote desktop sent something the outpost could not follow; the connection was closed.".into(),
        EndReason::BadMessage => "The page sent something the outpost could not read; reload the page.".into(),
        EndReason::OutpostStop => "The outpost is restarting. Connect again in a moment.".into(),
        EndReason::Timeout => "The remote desktop took too long to answer.".into(),
        EndReason::Error => "Something went wrong on the outpost; the connection was closed.".into(),
    }
}
