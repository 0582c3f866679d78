//! `traceparent` and `tracestate` (one header line per input line).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(p) = nilecare_tracing::parse_traceparent(&text) {
        assert!(p.trace_id != 0 && p.parent_id != 0 && p.version != 0xff);
    }
    if let Some(members) = nilecare_tracing::parse_tracestate(text.split('\n')) {
        assert!(members.len() <= nilecare_tracing::MAX_TRACESTATE_MEMBERS);
    }
});
