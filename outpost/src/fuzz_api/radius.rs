//! RADIUS datagrams: the first input byte picks the port (bit 0: accounting), the client
//! (bit 1: the network that does not require Message-Authenticator) and whether the rest,
//! when it frames as a packet, is signed with the client's secret first (bit 2, so mutations
//! get past the Message-Authenticator check); the rest is the datagram handed to
//! [`server::handle`] with fresh per-request state (no retransmission or challenge carried
//! over from another input).
//!
//! Invariants: no panic; a packet that decodes encodes to the same octets; every reply
//! decodes, carries the request's identifier and is authentic for the request under the
//! client's secret; nothing but a Status-Server is accepted (the core is unreachable and the
//! cache empty).

use crate::radius::Shared;
use crate::radius::authenticator::{reply_is_authentic, sign_request};
use crate::radius::fixtures::{self, LAX, STRICT};
use crate::radius::packet::{Code, Packet};
use crate::radius::request::Port;
use crate::radius::server;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The RADIUS target's fixed state: the clients, their providers and a runtime.
pub struct RadiusTarget {
    runtime: tokio::runtime::Runtime,
    base: Arc<Shared>,
}

impl Default for RadiusTarget {
    fn default() -> Self {
        let runtime = super::runtime();
        // The event queue spawns its tasks on the runtime.
        let base = runtime.block_on(async { fixtures::shared() });
        Self { runtime, base }
    }
}

impl RadiusTarget {
    /// Handles one datagram (see the module documentation for the layout of `input`).
    pub fn run(&self, input: &[u8]) {
        let Some((&flags, datagram)) = input.split_first() else {
            return;
        };
        let port = if flags & 1 == 0 {
            Port::Auth
        } else {
            Port::Accounting
        };
        let (ip, secret) = if flags & 2 == 0 {
            (IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), STRICT)
        } else {
            (IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9)), LAX)
        };
        if let Ok(packet) = Packet::decode(datagram) {
            round_trips(&packet, datagram);
        }
        let signed = match Packet::decode(datagram) {
            Ok(packet) if flags & 4 != 0 => sign_request(packet, secret).ok(),
            _ => None,
        };
        let datagram = signed.as_deref().unwrap_or(datagram);
        let shared = fixtures::fresh(&self.base);
        let source = SocketAddr::new(ip, 40_000);
        let Some(reply) = self
            .runtime
            .block_on(server::handle(&shared, port, datagram, source))
        else {
            return;
        };
        let request = Packet::decode(datagram).expect("only a decoded request is answered");
        let answer = Packet::decode(&reply).expect("our replies decode");
        round_trips(&answer, &reply);
        assert_eq!(
            answer.identifier, request.identifier,
            "a reply answers its request"
        );
        assert!(
            reply_is_authentic(&reply, request.code, &request.authenticator, secret),
            "a reply is signed for its request: {answer:?}"
        );
        if answer.code == Code::AccessAccept {
            assert_eq!(
                request.code,
                Code::StatusServer,
                "only Status-Server is accepted without the core"
            );
        }
    }
}

/// A decoded packet encodes to exactly the octets its length field covered.
fn round_trips(packet: &Packet, datagram: &[u8]) {
    let framed = Packet::framed(datagram).expect("a decoded packet is framed");
    match packet.encode() {
        Ok(encoded) => assert_eq!(
            encoded, framed,
            "a packet re-encodes as it came: {packet:?}"
        ),
        Err(error) => panic!("a decoded packet does not encode ({error}): {packet:?}"),
    }
}
