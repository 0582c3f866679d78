//! `X-Forwarded-For` / `Forwarded` behind trusted proxies: the first byte picks the header and
//! the peer, the rest is header lines separated by newlines.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nilecare_rate_limit::{ForwardedHeader, MemoryLimiter, RateLimitLayer};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let header = if first & 1 == 0 { ForwardedHeader::XForwardedFor } else { ForwardedHeader::Forwarded };
    let layer = RateLimitLayer::new(MemoryLimiter::new())
        .trusted_proxies(["10.0.0.0/8", "fd00::/8"])
        .unwrap()
        .forwarded_header(header);
    let mut request = http::Request::get("/");
    for line in rest.split(|&b| b == b'\n') {
        if let Ok(value) = http::HeaderValue::from_bytes(line) {
            request = request.header("x-forwarded-for", value.clone()).header("forwarded", value);
        }
    }
    let (mut parts, ()) = request.body(()).unwrap().into_parts();
    let peer: std::net::SocketAddr = if first & 2 == 0 { "10.0.0.2:80" } else { "203.0.113.7:80" }
        .parse()
        .unwrap();
    parts.extensions.insert(axum::extract::ConnectInfo(peer));
    let ip = layer.client_ip(&parts).expect("a peer address gives a client address");
    if first & 2 != 0 {
        assert_eq!(ip, peer.ip(), "an untrusted peer's headers are ignored");
    }
});
