//! Accounting (RFC 2866): each Accounting-Request becomes an event in the core's log (start,
//! stop, interim update: user, NAS, session id, counters). Events are queued in memory and sent
//! in batches; the NAS gets its Accounting-Response once the event is queued, and a full queue
//! (the core unreachable for long) means no response, so the NAS keeps the record and retries.

use super::attributes::{AttributeType, accounting_status_name};
use super::metrics::RadiusMetrics;
use super::packet::Packet;
use crate::core_api::CoreApi;
use redoubt_outpost_proto::credentials::{
    MAX_EVENTS_PER_REQUEST, OutpostEvent, OutpostEventsRequest,
};
use serde_json::Map;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Events held while the core cannot take them.
pub const QUEUE_CAPACITY: usize = 20_000;
/// How long the sender gathers events before sending a batch.
const GATHER: Duration = Duration::from_millis(200);
/// Longest wait between retries while the core is unreachable.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The event an Accounting-Request records.
pub fn event(packet: &Packet, provider_id: i64, nas: IpAddr) -> OutpostEvent {
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
    }
}

fn ipv4(octets: &[u8]) -> Option<String> {
    let octets: [u8; 4] = octets.try_into().ok()?;
    Some(std::net::Ipv4Addr::from(octets).to_string())
}

/// The sending side of the queue.
#[derive(Clone)]
pub struct AccountingQueue {
    sender: mpsc::Sender<OutpostEvent>,
    metrics: RadiusMetrics,
}

impl AccountingQueue {
    /// Starts the task that sends queued events to the core until `stop`.
    pub fn start(core: CoreApi, metrics: RadiusMetrics, stop: watch::Receiver<bool>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(send_loop(core, receiver, metrics.clone(), stop));
        Self { sender, metrics }
    }

    /// Queues an event; false when the queue is full.
    pub fn push(&self, event: OutpostEvent) -> bool {
        if self.sender.try_send(event).is_ok() {
            self.metrics.accounting_queue.inc();
            true
        } else {
            false
        }
    }
}

async fn send_loop(
    core: CoreApi,
    mut receiver: mpsc::Receiver<OutpostEvent>,
    metrics: RadiusMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch: Vec<OutpostEvent> = Vec::new();
    let mut retry = Duration::from_millis(500);
    loop {
        if batch.is_empty() {
            let first = tokio::select! {
                event = receiver.recv() => event,
                () = crate::module::stopped(&mut stop) => None,
            };
            let Some(first) = first else { return };
            batch.push(first);
            tokio::time::sleep(GATHER).await;
        }
        while batch.len() < MAX_EVENTS_PER_REQUEST {
            match receiver.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let request = OutpostEventsRequest {
            events: std::mem::take(&mut batch),
        };
        let count = request.events.len();
        match core.record_events(&request).await {
            Ok(()) => {
                metrics.accounting_queue.sub(count as i64);
                metrics
                    .accounting_events
                    .with_label_values(&["recorded"])
                    .inc_by(count as u64);
                retry = Duration::from_millis(500);
            }
            Err(error) if error.is_unreachable() => {
                tracing::warn!(%error, events = count, retry_in = ?retry, "accounting events wait: the core is unreachable");
                batch = request.events;
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = crate::module::stopped(&mut stop) => return,
                }
                retry = (retry * 2).min(MAX_RETRY);
            }
            Err(error) => {
                tracing::error!(%error, events = count, "the core refused accounting events; they are dropped");
                metrics.accounting_queue.sub(count as i64);
                metrics
                    .accounting_events
                    .with_label_values(&["dropped"])
                    .inc_by(count as u64);
            }
        }
    }
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
        let event = event(&packet, 3, "192.0.2.1".parse().expect("ip"));
        assert_eq!(event.action, "radius_accounting");
        assert_eq!(event.username.as_deref(), Some("alice"));
        assert_eq!(event.detail["status"], "stop");
        assert_eq!(event.detail["session_id"], "S-1");
        assert_eq!(event.detail["nas_ip_address"], "192.0.2.1");
        assert_eq!(event.detail["input_octets"], (1u64 << 32) + 5);
        assert_eq!(event.detail["session_time"], 60);
        assert_eq!(event.detail["calling_station_id"], "00-11-22-33-44-55");
        assert!(!event.detail.contains_key("output_octets"));
    }
}
