//! Connection tickets: the session page carries a sealed, single-use ticket (60 s, bound to the
//! login session and the endpoint) that the WebSocket must present, so a socket opened from
//! another site (browsers send cookies with cross-site WebSocket handshakes) or replayed later
//! is refused even before the `Origin` check.

use redoubt_outpost::proxy::session::Keyring;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a ticket is good for, in seconds.
pub const TICKET_SECONDS: i64 = 60;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct TicketBody {
    /// Random id (hex), spent on first use.
    i: String,
    /// The login session.
    s: String,
    /// The endpoint's slug.
    e: String,
    /// Expires at, Unix seconds.
    x: i64,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is missing, forged or sealed with a retired key")]
    Invalid,
    #[error("the ticket has expired; reload the page")]
    Expired,
    #[error("the ticket is for another session or desktop")]
    Mismatch,
    #[error("the ticket was already used; reload the page")]
    Spent,
}

fn aad(provider_id: i64) -> Vec<u8> {
    format!("redoubt-rac-ticket\0{provider_id}").into_bytes()
}

/// Seals a ticket for `sid` and `slug`; `None` without a key. `random` gives the ticket id
/// and the nonce.
pub fn issue(
    keys: &Keyring,
    provider_id: i64,
    sid: &str,
    slug: &str,
    now: i64,
    random: [u8; 40],
) -> Option<String> {
    let (id, nonce) = random.split_at(16);
    let body = TicketBody {
        i: data_encoding::HEXLOWER.encode(id),
        s: sid.to_owned(),
        e: slug.to_owned(),
        x: now + TICKET_SECONDS,
    };
    let plain = serde_json::to_vec(&body).ok()?;
    keys.seal(&aad(provider_id), &plain, nonce.try_into().ok()?)
}

/// Tickets already used, until they would have expired anyway.
#[derive(Debug, Default)]
pub struct SpentTickets {
    spent: Mutex<HashMap<String, i64>>,
}

impl SpentTickets {
    /// Checks `ticket` for `sid` and `slug` at `now` and spends it.
    pub fn redeem(
        &self,
        keys: &Keyring,
        provider_id: i64,
        ticket: &str,
        sid: &str,
        slug: &str,
        now: i64,
    ) -> Result<(), TicketError> {
        let (plain, _) = keys
            .open(&aad(provider_id), ticket)
            .map_err(|_| TicketError::Invalid)?;
        let body: TicketBody = serde_json::from_slice(&plain).map_err(|_| TicketError::Invalid)?;
        if body.x < now {
            return Err(TicketError::Expired);
        }
        if body.s != sid || body.e != slug {
            return Err(TicketError::Mismatch);
        }
        let mut spent = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        spent.retain(|_, expires| *expires >= now);
        if spent.insert(body.i, body.x).is_some() {
            return Err(TicketError::Spent);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::session::SessionKey;

    fn keys() -> Keyring {
        let key = SessionKey {
            id: 1,
            key: data_encoding::BASE64URL_NOPAD.encode(&[7u8; 32]),
        };
        Keyring::new(&[key]).0
    }

    #[test]
    fn a_ticket_works_once_for_its_session_and_desktop() {
        let keys = keys();
        let ticket = issue(&keys, 3, "sid-1", "desk", 1_000, [1; 40]).expect("sealed");
        let spent = SpentTickets::default();
        assert_eq!(
            spent.redeem(&keys, 3, &ticket, "sid-2", "desk", 1_000),
            Err(TicketError::Mismatch)
        );
        assert_eq!(
            spent.redeem(&keys, 3, &ticket, "sid-1", "other", 1_000),
            Err(TicketError::Mismatch)
        );
        assert_eq!(
            spent.redeem(&keys, 4, &ticket, "sid-1", "desk", 1_000),
            Err(TicketError::Invalid)
        );
        assert_eq!(
            spent.redeem(
                &keys,
                3,
                &ticket,
                "sid-1",
                "desk",
                1_000 + TICKET_SECONDS + 1
            ),
            Err(TicketError::Expired)
        );
        assert_eq!(
            spent.redeem(&keys, 3, &ticket, "sid-1", "desk", 1_010),
            Ok(())
        );
        assert_eq!(
            spent.redeem(&keys, 3, &ticket, "sid-1", "desk", 1_011),
            Err(TicketError::Spent)
        );
        assert_eq!(
            spent.redeem(&keys, 3, "not a ticket", "sid-1", "desk", 1_011),
            Err(TicketError::Invalid)
        );
    }
}
