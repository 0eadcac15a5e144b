//! The server's display handler: sends the whole test desktop when a client (re)activates, then
//! every rectangle a test paints, ends the session when a test says so, and follows Display Control layouts (recording each one) by
//! resizing the desktop to the requested size.

use super::desktop::{Desktop, Rect};
use super::record::Recorded;
use anyhow::Context;
use ironrdp_displaycontrol::pdu::DisplayControlMonitorLayout;
use ironrdp_server::{
    BitmapUpdate, DesktopSize, DisplayUpdate, PixelFormat, RdpServerDisplay,
    RdpServerDisplayUpdates,
};
use std::num::{NonZeroU16, NonZeroUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::mpsc;

/// Largest desktop side the test server accepts from a layout request.
const MAX_SIDE: u32 = 8192;

/// A Display Control monitor layout the client asked for (its primary monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutRequest {
    pub width: u32,
    pub height: u32,
    /// How many monitors the request listed.
    pub monitors: usize,
}

/// Something the display must tell the connected client.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change {
    /// These pixels changed.
    Painted(Rect),
    /// The desktop has a new size (the whole picture follows).
    Resized,
    /// End the client's session (the display stream ends, so the server disconnects).
    EndSession,
}

/// The desktop shared by the test thread and the server thread.
#[derive(Debug)]
pub(crate) struct Screen {
    desktop: Mutex<Desktop>,
    changes: mpsc::UnboundedSender<Change>,
    receiver: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Change>>>,
    /// Every layout request, in order.
    pub(crate) layouts: Recorded<LayoutRequest>,
    /// Whether a layout request resizes the desktop.
    follow_layouts: bool,
}

impl Screen {
    pub(crate) fn new(width: u16, height: u16, follow_layouts: bool) -> Self {
        let (changes, receiver) = mpsc::unbounded_channel();
        Self {
            desktop: Mutex::new(Desktop::new(width, height)),
            changes,
            receiver: Arc::new(tokio::sync::Mutex::new(receiver)),
            layouts: Recorded::default(),
            follow_layouts,
        }
    }

    pub(crate) fn desktop(&self) -> MutexGuard<'_, Desktop> {
        self.desktop.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Paints `rect` and sends it to the connected client (or to the next one).
    pub(crate) fn fill(&self, rect: Rect, rgb: [u8; 3]) -> Option<Rect> {
        let painted = self.desktop().fill(rect, rgb)?;
        let _ = self.changes.send(Change::Painted(painted));
        Some(painted)
    }

    /// Replaces the desktop with the pattern at a new size and tells the client.
    pub(crate) fn resize(&self, width: u16, height: u16) {
        *self.desktop() = Desktop::new(width, height);
        let _ = self.changes.send(Change::Resized);
    }

    /// Ends the connected client's session.
    pub(crate) fn end_session(&self) {
        let _ = self.changes.send(Change::EndSession);
    }

    fn size(&self) -> DesktopSize {
        let desktop = self.desktop();
        DesktopSize {
            width: desktop.width(),
            height: desktop.height(),
        }
    }

    fn record_layout(&self, layout: &DisplayControlMonitorLayout) {
        let monitors = layout.monitors();
        let Some(primary) = monitors
            .iter()
            .find(|m| m.is_primary())
            .or_else(|| monitors.first())
        else {
            return;
        };
        let (width, height) = primary.dimensions();
        self.layouts.push(LayoutRequest {
            width,
            height,
            monitors: monitors.len(),
        });
        let valid = (1..=MAX_SIDE).contains(&width) && (1..=MAX_SIDE).contains(&height);
        if self.follow_layouts
            && valid
            && let (Ok(width), Ok(height)) = (u16::try_from(width), u16::try_from(height))
        {
            let current = self.size();
            if (current.width, current.height) != (width, height) {
                self.resize(width, height);
            }
        }
    }

    /// A bitmap update with the current pixels of `rect`.
    fn bitmap(&self, rect: Rect) -> Option<BitmapUpdate> {
        let (rect, bgrx) = self.desktop().bgrx_of(rect)?;
        Some(BitmapUpdate {
            x: rect.x,
            y: rect.y,
            width: NonZeroU16::new(rect.width)?,
            height: NonZeroU16::new(rect.height)?,
            // The IronRDP client reads 32-bit surface bits as BGRX.
            format: PixelFormat::BgrX32,
            stride: NonZeroUsize::new(usize::from(rect.width) * 4)?,
            data: bgrx.into(),
        })
    }
}

/// The [`RdpServerDisplay`] over a [`Screen`].
pub(crate) struct TestDisplay {
    pub(crate) screen: Arc<Screen>,
}

#[async_trait::async_trait]
impl RdpServerDisplay for TestDisplay {
    async fn size(&mut self) -> DesktopSize {
        self.screen.size()
    }

    async fn updates(&mut self) -> anyhow::Result<Box<dyn RdpServerDisplayUpdates>> {
        let whole = self.screen.desktop().area();
        let first = self
            .screen
            .bitmap(whole)
            .context("the test desktop is empty")?;
        Ok(Box::new(TestUpdates {
            screen: self.screen.clone(),
            first: Some(DisplayUpdate::Bitmap(first)),
        }))
    }

    fn request_layout(&mut self, layout: DisplayControlMonitorLayout) {
        self.screen.record_layout(&layout);
    }
}

/// One activation's stream of updates: the whole desktop, then each change.
struct TestUpdates {
    screen: Arc<Screen>,
    first: Option<DisplayUpdate>,
}

#[async_trait::async_trait]
impl RdpServerDisplayUpdates for TestUpdates {
    async fn next_update(&mut self) -> anyhow::Result<Option<DisplayUpdate>> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        loop {
            // Both awaits are cancel-safe: a change is taken out of the queue only when
            // `recv` completes.
            let change = self.screen.receiver.lock().await.recv().await;
            let update = match change {
                // The sender lives in the screen, which this stream holds: never closed.
                None | Some(Change::EndSession) => return Ok(None),
                Some(Change::Resized) => Some(DisplayUpdate::Resize(self.screen.size())),
                Some(Change::Painted(rect)) => self.screen.bitmap(rect).map(DisplayUpdate::Bitmap),
            };
            if let Some(update) = update {
                return Ok(Some(update));
            }
        }
    }
}
