//! The client address behind trusted proxies: `X-Forwarded-For` and `Forwarded` (RFC 7239),
//! read from the right (the nearest proxy) so that nothing a client writes can choose its key.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::ConnectInfo;
use http::request::Parts;
use ipnet::IpNet;

use crate::error::{Error, Result};

/// Which header the trusted proxies write. Only that header is read: a proxy that appends to
/// `X-Forwarded-For` passes a client's own `Forwarded` header through untouched, so reading both
/// would let the client choose its address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// Trusted proxies and the header they write.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustedProxies {
    pub(crate) networks: Vec<IpNet>,
    pub(crate) header: ForwardedHeader,
}

/// Parses networks (`10.0.0.0/8`, `2001:db8::/32`) or bare addresses; the error names `field`
/// and the bad text.
pub(crate) fn parse_networks<I, S>(field: &'static str, networks: I) -> Result<Vec<IpNet>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    networks
        .into_iter()
        .map(|text| {
            let text = text.as_ref().trim();
            IpNet::from_str(text)
                .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
                .map_err(|_| Error::InvalidConfig {
                    field,
                    message: format!("not an IP network or address: {text:?}"),
                })
        })
        .collect()
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` lies in one of `networks` (IPv4-mapped addresses match IPv4 networks).
pub(crate) fn in_networks(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    networks.iter().any(|n| n.contains(&ip))
}

/// The peer address of the connection, when the server provides it (`ConnectInfo`).
pub(crate) fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| canonical(c.0.ip()))
}

/// The client address: the peer, unless the peer is a trusted proxy; then, walking the
/// forwarding chain from the right, the first hop that is not a trusted proxy. A hop that is no
/// address (`unknown`, an obfuscated `_id`, garbage) stops the walk at the proxy that wrote it.
/// Whatever a client puts in the header, the answer is an address a trusted proxy reported.
/// `None` without a peer address.
pub(crate) fn client_ip(parts: &Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = peer_ip(parts)?;
    if trusted.networks.is_empty() || !in_networks(&trusted.networks, peer) {
        return Some(peer);
    }
    let mut nearest = peer;
    // Header lines in order form one list; the last line holds the nearest hops.
    for line in parts.headers.get_all(trusted.header.name()).iter().rev() {
        for element in ElementsFromRight::new(line.as_bytes()) {
            let hop = match trusted.header {
                ForwardedHeader::XForwardedFor => parse_node(element),
                ForwardedHeader::Forwarded => forwarded_for(element).and_then(parse_node),
            };
            match hop {
                Some(ip) if in_networks(&trusted.networks, ip) => nearest = ip,
                Some(ip) => return Some(ip),
                None => return Some(nearest),
            }
        }
    }
    Some(nearest)
}

/// The comma-separated elements of a header value, rightmost first; commas inside quoted strings
/// do not split. The elements right of the first untrusted hop are written by trusted proxies,
/// so scanning from the right sees well-formed quoting for as long as the walk lasts.
struct ElementsFromRight<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> ElementsFromRight<'a> {
    fn new(value: &'a [u8]) -> Self {
        ElementsFromRight {
            rest: value,
            done: false,
        }
    }
}

impl<'a> Iterator for ElementsFromRight<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.done {
                return None;
            }
            let bytes = self.rest;
            let mut quoted = false;
            let mut split = None;
            let mut i = bytes.len();
            while i > 0 {
                i -= 1;
                match bytes[i] {
                    b'"' if !escaped(bytes, i) => quoted = !quoted,
                    b',' if !quoted => {
                        split = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let element = match split {
                Some(at) => {
                    self.rest = &bytes[..at];
                    &bytes[at + 1..]
                }
                None => {
                    self.done = true;
                    bytes
                }
            };
            let element = trim(element);
            // Empty list elements (`a,,b`) are allowed by the list syntax and skipped.
            if !element.is_empty() {
                return Some(element);
            }
        }
    }
}

/// Whether the quote at `i` is escaped (preceded by an odd number of backslashes).
fn escaped(bytes: &[u8], i: usize) -> bool {
    bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// The `for=` value of one `Forwarded` element (`for=192.0.2.60;proto=http;by=203.0.113.43`),
/// unquoted; `None` when the element has none.
fn forwarded_for(element: &[u8]) -> Option<&[u8]> {
    let mut quoted = false;
    let mut start = 0;
    for i in 0..=element.len() {
        let end = i == element.len();
        if !end && element[i] == b'"' && !escaped(element, i) {
            quoted = !quoted;
        }
        if end || (element[i] == b';' && !quoted) {
            let pair = trim(&element[start..i]);
            if let Some(eq) = pair.iter().position(|&b| b == b'=') {
                if pair[..eq].eq_ignore_ascii_case(b"for") {
                    return Some(unquote(trim(&pair[eq + 1..])));
                }
            }
            start = i + 1;
        }
    }
    None
}

/// A quoted-string's content (escapes are not needed for node values: `"[2001:db8::1]:80"`).
fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    }
}

/// A node (RFC 7239 section 6): `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`; X-Forwarded-For also writes a bare `2001:db8::1`. `unknown`,
/// obfuscated identifiers (`_hidden`, `_SEVKISEK`) and anything else give `None`.
fn parse_node(node: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(unquote(trim(node))).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        return match addr.parse::<IpAddr>().ok()? {
            ip @ IpAddr::V6(_) => Some(canonical(ip)),
            IpAddr::V4(_) => None,
        };
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let (addr, port) = text.rsplit_once(':')?;
    if !valid_port(port) {
        return None;
    }
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A port: 1 to 5 digits (RFC 7239 `node-port`), or an obfuscated port (`_abc`).
fn valid_port(port: &str) -> bool {
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let obfuscated = port.len() > 1
        && port.starts_with('_')
        && port[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    digits || obfuscated
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

    fn trusted(header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks: parse_networks("trusted_proxies", ["10.0.0.0/8", "fd00::/8"]).unwrap(),
            header,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_match_v4_v6_and_mapped_and_bad_text_names_the_field() {
        let nets = parse_networks(
            "trusted_proxies",
            ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"],
        )
        .unwrap();
        assert!(in_networks(&nets, ip("10.1.2.3")));
        assert!(in_networks(&nets, ip("::ffff:10.1.2.3")));
        assert!(!in_networks(&nets, ip("11.0.0.1")));
        assert!(in_networks(&nets, ip("2001:db8:ffff::1")));
        assert!(in_networks(&nets, ip("192.0.2.7")));
        assert!(!in_networks(&nets, ip("192.0.2.8")));
        for bad in ["10.0.0.0/33", "nonsense", "", "1.2.3.4/"] {
            let e = parse_networks("trusted_proxies", [bad]).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidConfig { field: "trusted_proxies", message } if message.contains(&format!("{bad:?}"))),
                "{e}"
            );
        }
    }

    #[test]
    fn spoofed_headers_from_an_untrusted_peer_are_ignored() {
        let t = trusted(ForwardedHeader::XForwardedFor);
        let p = parts("203.0.113.9:5000", &[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(client_ip(&p, &t), Some(ip("203.0.113.9")));
    }

    #[test]
    fn x_forwarded_for_takes_the_rightmost_untrusted_hop() {
        let t = trusted(ForwardedHeader::XForwardedFor);
        let p = parts(
            "10.0.0.2:80",
            &[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.1")],
        );
        assert_eq!(client_ip(&p, &t), Some(ip("198.51.100.7")));
        // Ports, brackets, bare IPv6, quotes, several header lines.
        for (value, want) in [
            ("198.51.100.7:4711, 10.0.0.1", "198.51.100.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
            ("\"[2001:db8::7]\"", "2001:db8::7"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
        ] {
            let p = parts("10.0.0.2:80", &[("x-forwarded-for", value)]);
            assert_eq!(client_ip(&p, &t), Some(ip(want)), "{value}");
        }
        let p = parts(
            "10.0.0.2:80",
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "198.51.100.7, 10.0.0.1"),
            ],
        );
        assert_eq!(client_ip(&p, &t), Some(ip("198.51.100.7")));
    }

    #[test]
    fn forwarded_rfc7239_quoted_ports_ipv6_and_obfuscated_nodes() {
        let t = trusted(ForwardedHeader::Forwarded);
        // RFC 7239 section 4 examples, behind one trusted proxy.
        for (value, want) in [
            ("for=\"_gazonk\"", "10.0.0.2"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            ("for=unknown", "10.0.0.2"),
            ("for=192.0.2.43:_port1", "192.0.2.43"),
            (
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.1",
                "2001:db8::7",
            ),
            // a quoted comma or semicolon in another parameter does not split the element
            ("for=192.0.2.9;note=\"a,b;c\"", "192.0.2.9"),
        ] {
            let p = parts("10.0.0.2:80", &[("forwarded", value)]);
            assert_eq!(client_ip(&p, &t), Some(ip(want)), "{value}");
        }
        // An obfuscated hop behind trusted proxies stops the walk at the proxy that wrote it.
        let p = parts(
            "10.0.0.2:80",
            &[("forwarded", "for=1.2.3.4, for=_x, for=10.0.0.9")],
        );
        assert_eq!(client_ip(&p, &t), Some(ip("10.0.0.9")));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        // A proxy writing X-Forwarded-For passes the client's own Forwarded header through.
        let t = trusted(ForwardedHeader::XForwardedFor);
        let p = parts(
            "10.0.0.2:80",
            &[
                ("forwarded", "for=6.6.6.6"),
                ("x-forwarded-for", "198.51.100.7"),
            ],
        );
        assert_eq!(client_ip(&p, &t), Some(ip("198.51.100.7")));
    }

    #[test]
    fn garbage_from_a_trusted_proxy_falls_back_to_that_proxy() {
        let t = trusted(ForwardedHeader::XForwardedFor);
        let p = parts(
            "10.0.0.2:80",
            &[("x-forwarded-for", "not-an-ip, 300.1.1.1")],
        );
        assert_eq!(client_ip(&p, &t), Some(ip("10.0.0.2")));
        let p = parts("10.0.0.2:80", &[("x-forwarded-for", "1.2.3.4:123456")]);
        assert_eq!(client_ip(&p, &t), Some(ip("10.0.0.2")));
    }

    #[test]
    fn no_peer_address_is_none() {
        let (parts, ()) = http::Request::new(()).into_parts();
        assert_eq!(
            client_ip(&parts, &trusted(ForwardedHeader::Forwarded)),
            None
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn config() -> ProptestConfig {
            ProptestConfig::with_cases(10_000)
        }

        /// An untrusted client address, v4 or v6, outside 10/8 and fd00::/8.
        fn client() -> impl Strategy<Value = IpAddr> {
            prop_oneof![
                (11u8..=223, any::<[u8; 3]>())
                    .prop_map(|(a, [b, c, d])| IpAddr::from([a, b, c, d])),
                any::<[u16; 7]>().prop_map(|rest| {
                    IpAddr::from([
                        0x2001, rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6],
                    ])
                }),
            ]
        }

        /// How a proxy writes a node in X-Forwarded-For.
        fn xff_node(ip: IpAddr, style: u8) -> String {
            match (ip, style % 3) {
                (IpAddr::V4(v4), 0) => v4.to_string(),
                (IpAddr::V4(v4), _) => format!("{v4}:{}", 1024 + u32::from(style)),
                (IpAddr::V6(v6), 0) => v6.to_string(),
                (IpAddr::V6(v6), 1) => format!("[{v6}]"),
                (IpAddr::V6(v6), _) => format!("[{v6}]:{}", 1024 + u32::from(style)),
            }
        }

        /// How a proxy writes a node in `Forwarded` (quoted when it has a colon).
        fn forwarded_node(ip: IpAddr, style: u8) -> String {
            match (ip, style % 2) {
                (IpAddr::V4(v4), 0) => format!("for={v4}"),
                (IpAddr::V4(v4), _) => {
                    format!("for=\"{v4}:{}\";proto=https", 1024 + u32::from(style))
                }
                (IpAddr::V6(v6), 0) => format!("for=\"[{v6}]\""),
                (IpAddr::V6(v6), _) => {
                    format!("For=\"[{v6}]:{}\";by=_proxy", 1024 + u32::from(style))
                }
            }
        }

        fn header_parts(peer: &str, name: &str, lines: &[String]) -> Option<Parts> {
            let mut req = http::Request::builder().uri("/");
            for line in lines {
                req = req.header(name, http::HeaderValue::from_bytes(line.as_bytes()).ok()?);
            }
            let (mut parts, ()) = req.body(()).ok()?.into_parts();
            parts
                .extensions
                .insert(ConnectInfo(peer.parse::<SocketAddr>().ok()?));
            Some(parts)
        }

        proptest! {
            #![proptest_config(config())]

            /// Whatever a client writes before the hops its proxies append, the key is the
            /// address the first trusted proxy saw (X-Forwarded-For, one line or one per hop).
            #[test]
            fn x_forwarded_for_key_never_comes_from_a_client_written_hop(
                prefix in "[ -~\t]{0,48}",
                real in client(),
                proxies in proptest::collection::vec(any::<[u8; 3]>(), 0..4),
                style in any::<u8>(),
                split_lines in any::<bool>(),
            ) {
                let t = trusted(ForwardedHeader::XForwardedFor);
                let mut hops = vec![xff_node(real, style)];
                hops.extend(proxies.iter().map(|[a, b, c]| format!("10.{a}.{b}.{c}")));
                let lines = if split_lines {
                    let mut lines = vec![prefix.clone()];
                    lines.extend(hops);
                    lines
                } else {
                    vec![format!("{prefix}, {}", hops.join(", "))]
                };
                if let Some(p) = header_parts("10.0.0.2:80", "x-forwarded-for", &lines) {
                    prop_assert_eq!(client_ip(&p, &t), Some(canonical(real)));
                }
            }

            /// The same for RFC 7239 `Forwarded`, quoted nodes, ports and parameters included.
            #[test]
            fn forwarded_key_never_comes_from_a_client_written_element(
                prefix in "[ -~\t]{0,48}",
                real in client(),
                proxies in proptest::collection::vec(any::<[u8; 3]>(), 0..4),
                style in any::<u8>(),
            ) {
                let t = trusted(ForwardedHeader::Forwarded);
                let mut hops = vec![forwarded_node(real, style)];
                hops.extend(proxies.iter().map(|[a, b, c]| format!("for=10.{a}.{b}.{c}")));
                let line = format!("{prefix}, {}", hops.join(", "));
                if let Some(p) = header_parts("10.0.0.2:80", "forwarded", &[line]) {
                    prop_assert_eq!(client_ip(&p, &t), Some(canonical(real)));
                }
            }

            /// From an untrusted peer no header value matters; from a trusted one, any bytes
            /// give an address without panicking, and never a trusted-looking hop's neighbour
            /// beyond an unparsable one.
            #[test]
            fn any_header_bytes_never_panic_and_untrusted_peers_are_themselves(
                value in proptest::collection::vec(any::<u8>(), 0..96),
                forwarded in any::<bool>(),
            ) {
                let header = if forwarded { ForwardedHeader::Forwarded } else { ForwardedHeader::XForwardedFor };
                let t = trusted(header);
                let Ok(value) = http::HeaderValue::from_bytes(&value) else { return Ok(()); };
                for (peer, trusted_peer) in [("203.0.113.5:1", false), ("10.0.0.2:1", true)] {
                    let mut req = http::Request::builder().uri("/");
                    req = req.header(header.name(), value.clone());
                    let (mut parts, ()) = req.body(()).unwrap().into_parts();
                    parts.extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
                    let got = client_ip(&parts, &t);
                    prop_assert!(got.is_some());
                    if !trusted_peer {
                        prop_assert_eq!(got, Some(ip("203.0.113.5")));
                    }
                }
            }
        }
    }
}
