//! Prometheus metrics of the RAC module (`redoubt_rac_*` on the outpost's metrics port).

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use redoubt_outpost_proto::rac::{BrowserMessage, EndReason, TileEncoding};

/// The RAC metrics.
pub struct RacMetrics {
    pub connections_active: IntGauge,
    connections: IntCounterVec,
    pub connect_duration: Histogram,
    pub connection_duration: Histogram,
    disconnects: IntCounterVec,
    pub frame_latency: Histogram,
    pub frames: IntCounter,
    tiles: IntCounterVec,
    encode_seconds: HistogramVec,
    pub rdp_bytes_received: IntCounter,
    pub websocket_bytes_sent: IntCounter,
    input_events: IntCounterVec,
    pub clipboard_transfers: IntCounterVec,
    pub resizes: IntCounter,
}

const FAST_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0,
];

impl RacMetrics {
    /// Registers every series in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let connections_active = IntGauge::new(
            "redoubt_rac_connections_active",
            "Remote-desktop connections open on this outpost",
        )?;
        let connections = IntCounterVec::new(
            Opts::new(
                "redoubt_rac_connections_total",
                "Connection attempts by result (ok, or why it did not start)",
            ),
            &["result"],
        )?;
        let connect_duration = Histogram::with_opts(
            HistogramOpts::new(
                "redoubt_rac_connect_duration_seconds",
                "Time from the browser's WebSocket to the RDP session being up",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0,
            ]),
        )?;
        let connection_duration = Histogram::with_opts(
            HistogramOpts::new(
                "redoubt_rac_connection_duration_seconds",
                "How long connections lasted",
            )
            .buckets(vec![
                10.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 28_800.0, 86_400.0,
            ]),
        )?;
        let disconnects = IntCounterVec::new(
            Opts::new(
                "redoubt_rac_disconnects_total",
                "Connections that ended, by reason",
            ),
            &["reason"],
        )?;
        let frame_latency = Histogram::with_opts(
            HistogramOpts::new(
                "redoubt_rac_frame_latency_seconds",
                "Time from an RDP update arriving to its frame being handed to the WebSocket",
            )
            .buckets(FAST_BUCKETS.to_vec()),
        )?;
        let frames = IntCounter::new("redoubt_rac_frames_total", "Frames sent to browsers")?;
        let tiles = IntCounterVec::new(
            Opts::new("redoubt_rac_tiles_total", "Tiles sent, by encoding"),
            &["encoding"],
        )?;
        let encode_seconds = HistogramVec::new(
            HistogramOpts::new(
                "redoubt_rac_encode_seconds",
                "Time to encode one tile, by encoding",
            )
            .buckets(FAST_BUCKETS.to_vec()),
            &["encoding"],
        )?;
        let rdp_bytes_received = IntCounter::new(
            "redoubt_rac_rdp_bytes_received_total",
            "Bytes received from RDP servers",
        )?;
        let websocket_bytes_sent = IntCounter::new(
            "redoubt_rac_websocket_bytes_sent_total",
            "Bytes of frames sent to browsers",
        )?;
        let input_events = IntCounterVec::new(
            Opts::new(
                "redoubt_rac_input_events_total",
                "Input messages from browsers, by kind",
            ),
            &["kind"],
        )?;
        let clipboard_transfers = IntCounterVec::new(
            Opts::new(
                "redoubt_rac_clipboard_transfers_total",
                "Clipboard texts passed, by direction",
            ),
            &["direction"],
        )?;
        let resizes = IntCounter::new(
            "redoubt_rac_resizes_total",
            "Remote desktops resized to follow the browser",
        )?;
        registry.register(Box::new(connections_active.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connect_duration.clone()))?;
        registry.register(Box::new(connection_duration.clone()))?;
        registry.register(Box::new(disconnects.clone()))?;
        registry.register(Box::new(frame_latency.clone()))?;
        registry.register(Box::new(frames.clone()))?;
        registry.register(Box::new(tiles.clone()))?;
        registry.register(Box::new(encode_seconds.clone()))?;
        registry.register(Box::new(rdp_bytes_received.clone()))?;
        registry.register(Box::new(websocket_bytes_sent.clone()))?;
        registry.register(Box::new(input_events.clone()))?;
        registry.register(Box::new(clipboard_transfers.clone()))?;
        registry.register(Box::new(resizes.clone()))?;
        // Resolve the fixed label sets once so every series is exported from the start.
        for encoding in ["fill", "png", "jpeg"] {
            tiles.with_label_values(&[encoding]);
            encode_seconds.with_label_values(&[encoding]);
        }
        for direction in ["to_remote", "to_browser"] {
            clipboard_transfers.with_label_values(&[direction]);
        }
        Ok(Self {
            connections_active,
            connections,
            connect_duration,
            connection_duration,
            disconnects,
            frame_latency,
            frames,
            tiles,
            encode_seconds,
            rdp_bytes_received,
            websocket_bytes_sent,
            input_events,
            clipboard_transfers,
            resizes,
        })
    }

    /// A connection attempt's result: `ok` or the reason it did not start.
    pub fn connection(&self, result: &str) {
        self.connections.with_label_values(&[result]).inc();
    }

    /// A connection ended.
    pub fn disconnect(&self, reason: EndReason, seconds: f64) {
        self.disconnects.with_label_values(&[reason.label()]).inc();
        self.connection_duration.observe(seconds);
    }

    /// One tile encoded.
    pub fn tile(&self, encoding: TileEncoding, seconds: f64) {
        let label = match encoding {
            TileEncoding::Fill => "fill",
            TileEncoding::Png => "png",
            TileEncoding::Jpeg => "jpeg",
        };
        self.tiles.with_label_values(&[label]).inc();
        self.encode_seconds
            .with_label_values(&[label])
            .observe(seconds);
    }

    /// One input message.
    pub fn input_event(&self, message: &BrowserMessage) {
        let kind = match message {
            BrowserMessage::Key { .. } => "key",
            BrowserMessage::Unicode { .. } => "unicode",
            BrowserMessage::Mouse { .. } => "mouse",
            BrowserMessage::Wheel { .. } => "wheel",
            BrowserMessage::SyncLocks { .. } => "sync",
            BrowserMessage::Special { .. } => "special",
            BrowserMessage::ReleaseAll => "release_all",
            _ => return,
        };
        self.input_events.with_label_values(&[kind]).inc();
    }
}
