//! The server's clipboard (CLIPRDR): text a test puts on the remote clipboard is offered to the
//! client as if copied on the remote desktop, and text the client copies is requested and
//! recorded.

use super::record::Recorded;
use ironrdp_cliprdr::backend::{ClipboardMessage, CliprdrBackend, CliprdrBackendFactory};
use ironrdp_cliprdr::pdu::{
    ClipboardFormat, ClipboardFormatId, ClipboardGeneralCapabilityFlags, FileContentsRequest,
    FileContentsResponse, FormatDataRequest, FormatDataResponse, LockDataId,
};
use ironrdp_core::IntoOwned;
use ironrdp_server::{CliprdrServerFactory, ServerEvent, ServerEventSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::mpsc;

/// Clipboard state shared by the test thread and the server thread.
#[derive(Debug, Default)]
pub(crate) struct ClipboardShared {
    state: Mutex<State>,
    /// Texts the client copied, in order.
    pub(crate) received: Recorded<String>,
}

#[derive(Debug, Default)]
struct State {
    /// What the remote desktop "copied" (offered to the client).
    remote_text: Option<String>,
    /// Whether the current connection's channel is ready (the client sent its format list).
    ready: bool,
    events: Option<mpsc::UnboundedSender<ServerEvent>>,
}

impl ClipboardShared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `text` on the remote clipboard and offers it to the client now, or as soon as a
    /// client's clipboard channel is ready.
    pub(crate) fn copy_on_remote(&self, text: &str) {
        let mut state = self.state();
        state.remote_text = Some(text.to_owned());
        if state.ready {
            offer(&state);
        }
    }
}

fn offer(state: &State) {
    if let Some(events) = &state.events {
        let formats = vec![ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)];
        let _ = events.send(ServerEvent::Clipboard(ClipboardMessage::SendInitiateCopy(
            formats,
        )));
    }
}

fn send(shared: &ClipboardShared, message: ClipboardMessage) {
    if let Some(events) = &shared.state().events {
        let _ = events.send(ServerEvent::Clipboard(message));
    }
}

/// The [`CliprdrServerFactory`]: one backend per connection over the shared state.
#[derive(Debug)]
pub(crate) struct ClipboardFactory {
    pub(crate) shared: Arc<ClipboardShared>,
}

impl CliprdrBackendFactory for ClipboardFactory {
    fn build_cliprdr_backend(&self) -> Box<dyn CliprdrBackend> {
        self.shared.state().ready = false;
        Box::new(ClipboardBackend {
            shared: self.shared.clone(),
            requested: None,
        })
    }
}

impl ServerEventSender for ClipboardFactory {
    fn set_sender(&mut self, sender: mpsc::UnboundedSender<ServerEvent>) {
        self.shared.state().events = Some(sender);
    }
}

impl CliprdrServerFactory for ClipboardFactory {}

/// One connection's clipboard backend.
#[derive(Debug)]
struct ClipboardBackend {
    shared: Arc<ClipboardShared>,
    /// The format asked of the client, to decode its answer.
    requested: Option<ClipboardFormatId>,
}

ironrdp_core::impl_as_any!(ClipboardBackend);

impl CliprdrBackend for ClipboardBackend {
    fn temporary_directory(&self) -> &str {
        "C:\\Windows\\Temp"
    }

    fn client_capabilities(&self) -> ClipboardGeneralCapabilityFlags {
        ClipboardGeneralCapabilityFlags::USE_LONG_FORMAT_NAMES
    }

    fn on_ready(&mut self) {
        let mut state = self.shared.state();
        state.ready = true;
        if state.remote_text.is_some() {
            offer(&state);
        }
    }

    fn on_request_format_list(&mut self) {}

    fn on_process_negotiated_capabilities(&mut self, _: ClipboardGeneralCapabilityFlags) {}

    fn on_remote_copy(&mut self, formats: &[ClipboardFormat]) {
        let wanted = [
            ClipboardFormatId::CF_UNICODETEXT,
            ClipboardFormatId::CF_TEXT,
        ]
        .into_iter()
        .find(|id| formats.iter().any(|f| f.id() == *id));
        self.requested = wanted;
        if let Some(format) = wanted {
            send(&self.shared, ClipboardMessage::SendInitiatePaste(format));
        }
    }

    fn on_format_data_request(&mut self, request: FormatDataRequest) {
        let text = self.shared.state().remote_text.clone();
        let response = match text {
            Some(text) if request.format == ClipboardFormatId::CF_UNICODETEXT => {
                FormatDataResponse::new_unicode_string(&text)
            }
            Some(text) if request.format == ClipboardFormatId::CF_TEXT => {
                FormatDataResponse::new_string(&text)
            }
            _ => FormatDataResponse::new_error(),
        };
        send(
            &self.shared,
            ClipboardMessage::SendFormatData(response.into_owned()),
        );
    }

    fn on_format_data_response(&mut self, response: FormatDataResponse<'_>) {
        if response.is_error() {
            return;
        }
        let text = match self.requested {
            Some(ClipboardFormatId::CF_UNICODETEXT) => response.to_unicode_string(),
            Some(ClipboardFormatId::CF_TEXT) => response.to_string(),
            _ => return,
        };
        if let Ok(text) = text {
            self.shared.received.push(text);
        }
    }

    fn on_file_contents_request(&mut self, _: FileContentsRequest) {}

    fn on_file_contents_response(&mut self, _: FileContentsResponse<'_>) {}

    fn on_lock(&mut self, _: LockDataId) {}

    fn on_unlock(&mut self, _: LockDataId) {}
}
