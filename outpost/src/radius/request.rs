//! Admission of a datagram, without I/O: which provider's client sent it, whether it is a
//! well-formed packet of a code this port serves, and whether it is authentic for that
//! provider's secret (Message-Authenticator on Access-Request and Status-Server, the Request
//! Authenticator on Accounting-Request). Anything else is dropped with a reason.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use super::authenticator::{
    MessageAuthenticator, accounting_request_is_authentic, check_message_authenticator,
};
use super::config::RadiusConfig;
use super::packet::{Code, Packet};
use std::net::IpAddr;

/// Which listener a datagram arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Authentication (1812).
    Auth,
    /// Accounting (1813).
    Accounting,
}

/// Why a datagram gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source is in no provider's client networks.
    UnknownClient,
    /// Not a RADIUS packet: bad lengths, truncated, oversized.
    Malformed,
    /// An Access-Request without Message-Authenticator while the provider requires it.
    MissingMessageAuthenticator,
    /// A Message-Authenticator that does not verify (wrong secret or tampering).
    BadMessageAuthenticator,
    /// An Accounting-Request whose Request Authenticator does not verify.
    BadAuthenticator,
    /// A code this port does not serve.
    UnsupportedCode,
    /// Too many requests in flight, or the accounting queue is full.
    Busy,
    /// A retransmission of a request still being answered.
    InProgress,
    /// The core cannot be reached and nothing cached decides: let the NAS fail over.
    CoreUnreachable,
    /// The core answered the credential check with an error.
    CoreError,
    /// A Status-Server while the core has not been reached within a heartbeat period: not every
    /// user could get a verdict, so the NAS should use another server.
    NotServing,
}

impl DropReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown_client",
            Self::Malformed => "malformed",
            Self::MissingMessageAuthenticator => "missing_message_authenticator",
            Self::BadMessageAuthenticator => "bad_message_authenticator",
            Self::BadAuthenticator => "bad_authenticator",
            Self::UnsupportedCode => "unsupported_code",
            Self::Busy => "busy",
            Self::InProgress => "in_progress",
            Self::CoreUnreachable => "core_unreachable",
            Self::CoreError => "core_error",
            Self::NotServing => "not_serving",
        }
    }

    /// What an operator should know, for the log.
    pub fn explain(self) -> &'static str {
        match self {
            Self::UnknownClient => {
                "request from an address in no RADIUS provider's client_networks dropped; add the NAS's network to the provider"
            }
            Self::Malformed => "datagram that is not a RADIUS packet dropped",
            Self::MissingMessageAuthenticator => {
                "Access-Request without Message-Authenticator dropped (BlastRADIUS protection); configure the NAS to send it, or set require_message_authenticator to false for old gear"
            }
            Self::BadMessageAuthenticator => {
                "request with a wrong Message-Authenticator dropped: the NAS and the provider have different shared secrets"
            }
            Self::BadAuthenticator => {
                "Accounting-Request with a wrong Request Authenticator dropped: the NAS and the provider have different shared secrets"
            }
            Self::UnsupportedCode => "packet of a code this port does not serve dropped",
            Self::Busy => "request dropped: too many in flight or the accounting queue is full",
            Self::InProgress => "retransmission of a request still being answered dropped",
            Self::CoreUnreachable => {
                "Access-Request dropped: the core is unreachable and no cached credentials apply"
            }
            Self::CoreError => "Access-Request dropped: the core refused the credential check",
            Self::NotServing => {
                "Status-Server left unanswered: the core has not been reached within a heartbeat period, so not every user can get a verdict and the NAS should fail over; check the outpost's connection to the core (REDOUBT_URL)"
            }
        }
    }
}

/// A datagram that passed admission.
#[derive(Debug)]
pub struct Admitted {
    pub packet: Packet,
    /// Index into the configuration's providers.
    pub provider: usize,
}

/// Admits `datagram` from `source` on `port`, or says why not.
pub fn admit(
    datagram: &[u8],
    source: IpAddr,
    port: Port,
    config: &RadiusConfig,
) -> Result<Admitted, DropReason> {
    let provider_index = config
        .clients
        .lookup(source)
        .ok_or(DropReason::UnknownClient)?;
    let provider = config
        .providers
        .get(provider_index)
        .ok_or(DropReason::UnknownClient)?;
    let framed = Packet::framed(datagram).map_err(|_| DropReason::Malformed)?;
    let packet = Packet::decode(framed).map_err(|_| DropReason::Malformed)?;
    let secret = provider.secret();
    match (port, packet.code) {
        (Port::Auth, Code::AccessRequest) => {
            match check_message_authenticator(framed, secret, false) {
                MessageAuthenticator::Valid => {}
                MessageAuthenticator::Absent
                    if !provider.settings.require_message_authenticator => {}
                MessageAuthenticator::Absent => {
                    return Err(DropReason::MissingMessageAuthenticator);
                }
                MessageAuthenticator::Invalid => return Err(DropReason::BadMessageAuthenticator),
            }
        }
        (_, Code::StatusServer) => match check_message_authenticator(framed, secret, false) {
            MessageAuthenticator::Valid => {}
            MessageAuthenticator::Absent => return Err(DropReason::MissingMessageAuthenticator),
            MessageAuthenticator::Invalid => return Err(DropReason::BadMessageAuthenticator),
        },
        (Port::Accounting, Code::AccountingRequest) => {
            if !accounting_request_is_authentic(framed, secret) {
                return Err(DropReason::BadAuthenticator);
            }
            if check_message_authenticator(framed, secret, true) == MessageAuthenticator::Invalid {
                return Err(DropReason::BadMessageAuthenticator);
            }
        }
        _ => return Err(DropReason::UnsupportedCode),
    }
    Ok(Admitted {
        packet,
        provider: provider_index,
    })
}
