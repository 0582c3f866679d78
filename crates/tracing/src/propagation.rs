//! [`W3cTraceContext`]: the W3C Trace Context propagator (Level 1, with Level 2's random
//! trace-id flag), strict where the specification is, so that a malformed header starts a new
//! trace instead of continuing a wrong one.

use std::sync::LazyLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, propagation::text_map_propagator::FieldIter};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
static FIELDS: LazyLock<[String; 2]> =
    LazyLock::new(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]);

/// Trace flag bit 0: sampled (Level 1, section 3.2.2.5).
const FLAG_SAMPLED: u8 = 0x01;
/// Trace flag bit 1: the trace id is random (Level 2, section 3.2.2.5.2).
const FLAG_RANDOM: u8 = 0x02;
/// Most list members a `tracestate` may carry (section 3.3.1.1).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// A parsed `traceparent` (section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traceparent {
    /// The version (`00`; a higher one is read as `00`, section 3.2.4).
    pub version: u8,
    /// 16 bytes, not all zero.
    pub trace_id: u128,
    /// 8 bytes, not all zero.
    pub parent_id: u64,
    /// The flags byte as received (bit 0 sampled, bit 1 random).
    pub flags: u8,
}

/// Parses one `traceparent` value: optional surrounding spaces and tabs, then
/// `version-traceid-parentid-flags` in lowercase hex (section 3.2.2). Version `ff` is invalid;
/// version `00` must end after the flags; a higher version may continue after a `-` (section
/// 3.2.4). Trace and parent ids must not be all zero. `None` for anything else.
pub fn parse_traceparent(value: &str) -> Option<Traceparent> {
    let value = value.trim_matches([' ', '\t']).as_bytes();
    if value.len() < 55 {
        return None;
    }
    let version = hex_u8(&value[0..2])?;
    if version == 0xff || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    match (version, value.len()) {
        (0, 55) => {}
        (0, _) => return None,
        (_, 55) => {}
        (_, _) if value[55] == b'-' => {}
        _ => return None,
    }
    let trace_id = hex_u128(&value[3..35]).filter(|id| *id != 0)?;
    let parent_id = hex_u64(&value[36..52]).filter(|id| *id != 0)?;
    let flags = hex_u8(&value[53..55])?;
    Some(Traceparent {
        version,
        trace_id,
        parent_id,
        flags,
    })
}

/// Parses the `tracestate` header lines, combined in order as one list (section 3.3.1):
/// members `key=value` separated by commas with optional spaces and tabs, empty members
/// skipped. `None` (discard the whole header, as the W3C test suite expects) when a member is
/// invalid, a key repeats, or there are more than [`MAX_TRACESTATE_MEMBERS`] members; an
/// empty list is `Some(vec![])`.
pub fn parse_tracestate<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Option<Vec<(String, String)>> {
    let mut members: Vec<(String, String)> = Vec::new();
    for line in lines {
        for member in line.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=')?;
            if !valid_key(key) || !valid_value(value) || members.iter().any(|(k, _)| k == key) {
                return None;
            }
            if members.len() == MAX_TRACESTATE_MEMBERS {
                return None;
            }
            members.push((key.to_owned(), value.to_owned()));
        }
    }
    Some(members)
}

/// `simple-key` or `tenant-id@system-id` (section 3.3.1.3.1).
fn valid_key(key: &str) -> bool {
    let rest_char = |b: u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/');
    match key.split_once('@') {
        None => {
            let b = key.as_bytes();
            (1..=256).contains(&b.len())
                && b[0].is_ascii_lowercase()
                && b[1..].iter().all(|&c| rest_char(c))
        }
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&t.len())
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && t[1..].iter().all(|&c| rest_char(c))
                && (1..=14).contains(&s.len())
                && s[0].is_ascii_lowercase()
                && s[1..].iter().all(|&c| rest_char(c))
        }
    }
}

/// 1 to 256 printable ASCII characters except `,` and `=`, not ending in a space
/// (section 3.3.1.3.2).
fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    (1..=256).contains(&b.len())
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && b[b.len() - 1] != b' '
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex_u128(text: &[u8]) -> Option<u128> {
    text.iter()
        .try_fold(0u128, |acc, &b| Some(acc << 4 | u128::from(hex_digit(b)?)))
}

fn hex_u64(text: &[u8]) -> Option<u64> {
    text.iter()
        .try_fold(0u64, |acc, &b| Some(acc << 4 | u64::from(hex_digit(b)?)))
}

fn hex_u8(text: &[u8]) -> Option<u8> {
    text.iter()
        .try_fold(0u8, |acc, &b| Some(acc << 4 | hex_digit(b)?))
}

/// The SDK's `TraceState` of valid members. It refuses a multi-tenant key whose system id has
/// the maximum 14 characters (its own check is one short); such a member is dropped, the
/// others kept.
fn trace_state(members: Vec<(String, String)>) -> TraceState {
    match TraceState::from_key_value(members.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(state) => state,
        Err(_) => TraceState::from_key_value(
            members
                .iter()
                .filter(|(k, v)| TraceState::from_key_value([(k.as_str(), v.as_str())]).is_ok())
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .unwrap_or_default(),
    }
}

/// The random flag a received `traceparent` carried, kept in the extracted context so that it
/// goes out again when the SDK drops the flags of an unsampled span.
#[derive(Clone, Copy, Debug)]
struct ReceivedFlags {
    trace_id: TraceId,
    random: bool,
}

/// The W3C Trace Context propagator: `traceparent` and `tracestate`.
///
/// Differences from the OpenTelemetry SDK's `TraceContextPropagator`, each required by the
/// specification and checked by this crate's W3C tests:
///
/// - `traceparent` is parsed strictly (field lengths, lowercase hex, version `ff`, nothing after
///   a version `00` value); two `traceparent` header lines start a new trace;
/// - every `tracestate` header line is read and combined; a list with an invalid member, a
///   repeated key or more than 32 members is discarded whole;
/// - Level 2: a received random flag (`02`) is sent on, also for unsampled spans; a trace this
///   service starts is marked random (the SDK's default id generator is random);
/// - an empty `tracestate` is not sent.
///
/// [`init`](crate::init) registers it (with the baggage propagator) globally.
#[derive(Clone, Copy, Debug, Default)]
pub struct W3cTraceContext;

impl W3cTraceContext {
    /// The propagator.
    pub fn new() -> Self {
        W3cTraceContext
    }
}

/// The `traceparent` value of `cx`'s span (`None` for an invalid span context); the random
/// flag is kept as received for a continued trace and set for a trace started here.
pub(crate) fn traceparent(cx: &Context) -> Option<String> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let received = cx
        .get::<ReceivedFlags>()
        .filter(|r| r.trace_id == sc.trace_id());
    let random = received.is_none_or(|r| r.random);
    let flags = (sc.trace_flags().to_u8() & !FLAG_RANDOM) | if random { FLAG_RANDOM } else { 0 };
    let mut traceparent = String::with_capacity(55);
    traceparent.push_str("00-");
    crate::hex::push_hex(&mut traceparent, &sc.trace_id().to_bytes());
    traceparent.push('-');
    crate::hex::push_hex(&mut traceparent, &sc.span_id().to_bytes());
    traceparent.push('-');
    crate::hex::push_hex(&mut traceparent, &[flags]);
    Some(traceparent)
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let Some(traceparent) = traceparent(cx) else {
            return;
        };
        injector.set(TRACEPARENT, traceparent);
        let state = cx.span().span_context().trace_state().header();
        if !state.is_empty() {
            injector.set(TRACESTATE, state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let lines = extractor.get_all(TRACEPARENT).unwrap_or_default();
        // Two traceparent lines cannot be told apart: restart the trace (W3C test suite).
        let [line] = lines.as_slice() else {
            return cx.clone();
        };
        let Some(parent) = parse_traceparent(line) else {
            return cx.clone();
        };
        let state = extractor
            .get_all(TRACESTATE)
            .and_then(parse_tracestate)
            .map(trace_state)
            .unwrap_or_default();
        let trace_id = TraceId::from(parent.trace_id);
        let context = SpanContext::new(
            trace_id,
            SpanId::from(parent.parent_id),
            TraceFlags::new(parent.flags & (FLAG_SAMPLED | FLAG_RANDOM)),
            true,
            state,
        );
        cx.with_remote_span_context(context)
            .with_value(ReceivedFlags {
                trace_id,
                random: parent.flags & FLAG_RANDOM != 0,
            })
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

#[cfg(test)]
mod tests;
