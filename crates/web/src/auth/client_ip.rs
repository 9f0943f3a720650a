//! The client's IP address, for per-IP rate limits. Behind a reverse proxy every connection
//! comes from the proxy, so the client is read from `X-Forwarded-For`, but only when the
//! connection comes from a proxy the operator trusts: anyone can send the header.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::{ApiError, AppState};

/// An IP address or a CIDR block, like `10.0.0.0/8`, `192.0.2.7` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix_len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR block (like 10.0.0.0/8)")]
pub struct IpNetworkError(String);

impl FromStr for IpNetwork {
    type Err = IpNetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || IpNetworkError(s.to_string());
        let (address, prefix_len) = match s.trim().split_once('/') {
            Some((address, prefix_len)) => (address, Some(prefix_len)),
            None => (s.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix_len {
            Some(len) => len
                .parse()
                .ok()
                .filter(|len| *len <= max)
                .ok_or_else(invalid)?,
            None => max,
        };
        Ok(Self {
            address: canonical(address),
            prefix_len,
        })
    }
}

impl IpNetwork {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix_len)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix_len)
            }
            _ => false,
        }
    }
}

/// IPv4 clients of a dual-stack listener arrive as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_matches(network: &[u8], ip: &[u8], prefix_len: u8) -> bool {
    let whole_bytes = usize::from(prefix_len / 8);
    let rest_bits = prefix_len % 8;
    if network[..whole_bytes] != ip[..whole_bytes] {
        return false;
    }
    rest_bits == 0 || {
        let mask = 0xffu8 << (8 - rest_bits);
        network[whole_bytes] & mask == ip[whole_bytes] & mask
    }
}

/// The address of the client, as far as it can be trusted: the connection's peer, or, when
/// the peer is a trusted proxy, the right-most `X-Forwarded-For` entry that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| {
                ApiError::internal(std::io::Error::other("the server runs without ConnectInfo"))
            })?;
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            &state.auth.settings.trusted_proxies,
        )))
    }
}

fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNetwork]) -> IpAddr {
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let mut client = canonical(peer);
    if !trusted(client) {
        return client;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    // Each proxy appends the address it received the request from; entries left of the
    // first untrusted one (from the right) were written by the client and prove nothing.
    for entry in forwarded.into_iter().rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = canonical(ip);
        if !trusted(client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("192.168.1.128/25").contains(ip("192.168.1.200")));
        assert!(!net("192.168.1.128/25").contains(ip("192.168.1.127")));
        assert!(net("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!net("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(net("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(net("fd00::/8").contains(ip("fd12::1")));
        assert!(!net("fd00::/8").contains(ip("10.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "example.com",
            "::/129",
            "1.2.3.4/x",
        ] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad:?}");
        }
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_header_counts_only_from_trusted_proxies() {
        let proxies = [net("10.0.0.0/8")];
        let headers = forwarded(&["198.51.100.1, 203.0.113.9"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers, &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("192.0.2.50"), &headers, &proxies),
            ip("192.0.2.50"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers, &[]),
            ip("10.0.0.2"),
            "no proxy is trusted by default"
        );
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let proxies = [net("10.0.0.0/8")];
        let headers = forwarded(&["1.1.1.1, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers, &proxies),
            ip("203.0.113.9")
        );
        let only_proxies = forwarded(&["10.1.1.1, 10.2.2.2"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &only_proxies, &proxies),
            ip("10.1.1.1")
        );
        let garbage = forwarded(&["203.0.113.9, not-an-ip, 10.2.2.2"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &garbage, &proxies),
            ip("10.2.2.2"),
            "a malformed entry ends the walk at the last trusted hop"
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxies),
            ip("10.0.0.2")
        );
    }
}
