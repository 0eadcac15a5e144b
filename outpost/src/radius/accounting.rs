//! Accounting (RFC 2866): each Accounting-Request becomes an event in the core's log (start,
//! stop, interim update: user, NAS, session id, counters), dated by the NAS's Event-Timestamp
//! (RFC 2869 section 5.3) or, without one, the time of receipt less Acct-Delay-Time (RFC 2866
//! section 5.2). Events go through the outpost's on-disk queue ([`crate::event_queue`]); the
//! NAS gets its Accounting-Response once the record is durable, and a full queue (the core
//! unreachable for long) means no response, so the NAS keeps the record and retries.

use super::attributes::{AttributeType, accounting_status_name};
use super::packet::Packet;
use redoubt_outpost_proto::credentials::OutpostEvent;
use serde_json::Map;
use std::net::IpAddr;

/// When the accounted event happened: the NAS's Event-Timestamp, else `now` (the time of
/// receipt) less the Acct-Delay-Time the NAS reports; never later than `now`.
pub fn occurred_at(packet: &Packet, now: i64) -> i64 {
    if let Some(stamp) = packet.integer(AttributeType::EventTimestamp) {
        return i64::from(stamp).min(now);
    }
    let delay = packet.integer(AttributeType::AcctDelayTime).unwrap_or(0);
    now.saturating_sub(i64::from(delay))
}

/// The event an Accounting-Request records, received at `now`.
pub fn event(packet: &Packet, provider_id: i64, nas: IpAddr, now: i64) -> OutpostEvent {
    let mut detail = Map::new();
    let status = packet
        .integer(AttributeType::AcctStatusType)
        .map_or("other", accounting_status_name);
    detail.insert("status".into(), status.into());
    for (key, kind) in [
        ("session_id", AttributeType::AcctSessionId),
        ("nas_identifier", AttributeType::NasIdentifier),
        ("calling_station_id", AttributeType::CallingStationId),
        ("called_station_id", AttributeType::CalledStationId),
        ("class", AttributeType::Class),
    ] {
        if let Some(text) = packet.text(kind) {
            detail.insert(key.into(), text.into());
        }
    }
    for (key, kind) in [
        ("nas_ip_address", AttributeType::NasIpAddress),
        ("framed_ip_address", AttributeType::FramedIpAddress),
    ] {
        if let Some(ip) = packet.get(kind).and_then(ipv4) {
            detail.insert(key.into(), ip.into());
        }
    }
    for (key, kind) in [
        ("nas_port", AttributeType::NasPort),
        ("session_time", AttributeType::AcctSessionTime),
        ("input_packets", AttributeType::AcctInputPackets),
        ("output_packets", AttributeType::AcctOutputPackets),
        ("terminate_cause", AttributeType::AcctTerminateCause),
    ] {
        if let Some(n) = packet.integer(kind) {
            detail.insert(key.into(), n.into());
        }
    }
    for (key, low, high) in [
        (
            "input_octets",
            AttributeType::AcctInputOctets,
            AttributeType::AcctInputGigawords,
        ),
        (
            "output_octets",
            AttributeType::AcctOutputOctets,
            AttributeType::AcctOutputGigawords,
        ),
    ] {
        if let Some(n) = packet.integer(low) {
            let gigawords = u64::from(packet.integer(high).unwrap_or(0));
            detail.insert(key.into(), ((gigawords << 32) | u64::from(n)).into());
        }
    }
    OutpostEvent {
        provider_id,
        action: "radius_accounting".into(),
        username: packet
            .text(AttributeType::UserName)
            .filter(|u| !u.is_empty()),
        source_address: Some(nas.to_string()),
        detail,
        id: None,
        occurred_at: Some(occurred_at(packet, now)),
    }
}

fn ipv4(octets: &[u8]) -> Option<String> {
    let octets: [u8; 4] = octets.try_into().ok()?;
    Some(std::net::Ipv4Addr::from(octets).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::packet::Code;

    #[test]
    fn stop_records_carry_counters_and_identities() {
        let mut packet = Packet::new(Code::AccountingRequest, 1, [0; 16]);
        packet.push(AttributeType::AcctStatusType, 2u32.to_be_bytes().to_vec());
        packet.push(AttributeType::UserName, b"alice".to_vec());
        packet.push(AttributeType::AcctSessionId, b"S-1".to_vec());
        packet.push(AttributeType::NasIpAddress, vec![192, 0, 2, 1]);
        packet.push(AttributeType::AcctInputOctets, 5u32.to_be_bytes().to_vec());
        packet.push(
            AttributeType::AcctInputGigawords,
            1u32.to_be_bytes().to_vec(),
        );
        packet.push(AttributeType::AcctSessionTime, 60u32.to_be_bytes().to_vec());
        packet.push(
            AttributeType::CallingStationId,
            b"00-11-22-33-44-55".to_vec(),
        );
        let event = event(&packet, 3, "192.0.2.1".parse().expect("ip"), 1_800_000_000);
        assert_eq!(event.action, "radius_accounting");
        assert_eq!(event.username.as_deref(), Some("alice"));
        assert_eq!(event.detail["status"], "stop");
        assert_eq!(event.detail["session_id"], "S-1");
        assert_eq!(event.detail["nas_ip_address"], "192.0.2.1");
        assert_eq!(event.detail["input_octets"], (1u64 << 32) + 5);
        assert_eq!(event.detail["session_time"], 60);
        assert_eq!(event.detail["calling_station_id"], "00-11-22-33-44-55");
        assert!(!event.detail.contains_key("output_octets"));
        assert_eq!(event.occurred_at, Some(1_800_000_000));
    }

    #[test]
    fn the_event_time_is_the_nas_timestamp_or_receipt_less_the_delay() {
        let mut packet = Packet::new(Code::AccountingRequest, 1, [0; 16]);
        packet.push(AttributeType::AcctDelayTime, 30u32.to_be_bytes().to_vec());
        assert_eq!(occurred_at(&packet, 1000), 970);
        packet.push(AttributeType::EventTimestamp, 900u32.to_be_bytes().to_vec());
        assert_eq!(occurred_at(&packet, 1000), 900);
        let mut future = Packet::new(Code::AccountingRequest, 1, [0; 16]);
        future.push(
            AttributeType::EventTimestamp,
            5000u32.to_be_bytes().to_vec(),
        );
        assert_eq!(occurred_at(&future, 1000), 1000, "never later than receipt");
    }
}
