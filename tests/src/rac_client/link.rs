//! The browser end of an in-process RAC session, without a WebSocket: it takes the session's
//! [`Outgoing`] messages into a [`RacView`] and acknowledges each frame, so a test can drive
//! `redoubt_outpost_rac::session::run` directly.

use super::{Framebuffer, RacView};
use anyhow::bail;
use redoubt_outpost_proto::rac::BrowserMessage;
use redoubt_outpost_rac::session::{BrowserLink, Outgoing};
use std::time::Duration;
use tokio::sync::mpsc;

/// A test browser wired to a session's [`BrowserLink`].
pub struct SessionBrowser {
    /// What the session has sent so far.
    pub view: RacView,
    from_session: mpsc::Receiver<Outgoing>,
    to_session: mpsc::Sender<BrowserMessage>,
    /// The close the session asked for, if any.
    pub closed: Option<(u16, String)>,
}

impl SessionBrowser {
    /// A browser and the link to hand the session; the view starts with a `width` × `height`
    /// picture (replaced by the `Hello`'s when one comes).
    pub fn new(width: u16, height: u16) -> (Self, BrowserLink) {
        let (to_session, from_browser) = mpsc::channel(64);
        let (to_browser, from_session) = mpsc::channel(64);
        let browser = Self {
            view: RacView {
                framebuffer: Some(Framebuffer::new(width, height)),
                ..RacView::default()
            },
            from_session,
            to_session,
            closed: None,
        };
        (
            browser,
            BrowserLink {
                from_browser,
                to_browser,
            },
        )
    }

    /// Takes messages (acknowledging frames) until `done` holds, within `deadline`.
    pub async fn until(
        &mut self,
        what: &str,
        deadline: Duration,
        done: impl Fn(&RacView) -> bool,
    ) -> anyhow::Result<()> {
        let until = tokio::time::Instant::now() + deadline;
        while !done(&self.view) {
            if let Some(error) = &self.view.error {
                bail!("waiting for {what}: {error}");
            }
            if let Some((code, reason)) = &self.closed {
                bail!("the session closed ({code} {reason}) while waiting for {what}");
            }
            match tokio::time::timeout_at(until, self.from_session.recv()).await {
                Ok(Some(Outgoing::Messages(messages))) => {
                    for message in messages {
                        if let Some(seq) = self.view.receive(&message) {
                            let _ = self.to_session.send(BrowserMessage::Ack { seq }).await;
                        }
                    }
                }
                Ok(Some(Outgoing::Close(code, reason))) => self.closed = Some((code, reason)),
                Ok(None) => bail!("the session ended while waiting for {what}"),
                Err(_) => bail!(
                    "no {what} within {deadline:?} (frames: {}, tiles: {:?})",
                    self.view.frames,
                    self.view.tiles
                ),
            }
        }
        Ok(())
    }

    /// Sends `message` to the session.
    pub async fn send(&self, message: BrowserMessage) -> anyhow::Result<()> {
        self.to_session
            .send(message)
            .await
            .map_err(|_| anyhow::anyhow!("the session has ended"))
    }
}
