//! The SSRF guard: webhook URLs may only reach public addresses.
//!
//! Carcosa sends HTTP requests to URLs its API users choose, from inside the operator's network.
//! Without a guard, an endpoint could point at `http://127.0.0.1:5432`, the cloud metadata
//! service (`169.254.169.254`) or an internal admin page. So every address a webhook would connect
//! to must be public: loopback, private, link-local, unique-local, shared (CGNAT), multicast,
//! broadcast, reserved, documentation and unspecified ranges are refused — unless the operator
//! allows private addresses (`webhook_allow_private`, for development and tests) or lists
//! networks in `webhook_allow_cidrs`.
//!
//! The check runs when an endpoint is created or its URL changed (all resolved addresses must
//! pass) and again at every send, inside the HTTP client's DNS resolver: the connection can only
//! go to addresses that passed, so a DNS answer that changes after creation (DNS rebinding) gets
//! nowhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::Url;

/// Which addresses webhooks may connect to.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow_private: bool,
    allowed: Vec<IpNet>,
}

/// Why a webhook URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The host resolves to (or is) an address that is not allowed.
    #[error(
        "{host} resolves to {address}, a loopback, private or otherwise internal address; webhooks only go to public addresses"
    )]
    NotAllowed {
        /// The host in the URL.
        host: String,
        /// The refused address.
        address: IpAddr,
    },
    /// The host does not resolve.
    #[error("{host} does not resolve: {reason}")]
    Unresolvable {
        /// The host in the URL.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
}

impl AddressPolicy {
    /// A policy that allows public addresses, plus every address if `allow_private`, plus the
    /// `allowed` networks.
    #[must_use]
    pub fn new(allow_private: bool, allowed: Vec<IpNet>) -> Self {
        Self { allow_private, allowed }
    }

    /// Whether a connection to `ip` is allowed.
    #[must_use]
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Resolves the URL's host and checks every address it has.
    pub async fn check_url(&self, url: &Url) -> Result<(), GuardError> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            _ => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| GuardError::Unresolvable { host: host.clone(), reason: e.to_string() })?
                .map(|a| a.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(GuardError::Unresolvable { host, reason: "no addresses".into() });
        }
        match addresses.into_iter().find(|ip| !self.allows(*ip)) {
            Some(address) => Err(GuardError::NotAllowed { host, address }),
            None => Ok(()),
        }
    }

    /// Checks a URL whose host is an IP literal (the HTTP client's resolver is not asked for
    /// those); other hosts pass here and are checked by [`GuardedResolver`].
    pub fn check_literal(&self, url: &Url) -> Result<(), GuardError> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        if self.allows(ip) {
            Ok(())
        } else {
            Err(GuardError::NotAllowed { host: ip.to_string(), address: ip })
        }
    }
}

/// A DNS resolver for the webhook HTTP client that drops every address the policy refuses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    #[must_use]
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                resolved.iter().copied().filter(|a| policy.allows(a.ip())).collect();
            if allowed.is_empty() {
                let address = resolved.first().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SocketAddr::ip);
                let err: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(GuardError::NotAllowed { host, address });
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `ip` is a globally routable unicast address.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return is_public_v4(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || segments[0] == 0x2001 && segments[1] == 0x0db8 // documentation
        || segments[..5] == [0, 0, 0, 0, 0]) // IPv4-compatible and other reserved ::/80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip(internal)), "{internal} must not be public");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn the_policy_can_open_private_ranges() {
        let strict = AddressPolicy::default();
        assert!(!strict.allows(ip("10.1.2.3")));
        let listed = AddressPolicy::new(false, vec!["10.1.0.0/16".parse().unwrap()]);
        assert!(listed.allows(ip("10.1.2.3")));
        assert!(!listed.allows(ip("10.2.0.1")));
        assert!(AddressPolicy::new(true, Vec::new()).allows(ip("127.0.0.1")));
    }

    #[tokio::test]
    async fn urls_are_checked_after_resolution() {
        let strict = AddressPolicy::default();
        for url in [
            "http://127.0.0.1/x",
            "http://10.0.0.1/",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:9000/hook",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(matches!(strict.check_url(&url).await, Err(GuardError::NotAllowed { .. })), "{url}");
        }
        let literal = Url::parse("http://127.0.0.1/").unwrap();
        assert!(strict.check_literal(&literal).is_err());
        assert!(AddressPolicy::new(true, Vec::new()).check_url(&literal).await.is_ok());
    }
}
