//! Whose request is this: the address every per-address bound counts.
//!
//! It is the TCP peer, unless the peer is one of the configured trusted
//! proxies (`http.trusted_proxies`): then it is the right-most address in
//! `X-Forwarded-For` that is not itself a trusted proxy. The header is
//! believed only from trusted proxies; from anyone else it is ignored, so a
//! client cannot choose the address it is counted under.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// One entry of `http.trusted_proxies`: an address or a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `fd00::/8`, or a single address.
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        Some(Network { addr, prefix })
    }

    /// Whether `ip` is in the network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// The trusted proxies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Network>);

impl TrustedProxies {
    /// Parses a configured list; on a bad entry, its index and why.
    pub fn parse(list: &[String]) -> Result<TrustedProxies, (usize, String)> {
        list.iter()
            .enumerate()
            .map(|(i, text)| {
                Network::parse(text).ok_or_else(|| {
                    (
                        i,
                        format!(
                            "{text:?} is not an address or network like \"10.0.0.0/8\" or \"::1\""
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut last_trusted = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // A hop that is not an address: nothing left of it can be
                // believed; the last proxy we trust is the client.
                return last_trusted;
            };
            if !self.trusts(ip) {
                return ip;
            }
            last_trusted = ip;
        }
        last_trusted
    }
}

/// An `X-Forwarded-For` entry: an address, maybe with a port or brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(canonical)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn networks_parse_and_match() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.200.3.4")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.1.1.1")), "mapped IPv4");
        let one = Network::parse("192.168.1.5").unwrap();
        assert!(one.contains(ip("192.168.1.5")));
        assert!(!one.contains(ip("192.168.1.6")));
        let v6 = Network::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        let odd = Network::parse("172.16.0.0/12").unwrap();
        assert!(odd.contains(ip("172.31.255.255")));
        assert!(!odd.contains(ip("172.32.0.0")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129", ""] {
            assert!(Network::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_header_counts_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        // Anyone can send the header; it changes nothing.
        assert_eq!(
            none.client(ip("203.0.113.9"), &xff(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
        let t = TrustedProxies(vec![
            Network::parse("10.0.0.0/8").unwrap(),
            Network::parse("127.0.0.1").unwrap(),
        ]);
        // Behind one proxy.
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["198.51.100.7"])),
            ip("198.51.100.7")
        );
        // A client that forges a left-most entry is still counted as itself.
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["6.6.6.6, 198.51.100.7"])),
            ip("198.51.100.7")
        );
        // Two trusted hops, headers split over lines.
        assert_eq!(
            t.client(ip("127.0.0.1"), &xff(&["198.51.100.7", "10.0.0.3"])),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(t.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["198.51.100.7, junk"])),
            ip("10.0.0.2")
        );
        // Ports and brackets.
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["[2001:db8::1]"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["198.51.100.7:4711"])),
            ip("198.51.100.7")
        );
    }
}
