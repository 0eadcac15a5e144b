//! Slow and idle clients for the denial-of-service tests: raw TCP connections from a chosen
//! loopback address (all of 127.0.0.0/8 is local, so each test can be several sources), held
//! open doing nothing, trickling a request head, or making plain HTTP/1.1 requests.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection to `to` from `source` (port chosen by the kernel), given up after 2 s.
pub async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// `count` connections from `source` that send nothing (those the kernel cannot take are
/// skipped).
pub async fn hold_idle(source: Ipv4Addr, to: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        if let Ok(stream) = connect_from(source, to).await {
            held.push(stream);
        }
    }
    held
}

/// How many of `streams` the server has closed, waiting up to `within` for each.
pub async fn closed_count(streams: &mut [TcpStream], within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    let mut closed = 0;
    for stream in streams.iter_mut() {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => continue,
                Err(_) => break,
            }
        }
    }
    closed
}

/// Writes `request` and reads one response (head and `Content-Length` body), giving up after
/// `within`: the status code.
pub async fn exchange(stream: &mut TcpStream, request: &str, within: Duration) -> io::Result<u16> {
    tokio::time::timeout(within, async {
        stream.write_all(request.as_bytes()).await?;
        read_response(stream).await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no response in time"))?
}

/// A `GET path` on a kept-alive connection.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

/// A fresh connection from `source`, one `GET path`: the status and how long it took.
pub async fn timed_get(
    source: Ipv4Addr,
    to: SocketAddr,
    path: &str,
    within: Duration,
) -> io::Result<(u16, Duration)> {
    let started = Instant::now();
    let mut stream = connect_from(source, to).await?;
    let status = exchange(&mut stream, &get_request(path), within).await?;
    Ok((status, started.elapsed()))
}

async fn read_response(stream: &mut TcpStream) -> io::Result<u16> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, head.clone()))?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Ok(status)
}

/// Sends `head_start` then one more header line (`X-Slow: a`, 11 octets) every `every`, until the server closes:
/// how long it kept the connection (or `None` if it was still open after `give_up`).
pub async fn trickle_until_closed(
    stream: &mut TcpStream,
    head_start: &[u8],
    every: Duration,
    give_up: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    if stream.write_all(head_start).await.is_err() {
        return Some(started.elapsed());
    }
    let mut buf = [0u8; 512];
    while started.elapsed() < give_up {
        match tokio::time::timeout(every, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            // A 408 or similar before closing.
            Ok(Ok(_)) => continue,
            Err(_) => {
                if stream.write_all(b"X-Slow: a\r\n").await.is_err() {
                    return Some(started.elapsed());
                }
            }
        }
    }
    None
}
