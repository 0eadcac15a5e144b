//! LDAP requests: raw bytes are one connection's stream, decoded with the server's limits and
//! handed message by message to a fresh [`Session`] over a small fixed directory.
//!
//! Invariants: no panic; every reply encodes; every search entry the server would stream
//! decodes again as a SearchResultEntry for the request's message id (what we write, a client
//! can read).

use crate::ldap::Shared;
use crate::ldap::encode::search_result_entry;
use crate::ldap::fixtures;
use crate::ldap::server::{MAX_BER_DEPTH, MAX_MESSAGE_BYTES};
use crate::ldap::session::{Session, Step};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapMsg, LdapOp};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

/// Most entries of one search checked by decoding them again.
const ENTRIES_CHECKED: usize = 64;

/// The LDAP target's fixed state: the directory and a runtime.
pub struct LdapTarget {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
}

impl Default for LdapTarget {
    fn default() -> Self {
        let runtime = super::runtime();
        // The event queue spawns its tasks on the runtime.
        let shared = runtime.block_on(async { fixtures::shared() });
        Self { runtime, shared }
    }
}

impl LdapTarget {
    /// Feeds `bytes` to a new connection, as the server's loop would, until the stream ends,
    /// a message fails to decode or the session closes.
    pub fn run(&self, bytes: &[u8]) {
        let mut session = Session::new(self.shared.clone(), IpAddr::V4(Ipv4Addr::LOCALHOST), false);
        let mut codec = LdapCodec::new(Some(MAX_MESSAGE_BYTES), Some(MAX_BER_DEPTH));
        let mut buf = BytesMut::from(bytes);
        self.runtime.block_on(async {
            while let Ok(Some(msg)) = codec.decode(&mut buf) {
                match session.handle(msg).await {
                    Step::Reply(replies) => replies.into_iter().for_each(encodes),
                    Step::Entries(output) => {
                        let mut scratch = Vec::new();
                        for entry in output.entries.iter().take(ENTRIES_CHECKED) {
                            scratch.clear();
                            search_result_entry(
                                &mut scratch,
                                output.msgid,
                                &output.view,
                                *entry,
                                &output.selection,
                                output.types_only,
                            );
                            entry_reads_back(&scratch, output.msgid);
                        }
                        encodes(output.done);
                    }
                    Step::StartTls(response) => {
                        // The rest of the stream would be a TLS handshake.
                        encodes(response);
                        return;
                    }
                    Step::Close(notice) => {
                        notice.into_iter().for_each(encodes);
                        return;
                    }
                    Step::Nothing => {}
                }
            }
        });
    }
}

fn encodes(msg: LdapMsg) {
    let described = format!("{msg:?}");
    let mut out = BytesMut::new();
    if let Err(error) = LdapCodec::default().encode(msg, &mut out) {
        panic!("a reply does not encode ({error}): {described}");
    }
}

fn entry_reads_back(bytes: &[u8], msgid: i32) {
    let mut buf = BytesMut::from(bytes);
    match LdapCodec::default().decode(&mut buf) {
        Ok(Some(LdapMsg {
            msgid: read,
            op: LdapOp::SearchResultEntry(_),
            ..
        })) if read == msgid && buf.is_empty() => {}
        other => panic!("an encoded entry reads back as {other:?} from {bytes:02x?}"),
    }
}
