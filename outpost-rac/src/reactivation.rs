//! What the Deactivation-Reactivation sequence of a resize reads, as real servers send it.
//! xrdp 0.9 starts it with a share control header of only `totalLength`, `pduType` and
//! `pduSource` (six bytes: no `shareId`, no source descriptor), which IronRDP's decoder
//! refuses; and until its Demand Active it still sends updates for the old desktop and
//! channel traffic, which IronRDP's activation sequence takes for protocol errors.

use ironrdp_pdu::Action;
use ironrdp_pdu::mcs::SendDataIndication;
use ironrdp_pdu::x224::X224;

/// `PDUTYPE_DEACTIVATEALLPDU` in the low bits of a share control header's `pduType`.
const DEACTIVATE_ALL: u16 = 0x6;

/// `PDUTYPE_DEMANDACTIVEPDU` in the low bits of a share control header's `pduType`.
const DEMAND_ACTIVE: u16 = 0x1;

/// `PDUTYPE_DATAPDU` in the low bits of a share control header's `pduType`.
const DATA: u16 = 0x7;

/// Where a Data PDU's `pduType2` is: after the share control header and the share data
/// header's `pad1`, `streamId` and `uncompressedLength`.
const PDU_TYPE2_AT: usize = FULL_HEADER + 4;

/// `PDUTYPE2_UPDATE` and `PDUTYPE2_POINTER`: drawing, not part of the sequence.
const DRAWING: [u8; 2] = [0x02, 0x1B];

/// What to do with a PDU read during a reactivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The sequence's own PDUs (or something unreadable, which it reports).
    Sequence,
    /// Data of another channel (clipboard, dynamic channels): handled at once.
    Channel,
    /// Drawing of the old desktop before the Demand Active, or a repeated Deactivate All:
    /// dropped (the new desktop is painted in full).
    Drop,
    /// Drawing of the new desktop that xrdp sends while the finalization is still going on:
    /// handled once the desktop is active again.
    Defer,
}

/// Routes a PDU read during a reactivation, before the server's Demand Active
/// (`demand_active_seen` false) or during the finalization after it. Never panics on any
/// input.
pub fn route(action: Action, frame: &[u8], io_channel_id: u16, demand_active_seen: bool) -> Route {
    if action == Action::FastPath {
        return if demand_active_seen {
            Route::Defer
        } else {
            Route::Drop
        };
    }
    let Ok(X224(indication)) = ironrdp_core::decode::<X224<SendDataIndication<'_>>>(frame) else {
        return Route::Sequence;
    };
    if indication.channel_id != io_channel_id {
        return Route::Channel;
    }
    let data = indication.user_data.as_ref();
    let Some((_, pdu_type)) = share_control(data) else {
        return Route::Sequence;
    };
    let pdu_type = pdu_type & TYPE_MASK;
    if !demand_active_seen {
        return if pdu_type == DEMAND_ACTIVE {
            Route::Sequence
        } else {
            Route::Drop
        };
    }
    let drawing = data
        .get(PDU_TYPE2_AT)
        .is_some_and(|kind| DRAWING.contains(kind));
    if pdu_type == DATA && drawing {
        Route::Defer
    } else {
        Route::Sequence
    }
}

/// A share control header's `totalLength` and `pduType`.
fn share_control(data: &[u8]) -> Option<(u16, u16)> {
    let field = |at: usize| {
        data.get(at..at + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_le_bytes)
    };
    Some((field(0)?, field(2)?))
}

/// The bits of `pduType` that hold the type (the rest is the protocol version).
const TYPE_MASK: u16 = 0xF;

/// Bytes of a complete share control header; a shorter one is what xrdp sends.
const FULL_HEADER: usize = 10;

/// Whether `frame` (an X.224 frame from the server) is a Deactivate All PDU on the I/O channel
/// too short for IronRDP to decode. Never panics on any input.
pub fn is_short_deactivate_all(frame: &[u8], io_channel_id: u16) -> bool {
    let Ok(X224(indication)) = ironrdp_core::decode::<X224<SendDataIndication<'_>>>(frame) else {
        return false;
    };
    if indication.channel_id != io_channel_id {
        return false;
    }
    let data = indication.user_data.as_ref();
    let Some((total_length, pdu_type)) = share_control(data) else {
        return false;
    };
    data.len() < FULL_HEADER
        && usize::from(total_length) == data.len()
        && pdu_type & TYPE_MASK == DEACTIVATE_ALL
}

#[cfg(test)]
mod tests {
    use super::{Route, is_short_deactivate_all, route};
    use ironrdp_pdu::Action;
    use ironrdp_pdu::mcs::SendDataIndication;
    use ironrdp_pdu::x224::X224;
    use std::borrow::Cow;

    fn frame(channel_id: u16, user_data: &[u8]) -> Vec<u8> {
        ironrdp_core::encode_vec(&X224(SendDataIndication {
            initiator_id: 1002,
            channel_id,
            user_data: Cow::Borrowed(user_data),
        }))
        .expect("encode")
    }

    #[test]
    fn recognises_xrdps_six_byte_deactivate_all_on_the_io_channel() {
        // totalLength 6, pduType 0x16 (version 1, Deactivate All), pduSource 1002.
        let short = [6, 0, 0x16, 0, 0xEA, 0x03];
        assert!(is_short_deactivate_all(&frame(1003, &short), 1003));
        assert!(!is_short_deactivate_all(&frame(1004, &short), 1003));
        // A complete one (shareId and source descriptor) is IronRDP's to decode.
        let full = [13, 0, 0x16, 0, 0xEA, 0x03, 1, 0, 0, 0, 1, 0, 0];
        assert!(!is_short_deactivate_all(&frame(1003, &full), 1003));
        // Another type, a length that does not match, garbage.
        assert!(!is_short_deactivate_all(
            &frame(1003, &[6, 0, 0x17, 0, 0xEA, 0x03]),
            1003
        ));
        assert!(!is_short_deactivate_all(
            &frame(1003, &[7, 0, 0x16, 0, 0xEA, 0x03]),
            1003
        ));
        assert!(!is_short_deactivate_all(&frame(1003, &[6, 0]), 1003));
        assert!(!is_short_deactivate_all(&[0x03, 0, 0, 4], 1003));
        assert!(!is_short_deactivate_all(&[], 1003));
    }

    /// A share control header (10 bytes) of `pdu_type` with a share data header whose
    /// `pduType2` is `kind`.
    fn data_pdu(pdu_type: u8, kind: u8) -> Vec<u8> {
        let mut pdu = vec![20, 0, pdu_type, 0, 0xEA, 0x03, 1, 0, 0, 0];
        pdu.extend([0, 1, 0, 0, kind, 0, 0, 0, 0, 0]);
        pdu
    }

    #[test]
    fn before_the_demand_active_only_it_reaches_the_sequence() {
        let route = |action, frame: &[u8]| route(action, frame, 1003, false);
        assert_eq!(
            route(Action::X224, &frame(1003, &data_pdu(0x11, 0))),
            Route::Sequence
        );
        // A slow-path update and xrdp's short Deactivate All: dropped.
        assert_eq!(
            route(Action::X224, &frame(1003, &data_pdu(0x17, 0x02))),
            Route::Drop
        );
        assert_eq!(
            route(Action::X224, &frame(1003, &[6, 0, 0x16, 0, 0xEA, 0x03])),
            Route::Drop
        );
        assert_eq!(route(Action::FastPath, &[0, 3, 0]), Route::Drop);
        // Another channel's data is handled; garbage goes to the sequence (which fails).
        assert_eq!(
            route(Action::X224, &frame(1004, &data_pdu(0x17, 0x02))),
            Route::Channel
        );
        assert_eq!(route(Action::X224, &[3, 0]), Route::Sequence);
        assert_eq!(route(Action::X224, &frame(1003, &[1])), Route::Sequence);
    }

    #[test]
    fn during_the_finalization_drawing_waits_and_the_rest_reaches_the_sequence() {
        let route = |action, frame: &[u8]| route(action, frame, 1003, true);
        // Update and Pointer Data PDUs, fast-path output: deferred.
        assert_eq!(
            route(Action::X224, &frame(1003, &data_pdu(0x17, 0x02))),
            Route::Defer
        );
        assert_eq!(
            route(Action::X224, &frame(1003, &data_pdu(0x17, 0x1B))),
            Route::Defer
        );
        assert_eq!(route(Action::FastPath, &[0, 3, 0]), Route::Defer);
        // Synchronize (0x1F), Control (0x14), Font Map (0x28): the sequence's.
        for kind in [0x1F, 0x14, 0x28] {
            assert_eq!(
                route(Action::X224, &frame(1003, &data_pdu(0x17, kind))),
                Route::Sequence
            );
        }
        assert_eq!(
            route(Action::X224, &frame(1004, &data_pdu(0x17, 0x02))),
            Route::Channel
        );
        assert_eq!(
            route(Action::X224, &frame(1003, &data_pdu(0x17, 0x02)[..12])),
            Route::Sequence
        );
    }
}
