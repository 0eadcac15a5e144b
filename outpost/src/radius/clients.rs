//! Which provider a datagram belongs to: each RADIUS provider lists client networks (CIDR), and
//! the most specific network containing the source address wins (ties go to the provider
//! listed first). Sources in no network are unknown clients, never answered.

use redoubt_outpost_proto::provider::parse_cidr;
use std::net::IpAddr;

/// A network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a single host).
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = parse_cidr(text.trim()).ok()?;
        Some(Self { address, prefix })
    }

    /// Whether `ip` is inside. IPv4-mapped IPv6 sources match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

/// Networks of every provider, for longest-prefix lookup.
#[derive(Debug, Clone, Default)]
pub struct ClientTable {
    /// (network, provider index), most specific first; stable for equal prefixes.
    entries: Vec<(Network, usize)>,
}

impl ClientTable {
    /// Builds the table from each provider's network list (index = position in `providers`).
    /// Networks that do not parse are skipped (the core validates them on write).
    pub fn build<'a>(providers: impl IntoIterator<Item = &'a [String]>) -> Self {
        let mut entries: Vec<(Network, usize)> = providers
            .into_iter()
            .enumerate()
            .flat_map(|(index, networks)| {
                networks
                    .iter()
                    .filter_map(move |n| Network::parse(n).map(|net| (net, index)))
            })
            .collect();
        entries.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix));
        Self { entries }
    }

    /// The provider index for a source address.
    pub fn lookup(&self, source: IpAddr) -> Option<usize> {
        self.entries
            .iter()
            .find(|(net, _)| net.contains(source))
            .map(|(_, index)| *index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn networks_contain_addresses() {
        let net = Network::parse("10.1.0.0/16").expect("net");
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        assert!(
            Network::parse("0.0.0.0/0")
                .expect("any")
                .contains(ip("8.8.8.8"))
        );
        assert!(
            Network::parse("::/0")
                .expect("any6")
                .contains(ip("2001:db8::1"))
        );
        let host = Network::parse("192.0.2.7").expect("host");
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("nonsense").is_none());
        assert!(!net.contains(ip("2001:db8::1")));
    }

    #[test]
    fn the_most_specific_network_wins() {
        let a = vec!["10.0.0.0/8".to_owned()];
        let b = vec!["10.5.0.0/16".to_owned(), "192.0.2.1".to_owned()];
        let c = vec!["10.5.0.0/16".to_owned()];
        let table = ClientTable::build([a.as_slice(), b.as_slice(), c.as_slice()]);
        assert_eq!(table.lookup(ip("10.5.1.1")), Some(1));
        assert_eq!(table.lookup(ip("10.6.1.1")), Some(0));
        assert_eq!(table.lookup(ip("192.0.2.1")), Some(1));
        assert_eq!(table.lookup(ip("172.16.0.1")), None);
    }
}
