//! Who may tell the proxy where a request came from: `proxy.trusted_proxies`, addresses and
//! CIDR ranges of reverse proxies in front of the outpost. From them `X-Forwarded-For` is
//! extended and `X-Real-IP`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed; from
//! anyone else all of them (and RFC 7239 `Forwarded`) are replaced by what the outpost saw, so
//! a client cannot make the upstream believe it is somewhere else.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// A `proxy.trusted_proxies` entry that is neither an address nor a CIDR range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "proxy.trusted_proxies: `{0}` is not an IP address or CIDR range (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)"
)]
pub struct BadTrustedProxy(pub String);

/// The parsed `proxy.trusted_proxies`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses each entry (`addr` or `addr/prefix`); empty entries are ignored.
    pub fn parse(entries: &[String]) -> Result<Self, BadTrustedProxy> {
        let mut ranges = Vec::new();
        for entry in entries {
            let text = entry.trim();
            if text.is_empty() {
                continue;
            }
            let bad = || BadTrustedProxy(text.to_owned());
            let (addr, prefix) = match text.split_once('/') {
                Some((addr, prefix)) => (addr, Some(prefix)),
                None => (text, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
                None => max,
            };
            ranges.push((normalize(addr), prefix));
        }
        Ok(Self { ranges })
    }

    /// Whether `ip` is in one of the ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalize(ip);
        self.ranges
            .iter()
            .any(|(net, prefix)| in_range(ip, *net, *prefix))
    }
}

fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_range(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Sets the forwarded headers for a request the outpost received from `peer` (over HTTPS when
/// `https`, for `host`): from a trusted proxy the chain is extended and its claims kept; from
/// anyone else every claim is replaced. `X-Real-IP` is the client: the peer, or, behind trusted
/// proxies, the last address in the chain that is not one of them.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    https: bool,
    host: Option<&str>,
    trusted: &TrustedProxies,
) {
    let ours_proto = HeaderValue::from_static(if https { "https" } else { "http" });
    let ours_host = host.and_then(|h| HeaderValue::from_str(h).ok());
    if !trusted.contains(peer) {
        headers.remove(FORWARDED);
        let peer_value = HeaderValue::from_str(&peer.to_string());
        if let Ok(value) = peer_value {
            headers.insert(X_FORWARDED_FOR, value.clone());
            headers.insert(X_REAL_IP, value);
        }
        headers.insert(X_FORWARDED_PROTO, ours_proto);
        match ours_host {
            Some(value) => {
                headers.insert(X_FORWARDED_HOST, value);
            }
            None => {
                headers.remove(X_FORWARDED_HOST);
            }
        }
        return;
    }
    let mut chain: Vec<String> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| hop.trim().to_owned())
        .filter(|hop| !hop.is_empty())
        .collect();
    chain.push(peer.to_string());
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    if let Ok(value) = HeaderValue::from_str(&chain.join(", ")) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    if let Ok(value) = HeaderValue::from_str(&client.to_string()) {
        headers.insert(X_REAL_IP, value);
    }
    let proto_claimed = headers
        .get(X_FORWARDED_PROTO)
        .is_some_and(|v| v == "http" || v == "https");
    if !proto_claimed {
        headers.insert(X_FORWARDED_PROTO, ours_proto);
    }
    if !headers.contains_key(X_FORWARDED_HOST)
        && let Some(value) = ours_host
    {
        headers.insert(X_FORWARDED_HOST, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
            .expect("valid")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn spoofed() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("x-real-ip", HeaderValue::from_static("1.2.3.4"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        h.insert("forwarded", HeaderValue::from_static("for=1.2.3.4"));
        h
    }

    #[test]
    fn ranges_parse_and_match() {
        let t = trusted(&["10.0.0.0/8", " 192.0.2.7 ", "2001:db8::/32", ""]);
        assert!(t.contains(ip("10.200.1.1")));
        assert!(t.contains(ip("::ffff:10.0.0.1")));
        assert!(t.contains(ip("192.0.2.7")));
        assert!(!t.contains(ip("192.0.2.8")));
        assert!(t.contains(ip("2001:db8:ffff::1")));
        assert!(!t.contains(ip("2001:db9::1")));
        assert!(trusted(&["0.0.0.0/0"]).contains(ip("8.8.8.8")));
        assert!(!TrustedProxies::default().contains(ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129", "10.0.0/8"] {
            assert_eq!(
                TrustedProxies::parse(&[bad.to_owned()]),
                Err(BadTrustedProxy(bad.to_owned()))
            );
        }
    }

    #[test]
    fn claims_of_untrusted_clients_are_replaced() {
        let mut h = spoofed();
        set_forwarded(
            &mut h,
            ip("198.51.100.9"),
            false,
            Some("app.example.com"),
            &trusted(&["10.0.0.0/8"]),
        );
        assert_eq!(h["x-forwarded-for"], "198.51.100.9");
        assert_eq!(h["x-real-ip"], "198.51.100.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.example.com");
        assert!(!h.contains_key("forwarded"));
        let mut h = spoofed();
        set_forwarded(
            &mut h,
            ip("198.51.100.9"),
            true,
            None,
            &TrustedProxies::default(),
        );
        assert!(!h.contains_key("x-forwarded-host"));
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    #[test]
    fn trusted_proxies_extend_the_chain_and_name_the_client() {
        let t = trusted(&["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.5"),
        );
        h.append("x-forwarded-for", HeaderValue::from_static("10.1.1.1"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("app.example.com"),
        );
        set_forwarded(&mut h, ip("10.0.0.2"), false, Some("internal:9000"), &t);
        assert_eq!(
            h["x-forwarded-for"],
            "1.2.3.4, 203.0.113.5, 10.1.1.1, 10.0.0.2"
        );
        // The client spoofed 1.2.3.4; the first untrusted hop from the right is the truth.
        assert_eq!(h["x-real-ip"], "203.0.113.5");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "app.example.com");
        let mut bare = HeaderMap::new();
        set_forwarded(&mut bare, ip("10.0.0.2"), false, Some("app"), &t);
        assert_eq!(bare["x-forwarded-for"], "10.0.0.2");
        assert_eq!(bare["x-real-ip"], "10.0.0.2");
        assert_eq!(bare["x-forwarded-proto"], "http");
        assert_eq!(bare["x-forwarded-host"], "app");
    }
}
