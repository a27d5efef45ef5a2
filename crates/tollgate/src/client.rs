//! The client's address: the TCP peer, or, when the peer is a trusted proxy, the address the
//! proxy reports in `X-Forwarded-For`. Throttling, sessions and login records use it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::state::AppState;

/// The address of the client that sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub IpAddr);

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
    pub(crate) fn of(parts: &Parts, state: &AppState) -> ClientAddr {
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

impl ClientAddr {
    /// The client as a password check sees it: this address and `agent`.
    pub(crate) fn with(self, agent: &UserAgent) -> crate::service::login::Client<'_> {
        crate::service::login::Client {
            address: self.0,
            user_agent: agent.0.as_deref(),
        }
    }
}

/// The client's `User-Agent`, as sent (visible ASCII), cut to 256 bytes; kept with login
/// records so that a user can tell their devices apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserAgent(pub Option<String>);

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
    pub(crate) fn of(headers: &HeaderMap) -> UserAgent {
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
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |addr: &IpAddr| trusted.iter().any(|net| net.contains(addr));
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

/// The network a client address is counted by, for limits per client: an IPv4 address as
/// itself (also when mapped into IPv6), an IPv6 address by its /64, since one subscriber is
/// commonly given a whole /64 and picks from it freely.
pub(crate) fn counted_network(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Whether `peer` is one of the TRUSTED_PROXIES.
pub(crate) fn is_trusted_proxy(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let peer = peer.to_canonical();
    trusted.iter().any(|net| net.contains(&peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", xff.parse().expect("header value"));
        headers
    }

    fn net(text: &str) -> IpNet {
        text.parse().expect("a network")
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
        let trusted = vec![net("10.0.0.0/8")];
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
    fn proxies_match_by_network_and_family() {
        assert!(is_trusted_proxy(ip("::1"), &[net("::1/128")]));
        assert!(!is_trusted_proxy(ip("::1"), &[net("127.0.0.1/32")]));
        assert!(is_trusted_proxy(ip("8.8.8.8"), &[net("0.0.0.0/0")]));
        // An IPv4 peer seen through an IPv6 socket is still that IPv4 address.
        assert!(is_trusted_proxy(
            ip("::ffff:10.1.2.3"),
            &[net("10.0.0.0/8")]
        ));
    }
}
