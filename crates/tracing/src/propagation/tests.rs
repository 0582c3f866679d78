//! The W3C Trace Context test suite's cases (`test/test.py` of the specification's repository),
//! written here as this crate's own tests, one per case, with the specification section each
//! checks. "restarts" means the propagator ignores the header and the service starts a new trace.

use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use proptest::prelude::*;

use super::*;

const ID: &str = "12345678901234567890123456789012";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn extracted(pairs: &[(&str, &str)]) -> SpanContext {
    let cx = W3cTraceContext.extract(&HeaderExtractor(&headers(pairs)));
    cx.span().span_context().clone()
}

/// The trace id continued, or `None` when the trace restarts.
fn continued(traceparent: &str) -> Option<String> {
    let sc = extracted(&[("traceparent", traceparent)]);
    sc.is_valid().then(|| sc.trace_id().to_string())
}

fn tp(flags: &str) -> String {
    format!("00-{ID}-1234567890123456-{flags}")
}

/// The tracestate handed on after extracting these headers (with a valid traceparent).
fn state(lines: &[&str]) -> Option<String> {
    let mut pairs = vec![(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-00",
    )];
    pairs.extend(lines.iter().map(|l| ("tracestate", *l)));
    let sc = extracted(&pairs);
    assert!(sc.is_valid());
    let header = sc.trace_state().header();
    (!header.is_empty()).then_some(header)
}

// ---- traceparent (section 3.2) ----

#[test]
fn test_both_traceparent_and_tracestate_missing() {
    assert!(!extracted(&[]).is_valid());
}

#[test]
fn test_traceparent_included_tracestate_missing() {
    let sc = extracted(&[("traceparent", &tp("01"))]);
    assert_eq!(sc.trace_id().to_string(), ID);
    assert_eq!(sc.span_id().to_string(), "1234567890123456");
    assert!(sc.is_sampled() && sc.is_remote());
}

#[test]
fn test_traceparent_duplicated() {
    let sc = extracted(&[
        (
            "traceparent",
            "00-12345678901234567890123456789011-1234567890123456-01",
        ),
        ("traceparent", &tp("01")),
    ]);
    assert!(!sc.is_valid(), "two traceparent lines restart the trace");
}

#[test]
fn test_traceparent_header_name() {
    for name in ["trace-parent", "trace.parent"] {
        assert!(!extracted(&[(name, &tp("01"))]).is_valid(), "{name}");
    }
}

#[test]
fn test_traceparent_header_name_valid_casing() {
    // HTTP header names are case-insensitive (RFC 9110 section 5.1); HeaderMap lowercases them.
    for name in ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        let sc = extracted(&[(name, &tp("01"))]);
        assert_eq!(sc.trace_id().to_string(), ID, "{name}");
    }
}

#[test]
fn test_traceparent_version_0x00() {
    // Section 3.2.2.1: version 00 has exactly four fields.
    assert_eq!(continued(&format!("{}.", tp("01"))), None);
    assert_eq!(
        continued(&format!("{}-what-the-future-will-be-like", tp("01"))),
        None
    );
}

#[test]
fn test_traceparent_version_0xcc() {
    // Section 3.2.4: a higher version is parsed as 00, ignoring what follows a `-`.
    let cc = format!("cc-{ID}-1234567890123456-01");
    assert_eq!(continued(&cc).as_deref(), Some(ID));
    assert_eq!(
        continued(&format!("{cc}-what-the-future-will-be-like")).as_deref(),
        Some(ID)
    );
    assert_eq!(
        continued(&format!("{cc}.what-the-future-will-be-like")),
        None
    );
}

#[test]
fn test_traceparent_version_0xff() {
    // Section 3.2.2.1: version ff is invalid.
    assert_eq!(continued(&format!("ff-{ID}-1234567890123456-01")), None);
}

#[test]
fn test_traceparent_version_illegal_characters() {
    for v in [".0", "0."] {
        assert_eq!(
            continued(&format!("{v}-{ID}-1234567890123456-01")),
            None,
            "{v}"
        );
    }
}

#[test]
fn test_traceparent_version_too_long() {
    for v in ["000", "0000"] {
        assert_eq!(
            continued(&format!("{v}-{ID}-1234567890123456-01")),
            None,
            "{v}"
        );
    }
}

#[test]
fn test_traceparent_version_too_short() {
    assert_eq!(continued(&format!("0-{ID}-1234567890123456-01")), None);
}

#[test]
fn test_traceparent_trace_id_all_zero() {
    // Section 3.2.2.3: all zero is invalid.
    assert_eq!(
        continued("00-00000000000000000000000000000000-1234567890123456-01"),
        None
    );
}

#[test]
fn test_traceparent_trace_id_illegal_characters() {
    for id in [
        ".2345678901234567890123456789012",
        "1234567890123456789012345678901.",
    ] {
        assert_eq!(
            continued(&format!("00-{id}-1234567890123456-01")),
            None,
            "{id}"
        );
    }
}

#[test]
fn test_traceparent_trace_id_too_long() {
    assert_eq!(
        continued("00-123456789012345678901234567890123-1234567890123456-01"),
        None
    );
}

#[test]
fn test_traceparent_trace_id_too_short() {
    assert_eq!(
        continued("00-1234567890123456789012345678901-1234567890123456-01"),
        None
    );
}

#[test]
fn test_traceparent_parent_id_all_zero() {
    // Section 3.2.2.4: all zero is invalid.
    assert_eq!(continued(&format!("00-{ID}-0000000000000000-01")), None);
}

#[test]
fn test_traceparent_parent_id_illegal_characters() {
    for id in [".234567890123456", "123456789012345."] {
        assert_eq!(continued(&format!("00-{ID}-{id}-01")), None, "{id}");
    }
}

#[test]
fn test_traceparent_parent_id_too_long() {
    assert_eq!(continued(&format!("00-{ID}-12345678901234567-01")), None);
}

#[test]
fn test_traceparent_parent_id_too_short() {
    assert_eq!(continued(&format!("00-{ID}-123456789012345-01")), None);
}

#[test]
fn test_traceparent_trace_flags_illegal_characters() {
    for flags in [".0", "0."] {
        assert_eq!(continued(&tp(flags)), None, "{flags}");
    }
}

#[test]
fn test_traceparent_trace_flags_too_long() {
    assert_eq!(continued(&tp("001")), None);
}

#[test]
fn test_traceparent_trace_flags_too_short() {
    assert_eq!(continued(&tp("1")), None);
}

#[test]
fn test_traceparent_ows_handling() {
    // Section 3.2: optional whitespace around the value is allowed.
    let value = tp("01");
    for padded in [
        format!(" {value}"),
        format!("\t{value}"),
        format!("{value} "),
        format!("{value}\t"),
        format!("\t {value} \t"),
    ] {
        assert_eq!(continued(&padded).as_deref(), Some(ID), "{padded:?}");
    }
}

#[test]
fn uppercase_hex_restarts_the_trace() {
    // Section 3.2.2: HEXDIGLC, lowercase only.
    assert_eq!(
        continued(&format!("00-ABCDEF{}-1234567890123456-01", &ID[6..])),
        None
    );
    assert_eq!(continued(&format!("00-{ID}-123456789012345A-01")), None);
}

// ---- tracestate (section 3.3) ----

#[test]
fn test_tracestate_included_traceparent_missing() {
    // Section 3.3: tracestate without a valid traceparent is not used.
    assert!(!extracted(&[("tracestate", "foo=1")]).is_valid());
    assert!(!extracted(&[("tracestate", "foo=1,bar=2")]).is_valid());
}

#[test]
fn test_tracestate_included_traceparent_included() {
    assert_eq!(state(&["foo=1,bar=2"]).as_deref(), Some("foo=1,bar=2"));
}

#[test]
fn test_tracestate_header_name() {
    for name in ["trace-state", "trace.state"] {
        let sc = extracted(&[("traceparent", &tp("00")), (name, "foo=1")]);
        assert_eq!(sc.trace_state().get("foo"), None, "{name}");
    }
}

#[test]
fn test_tracestate_header_name_valid_casing() {
    for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
        let sc = extracted(&[("traceparent", &tp("00")), (name, "foo=1")]);
        assert_eq!(sc.trace_state().get("foo"), Some("1"), "{name}");
    }
}

#[test]
fn test_tracestate_empty_header() {
    assert_eq!(state(&[""]), None);
    assert_eq!(state(&["foo=1", ""]).as_deref(), Some("foo=1"));
    assert_eq!(state(&["", "foo=1"]).as_deref(), Some("foo=1"));
}

#[test]
fn test_tracestate_multiple_headers_different_keys() {
    // Section 3.3.1: several header lines form one list, in order.
    assert_eq!(
        state(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).as_deref(),
        Some("foo=1,bar=2,rojo=1,congo=2,baz=3")
    );
}

#[test]
fn test_tracestate_duplicated_keys() {
    // Section 3.3.1.3: a key appears at most once.
    for lines in [
        &["foo=1,foo=1"][..],
        &["foo=1,foo=2"],
        &["foo=1", "foo=1"],
        &["foo=1", "foo=2"],
    ] {
        assert_eq!(state(lines), None, "{lines:?}");
    }
}

#[test]
fn test_tracestate_all_allowed_characters() {
    // Section 3.3.1.3.1 (key) and 3.3.1.3.2 (value).
    let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let value: String = (0x20u8..=0x2b)
        .chain(0x2d..=0x3c)
        .chain(0x3e..=0x7e)
        .map(char::from)
        .collect();
    for key in [key.to_owned(), format!("{key}@a-z0-9_-*/")] {
        let sc = extracted(&[
            ("traceparent", &tp("00")),
            ("tracestate", &format!("{key}={value}")),
        ]);
        assert_eq!(sc.trace_state().get(&key), Some(value.as_str()), "{key}");
    }
}

#[test]
fn test_tracestate_ows_handling() {
    for line in [
        "foo=1 \t , \t bar=2, \t baz=3",
        "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
    ] {
        assert_eq!(
            state(&[line]).as_deref(),
            Some("foo=1,bar=2,baz=3"),
            "{line:?}"
        );
    }
    for line in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
        assert_eq!(state(&[line]).as_deref(), Some("foo=1"), "{line:?}");
    }
}

#[test]
fn test_tracestate_key_illegal_characters() {
    for line in ["foo =1", "FOO=1", "foo.bar=1"] {
        assert_eq!(state(&[line]), None, "{line}");
    }
}

#[test]
fn test_tracestate_key_illegal_vendor_format() {
    for line in [
        "foo@=1,bar=2",
        "@foo=1,bar=2",
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
    ] {
        assert_eq!(state(&[line]), None, "{line}");
    }
}

#[test]
fn test_tracestate_member_count_limit() {
    // Section 3.3.1.1: at most 32 list members.
    let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
    let thirty_two = members[..32].join(",");
    let kept = state(&[&thirty_two]).unwrap();
    assert_eq!(kept.split(',').count(), 32);
    assert!(kept.starts_with("bar01=01"));
    assert_eq!(state(&[&members.join(",")]), None);
}

#[test]
fn test_tracestate_key_length_limit() {
    let ok = |key: String| state(&["foo=1", &format!("{key}=1")]);
    assert!(ok("z".repeat(256)).is_some());
    assert_eq!(ok("z".repeat(257)), None);
    assert!(ok(format!("{}@{}", "t".repeat(241), "v".repeat(14))).is_some());
    assert_eq!(ok(format!("{}@v", "t".repeat(242))), None);
    assert_eq!(ok(format!("t@{}", "v".repeat(15))), None);
}

#[test]
fn tracestate_value_rules() {
    // Section 3.3.1.3.2: no empty value, no trailing space, no `,` or `=`, printable ASCII.
    for line in ["foo=", "foo=a=b", "foo=a "] {
        assert_eq!(
            state(&[line]),
            if line == "foo=a " {
                Some("foo=a".to_owned())
            } else {
                None
            },
            "{line:?}"
        );
    }
    assert_eq!(parse_tracestate(["foo=a\u{7f}"]), None);
    assert_eq!(
        parse_tracestate(["foo=a b"]),
        Some(vec![("foo".into(), "a b".into())])
    );
    assert_eq!(
        state(&[&format!("foo={}", "v".repeat(256))]).map(|s| s.len()),
        Some(260)
    );
    assert_eq!(state(&[&format!("foo={}", "v".repeat(257))]), None);
}

// ---- injection ----

fn injected(cx: &opentelemetry::Context) -> HeaderMap {
    let mut out = HeaderMap::new();
    W3cTraceContext.inject_context(cx, &mut HeaderInjector(&mut out));
    out
}

#[test]
fn an_empty_tracestate_is_not_sent() {
    let cx = W3cTraceContext.extract(&HeaderExtractor(&headers(&[("traceparent", &tp("01"))])));
    let out = injected(&cx);
    assert_eq!(out["traceparent"], tp("01"));
    assert!(out.get("tracestate").is_none(), "{out:?}");
    let cx = W3cTraceContext.extract(&HeaderExtractor(&headers(&[
        ("traceparent", &tp("01")),
        ("tracestate", "foo=1"),
    ])));
    assert_eq!(injected(&cx)["tracestate"], "foo=1");
}

#[test]
fn level2_random_flag_is_kept_on_the_way_out() {
    // Level 2, section 3.2.2.5.2: the random flag received is propagated, sampled or not.
    for (received, sent) in [("02", "02"), ("03", "03"), ("00", "00"), ("01", "01")] {
        let cx = W3cTraceContext.extract(&HeaderExtractor(&headers(&[(
            "traceparent",
            &tp(received),
        )])));
        let out = injected(&cx);
        assert!(
            out["traceparent"]
                .to_str()
                .unwrap()
                .ends_with(&format!("-{sent}")),
            "{received}: {out:?}"
        );
        // A child span the SDK built without sampling keeps flags 00; the random bit returns.
        let sc = cx.span().span_context().clone();
        let dropped = opentelemetry::trace::SpanContext::new(
            sc.trace_id(),
            opentelemetry::trace::SpanId::from(7u64),
            opentelemetry::trace::TraceFlags::default(),
            false,
            Default::default(),
        );
        let child = cx.with_remote_span_context(dropped);
        let flags =
            u8::from_str_radix(&injected(&child)["traceparent"].to_str().unwrap()[53..], 16)
                .unwrap();
        assert_eq!(
            flags & 0x02 != 0,
            received == "02" || received == "03",
            "{received}"
        );
    }
}

#[test]
fn a_trace_started_here_is_marked_random() {
    let sc = opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::from(0xabcu128),
        opentelemetry::trace::SpanId::from(1u64),
        opentelemetry::trace::TraceFlags::SAMPLED,
        false,
        Default::default(),
    );
    let cx = opentelemetry::Context::new().with_remote_span_context(sc);
    assert!(
        injected(&cx)["traceparent"]
            .to_str()
            .unwrap()
            .ends_with("-03")
    );
}

// ---- properties (10 000 cases each) ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Any text: no panic; what is accepted formats back to the value it was read from.
    #[test]
    fn any_traceparent_text_never_panics_and_accepted_values_round_trip(value in "[ -~\t]{0,80}") {
        if let Some(p) = parse_traceparent(&value) {
            let shown = format!("{:02x}-{:032x}-{:016x}-{:02x}", p.version, p.trace_id, p.parent_id, p.flags);
            prop_assert!(value.trim_matches([' ', '\t']).starts_with(&shown));
            prop_assert!(p.trace_id != 0 && p.parent_id != 0 && p.version != 0xff);
        }
    }

    /// Valid values are accepted with exactly their fields.
    #[test]
    fn generated_traceparents_are_read_back(trace_id in 1u128.., parent_id in 1u64.., flags: u8) {
        let value = format!("00-{trace_id:032x}-{parent_id:016x}-{flags:02x}");
        prop_assert_eq!(
            parse_traceparent(&value),
            Some(Traceparent { version: 0, trace_id, parent_id, flags })
        );
        // One byte changed to a character outside lowercase hex and `-` always restarts.
        let bytes = value.as_bytes();
        let at = (trace_id % 55) as usize;
        let mut broken = bytes.to_vec();
        broken[at] = b'G';
        prop_assert_eq!(parse_traceparent(std::str::from_utf8(&broken).unwrap()), None);
    }

    /// Any tracestate lines: no panic; what is kept is a valid list of at most 32 distinct keys,
    /// and reading its own header back gives the same list.
    #[test]
    fn any_tracestate_never_panics_and_kept_lists_are_valid(lines in proptest::collection::vec("[ -~\t]{0,60}", 0..4)) {
        if let Some(members) = parse_tracestate(lines.iter().map(String::as_str)) {
            prop_assert!(members.len() <= MAX_TRACESTATE_MEMBERS);
            for (i, (k, v)) in members.iter().enumerate() {
                prop_assert!(valid_key(k) && valid_value(v));
                prop_assert!(members[..i].iter().all(|(other, _)| other != k));
            }
            let header = members.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            prop_assert_eq!(parse_tracestate([header.as_str()]), Some(members));
        }
    }
}

#[test]
fn a_written_traceparent_fills_its_string_exactly() {
    // The response header takes the string as it is only when no capacity is left over.
    for flags in ["00", "01", "03"] {
        let cx = Context::new().with_remote_span_context(extracted(&[("traceparent", &tp(flags))]));
        let written = traceparent(&cx).expect("a valid context");
        assert_eq!(written.len(), 55, "{written}");
        assert_eq!(written.len(), written.capacity(), "{written}");
    }
}
