//! The UDP listeners: authentication (Access-Request, Status-Server) and accounting
//! (Accounting-Request, Status-Server), on sockets with a burst-sized receive buffer
//! ([`super::udp_socket`]). Each datagram is admitted without I/O, checked against
//! the retransmission cache, answered in its own task (bounded in number), signed with the
//! provider's secret, and sent back to where it came from.

use super::Shared;
use super::access;
use super::accounting;
use super::attributes::AttributeType;
use super::authenticator::sign_reply;
use super::config::RadiusConfig;
use super::duplicates::Seen;
use super::packet::{Code, MAX_PACKET_LEN, Packet};
use super::request::{self, Admitted, DropReason, Port};
use super::udp_socket;
use crate::core_contact::{core_reachable, heartbeat_period};
use crate::module::ModuleContext;
use anyhow::Context;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

/// Most requests being answered at once; more are dropped (the NAS retransmits).
pub const MAX_IN_FLIGHT: usize = 4096;
/// At most one log line per drop reason in this interval; the metrics count every one.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Binds both listeners and serves them until stop.
pub async fn listen(context: &ModuleContext, shared: Arc<Shared>) -> anyhow::Result<()> {
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let buffer_bytes = context.settings.limits.udp_receive_buffer_bytes;
    let mut inodes = Vec::new();
    for (name, setting, address, port) in [
        (
            "radius",
            "listen.radius",
            &context.settings.listen.radius,
            Port::Auth,
        ),
        (
            "radius_accounting",
            "listen.radius_accounting",
            &context.settings.listen.radius_accounting,
            Port::Accounting,
        ),
    ] {
        let resolved = tokio::net::lookup_host(address.as_str())
            .await
            .ok()
            .and_then(|mut found| found.next())
            .with_context(|| format!("{setting} is not an address to listen on: {address}"))?;
        let socket = udp_socket::bind(resolved, buffer_bytes, setting)
            .with_context(|| format!("cannot listen on UDP {address} ({setting})"))?;
        let addr = socket.local_addr()?;
        #[cfg(target_os = "linux")]
        if let Some(inode) = udp_socket::inode(&socket) {
            inodes.push((
                if port == Port::Auth {
                    "auth"
                } else {
                    "accounting"
                },
                inode,
            ));
        }
        tracing::info!(%addr, "RADIUS {} listening", if port == Port::Auth { "authentication" } else { "accounting" });
        context.listening_on(name, addr);
        tokio::spawn(receive_loop(
            Arc::new(socket),
            port,
            shared.clone(),
            limit.clone(),
            context.stop.clone(),
        ));
    }
    if !inodes.is_empty() {
        context
            .registry
            .register(Box::new(udp_socket::ReceiveDrops::new(inodes)?))
            .context("RADIUS receive drop metric")?;
    }
    Ok(())
}

async fn receive_loop(
    socket: Arc<UdpSocket>,
    port: Port,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    // One octet more than the largest packet, to tell an oversized datagram from a full one.
    let mut buffer = vec![0u8; MAX_PACKET_LEN + 1];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            () = crate::module::stopped(&mut stop) => return,
        };
        let (len, source) = match received {
            Ok(received) => received,
            Err(error) => {
                // ICMP port unreachable from an earlier reply and the like: keep serving.
                tracing::debug!(%error, "RADIUS receive error");
                continue;
            }
        };
        if len > MAX_PACKET_LEN {
            shared.dropped(DropReason::Malformed, source);
            continue;
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            shared.dropped(DropReason::Busy, source);
            continue;
        };
        let datagram = buffer[..len].to_vec();
        let socket = socket.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Some(reply) = handle(&shared, port, &datagram, source).await
                && let Err(error) = socket.send_to(&reply, source).await
            {
                tracing::debug!(%error, %source, "RADIUS reply not sent");
            }
            drop(permit);
        });
    }
}

/// Answers one datagram: the signed reply bytes, or `None` to stay silent.
pub async fn handle(
    shared: &Shared,
    port: Port,
    datagram: &[u8],
    source: SocketAddr,
) -> Option<Vec<u8>> {
    let started = Instant::now();
    let config = shared.config();
    let admitted = match request::admit(datagram, source.ip(), port, &config) {
        Ok(admitted) => admitted,
        Err(reason) => {
            shared.dropped(reason, source);
            return None;
        }
    };
    let Admitted { packet, provider } = admitted;
    let provider = &config.providers[provider];
    let (identifier, authenticator) = (packet.identifier, packet.authenticator);
    match shared.replies.arrive(source, identifier, authenticator) {
        Seen::New => {}
        Seen::InProgress => {
            shared.dropped(DropReason::InProgress, source);
            return None;
        }
        Seen::Answered(reply) => {
            shared.metrics.duplicates.inc();
            return Some(reply);
        }
    }
    let code_label = match packet.code {
        Code::AccessRequest => "access_request",
        Code::AccountingRequest => "accounting_request",
        _ => "status_server",
    };
    let answer = match packet.code {
        Code::AccessRequest => {
            access::answer(shared, &config, provider, &packet, source.ip()).await
        }
        Code::AccountingRequest => {
            let event = accounting::event(&packet, provider.id, source.ip(), shared.clock.now());
            // Answered once the record is on disk (RFC 2866 section 2: the response says the
            // record was received and recorded); otherwise silence, and the NAS retries.
            match shared.events.enqueue_durable(event).await {
                Ok(()) => Ok(ok_reply(Code::AccountingResponse, &packet)),
                Err(error) => {
                    tracing::debug!(%error, "Accounting-Request not recorded");
                    Err(DropReason::Busy)
                }
            }
        }
        _ if !serving(shared, &config) => Err(DropReason::NotServing),
        _ => Ok(ok_reply(
            if port == Port::Auth {
                Code::AccessAccept
            } else {
                Code::AccountingResponse
            },
            &packet,
        )),
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(reason) => {
            shared
                .replies
                .finish(source, identifier, authenticator, None);
            shared.dropped(reason, source);
            return None;
        }
    };
    let mut reply = answer.reply;
    for state in packet.all(AttributeType::ProxyState) {
        reply.push(AttributeType::ProxyState, state.to_vec());
    }
    let bytes = match sign_reply(reply, packet.code, &authenticator, provider.secret()) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, provider = %provider.name, "RADIUS reply too large to send; check the provider's reply rules");
            shared
                .replies
                .finish(source, identifier, authenticator, None);
            return None;
        }
    };
    shared
        .replies
        .finish(source, identifier, authenticator, Some(&bytes));
    shared
        .metrics
        .requests
        .with_label_values(&[code_label, answer.result])
        .inc();
    shared
        .metrics
        .duration
        .with_label_values(&[code_label])
        .observe(started.elapsed().as_secs_f64());
    Some(bytes)
}

/// Whether Status-Server is answered (RFC 5997 section 3: a server answers it when it is alive):
/// only while the core counts as reachable within a heartbeat period, because only then can
/// every user get a verdict. Otherwise silence lets the NAS or proxy fail over.
fn serving(shared: &Shared, config: &RadiusConfig) -> bool {
    core_reachable(
        shared.contact.get(),
        Instant::now(),
        heartbeat_period(Some(&config.snapshot)),
    )
}

fn ok_reply(code: Code, request: &Packet) -> access::Answer {
    access::Answer {
        reply: Packet::new(code, request.identifier, [0; 16]),
        result: "ok",
    }
}

/// Logs a drop reason at most once per [`LOG_INTERVAL`].
#[derive(Default)]
pub struct DropLog {
    last: Mutex<HashMap<&'static str, Instant>>,
}

impl DropLog {
    /// Whether a line for `reason` may be written now.
    pub fn due(&self, reason: DropReason) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match last.get(reason.label()) {
            Some(at) if now.duration_since(*at) < LOG_INTERVAL => false,
            _ => {
                last.insert(reason.label(), now);
                true
            }
        }
    }
}
