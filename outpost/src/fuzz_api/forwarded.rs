//! The proxy's forwarded headers: the original URL a reverse proxy reports
//! ([`reconstruct`]: `X-Original-URL`, `X-Forwarded-Proto`/`-Host`/`-Uri`, Envoy's `Host` and
//! path) and the `X-Forwarded-*`/`X-Real-IP`/`Forwarded` headers the proxy sets for its upstream
//! ([`set_forwarded`], behind trusted proxies 10.0.0.0/8 and fd00::/8). The first input byte
//! picks the flavour (bits 0-1), a trusted peer (bit 2) and HTTPS (bit 3); the rest is one
//! `name: value` header per line (a `path` line is the path after the endpoint's prefix).
//!
//! Invariants: no panic; an original URL has a non-empty lowercase host, a path that starts with
//! one `/`, no whitespace, control characters or fragment, and fits a header value; an
//! untrusted peer's claims are all replaced by what the outpost saw; behind a trusted peer the
//! chain ends with the peer and `X-Real-IP` is an address.

use crate::proxy::forward::{Flavour, reconstruct};
use crate::proxy::trusted::{TrustedProxies, set_forwarded};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::{IpAddr, Ipv4Addr};

/// The forwarded-headers target's fixed state: the trusted proxies.
pub struct ForwardedTarget {
    trusted: TrustedProxies,
}

impl Default for ForwardedTarget {
    fn default() -> Self {
        Self {
            trusted: TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "fd00::/8".to_owned()])
                .expect("the trusted ranges parse"),
        }
    }
}

impl ForwardedTarget {
    /// Reconstructs the original URL from the headers in `input`, then sets the forwarded
    /// headers for the upstream.
    pub fn run(&self, input: &[u8]) {
        let Some((&flags, rest)) = input.split_first() else {
            return;
        };
        let flavour = match flags & 3 {
            0 => Flavour::Nginx,
            1 => Flavour::Traefik,
            2 => Flavour::Caddy,
            _ => Flavour::Envoy,
        };
        let peer = if flags & 4 == 0 {
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9))
        };
        let https = flags & 8 != 0;
        let mut headers = HeaderMap::new();
        let mut path = String::new();
        for line in rest.split(|b| *b == b'\n') {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default().trim_ascii();
            if name == b"path" {
                path = String::from_utf8_lossy(value).into_owned();
            } else if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                headers.append(name, value);
            }
        }
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Ok(url) = reconstruct(flavour, &headers, host.as_deref(), &path) {
            let whole = url.to_url();
            assert!(!url.host.is_empty(), "a host: {url:?}");
            assert_eq!(url.host, url.host.to_ascii_lowercase(), "a lowercase host");
            assert!(
                url.path_and_query.starts_with('/') && !url.path_and_query.starts_with("//"),
                "a path from the root: {url:?}"
            );
            assert!(
                !whole.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#'),
                "no whitespace, control or fragment: {whole:?}"
            );
            assert!(
                whole.starts_with(&url.origin()),
                "the URL starts with its origin"
            );
            assert!(
                HeaderValue::from_str(&whole).is_ok(),
                "fits a header: {whole:?}"
            );
        }
        set_forwarded(&mut headers, peer, https, host.as_deref(), &self.trusted);
        let single = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or("<not visible ASCII>"))
                .collect()
        };
        let peer_text = peer.to_string();
        let proto = single("x-forwarded-proto");
        if self.trusted.contains(peer) {
            let chain = single("x-forwarded-for");
            assert!(
                chain
                    .last()
                    .and_then(|c| c.rsplit(',').next())
                    .map(str::trim)
                    == Some(peer_text.as_str()),
                "the chain ends with the peer: {chain:?}"
            );
            let real = single("x-real-ip");
            assert!(
                real.len() == 1 && real[0].parse::<IpAddr>().is_ok(),
                "X-Real-IP is one address: {real:?}"
            );
            assert!(!proto.is_empty(), "X-Forwarded-Proto is set");
        } else {
            assert_eq!(
                single("x-forwarded-for"),
                [peer_text.as_str()],
                "XFF is the peer"
            );
            assert_eq!(
                single("x-real-ip"),
                [peer_text.as_str()],
                "X-Real-IP is the peer"
            );
            assert_eq!(proto, [if https { "https" } else { "http" }], "our scheme");
            assert!(single("forwarded").is_empty(), "no Forwarded claim passes");
            let forwarded_host = single("x-forwarded-host");
            assert!(
                forwarded_host.len() <= 1,
                "one X-Forwarded-Host: {forwarded_host:?}"
            );
        }
    }
}
