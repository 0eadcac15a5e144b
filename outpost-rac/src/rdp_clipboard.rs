//! The RDP clipboard channel (cliprdr), text only: a backend that turns the channel's callbacks
//! into [`ClipEvent`]s for the session loop, which answers them with the connection's clipboard
//! policy and size cap. Text copied on the remote desktop is fetched as `CF_UNICODETEXT` and sent
//! to the browser; text copied in the browser is announced to the server and handed over when it
//! asks. Contents are never logged.

use ironrdp_cliprdr::backend::CliprdrBackend;
use ironrdp_cliprdr::pdu::{
    ClipboardFormat, ClipboardGeneralCapabilityFlags, FileContentsRequest, FileContentsResponse,
    FormatDataRequest, FormatDataResponse, LockDataId,
};
use std::sync::mpsc;

/// What the server's clipboard channel asked or told.
#[derive(Debug, PartialEq, Eq)]
pub enum ClipEvent {
    /// The server wants our format list (at start): announce what the browser last copied.
    FormatListRequested,
    /// Something was copied on the remote desktop; `text` when it is available as text.
    RemoteCopy { text: bool },
    /// The server pastes: it wants our text.
    DataRequested { unicode_text: bool },
    /// The text we asked for (`None`: the server could not give it).
    Data(Option<Vec<u8>>),
}

/// Forwards the channel's callbacks to the session loop.
#[derive(Debug)]
pub struct ChannelBackend {
    events: mpsc::Sender<ClipEvent>,
}

impl ChannelBackend {
    /// A backend and the receiver the session loop drains after each server PDU.
    pub fn new() -> (Self, mpsc::Receiver<ClipEvent>) {
        let (events, receiver) = mpsc::channel();
        (Self { events }, receiver)
    }

    fn send(&self, event: ClipEvent) {
        let _ = self.events.send(event);
    }
}

impl ironrdp_core::AsAny for ChannelBackend {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl CliprdrBackend for ChannelBackend {
    fn temporary_directory(&self) -> &str {
        ""
    }

    fn client_capabilities(&self) -> ClipboardGeneralCapabilityFlags {
        ClipboardGeneralCapabilityFlags::USE_LONG_FORMAT_NAMES
    }

    fn on_ready(&mut self) {}

    fn on_request_format_list(&mut self) {
        self.send(ClipEvent::FormatListRequested);
    }

    fn on_process_negotiated_capabilities(&mut self, _: ClipboardGeneralCapabilityFlags) {}

    fn on_remote_copy(&mut self, available_formats: &[ClipboardFormat]) {
        let text = available_formats
            .iter()
            .any(|f| f.id == ironrdp_cliprdr::pdu::ClipboardFormatId::CF_UNICODETEXT);
        self.send(ClipEvent::RemoteCopy { text });
    }

    fn on_format_data_request(&mut self, request: FormatDataRequest) {
        self.send(ClipEvent::DataRequested {
            unicode_text: request.format == ironrdp_cliprdr::pdu::ClipboardFormatId::CF_UNICODETEXT,
        });
    }

    fn on_format_data_response(&mut self, response: FormatDataResponse<'_>) {
        let data = (!response.is_error()).then(|| response.data().to_vec());
        self.send(ClipEvent::Data(data));
    }

    fn on_file_contents_request(&mut self, _: FileContentsRequest) {}

    fn on_file_contents_response(&mut self, _: FileContentsResponse<'_>) {}

    fn on_lock(&mut self, _: LockDataId) {}

    fn on_unlock(&mut self, _: LockDataId) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_cliprdr::pdu::ClipboardFormatId;

    #[test]
    fn callbacks_become_events() {
        let (mut backend, events) = ChannelBackend::new();
        backend.on_request_format_list();
        backend.on_remote_copy(&[ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)]);
        backend.on_remote_copy(&[ClipboardFormat::new(ClipboardFormatId::new(2))]);
        backend.on_format_data_request(FormatDataRequest {
            format: ClipboardFormatId::CF_UNICODETEXT,
        });
        backend.on_format_data_response(FormatDataResponse::new_data(vec![b'a', 0, 0, 0]));
        backend.on_format_data_response(FormatDataResponse::new_error());
        let got: Vec<ClipEvent> = events.try_iter().collect();
        assert_eq!(
            got,
            [
                ClipEvent::FormatListRequested,
                ClipEvent::RemoteCopy { text: true },
                ClipEvent::RemoteCopy { text: false },
                ClipEvent::DataRequested { unicode_text: true },
                ClipEvent::Data(Some(vec![b'a', 0, 0, 0])),
                ClipEvent::Data(None),
            ]
        );
    }
}
