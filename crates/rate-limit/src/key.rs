//! [`KeyExtractor`]: which client a request counts against.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use http::request::Parts;

use crate::forwarded::{TrustedProxies, canonical, client_ip};

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

type ExtractFn = dyn Fn(&Parts, &TrustedProxies) -> Option<String> + Send + Sync;

/// Decides which key a request counts against.
///
/// Keys of any length are safe: a key longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) is
/// counted under its SHA-256 digest ([`stored_key`](crate::stored_key)), never let through.
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
    needs_peer: bool,
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
    /// (`into_make_service_with_connect_info`): without it the layer answers 500 and logs why,
    /// rather than putting every client in one bucket.
    pub fn peer_ip() -> Self {
        Self::peer_ip_v6_prefix(64)
    }

    /// Like [`peer_ip`](Self::peer_ip), grouping IPv6 by another prefix length (128 = per address).
    pub fn peer_ip_v6_prefix(v6_prefix: u8) -> Self {
        KeyExtractor {
            name: "peer_ip",
            needs_peer: true,
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
            needs_peer: false,
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
            needs_peer: false,
            extract: Arc::new(move |parts, _| {
                parts.extensions.get::<T>().map(|t| format!("x:{}", key(t)))
            }),
        }
    }

    /// One key for everything (a global limit).
    pub fn global() -> Self {
        KeyExtractor {
            name: "global",
            needs_peer: false,
            extract: Arc::new(|_, _| Some("global".to_owned())),
        }
    }

    /// Your own function of the request head.
    pub fn custom(f: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        KeyExtractor {
            name: "custom",
            needs_peer: false,
            extract: Arc::new(move |parts, _| f(parts).map(|k| format!("c:{k}"))),
        }
    }

    /// The key of a request; `None` when the extractor finds nothing.
    pub(crate) fn key(&self, parts: &Parts, trusted: &TrustedProxies) -> Option<String> {
        (self.extract)(parts, trusted)
    }

    /// Whether the extractor keys by the connection's peer address.
    pub(crate) fn needs_peer(&self) -> bool {
        self.needs_peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_grouped_by_64() {
        let a = ip_key("2001:db8:1:2:aaaa::1".parse().unwrap(), 64);
        let b = ip_key("2001:db8:1:2:bbbb::9".parse().unwrap(), 64);
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(ip_key("::ffff:1.2.3.4".parse().unwrap(), 64), "1.2.3.4");
        assert_eq!(ip_key("0.10.255.100".parse().unwrap(), 64), "0.10.255.100");
    }
}
