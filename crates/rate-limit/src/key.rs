//! [`KeyExtractor`]: which client a request counts against, and trusted-proxy handling.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use http::request::Parts;

use crate::error::{Error, Result};

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`), for trusted proxies and allow-lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `a.b.c.d/n`, `x::y/n` or a bare address; the error names the bad text.
    pub fn parse(text: &str) -> Result<IpNet> {
        let bad = || Error::InvalidConfig {
            field: "ip_network",
            message: format!("not an IP network: {text:?}"),
        };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` lies in the network (IPv4-mapped IPv6 addresses match IPv4 networks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
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
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Appends the key of an IP: IPv4 as is; IPv6 grouped by its /`v6_prefix` network (one
/// subscriber usually owns a whole /64, so per-address keys would be trivial to evade).
pub(crate) fn push_ip_key(out: &mut String, ip: IpAddr, v6_prefix: u8) {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                crate::text::push_decimal(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let prefix = v6_prefix.min(128);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            let _ = write!(out, "{}/{prefix}", Ipv6Addr::from(u128::from(v6) & mask));
        }
    }
}

/// The key of an IP (see [`push_ip_key`]).
#[cfg(test)]
fn ip_key(ip: IpAddr, v6_prefix: u8) -> String {
    let mut key = String::new();
    push_ip_key(&mut key, ip, v6_prefix);
    key
}

/// Parses one `X-Forwarded-For` / `Forwarded: for=` element: `1.2.3.4`, `1.2.3.4:80`,
/// `[2001:db8::1]:443`, `"[2001:db8::1]"`, `2001:db8::1`. Garbage gives `None`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    t.parse::<IpAddr>()
        .ok()
        .or_else(|| t.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The hops a request went through, client first, from `Forwarded` (RFC 7239) or else
/// `X-Forwarded-For`. `None` when a present header cannot be parsed.
fn forwarded_chain(parts: &Parts) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    let forwarded: Vec<&str> = parts
        .headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        for element in forwarded.iter().flat_map(|v| v.split(',')) {
            for pair in element.split(';') {
                if let Some((k, v)) = pair.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("for") {
                        chain.push(parse_hop(v)?);
                    }
                }
            }
        }
        return Some(chain);
    }
    for value in parts.headers.get_all("x-forwarded-for") {
        for hop in value.to_str().ok()?.split(',') {
            chain.push(parse_hop(hop)?);
        }
    }
    Some(chain)
}

/// The client address: the peer, unless the peer is a trusted proxy; then the rightmost hop of
/// the forwarding chain that is not itself a trusted proxy. Headers from untrusted peers are
/// ignored, so a client cannot choose its own key.
pub(crate) fn client_ip(parts: &Parts, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(chain) = forwarded_chain(parts) else {
        return Some(peer);
    };
    chain
        .iter()
        .rev()
        .copied()
        .find(|ip| !is_trusted(*ip))
        .or_else(|| chain.first().copied())
        .or(Some(peer))
}

type ExtractFn = dyn Fn(&Parts, &[IpNet]) -> Option<String> + Send + Sync;

/// Decides which key a request counts against.
///
/// ```
/// use nilecare_rate_limit::KeyExtractor;
///
/// let by_ip = KeyExtractor::peer_ip();                 // IPv6 grouped by /64
/// let by_api_key = KeyExtractor::header("x-api-key");
/// let by_clinic = KeyExtractor::custom(|parts| {
///     parts.headers.get("x-clinic-id")?.to_str().ok().map(str::to_owned)
/// });
/// # let _ = (by_ip, by_api_key, by_clinic);
/// ```
#[derive(Clone)]
pub struct KeyExtractor {
    name: &'static str,
    extract: Arc<ExtractFn>,
}

impl std::fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyExtractor").field(&self.name).finish()
    }
}

impl KeyExtractor {
    /// The client IP (see [`RateLimitLayer::trusted_proxies`](crate::RateLimitLayer::trusted_proxies)),
    /// IPv6 grouped by /64. Needs axum's `ConnectInfo<SocketAddr>`
    /// (`into_make_service_with_connect_info`).
    pub fn peer_ip() -> Self {
        Self::peer_ip_v6_prefix(64)
    }

    /// Like [`peer_ip`](Self::peer_ip), grouping IPv6 by another prefix length (128 = per address).
    pub fn peer_ip_v6_prefix(v6_prefix: u8) -> Self {
        KeyExtractor {
            name: "peer_ip",
            extract: Arc::new(move |parts, trusted| {
                client_ip(parts, trusted).map(|ip| {
                    let mut key = String::with_capacity(24);
                    key.push_str("ip:");
                    push_ip_key(&mut key, ip, v6_prefix);
                    key
                })
            }),
        }
    }

    /// The value of a header (an API key); requests without it use the shared key `-`.
    pub fn header(name: &'static str) -> Self {
        KeyExtractor {
            name: "header",
            extract: Arc::new(move |parts, _| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some(format!("h:{value}"))
            }),
        }
    }

    /// A value from a request extension, e.g. the authenticated user an auth layer inserted.
    pub fn extension<T: Send + Sync + 'static>(
        key: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> Self {
        KeyExtractor {
            name: "extension",
            extract: Arc::new(move |parts, _| {
                parts.extensions.get::<T>().map(|t| format!("x:{}", key(t)))
            }),
        }
    }

    /// One key for everything (a global limit).
    pub fn global() -> Self {
        KeyExtractor {
            name: "global",
            extract: Arc::new(|_, _| Some("global".to_owned())),
        }
    }

    /// Your own function of the request head.
    pub fn custom(f: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        KeyExtractor {
            name: "custom",
            extract: Arc::new(move |parts, _| f(parts).map(|k| format!("c:{k}"))),
        }
    }

    /// The key of a request; `None` when the extractor finds nothing.
    pub(crate) fn key(&self, parts: &Parts, trusted: &[IpNet]) -> Option<String> {
        (self.extract)(parts, trusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().uri("/");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    #[test]
    fn networks_match_v4_v6_and_mapped() {
        let lan = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(lan.contains("10.1.2.3".parse().unwrap()));
        assert!(lan.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!lan.contains("11.0.0.1".parse().unwrap()));
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("nonsense").is_err());
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        let a = ip_key("2001:db8:1:2:aaaa::1".parse().unwrap(), 64);
        let b = ip_key("2001:db8:1:2:bbbb::9".parse().unwrap(), 64);
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(ip_key("::ffff:1.2.3.4".parse().unwrap(), 64), "1.2.3.4");
        assert_eq!(ip_key("0.10.255.100".parse().unwrap(), 64), "0.10.255.100");
    }

    #[test]
    fn forwarded_headers_only_count_from_trusted_proxies() {
        let trusted = [IpNet::parse("10.0.0.0/8").unwrap()];
        // spoofed header from an untrusted client: ignored
        let p = parts("203.0.113.9:5000", &[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(
            client_ip(&p, &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        // through two trusted proxies: the rightmost untrusted hop
        let p = parts(
            "10.0.0.2:80",
            &[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.1")],
        );
        assert_eq!(
            client_ip(&p, &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
        // RFC 7239 with ports and IPv6
        let p = parts(
            "10.0.0.2:80",
            &[(
                "forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.1",
            )],
        );
        assert_eq!(
            client_ip(&p, &trusted),
            Some("2001:db8::7".parse().unwrap())
        );
        // garbage from a trusted proxy: fall back to the peer, never panic
        let p = parts(
            "10.0.0.2:80",
            &[("x-forwarded-for", "not-an-ip, 300.1.1.1")],
        );
        assert_eq!(client_ip(&p, &trusted), Some("10.0.0.2".parse().unwrap()));
    }
}
