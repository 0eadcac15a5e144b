//! The cryptography of RADIUS with a shared secret: Message-Authenticator (HMAC-MD5, RFC 3579
//! section 3.2), Request and Response Authenticators (RFC 2865 section 3, RFC 2866 section 3),
//! and User-Password hiding (RFC 2865 section 5.2). Every check works on the raw datagram, so
//! what is verified is exactly what arrived.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use super::attributes::AttributeType;
use super::packet::{Code, HEADER_LEN, Packet, PacketError, attribute_at};
use hmac_md5::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// Longest User-Password (RFC 2865: 16 to 128 octets, a multiple of 16).
const MAX_PASSWORD_LEN: usize = 128;

/// What a packet's Message-Authenticator says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAuthenticator {
    /// The packet carries none.
    Absent,
    /// Present and correct for the secret.
    Valid,
    /// Present but wrong (wrong secret, tampering), malformed, or present more than once.
    Invalid,
}

fn hmac_md5(secret: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length; the error case cannot happen.
    let Ok(mut mac) = Hmac::<Md5>::new_from_slice(secret) else {
        return [0; 16];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Checks the Message-Authenticator of a framed request. `zero_authenticator` is for
/// Accounting-Requests, whose Message-Authenticator is computed with the Request Authenticator
/// field zeroed.
pub fn check_message_authenticator(
    framed: &[u8],
    secret: &[u8],
    zero_authenticator: bool,
) -> MessageAuthenticator {
    let mut found = None;
    let mut offset = HEADER_LEN;
    while offset < framed.len() {
        let Ok((kind, value)) = attribute_at(framed, offset) else {
            return MessageAuthenticator::Invalid;
        };
        if kind == AttributeType::MessageAuthenticator.number() {
            if found.is_some() || value.len() != 16 {
                return MessageAuthenticator::Invalid;
            }
            found = Some((offset.saturating_add(2), value));
        }
        offset = offset.saturating_add(value.len()).saturating_add(2);
    }
    let Some((at, given)) = found else {
        return MessageAuthenticator::Absent;
    };
    let mut copy = framed.to_vec();
    let zeroed = copy.get_mut(at..at.saturating_add(16)).map(|v| v.fill(0));
    let authenticator_zeroed =
        !zero_authenticator || copy.get_mut(4..20).map(|v| v.fill(0)).is_some();
    if zeroed.is_none() || !authenticator_zeroed {
        return MessageAuthenticator::Invalid;
    }
    let expected = hmac_md5(secret, &[&copy]);
    if bool::from(expected.ct_eq(given)) {
        MessageAuthenticator::Valid
    } else {
        MessageAuthenticator::Invalid
    }
}

/// Whether an Accounting-Request's Request Authenticator is right for the secret:
/// MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret).
pub fn accounting_request_is_authentic(framed: &[u8], secret: &[u8]) -> bool {
    let (Some(start), Some(given), Some(attributes)) = (
        framed.get(..4),
        framed.get(4..HEADER_LEN),
        framed.get(HEADER_LEN..),
    ) else {
        return false;
    };
    let expected = md5(&[start, &[0u8; 16], attributes, secret]);
    bool::from(expected.ct_eq(given))
}

/// Why a User-Password could not be recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("User-Password must be 16 to 128 octets in multiples of 16")]
    BadLength,
}

/// Recovers the password hidden in User-Password: p(i) = c(i) XOR MD5(S + c(i-1)), c(0) the
/// Request Authenticator. Trailing NUL padding is removed.
pub fn reveal_user_password(
    hidden: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, PasswordError> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::BadLength);
    }
    let mut plain = Vec::with_capacity(hidden.len());
    let mut previous: &[u8] = authenticator;
    for block in hidden.chunks_exact(16) {
        let pad = md5(&[secret, previous]);
        plain.extend(block.iter().zip(pad).map(|(c, p)| c ^ p));
        previous = block;
    }
    while plain.last() == Some(&0) {
        plain.pop();
    }
    Ok(plain)
}

/// Hides `password` for User-Password (what a NAS does; for the tests).
#[cfg(any(test, feature = "fuzzing"))]
#[allow(clippy::indexing_slicing, clippy::as_conversions)]
pub(crate) fn hide_user_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Vec<u8> {
    let mut padded = password.to_vec();
    let len = padded.len().div_ceil(16).max(1) * 16;
    padded.resize(len.min(MAX_PASSWORD_LEN), 0);
    let mut hidden: Vec<u8> = Vec::with_capacity(padded.len());
    for (i, block) in padded.chunks_exact(16).enumerate() {
        let previous: &[u8] = if i == 0 {
            authenticator
        } else {
            &hidden[(i - 1) * 16..i * 16]
        };
        let pad = md5(&[secret, previous]);
        let cipher: Vec<u8> = block.iter().zip(pad).map(|(p, k)| p ^ k).collect();
        hidden.extend(cipher);
    }
    hidden
}

/// Whether a reply's Message-Authenticator is computed over a zeroed authenticator field:
/// for an Accounting-Response to an Accounting-Request (as FreeRADIUS computes and checks it),
/// otherwise over the request's authenticator (RFC 3579 section 3.2, RFC 5997).
fn zeroed_for_reply(request_code: Code, reply_code: Code) -> bool {
    request_code == Code::AccountingRequest && reply_code == Code::AccountingResponse
}

/// Encodes `reply` to a `request_code` request with `request_authenticator`: a
/// Message-Authenticator first (the BlastRADIUS mitigation: it cannot be pushed out by
/// attacker-chosen prefixes), then the other attributes, then the Response Authenticator over
/// the whole.
pub fn sign_reply(
    mut reply: Packet,
    request_code: Code,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Vec<u8>, PacketError> {
    reply
        .attributes
        .retain(|a| a.kind != AttributeType::MessageAuthenticator.number());
    reply.attributes.insert(
        0,
        super::packet::Attribute {
            kind: AttributeType::MessageAuthenticator.number(),
            value: vec![0; 16],
        },
    );
    reply.authenticator = if zeroed_for_reply(request_code, reply.code) {
        [0; 16]
    } else {
        *request_authenticator
    };
    let mut bytes = reply.encode()?;
    let mac = hmac_md5(secret, &[&bytes]);
    put(&mut bytes, HEADER_LEN + 2, &mac)?;
    put(&mut bytes, 4, request_authenticator)?;
    let response = md5(&[&bytes, secret]);
    put(&mut bytes, 4, &response)?;
    Ok(bytes)
}

/// Overwrites `bytes` at `at` with `value`; an encoded packet always has room (its header and
/// the Message-Authenticator placed first), so failing means a bug, reported, not a panic.
fn put(bytes: &mut [u8], at: usize, value: &[u8]) -> Result<(), PacketError> {
    let len = bytes.len();
    bytes
        .get_mut(at..at.saturating_add(value.len()))
        .ok_or(PacketError::TooShort(len))?
        .copy_from_slice(value);
    Ok(())
}

/// Signs a request the way a NAS does (Message-Authenticator over the packet); for the tests.
/// Accounting-Requests also get their Request Authenticator.
#[cfg(any(test, feature = "fuzzing"))]
#[allow(clippy::indexing_slicing, clippy::as_conversions)]
pub(crate) fn sign_request(mut request: Packet, secret: &[u8]) -> Result<Vec<u8>, PacketError> {
    request
        .attributes
        .retain(|a| a.kind != AttributeType::MessageAuthenticator.number());
    request.push(AttributeType::MessageAuthenticator, vec![0; 16]);
    let accounting = request.code == super::packet::Code::AccountingRequest;
    if accounting {
        request.authenticator = [0; 16];
    }
    let mut bytes = request.encode()?;
    let mac = hmac_md5(secret, &[&bytes]);
    let at = bytes.len() - 16;
    bytes[at..].copy_from_slice(&mac);
    if accounting {
        let authenticator = md5(&[&bytes, secret]);
        bytes[4..20].copy_from_slice(&authenticator);
    }
    Ok(bytes)
}

/// Whether `reply` is a correctly signed answer to a `request_code` request with
/// `request_authenticator` (Response Authenticator and, when present, Message-Authenticator);
/// for the tests.
#[cfg(any(test, feature = "fuzzing"))]
#[allow(clippy::indexing_slicing, clippy::as_conversions)]
pub(crate) fn reply_is_authentic(
    reply: &[u8],
    request_code: Code,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> bool {
    let Ok(framed) = Packet::framed(reply) else {
        return false;
    };
    let mut copy = framed.to_vec();
    copy[4..20].copy_from_slice(request_authenticator);
    let expected = md5(&[&copy, secret]);
    if !bool::from(expected.ct_eq(&framed[4..20])) {
        return false;
    }
    let zeroed = zeroed_for_reply(request_code, Code::from_number(framed[0]));
    check_message_authenticator(&copy, secret, zeroed) != MessageAuthenticator::Invalid
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
mod tests {
    use super::*;

    #[test]
    fn hmac_md5_matches_rfc_2104() {
        // RFC 2104 appendix, test case 2.
        assert_eq!(
            hmac_md5(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            [
                0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31, 0x0a, 0x5d,
                0xb7, 0x38
            ]
        );
    }

    #[test]
    fn user_password_round_trips() {
        let authenticator = [3u8; 16];
        for password in [
            "a",
            "exactly16bytes!!",
            "a much longer password of 40 characters",
        ] {
            let hidden = hide_user_password(password.as_bytes(), b"secret", &authenticator);
            assert_eq!(hidden.len() % 16, 0);
            let revealed =
                reveal_user_password(&hidden, b"secret", &authenticator).expect("reveal");
            assert_eq!(revealed, password.as_bytes());
            let wrong = reveal_user_password(&hidden, b"wrong", &authenticator).expect("reveal");
            assert_ne!(wrong, password.as_bytes());
        }
        assert_eq!(
            reveal_user_password(&[0; 15], b"s", &authenticator),
            Err(PasswordError::BadLength)
        );
        assert!(reveal_user_password(&[0; 144], b"s", &authenticator).is_err());
    }

    #[test]
    fn rfc_2865_example_password() {
        // RFC 2865 section 7.1: "arctangent" with secret "xyzzy5461".
        let authenticator = [
            0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5, 0xcb, 0x98, 0xf4,
            0x22, 0x7a,
        ];
        let hidden = [
            0x0d, 0xbe, 0x70, 0x8d, 0x93, 0xd4, 0x13, 0xce, 0x31, 0x96, 0xe4, 0x3f, 0x78, 0x2a,
            0x0a, 0xee,
        ];
        assert_eq!(
            reveal_user_password(&hidden, b"xyzzy5461", &authenticator).expect("reveal"),
            b"arctangent"
        );
    }

    #[test]
    fn message_authenticator_detects_tampering_and_wrong_secrets() {
        let mut request = Packet::new(Code::AccessRequest, 1, [5; 16]);
        request.push(AttributeType::UserName, b"alice".to_vec());
        let bytes = sign_request(request.clone(), b"secret").expect("sign");
        assert_eq!(
            check_message_authenticator(&bytes, b"secret", false),
            MessageAuthenticator::Valid
        );
        assert_eq!(
            check_message_authenticator(&bytes, b"other", false),
            MessageAuthenticator::Invalid
        );
        let mut tampered = bytes.clone();
        tampered[24] ^= 1;
        assert_eq!(
            check_message_authenticator(&tampered, b"secret", false),
            MessageAuthenticator::Invalid
        );
        let plain = request.encode().expect("encode");
        assert_eq!(
            check_message_authenticator(&plain, b"secret", false),
            MessageAuthenticator::Absent
        );
    }

    #[test]
    fn replies_are_signed_for_the_request() {
        let mut reply = Packet::new(Code::AccessAccept, 1, [0; 16]);
        reply.push(AttributeType::ReplyMessage, b"hi".to_vec());
        let request = Code::AccessRequest;
        let bytes = sign_reply(reply, request, &[5; 16], b"secret").expect("sign");
        assert_eq!(bytes[20], AttributeType::MessageAuthenticator.number());
        assert!(reply_is_authentic(&bytes, request, &[5; 16], b"secret"));
        assert!(!reply_is_authentic(&bytes, request, &[6; 16], b"secret"));
        assert!(!reply_is_authentic(&bytes, request, &[5; 16], b"other"));
        // An Accounting-Response's Message-Authenticator is over a zeroed authenticator field.
        let response = Packet::new(Code::AccountingResponse, 2, [0; 16]);
        let request = Code::AccountingRequest;
        let bytes = sign_reply(response, request, &[7; 16], b"secret").expect("sign");
        assert!(reply_is_authentic(&bytes, request, &[7; 16], b"secret"));
        let mut copy = bytes.clone();
        copy[4..20].fill(0);
        assert_eq!(
            check_message_authenticator(&copy, b"secret", false),
            MessageAuthenticator::Valid
        );
    }

    #[test]
    fn accounting_requests_are_authenticated() {
        let mut request = Packet::new(Code::AccountingRequest, 9, [0; 16]);
        request.push(AttributeType::AcctStatusType, 1u32.to_be_bytes().to_vec());
        let bytes = sign_request(request, b"secret").expect("sign");
        assert!(accounting_request_is_authentic(&bytes, b"secret"));
        assert!(!accounting_request_is_authentic(&bytes, b"other"));
        assert_eq!(
            check_message_authenticator(&bytes, b"secret", true),
            MessageAuthenticator::Valid
        );
    }
}
