//! The client's address: the TCP peer, or, when the peer is a trusted proxy, the address the
//! proxy reports in `X-Forwarded-For`. Throttling, sessions and login records use it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::state::AppState;

/// The address of the client that sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(parts, state))
    }
}

impl ClientAddr {
    /// The client of a request, by its connection and headers.
    pub fn of(parts: &Parts, state: &AppState) -> ClientAddr {
        // Without connection info (a router driven in-process) the client is this host.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
        ClientAddr(client_addr(
            peer,
            &parts.headers,
            &state.settings.trusted_proxies,
        ))
    }
}

/// The client's `User-Agent`, as sent (visible ASCII), cut to 256 bytes; kept with login
/// records so that a user can tell their devices apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgent(pub Option<String>);

/// Longest `User-Agent` kept.
const MAX_USER_AGENT: usize = 256;

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(UserAgent::of(&parts.headers))
    }
}

impl UserAgent {
    /// The `User-Agent` of a request's headers.
    pub fn of(headers: &HeaderMap) -> UserAgent {
        let agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                let mut end = value.len().min(MAX_USER_AGENT);
                while !value.is_char_boundary(end) {
                    end -= 1;
                }
                value[..end].to_owned()
            })
            .filter(|value| !value.is_empty());
        UserAgent(agent)
    }
}

/// Walks `X-Forwarded-For` from the right (the hop nearest to us) past trusted proxies: the first
/// untrusted address is the client. A client cannot forge its way past a proxy that appends.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[String]) -> IpAddr {
    let is_trusted = |addr: &IpAddr| trusted.iter().any(|entry| matches_entry(entry, addr));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(addr) => {
                client = addr;
                if !is_trusted(&addr) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// Whether `peer` is one of the TRUSTED_PROXIES.
pub(crate) fn is_trusted_proxy(peer: IpAddr, trusted: &[String]) -> bool {
    let peer = peer.to_canonical();
    trusted.iter().any(|entry| matches_entry(entry, &peer))
}

/// An entry of TRUSTED_PROXIES: an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
fn matches_entry(entry: &str, addr: &IpAddr) -> bool {
    let (network, bits) = match entry.split_once('/') {
        Some((network, bits)) => (network, bits.parse::<u32>().ok()),
        None => (entry, None),
    };
    let Ok(network) = network.trim().parse::<IpAddr>() else {
        return false;
    };
    match (network, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            prefix_match(u32::from(n).into(), u32::from(*a).into(), 32, bits)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => prefix_match(u128::from(n), u128::from(*a), 128, bits),
        _ => false,
    }
}

fn prefix_match(network: u128, addr: u128, width: u32, bits: Option<u32>) -> bool {
    let bits = bits.unwrap_or(width).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (network >> shift) == (addr >> shift)
}

/// Whether every entry of TRUSTED_PROXIES is an address or a network.
pub fn valid_entry(entry: &str) -> bool {
    let (network, bits) = match entry.split_once('/') {
        Some((network, bits)) => (network, Some(bits)),
        None => (entry, None),
    };
    match network.trim().parse::<IpAddr>() {
        Ok(addr) => bits.is_none_or(|bits| {
            bits.parse::<u32>()
                .is_ok_and(|b| b <= if addr.is_ipv4() { 32 } else { 128 })
        }),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", xff.parse().expect("header value"));
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(
            client_addr(ip("203.0.113.9"), &headers("1.2.3.4"), &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_proxy_reports_the_client() {
        let trusted = vec!["10.0.0.0/8".to_owned()];
        assert_eq!(
            client_addr(ip("10.1.2.3"), &headers("198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // A forged entry to the left of the real client is ignored.
        assert_eq!(
            client_addr(
                ip("10.1.2.3"),
                &headers("6.6.6.6, 198.51.100.7, 10.0.0.2"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            client_addr(ip("10.1.2.3"), &headers("nonsense"), &trusted),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn entries_are_addresses_or_networks() {
        assert!(
            valid_entry("127.0.0.1")
                && valid_entry("10.0.0.0/8")
                && valid_entry("::1")
                && valid_entry("fd00::/8")
        );
        assert!(!valid_entry("10.0.0.0/33") && !valid_entry("proxy.local") && !valid_entry(""));
        assert!(matches_entry("::1", &ip("::1")) && !matches_entry("127.0.0.1", &ip("::1")));
        assert!(matches_entry("0.0.0.0/0", &ip("8.8.8.8")));
    }
}
