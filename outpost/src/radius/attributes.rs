//! The RADIUS attributes this server reads or writes (RFC 2865, 2866, 2868, 2869, 3580, 5997),
//! and the enumerated values it needs.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

/// Attribute numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AttributeType {
    UserName = 1,
    UserPassword = 2,
    ChapPassword = 3,
    NasIpAddress = 4,
    NasPort = 5,
    FramedIpAddress = 8,
    FramedIpNetmask = 9,
    FilterId = 11,
    ReplyMessage = 18,
    State = 24,
    Class = 25,
    VendorSpecific = 26,
    SessionTimeout = 27,
    IdleTimeout = 28,
    CalledStationId = 30,
    CallingStationId = 31,
    NasIdentifier = 32,
    ProxyState = 33,
    AcctStatusType = 40,
    AcctDelayTime = 41,
    AcctInputOctets = 42,
    AcctOutputOctets = 43,
    AcctSessionId = 44,
    AcctSessionTime = 46,
    AcctInputPackets = 47,
    AcctOutputPackets = 48,
    AcctTerminateCause = 49,
    AcctInputGigawords = 52,
    AcctOutputGigawords = 53,
    EventTimestamp = 55,
    EapMessage = 79,
    MessageAuthenticator = 80,
    TunnelType = 64,
    TunnelMediumType = 65,
    TunnelPrivateGroupId = 81,
    FramedPool = 88,
    NasIpv6Address = 95,
}

impl AttributeType {
    /// The attribute's number on the wire.
    #[allow(clippy::as_conversions)] // the discriminant of a fieldless `repr(u8)` enum: exact
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// Tunnel-Type VLAN (RFC 3580 section 3.31).
pub const TUNNEL_TYPE_VLAN: u32 = 13;
/// Tunnel-Medium-Type IEEE-802 (RFC 3580 section 3.31).
pub const TUNNEL_MEDIUM_IEEE_802: u32 = 6;

/// Acct-Status-Type values (RFC 2866 section 5.1), as event names.
pub fn accounting_status_name(value: u32) -> &'static str {
    match value {
        1 => "start",
        2 => "stop",
        3 => "interim_update",
        7 => "accounting_on",
        8 => "accounting_off",
        _ => "other",
    }
}

/// A tagged tunnel attribute value (RFC 2868): tag 0 then the 24-bit integer.
pub fn tagged_integer(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    vec![0, bytes[1], bytes[2], bytes[3]]
}

/// A Vendor-Specific value (RFC 2865 section 5.26): vendor id, then one vendor attribute.
pub fn vendor_specific(vendor_id: u32, vendor_type: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.extend_from_slice(&vendor_id.to_be_bytes());
    out.push(vendor_type);
    out.push(u8::try_from(value.len().saturating_add(2)).unwrap_or(u8::MAX));
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(tagged_integer(TUNNEL_TYPE_VLAN), [0, 0, 0, 13]);
        assert_eq!(
            vendor_specific(14988, 1, b"full"),
            [0, 0, 0x3a, 0x8c, 1, 6, b'f', b'u', b'l', b'l']
        );
        assert_eq!(accounting_status_name(3), "interim_update");
    }
}
