//! xrdp's short Deactivate All PDU. xrdp 0.9 starts the Deactivation-Reactivation sequence of
//! a resize with a share control header of only `totalLength`, `pduType` and `pduSource` (six
//! bytes: no `shareId`, no source descriptor), which IronRDP's decoder refuses; the session
//! recognises it here and reactivates as for a complete one.

use ironrdp_pdu::mcs::SendDataIndication;
use ironrdp_pdu::x224::X224;

/// `PDUTYPE_DEACTIVATEALLPDU` in the low bits of a share control header's `pduType`.
const DEACTIVATE_ALL: u16 = 0x6;

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
    let field = |at: usize| {
        data.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let (Some(total_length), Some(pdu_type)) = (field(0), field(2)) else {
        return false;
    };
    data.len() < FULL_HEADER
        && usize::from(total_length) == data.len()
        && pdu_type & TYPE_MASK == DEACTIVATE_ALL
}

#[cfg(test)]
mod tests {
    use super::is_short_deactivate_all;
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
}
