//! The RADIUS UDP sockets: a receive buffer sized for bursts (`limits.udp_receive_buffer_bytes`:
//! a NAS fleet re-authenticating at once after a power cut sends thousands of Access-Requests in
//! a second, and what the buffer cannot hold the kernel drops unseen), and the kernel's count of
//! those drops as `redoubt_radius_receive_drops_total`, read from `/proc/net/udp` and
//! `/proc/net/udp6` at scrape time (Linux only; elsewhere the metric is absent).

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, Opts};
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::net::UdpSocket;

/// Binds a UDP socket on `address` with a receive buffer of `buffer_bytes` (as far as the
/// kernel allows; asking for more than the system's default never gives less), logging the size granted and,
/// when it is smaller than asked, how to allow more.
pub fn bind(address: SocketAddr, buffer_bytes: usize, setting: &str) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let open = || {
        Socket::new(
            Domain::for_address(address),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
    };
    let mut socket = open()?;
    let system = usable_buffer(socket.recv_buffer_size().unwrap_or(0));
    if buffer_bytes > 0 {
        if let Err(error) = socket.set_recv_buffer_size(buffer_bytes) {
            tracing::warn!(%error, buffer_bytes, "cannot set the RADIUS receive buffer size");
        }
        let mut granted = usable_buffer(socket.recv_buffer_size().unwrap_or(0));
        // Asking for more never ends with less than the system's default (as a
        // `net.core.rmem_max` below `net.core.rmem_default` would make it): a fresh socket
        // keeps the default.
        if buffer_bytes > system && granted < system {
            socket = open()?;
            granted = system;
        }
        if granted < buffer_bytes {
            tracing::warn!(
                %address,
                asked = buffer_bytes,
                granted,
                "the kernel granted a smaller RADIUS receive buffer than limits.udp_receive_buffer_bytes asks for: bursts beyond it are dropped (redoubt_radius_receive_drops_total); allow it with `sysctl -w net.core.rmem_max={buffer_bytes}` (and in /etc/sysctl.d to keep it)"
            );
        } else {
            tracing::info!(%address, bytes = granted, "RADIUS receive buffer");
        }
    }
    socket.bind(&address.into())?;
    socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(socket.into())
        .map_err(|error| std::io::Error::new(error.kind(), format!("{setting}: {error}")))?;
    Ok(socket)
}

/// The part of a socket's reported receive buffer that holds data: Linux reports twice the size
/// set (the other half is its bookkeeping).
fn usable_buffer(reported: usize) -> usize {
    if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    }
}

/// The inode of a socket, which `/proc/net/udp` lists it by.
#[cfg(target_os = "linux")]
pub fn inode(socket: &UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    let link = link.to_str()?;
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The `drops` column of the socket with `inode` in a `/proc/net/udp` or `/proc/net/udp6` table:
/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops`.
pub fn drops_in_table(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        fields.get(12)?.parse().ok()
    })
}

/// Datagrams the kernel dropped for the socket with `inode` since it was opened.
#[cfg(target_os = "linux")]
fn kernel_drops(inode: u64) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"].iter().find_map(|path| {
        let table = std::fs::read_to_string(path).ok()?;
        drops_in_table(&table, inode)
    })
}

/// `redoubt_radius_receive_drops_total{port}`, brought up to the kernel's count at each scrape.
pub struct ReceiveDrops {
    counter: IntCounterVec,
    /// `(port label, socket inode)`.
    sockets: Vec<(&'static str, u64)>,
    /// One scrape at a time, so two never add the same drops.
    collecting: Mutex<()>,
}

impl ReceiveDrops {
    pub fn new(sockets: Vec<(&'static str, u64)>) -> Result<Self, prometheus::Error> {
        let counter = IntCounterVec::new(
            Opts::new(
                "redoubt_radius_receive_drops_total",
                "RADIUS datagrams the kernel dropped because the socket's receive buffer was full (raise limits.udp_receive_buffer_bytes and net.core.rmem_max), by port",
            ),
            &["port"],
        )?;
        for (port, _) in &sockets {
            counter.with_label_values(&[port]);
        }
        Ok(Self {
            counter,
            sockets,
            collecting: Mutex::new(()),
        })
    }

    /// Raises each port's counter to `read(inode)`, the kernel's count.
    fn refresh(&self, read: impl Fn(u64) -> Option<u64>) {
        let _one = self
            .collecting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (port, inode) in &self.sockets {
            let Some(kernel) = read(*inode) else { continue };
            let counter = self.counter.with_label_values(&[port]);
            let seen = counter.get();
            if kernel > seen {
                counter.inc_by(kernel - seen);
            }
        }
    }
}

impl Collector for ReceiveDrops {
    fn desc(&self) -> Vec<&Desc> {
        self.counter.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        #[cfg(target_os = "linux")]
        self.refresh(kernel_drops);
        self.counter.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  193: 0100007F:A2B4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0
  811: 00000000:0714 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 73910 2 ffff8c1a2b3c4d00 1537
";
    const TABLE6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  301: 00000000000000000000000001000000:0715 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 12
";

    #[test]
    fn drops_are_read_by_inode() {
        assert_eq!(drops_in_table(TABLE, 73910), Some(1537));
        assert_eq!(drops_in_table(TABLE, 4242), Some(0));
        assert_eq!(drops_in_table(TABLE, 7391), None);
        assert_eq!(drops_in_table(TABLE6, 99), Some(12));
        // The header is never a row, and short or garbled rows are skipped.
        assert_eq!(drops_in_table("sl local inode\n 1: x y\n", 0), None);
        assert_eq!(drops_in_table("", 1), None);
    }

    #[test]
    fn the_counter_follows_the_kernel_and_never_goes_back() {
        let drops = ReceiveDrops::new(vec![("auth", 1), ("accounting", 2)]).expect("metric");
        let value = |port: &str| drops.counter.with_label_values(&[port]).get();
        drops.refresh(|inode| Some(inode * 10));
        assert_eq!((value("auth"), value("accounting")), (10, 20));
        drops.refresh(|inode| if inode == 1 { Some(15) } else { None });
        assert_eq!((value("auth"), value("accounting")), (15, 20));
        // A smaller count (a recreated socket) never lowers the counter.
        drops.refresh(|_| Some(3));
        assert_eq!((value("auth"), value("accounting")), (15, 20));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_bound_socket_is_found_in_the_kernel_table() {
        let socket = bind("127.0.0.1:0".parse().expect("addr"), 1 << 20, "test").expect("bind");
        let inode = inode(&socket).expect("inode");
        assert_eq!(kernel_drops(inode), Some(0));
    }
}
