//! Resolvers that read the host: [`Subdomain`] and [`CustomDomain`]; the host normalization they
//! share, and the [`TrustedProxies`] whose forwarding headers are believed.
//!
//! Host names are compared in ASCII, lower case, without port or trailing dot. Punycode labels
//! (`xn--…`) stay as they are: nothing here decodes to Unicode, so two spellings of one name
//! cannot be made to look alike.

use std::borrow::Cow;
use std::future::{Future, ready};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::header::{FORWARDED, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use super::{Identifier, Rejection, Resolver};

/// The longest host name DNS allows.
const MAX_HOST_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A normalized host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name: ASCII, lower case, no port, no trailing dot.
    Name(String),
    /// An IP literal (`10.0.0.1`, `[::1]`), which never names a tenant.
    Ip(IpAddr),
}

/// Normalizes a `Host`-style value: drops the port and one trailing dot, lower-cases, and tells
/// IP literals apart. `None` for anything that is not a plausible host (empty, non-ASCII, empty
/// or over-long labels, stray characters, a bad port, a numeric last label such as `127.1`).
#[must_use]
pub fn normalize_host(raw: &str) -> Option<Host> {
    parse_host(raw).map(|parsed| match parsed {
        Parsed::Name(name) => Host::Name(name.into_owned()),
        Parsed::Ip(ip) => Host::Ip(ip),
    })
}

/// A host as [`parse_host`] reads it: the name borrowed when it is already in lower case.
enum Parsed<'a> {
    Name(Cow<'a, str>),
    Ip(IpAddr),
}

/// [`normalize_host`] without an allocation for names already in lower case (the hit path).
fn parse_host(raw: &str) -> Option<Parsed<'_>> {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !after.is_empty() && !is_port(after.strip_prefix(':')?) {
            return None;
        }
        return ip.parse::<Ipv6Addr>().ok().map(|ip| Parsed::Ip(IpAddr::V6(ip)));
    }
    if raw.bytes().filter(|b| *b == b':').count() > 1 {
        // An unbracketed IPv6 literal, as some clients send in `Forwarded`.
        return raw.parse::<Ipv6Addr>().ok().map(|ip| Parsed::Ip(IpAddr::V6(ip)));
    }
    let name = match raw.rsplit_once(':') {
        Some((name, port)) if is_port(port) => name,
        Some(_) => return None,
        None => raw,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOST_LEN {
        return None;
    }
    // One pass over the name (this runs on every request): every label non-empty, at most 63
    // characters of `[A-Za-z0-9_-]`; is there upper case; is the last label all digits.
    let (mut label_len, mut label_digits, mut upper) = (0, true, false);
    for b in name.bytes() {
        if b == b'.' {
            if label_len == 0 {
                return None;
            }
            (label_len, label_digits) = (0, true);
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return None;
        }
        label_len += 1;
        if label_len > MAX_LABEL_LEN {
            return None;
        }
        label_digits &= b.is_ascii_digit();
        upper |= b.is_ascii_uppercase();
    }
    if label_len == 0 {
        return None;
    }
    if label_digits {
        // An IPv4 literal. Anything else with a numeric last label (`127.1`, `1.2.3.256`)
        // browsers read as a (bad) IPv4 address, never as a name.
        return name.parse::<Ipv4Addr>().ok().map(|ip| Parsed::Ip(IpAddr::V4(ip)));
    }
    if upper {
        Some(Parsed::Name(Cow::Owned(name.to_ascii_lowercase())))
    } else {
        Some(Parsed::Name(Cow::Borrowed(name)))
    }
}

/// A normalized DNS name, or `None` for IP literals and invalid hosts.
pub(crate) fn normalize_domain(raw: &str) -> Option<String> {
    match normalize_host(raw)? {
        Host::Name(name) => Some(name),
        Host::Ip(_) => None,
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `true` when `name` is `base` or a name under it, on a label boundary.
fn is_under(name: &str, base: &str) -> bool {
    name == base || name.strip_suffix(base).is_some_and(|rest| rest.ends_with('.'))
}

/// A configured base domain, normalized.
///
/// # Panics
///
/// If `raw` is not a DNS name: a configuration mistake, better found at start-up.
fn config_domain(raw: &str) -> String {
    normalize_domain(raw).unwrap_or_else(|| panic!("`{raw}` is not a DNS name"))
}

/// The peer address of the connection, from axum's `ConnectInfo<SocketAddr>` (set by
/// `into_make_service_with_connect_info::<SocketAddr>()`) or `MockConnectInfo` in tests.
#[must_use]
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    let extensions = &parts.extensions;
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .or_else(|| extensions.get::<MockConnectInfo<SocketAddr>>().map(|MockConnectInfo(addr)| addr.ip()))
}

/// A configured network that is not an IP network or address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP network (CIDR) or address")]
pub struct InvalidProxy(pub String);

/// The proxies (networks, in CIDR notation) whose forwarding headers are believed. Empty by
/// default: a request's own `X-Forwarded-Host` or tenant header is then never trusted.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Trusts no one.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses networks (`10.0.0.0/8`, `fd00::/8`) or single addresses (`127.0.0.1`).
    pub fn new<I>(networks: I) -> Result<Self, InvalidProxy>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        networks
            .into_iter()
            .map(|text| {
                let text = text.as_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidProxy(text.chars().take(80).collect()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|nets| Self(nets.into()))
    }

    /// Whether `ip` is in a trusted network. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`)
    /// count as the IPv4 address.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether the request came straight from a trusted proxy.
    #[must_use]
    pub fn trusts(&self, parts: &Parts) -> bool {
        !self.0.is_empty() && peer_ip(parts).is_some_and(|ip| self.contains(ip))
    }
}

/// The host a trusted proxy forwarded: the `host=` of the last `Forwarded` element, else the
/// last `X-Forwarded-Host` value — the ones the nearest (trusted) proxy wrote.
fn forwarded_host(headers: &HeaderMap) -> Option<&str> {
    let last = |name: &HeaderName| {
        headers
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
    };
    let from_forwarded = last(&FORWARDED).and_then(|element| {
        element.split(';').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim().eq_ignore_ascii_case("host").then(|| value.trim().trim_matches('"'))
        })
    });
    from_forwarded.or_else(|| last(&X_FORWARDED_HOST).map(str::trim)).filter(|h| !h.is_empty())
}

/// The request's host: forwarded by a trusted proxy, else the request target's authority
/// (HTTP/2, absolute-form), else the `Host` header.
fn request_host<'a>(parts: &'a Parts, proxies: &TrustedProxies) -> Option<Parsed<'a>> {
    let forwarded = if proxies.trusts(parts) { forwarded_host(&parts.headers) } else { None };
    let raw = forwarded
        .or_else(|| parts.uri.authority().map(|a| a.host()))
        .or_else(|| parts.headers.get(HOST).and_then(|v| v.to_str().ok()))?;
    parse_host(raw)
}

/// The tenant is a subdomain of one of your base domains: `acme.app.example.com` under
/// `app.example.com` names the slug `acme`.
///
/// * Names must sit under a base on a label boundary: `evil-app.com` and `app.com.evil.com`
///   never match `app.com`. With several bases, the longest that matches is used.
/// * The base itself, and the ignored names (`www` and `app` by default), name no tenant.
/// * Nested names (`a.b.app.com`) name no tenant unless [`Subdomain::allow_nested`]; then the
///   label next to the base (`b`) is the tenant.
/// * IP literals never match. `X-Forwarded-Host` and `Forwarded: host=` are read only from
///   [`TrustedProxies`].
#[derive(Debug, Clone)]
pub struct Subdomain {
    bases: Vec<String>,
    ignored: Vec<String>,
    allow_nested: bool,
    proxies: TrustedProxies,
}

impl Subdomain {
    /// Subdomains of `bases` (`app.example.com`; case, port and trailing dot do not matter).
    ///
    /// # Panics
    ///
    /// If a base is not a DNS name (an IP address, an empty string).
    #[must_use]
    pub fn new<I>(bases: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut bases: Vec<String> = bases.into_iter().map(|b| config_domain(b.as_ref())).collect();
        bases.sort_by_key(|b| std::cmp::Reverse(b.len()));
        Self {
            bases,
            ignored: vec!["www".into(), "app".into()],
            allow_nested: false,
            proxies: TrustedProxies::none(),
        }
    }

    /// Replaces the names that are not tenants (default `www`, `app`).
    #[must_use]
    pub fn ignore<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.ignored = names.into_iter().map(|n| n.as_ref().to_ascii_lowercase()).collect();
        self
    }

    /// Accepts `a.b.app.com`, taking `b` as the tenant (default: refused).
    #[must_use]
    pub fn allow_nested(mut self, allow: bool) -> Self {
        self.allow_nested = allow;
        self
    }

    /// Believes the forwarded host from these proxies.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// The slug a host header value names, if any.
    #[must_use]
    pub fn identify(&self, host: &str) -> Option<Identifier> {
        match normalize_host(host)? {
            Host::Name(name) => self.identify_name(&name),
            Host::Ip(_) => None,
        }
    }

    fn identify_name(&self, name: &str) -> Option<Identifier> {
        let base = self.bases.iter().find(|base| is_under(name, base))?;
        let prefix = name.strip_suffix(base.as_str())?.strip_suffix('.')?;
        let label = match prefix.rsplit_once('.') {
            Some((_, label)) if self.allow_nested => label,
            Some(_) => return None,
            None => prefix,
        };
        if self.ignored.iter().any(|ignored| ignored == label) {
            return None;
        }
        Some(Identifier::Slug(label.to_owned()))
    }
}

impl Resolver for Subdomain {
    fn resolve(&self, parts: &Parts) -> impl Future<Output = Result<Option<Identifier>, Rejection>> + Send {
        let found = match request_host(parts, &self.proxies) {
            Some(Parsed::Name(name)) => self.identify_name(&name),
            _ => None,
        };
        ready(Ok(found))
    }
}

/// The whole host is the identifier, looked up as one of a tenant's custom domains
/// (`metadata.domains`).
///
/// Exclude your own domains ([`CustomDomain::exclude`]), so that `www.app.example.com` is not
/// looked up as a custom domain when the [`Subdomain`] before it found no tenant.
#[derive(Debug, Clone, Default)]
pub struct CustomDomain {
    excluded: Vec<String>,
    proxies: TrustedProxies,
}

impl CustomDomain {
    /// Every host that is a DNS name.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Hosts equal to or under these domains are not custom domains.
    ///
    /// # Panics
    ///
    /// If a domain is not a DNS name.
    #[must_use]
    pub fn exclude<I>(mut self, domains: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.excluded.extend(domains.into_iter().map(|d| config_domain(d.as_ref())));
        self
    }

    /// Believes the forwarded host from these proxies.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    fn identify_name(&self, name: String) -> Option<Identifier> {
        (!self.excluded.iter().any(|base| is_under(&name, base))).then_some(Identifier::Domain(name))
    }
}

impl Resolver for CustomDomain {
    fn resolve(&self, parts: &Parts) -> impl Future<Output = Result<Option<Identifier>, Rejection>> + Send {
        let found = match request_host(parts, &self.proxies) {
            Some(Parsed::Name(name)) => self.identify_name(name.into_owned()),
            _ => None,
        };
        ready(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testing::{parts, parts_from};

    fn slug(s: &str) -> Option<Identifier> {
        Some(Identifier::Slug(s.into()))
    }

    #[test]
    fn hosts_are_normalized() {
        let name = |s: &str| Some(Host::Name(s.into()));
        let cases: &[(&str, Option<Host>)] = &[
            ("acme.app.com", name("acme.app.com")),
            ("ACME.App.COM", name("acme.app.com")),
            ("acme.app.com:8080", name("acme.app.com")),
            ("acme.app.com.", name("acme.app.com")),
            ("acme.app.com.:443", name("acme.app.com")),
            (" acme.app.com ", name("acme.app.com")),
            ("xn--bcher-kva.app.com", name("xn--bcher-kva.app.com")),
            ("XN--BCHER-KVA.app.com", name("xn--bcher-kva.app.com")),
            ("10.0.0.1", Some(Host::Ip("10.0.0.1".parse().unwrap()))),
            ("10.0.0.1:80", Some(Host::Ip("10.0.0.1".parse().unwrap()))),
            ("[::1]:8080", Some(Host::Ip("::1".parse().unwrap()))),
            ("[::1]", Some(Host::Ip("::1".parse().unwrap()))),
            ("::1", Some(Host::Ip("::1".parse().unwrap()))),
            ("127.1", None),
            ("1.2.3.256", None),
            ("", None),
            (":80", None),
            ("acme.app.com:http", None),
            ("acme..app.com", None),
            (".app.com", None),
            ("acme.app.com..", None),
            ("bücher.app.com", None),
            ("acme app.com", None),
            ("acme/x.app.com", None),
            ("[::1", None),
            ("[::1]x", None),
            ("1.2.3.4.5", None),
            ("10.0.0.1.", Some(Host::Ip("10.0.0.1".parse().unwrap()))),
            ("acme.4ever", name("acme.4ever")),
            ("A-1.b_2.COM", name("a-1.b_2.com")),
            ("acme.app.com-", name("acme.app.com-")),
        ];
        for (raw, expected) in cases {
            assert_eq!(&normalize_host(raw), expected, "{raw:?}");
        }
        assert_eq!(normalize_host(&format!("{}.com", "a".repeat(64))), None);
        let longest_label = format!("{}.com", "a".repeat(63));
        assert_eq!(normalize_host(&longest_label), name(&longest_label));
        assert_eq!(normalize_host(&format!("{}.com", "a.".repeat(130))), None);
    }

    #[test]
    fn subdomains_match_on_label_boundaries_only() {
        let resolver = Subdomain::new(["App.com."]);
        let cases: &[(&str, Option<Identifier>)] = &[
            ("acme.app.com", slug("acme")),
            ("ACME.APP.COM:8443", slug("acme")),
            ("acme.app.com.", slug("acme")),
            ("app.com", None),
            ("evil-app.com", None),
            ("acme.evil-app.com", None),
            ("app.com.evil.com", None),
            ("acme.app.com.evil.com", None),
            ("acmeapp.com", None),
            ("www.app.com", None),
            ("app.app.com", None),
            ("a.b.app.com", None),
            ("10.0.0.1", None),
            ("[::1]:8080", None),
            ("xn--bcher-kva.app.com", slug("xn--bcher-kva")),
            ("XN--BCHER-KVA.APP.COM", slug("xn--bcher-kva")),
        ];
        for (host, expected) in cases {
            assert_eq!(&resolver.identify(host), expected, "{host:?}");
        }
    }

    #[test]
    fn subdomain_options() {
        let nested = Subdomain::new(["app.com"]).allow_nested(true);
        assert_eq!(nested.identify("api.acme.app.com"), slug("acme"));
        assert_eq!(nested.identify("acme.www.app.com"), None);
        let ignoring = Subdomain::new(["app.com"]).ignore(["Status"]);
        assert_eq!(ignoring.identify("status.app.com"), None);
        assert_eq!(ignoring.identify("www.app.com"), slug("www"));
        let several = Subdomain::new(["app.com", "eu.app.com", "xn--e1afmkfd.xn--p1ai"]);
        assert_eq!(several.identify("acme.eu.app.com"), slug("acme"));
        assert_eq!(several.identify("acme.app.com"), slug("acme"));
        assert_eq!(several.identify("acme.XN--E1AFMKFD.xn--p1ai"), slug("acme"));
    }

    #[test]
    #[should_panic(expected = "is not a DNS name")]
    fn an_ip_base_domain_is_a_configuration_error() {
        let _ = Subdomain::new(["10.0.0.1"]);
    }

    #[tokio::test]
    async fn forwarded_hosts_are_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::new(["10.0.0.0/8", "::1"]).unwrap();
        let resolver = Subdomain::new(["app.com"]).trusted_proxies(proxies);
        let request = |peer: &str, header: (&str, &str)| {
            parts_from(
                peer,
                axum::http::Request::get("/").header("host", "real.app.com").header(header.0, header.1),
            )
        };
        let cases = [
            ("203.0.113.9:5000", ("x-forwarded-host", "spoof.app.com"), slug("real")),
            ("203.0.113.9:5000", ("forwarded", "host=spoof.app.com"), slug("real")),
            ("10.1.2.3:5000", ("x-forwarded-host", "acme.app.com"), slug("acme")),
            ("10.1.2.3:5000", ("x-forwarded-host", "spoof.app.com, acme.app.com:443"), slug("acme")),
            ("[::ffff:10.1.2.3]:5000", ("x-forwarded-host", "acme.app.com"), slug("acme")),
            ("[::1]:5000", ("forwarded", "for=1.2.3.4;proto=https;host=\"acme.app.com\""), slug("acme")),
            (
                "10.1.2.3:5000",
                ("forwarded", "host=spoof.app.com, for=1.2.3.4;host=acme.app.com"),
                slug("acme"),
            ),
            ("10.1.2.3:5000", ("forwarded", "for=1.2.3.4"), slug("real")),
        ];
        for (peer, header, expected) in cases {
            let found = resolver.resolve(&request(peer, header)).await.unwrap();
            assert_eq!(found, expected, "{peer} {header:?}");
        }
        // Without a peer address (no ConnectInfo), nothing is trusted.
        let no_peer = parts(
            axum::http::Request::get("/")
                .header("host", "real.app.com")
                .header("x-forwarded-host", "spoof.app.com"),
        );
        assert_eq!(resolver.resolve(&no_peer).await.unwrap(), slug("real"));
    }

    #[tokio::test]
    async fn the_request_target_authority_wins_over_the_host_header() {
        let resolver = Subdomain::new(["app.com"]);
        let absolute =
            parts(axum::http::Request::get("http://acme.app.com/x").header("host", "other.app.com"));
        assert_eq!(resolver.resolve(&absolute).await.unwrap(), slug("acme"));
    }

    #[tokio::test]
    async fn custom_domains_are_whole_hosts_outside_the_excluded_domains() {
        let resolver = CustomDomain::new().exclude(["app.com"]);
        let host = |h: &str| parts(axum::http::Request::get("/").header("host", h));
        let domain = |d: &str| Some(Identifier::Domain(d.into()));
        assert_eq!(
            resolver.resolve(&host("Shop.Acme.Example:443")).await.unwrap(),
            domain("shop.acme.example")
        );
        assert_eq!(resolver.resolve(&host("www.app.com")).await.unwrap(), None);
        assert_eq!(resolver.resolve(&host("app.com")).await.unwrap(), None);
        assert_eq!(resolver.resolve(&host("evil-app.com")).await.unwrap(), domain("evil-app.com"));
        assert_eq!(resolver.resolve(&host("192.0.2.1")).await.unwrap(), None);
    }

    #[test]
    fn proxies_parse_networks_and_addresses() {
        let proxies = TrustedProxies::new(["10.0.0.0/8", "192.0.2.7", "fd00::/8"]).unwrap();
        assert!(proxies.contains("10.255.0.1".parse().unwrap()));
        assert!(proxies.contains("192.0.2.7".parse().unwrap()));
        assert!(!proxies.contains("192.0.2.8".parse().unwrap()));
        assert!(proxies.contains("fd12::1".parse().unwrap()));
        assert_eq!(TrustedProxies::new(["nope"]).unwrap_err(), InvalidProxy("nope".into()));
    }
}
