//! BER encoding of SearchResultEntry messages straight from the directory (RFC 4511 section
//! 4.5.2), without building the codec's intermediate tree: a large search spends most of its
//! time here. The output is byte for byte what `ldap3_proto`'s encoder writes (definite,
//! minimal lengths), checked by the tests below.

use super::search::{Selection, selected_attributes};
use super::view::{DirectoryView, EntryRef};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
/// [APPLICATION 4] constructed: SearchResultEntry.
const SEARCH_RESULT_ENTRY: u8 = 0x64;

/// Octets of a definite length field for `len`.
fn length_len(len: usize) -> usize {
    if len < 128 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

/// Octets of a whole TLV whose content is `len` octets (single-octet tags only).
fn tlv_len(len: usize) -> usize {
    1 + length_len(len) + len
}

fn put_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 128 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn put_octets(out: &mut Vec<u8>, value: &[u8]) {
    put_header(out, OCTET_STRING, value.len());
    out.extend_from_slice(value);
}

/// Minimal two's-complement octets of `n`.
fn integer_octets(n: i32) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 3 {
        let (first, next) = (bytes[start], bytes[start + 1]);
        let redundant = (first == 0x00 && next & 0x80 == 0) || (first == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

/// Appends the SearchResultEntry message for `entry` to `out`.
pub fn search_result_entry(
    out: &mut Vec<u8>,
    msgid: i32,
    view: &DirectoryView,
    entry: EntryRef,
    selection: &Selection,
    types_only: bool,
) {
    let dn = view.dn(entry);
    let attributes = selected_attributes(view, entry, selection, types_only);
    // Sizes from the inside out.
    let mut attribute_lens = Vec::with_capacity(attributes.len());
    let mut list_len = 0;
    for (name, values) in &attributes {
        let set_len: usize = values.iter().map(|v| tlv_len(v.len())).sum();
        let partial_len = tlv_len(name.len()) + tlv_len(set_len);
        attribute_lens.push((set_len, partial_len));
        list_len += tlv_len(partial_len);
    }
    let entry_len = tlv_len(dn.len()) + tlv_len(list_len);
    let msgid = integer_octets(msgid);
    let message_len = tlv_len(msgid.len()) + tlv_len(entry_len);
    out.reserve(tlv_len(message_len));
    put_header(out, SEQUENCE, message_len);
    put_header(out, INTEGER, msgid.len());
    out.extend_from_slice(&msgid);
    put_header(out, SEARCH_RESULT_ENTRY, entry_len);
    put_octets(out, dn.as_bytes());
    put_header(out, SEQUENCE, list_len);
    for ((name, values), (set_len, partial_len)) in attributes.iter().zip(attribute_lens) {
        put_header(out, SEQUENCE, partial_len);
        put_octets(out, name.as_bytes());
        put_header(out, SET, set_len);
        for value in values {
            put_octets(out, value.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ldap::search::build_entry;
    use ldap3_proto::LdapCodec;
    use ldap3_proto::proto::{LdapMsg, LdapOp};
    use redoubt_outpost_proto::config::*;
    use serde_json::json;
    use std::sync::Arc;
    use tokio_util::bytes::BytesMut;
    use tokio_util::codec::Encoder;

    fn view() -> DirectoryView {
        let long = "x".repeat(300);
        let user = |id: i64, name: &str| DirectoryUser {
            id,
            username: name.into(),
            name: format!("{name} Example"),
            email: format!("{name}@example.com"),
            is_active: true,
            attributes: json!({"note": long, "tags": ["a", "b"], "loginShell": "/bin/zsh"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            group_ids: vec![10],
            credential_epoch: 1,
            has_totp: false,
            created_at: 1_700_000_000,
            updated_at: 1_700_000_001,
        };
        DirectoryView::build(Arc::new(ConfigSnapshot {
            revision: 1,
            config: OutpostConfig {
                sessions: None,
                outpost: OutpostInfo {
                    id: 1,
                    name: "ldap".into(),
                    kind: OutpostKind::Ldap,
                    settings: json!({}),
                },
                providers: vec![ProviderConfig {
                    id: 1,
                    name: "directory".into(),
                    kind: OutpostKind::Ldap,
                    settings: json!({"base_dn": "dc=example,dc=com"}),
                    application: None,
                }],
                directory: Some(Directory {
                    users: vec![user(1, "alice"), user(2, "bob")],
                    groups: vec![DirectoryGroup {
                        id: 10,
                        name: "staff".into(),
                        parent_id: None,
                        attributes: Default::default(),
                        created_at: 1,
                        updated_at: 2,
                    }],
                }),
            },
        }))
    }

    #[test]
    fn entries_match_the_codec_byte_for_byte() {
        let view = view();
        let selections = [
            Selection::parse(&[]),
            Selection::parse(&["*".into(), "+".into()]),
            Selection::parse(&["uid".into(), "memberOf".into(), "NOTE".into()]),
            Selection::parse(&["1.1".into()]),
        ]
        .map(|s| s.expect("a valid selection"));
        let entries = [
            EntryRef::User(0, 0),
            EntryRef::User(0, 1),
            EntryRef::Group(0, 0),
            EntryRef::Base(0),
            EntryRef::UsersOu(0),
            EntryRef::RootDse,
            EntryRef::Subschema,
        ];
        for msgid in [0, 1, 127, 128, 255, 256, 40_000, i32::MAX] {
            for selection in &selections {
                for entry in entries {
                    for types_only in [false, true] {
                        let mut ours = Vec::new();
                        search_result_entry(&mut ours, msgid, &view, entry, selection, types_only);
                        let mut theirs = BytesMut::new();
                        LdapCodec::default()
                            .encode(
                                LdapMsg {
                                    msgid,
                                    op: LdapOp::SearchResultEntry(build_entry(
                                        &view, entry, selection, types_only,
                                    )),
                                    ctrl: Vec::new(),
                                },
                                &mut theirs,
                            )
                            .expect("encode");
                        assert_eq!(ours, theirs.to_vec(), "{entry:?} {selection:?} {msgid}");
                    }
                }
            }
        }
    }

    #[test]
    fn lengths_and_integers_are_minimal() {
        assert_eq!(integer_octets(0), [0]);
        assert_eq!(integer_octets(127), [127]);
        assert_eq!(integer_octets(128), [0, 128]);
        assert_eq!(integer_octets(-1), [0xff]);
        assert_eq!(integer_octets(i32::MAX), [0x7f, 0xff, 0xff, 0xff]);
        let mut out = Vec::new();
        put_header(&mut out, SEQUENCE, 300);
        assert_eq!(out, [0x30, 0x82, 0x01, 0x2c]);
        assert_eq!(length_len(300), 3);
        assert_eq!(length_len(127), 1);
        assert_eq!(length_len(255), 2);
    }
}
