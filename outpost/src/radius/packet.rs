//! RADIUS packets on the wire (RFC 2865 section 3): decoding with every length checked, and
//! encoding. No I/O and no secrets here; see [`super::authenticator`] for the cryptography.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use super::attributes::AttributeType;

/// Smallest packet: the 20-octet header.
pub const HEADER_LEN: usize = 20;
/// Largest packet RFC 2865 allows; longer datagrams are refused.
pub const MAX_PACKET_LEN: usize = 4096;
/// Longest attribute value (the length octet counts the 2-octet header).
pub const MAX_VALUE_LEN: usize = 253;

/// Packet codes this server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    AccessRequest,
    AccessAccept,
    AccessReject,
    AccountingRequest,
    AccountingResponse,
    AccessChallenge,
    StatusServer,
    /// Any other code: dropped by the server.
    Other(u8),
}

impl Code {
    /// The code's number.
    pub fn number(self) -> u8 {
        match self {
            Self::AccessRequest => 1,
            Self::AccessAccept => 2,
            Self::AccessReject => 3,
            Self::AccountingRequest => 4,
            Self::AccountingResponse => 5,
            Self::AccessChallenge => 11,
            Self::StatusServer => 12,
            Self::Other(n) => n,
        }
    }

    /// The code for `number`.
    pub fn from_number(number: u8) -> Self {
        match number {
            1 => Self::AccessRequest,
            2 => Self::AccessAccept,
            3 => Self::AccessReject,
            4 => Self::AccountingRequest,
            5 => Self::AccountingResponse,
            11 => Self::AccessChallenge,
            12 => Self::StatusServer,
            n => Self::Other(n),
        }
    }
}

/// Why a datagram is not a RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("datagram of {0} octets is shorter than the 20-octet header")]
    TooShort(usize),
    #[error("datagram of {0} octets is longer than RADIUS allows (4096)")]
    TooLong(usize),
    #[error("length field {field} does not fit the datagram of {datagram} octets")]
    BadLength { field: usize, datagram: usize },
    #[error("attribute at offset {0} has a bad length")]
    BadAttributeLength(usize),
}

/// One attribute: type and raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: u8,
    pub value: Vec<u8>,
}

/// A decoded packet. `attributes` keeps the wire order (Proxy-State must be echoed in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub attributes: Vec<Attribute>,
}

impl Packet {
    /// Decodes `datagram`. Octets past the length field are padding and ignored (RFC 2865).
    pub fn decode(datagram: &[u8]) -> Result<Self, PacketError> {
        let bytes = Self::framed(datagram)?;
        let (header, _) = bytes
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(PacketError::TooShort(bytes.len()))?;
        let [code, identifier, _, _, authenticator @ ..] = *header;
        let mut attributes = Vec::new();
        let mut offset = HEADER_LEN;
        while offset < bytes.len() {
            let (kind, value) = attribute_at(bytes, offset)?;
            attributes.push(Attribute {
                kind,
                value: value.to_vec(),
            });
            offset += value.len() + 2;
        }
        Ok(Self {
            code: Code::from_number(code),
            identifier,
            authenticator,
            attributes,
        })
    }

    /// The part of `datagram` the length field covers, checked.
    pub fn framed(datagram: &[u8]) -> Result<&[u8], PacketError> {
        if datagram.len() < HEADER_LEN {
            return Err(PacketError::TooShort(datagram.len()));
        }
        if datagram.len() > MAX_PACKET_LEN {
            return Err(PacketError::TooLong(datagram.len()));
        }
        let bad_length = |field| PacketError::BadLength {
            field,
            datagram: datagram.len(),
        };
        let field = match datagram.get(2..4) {
            Some(&[high, low]) => usize::from(u16::from_be_bytes([high, low])),
            _ => return Err(PacketError::TooShort(datagram.len())),
        };
        if field < HEADER_LEN {
            return Err(bad_length(field));
        }
        datagram.get(..field).ok_or_else(|| bad_length(field))
    }

    /// A packet with no attributes.
    pub fn new(code: Code, identifier: u8, authenticator: [u8; 16]) -> Self {
        Self {
            code,
            identifier,
            authenticator,
            attributes: Vec::new(),
        }
    }

    /// The first value of attribute `kind`.
    pub fn get(&self, kind: AttributeType) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.kind == kind.number())
            .map(|a| a.value.as_slice())
    }

    /// The first value of `kind` as UTF-8 text (lossy).
    pub fn text(&self, kind: AttributeType) -> Option<String> {
        self.get(kind)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The first value of `kind` as a 32-bit integer.
    pub fn integer(&self, kind: AttributeType) -> Option<u32> {
        let value: [u8; 4] = self.get(kind)?.try_into().ok()?;
        Some(u32::from_be_bytes(value))
    }

    /// Every value of `kind`, in order.
    pub fn all(&self, kind: AttributeType) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |a| a.kind == kind.number())
            .map(|a| a.value.as_slice())
    }

    /// Appends an attribute; values longer than 253 octets are cut (callers validate first).
    pub fn push(&mut self, kind: AttributeType, value: impl Into<Vec<u8>>) {
        self.push_raw(kind.number(), value.into());
    }

    /// Appends an attribute by number.
    pub fn push_raw(&mut self, kind: u8, mut value: Vec<u8>) {
        value.truncate(MAX_VALUE_LEN);
        self.attributes.push(Attribute { kind, value });
    }

    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .attributes
                .iter()
                .map(|a| a.value.len() + 2)
                .sum::<usize>()
    }

    /// Encodes the packet as it stands (authenticator as set).
    pub fn encode(&self) -> Result<Vec<u8>, PacketError> {
        let len = self.encoded_len();
        let wire_len = u16::try_from(len)
            .ok()
            .filter(|_| len <= MAX_PACKET_LEN)
            .ok_or(PacketError::TooLong(len))?;
        let mut out = Vec::with_capacity(len);
        out.push(self.code.number());
        out.push(self.identifier);
        out.extend_from_slice(&wire_len.to_be_bytes());
        out.extend_from_slice(&self.authenticator);
        for attribute in &self.attributes {
            out.push(attribute.kind);
            // `push_raw` keeps values at most 253 octets, so the length fits.
            out.push(u8::try_from(attribute.value.len().saturating_add(2)).unwrap_or(u8::MAX));
            out.extend_from_slice(&attribute.value);
        }
        Ok(out)
    }
}

/// The attribute at `offset` of a framed packet: type and value.
pub fn attribute_at(bytes: &[u8], offset: usize) -> Result<(u8, &[u8]), PacketError> {
    let bad = PacketError::BadAttributeLength(offset);
    let Some(&[kind, len]) = bytes.get(offset..offset.saturating_add(2)) else {
        return Err(bad);
    };
    let len = usize::from(len);
    if len < 2 {
        return Err(bad);
    }
    let value = bytes
        .get(offset.saturating_add(2)..offset.saturating_add(len))
        .ok_or(bad)?;
    Ok((kind, value))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
mod tests {
    use super::*;

    fn sample() -> Packet {
        let mut packet = Packet::new(Code::AccessRequest, 7, [9; 16]);
        packet.push(AttributeType::UserName, b"alice".to_vec());
        packet.push(AttributeType::ProxyState, b"one".to_vec());
        packet.push(AttributeType::ProxyState, b"two".to_vec());
        packet
    }

    #[test]
    fn round_trips_and_keeps_order() {
        let bytes = sample().encode().expect("encode");
        assert_eq!(bytes.len(), 20 + 7 + 5 + 5);
        let decoded = Packet::decode(&bytes).expect("decode");
        assert_eq!(decoded, sample());
        let states: Vec<&[u8]> = decoded.all(AttributeType::ProxyState).collect();
        assert_eq!(states, [b"one".as_slice(), b"two".as_slice()]);
        assert_eq!(
            decoded.text(AttributeType::UserName).as_deref(),
            Some("alice")
        );
    }

    #[test]
    fn padding_after_the_length_is_ignored() {
        let mut bytes = sample().encode().expect("encode");
        bytes.extend_from_slice(&[0, 0, 0]);
        assert_eq!(Packet::decode(&bytes).expect("decode"), sample());
    }

    #[test]
    fn bad_lengths_are_errors() {
        let bytes = sample().encode().expect("encode");
        assert_eq!(Packet::decode(&bytes[..10]), Err(PacketError::TooShort(10)));
        let mut long = bytes.clone();
        long[3] += 1;
        assert!(matches!(
            Packet::decode(&long),
            Err(PacketError::BadLength { .. })
        ));
        let mut short_field = bytes.clone();
        short_field[2] = 0;
        short_field[3] = 19;
        assert!(Packet::decode(&short_field).is_err());
        let mut zero_attr = bytes.clone();
        zero_attr[21] = 0;
        assert_eq!(
            Packet::decode(&zero_attr),
            Err(PacketError::BadAttributeLength(20))
        );
        let mut overrun = bytes;
        overrun[21] = 200;
        assert!(Packet::decode(&overrun).is_err());
        assert_eq!(
            Packet::decode(&vec![0u8; 5000]),
            Err(PacketError::TooLong(5000))
        );
    }
}
