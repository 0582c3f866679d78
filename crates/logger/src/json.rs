//! [`JsonLayer`]: one flat JSON object per event, span fields included, sensitive values redacted.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::OnceLock;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::hex::push_hex;
use crate::redact::{REDACTED, Redactor};

/// The trace context of the current span, as the tracing crate reports it: the raw ids, written
/// on each line as lowercase hex (no string is built or escaped per line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceContext {
    /// The trace id (16 bytes; written as 32 hex digits).
    pub trace_id: [u8; 16],
    /// The span id (8 bytes; written as 16 hex digits).
    pub span_id: [u8; 8],
}

impl TraceContext {
    /// The context of a span from its raw ids (OpenTelemetry's `TraceId::to_bytes` and
    /// `SpanId::to_bytes`).
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        TraceContext { trace_id, span_id }
    }
}

static TRACE_CONTEXT: OnceLock<fn() -> Option<TraceContext>> = OnceLock::new();

/// Tells the logger the trace context of the span an event belongs to: the subscriber the span
/// lives in (held weakly by the layer; upgrade it only when needed), the span's id and its
/// metadata. See [`set_span_trace_context_provider`].
pub type SpanTraceContextProvider = fn(
    &tracing::dispatcher::WeakDispatch,
    &Id,
    &'static tracing::Metadata<'static>,
) -> Option<TraceContext>;

static SPAN_TRACE_CONTEXT: OnceLock<SpanTraceContextProvider> = OnceLock::new();

/// Registers the function that tells the logger the trace and span ids of the span an event
/// belongs to; the tracing crate calls this when it is initialised. It is asked for every event
/// inside a span, before the [`set_trace_context_provider`] function (which is still asked for
/// events outside any span): it is given the span and its subscriber, so it does not need the
/// current dispatcher, which `tracing` hides while a subscriber handles an event when that
/// subscriber is a thread's default (`with_default`, `set_default`) rather than the global one.
/// The first registration wins.
pub fn set_span_trace_context_provider(provider: SpanTraceContextProvider) {
    let _ = SPAN_TRACE_CONTEXT.set(provider);
}

/// Registers the function that tells the logger the current trace and span ids; the tracing
/// crate calls this when it is initialised, so every log line inside a traced request carries
/// `trace_id` and `span_id`. The first registration wins.
pub fn set_trace_context_provider(provider: fn() -> Option<TraceContext>) {
    let _ = TRACE_CONTEXT.set(provider);
}

/// A span's fields, rendered (and redacted) once when recorded: name and JSON value.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpanFields {
    /// The first field, inline: most spans the layer renders carry one (the request id), and
    /// it then costs no vector.
    first: Option<(&'static str, String)>,
    /// The others, in the order recorded.
    rest: Vec<(&'static str, String)>,
}

impl SpanFields {
    /// The fields in the order they were first recorded.
    fn iter(&self) -> impl Iterator<Item = &(&'static str, String)> {
        self.first.iter().chain(&self.rest)
    }

    /// Sets `name` to `rendered`: in its place when recorded before, else after the others.
    fn set(&mut self, name: &'static str, rendered: String) {
        if let Some(slot) = self
            .first
            .iter_mut()
            .chain(&mut self.rest)
            .find(|(n, _)| *n == name)
        {
            slot.1 = rendered;
        } else if self.first.is_none() {
            self.first = Some((name, rendered));
        } else {
            self.rest.push((name, rendered));
        }
    }
}

thread_local! {
    /// Redaction verdicts by (redactor, field name): field names are `'static` callsite data, so
    /// the substring checks run once per name instead of once per event.
    static VERDICTS: std::cell::RefCell<std::collections::HashMap<(usize, usize, usize), bool, BuildAddressHasher>> =
        std::cell::RefCell::new(std::collections::HashMap::default());
    /// Reused buffers: the line, the event's fields, its message, a Debug scratch.
    static BUFFERS: std::cell::RefCell<(String, String, String, String, Vec<&'static str>)> =
        const { std::cell::RefCell::new((String::new(), String::new(), String::new(), String::new(), Vec::new())) };
}

/// Hashes the verdict keys (a redactor id, a name's address and length): integers that are
/// already well spread, so a multiply-rotate hash replaces SipHash (a tenth of the cost).
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type BuildAddressHasher = std::hash::BuildHasherDefault<AddressHasher>;

fn sensitive(redactor: &Redactor, name: &'static str) -> bool {
    let key = (redactor.id(), name.as_ptr() as usize, name.len());
    VERDICTS.with(|v| {
        *v.borrow_mut()
            .entry(key)
            .or_insert_with(|| redactor.is_sensitive(name))
    })
}

/// Writes one field value as JSON, or `"[REDACTED]"`.
struct ValueWriter<'a> {
    redactor: &'a Redactor,
    scratch: &'a mut String,
}

impl ValueWriter<'_> {
    fn str(&mut self, out: &mut String, name: &'static str, v: &str) {
        push_json_str(
            out,
            if sensitive(self.redactor, name) {
                REDACTED
            } else {
                v
            },
        );
    }

    fn display(&mut self, out: &mut String, name: &'static str, v: impl fmt::Display) {
        if sensitive(self.redactor, name) {
            push_json_str(out, REDACTED);
        } else {
            let _ = write!(out, "{v}");
        }
    }

    fn u64(&mut self, out: &mut String, name: &'static str, v: u64) {
        if sensitive(self.redactor, name) {
            push_json_str(out, REDACTED);
        } else {
            crate::number::push_u64(out, v);
        }
    }

    fn i64(&mut self, out: &mut String, name: &'static str, v: i64) {
        if sensitive(self.redactor, name) {
            push_json_str(out, REDACTED);
        } else {
            crate::number::push_i64(out, v);
        }
    }

    /// A finite float (the callers write others as strings).
    fn f64(&mut self, out: &mut String, name: &'static str, v: f64) {
        if sensitive(self.redactor, name) {
            push_json_str(out, REDACTED);
        } else {
            crate::number::push_f64(out, v);
        }
    }

    fn debug(&mut self, out: &mut String, name: &'static str, v: &dyn fmt::Debug) {
        if sensitive(self.redactor, name) {
            push_json_str(out, REDACTED);
        } else {
            self.scratch.clear();
            let _ = write!(self.scratch, "{v:?}");
            push_json_str(out, self.scratch);
        }
    }
}

/// Collects a span's fields as rendered pairs (a re-recorded name replaces its value).
struct SpanCollector<'a> {
    fields: &'a mut SpanFields,
    values: ValueWriter<'a>,
}

impl SpanCollector<'_> {
    fn put(&mut self, name: &'static str, render: impl FnOnce(&mut ValueWriter<'_>, &mut String)) {
        if is_span_attribute(name) {
            return; // describes the exported span; never written on a line, so never rendered
        }
        let mut rendered = String::new();
        render(&mut self.values, &mut rendered);
        self.fields.set(name, rendered);
    }
}

impl Visit for SpanCollector<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        self.put(name, |w, out| w.str(out, name, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        let name = field.name();
        self.put(name, |w, out| w.i64(out, name, value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let name = field.name();
        self.put(name, |w, out| w.u64(out, name, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        let name = field.name();
        self.put(name, |w, out| w.display(out, name, value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        let name = field.name();
        if value.is_finite() {
            self.put(name, |w, out| w.f64(out, name, value));
        } else {
            self.put(name, |w, out| w.str(out, name, &value.to_string()));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let name = field.name();
        self.put(name, |w, out| w.str(out, name, &value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        self.put(name, |w, out| w.debug(out, name, value));
    }
}

/// Writes an event's fields straight into the line buffer as `,"name":value`.
struct EventWriter<'a> {
    out: &'a mut String,
    message: &'a mut String,
    names: &'a mut Vec<&'static str>,
    values: ValueWriter<'a>,
}

impl EventWriter<'_> {
    /// Writes the key, unless the field is the message; returns whether to write the value.
    fn key(&mut self, name: &'static str) {
        self.names.push(name);
        if is_reserved(name) {
            self.out.push_str(",\"field.");
            self.out.push_str(name);
            self.out.push_str("\":");
        } else {
            push_key(self.out, name);
        }
    }
}

impl Visit for EventWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if name == "message" {
            self.message.push_str(value);
            return;
        }
        self.key(name);
        self.values.str(self.out, name, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field.name());
        self.values.i64(self.out, field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field.name());
        self.values.u64(self.out, field.name(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field.name());
        self.values.display(self.out, field.name(), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field.name());
        if value.is_finite() {
            self.values.f64(self.out, field.name(), value);
        } else {
            self.values.str(self.out, field.name(), &value.to_string());
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field.name());
        self.values.str(self.out, field.name(), &value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        self.key(name);
        self.values.debug(self.out, name, value);
    }
}

/// Static fields of every line.
#[derive(Clone, Debug, Default)]
pub(crate) struct Identity {
    pub(crate) service: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) environment: Option<String>,
}

/// A [`Layer`] writing every event as one flat JSON line:
///
/// ```json
/// {"timestamp":"2026-11-21T09:02:32.123456Z","level":"INFO","target":"orchestrator::patients",
///  "message":"patient loaded","service":"orchestrator","trace_id":"…","span_id":"…",
///  "request_id":"b19f…","clinic":"clinic_7","patient_id":123,"cache":"hit"}
/// ```
///
/// Fields of enclosing spans come first (outer to inner), then the event's own; a later field
/// with the same name replaces an earlier one. Sensitive fields are `[REDACTED]`.
pub struct JsonLayer<W> {
    make_writer: W,
    redactor: Redactor,
    /// `,"service":…,"version":…,"environment":…`, rendered once (the same on every line).
    identity: String,
    /// The subscriber this layer is part of (weak: the subscriber owns the layer), handed to
    /// the span trace-context provider.
    dispatch: OnceLock<tracing::dispatcher::WeakDispatch>,
}

impl<W> JsonLayer<W> {
    pub(crate) fn new(make_writer: W, redactor: Redactor, identity: Identity) -> Self {
        let mut rendered = String::new();
        for (key, value) in [
            ("service", &identity.service),
            ("version", &identity.version),
            ("environment", &identity.environment),
        ] {
            if let Some(value) = value {
                push_key(&mut rendered, key);
                push_json_str(&mut rendered, value);
            }
        }
        JsonLayer {
            make_writer,
            redactor,
            identity: rendered,
            dispatch: OnceLock::new(),
        }
    }

    /// The trace context of an event in `span` (its subscriber's span), else of the current one.
    fn trace_context<S>(
        &self,
        span: Option<&tracing_subscriber::registry::SpanRef<'_, S>>,
    ) -> Option<TraceContext>
    where
        S: for<'a> LookupSpan<'a>,
    {
        if let (Some(provider), Some(span), Some(dispatch)) =
            (SPAN_TRACE_CONTEXT.get(), span, self.dispatch.get())
        {
            return provider(dispatch, &span.id(), span.metadata());
        }
        TRACE_CONTEXT.get().and_then(|provider| provider())
    }
}

impl<W> fmt::Debug for JsonLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLayer")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Whether any of the 8 bytes of `word` must be escaped in a JSON string: `"`, `\\` or a
/// control character (below 0x20). Exact (no false positives), so plain text is copied 8 bytes
/// at a step.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    (below_space
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// Whether any byte of `bytes` must be escaped: whole words, the last (partial) one read as
/// the final 8 bytes again (or padded with spaces when the text is shorter than a word).
fn any_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        if needs_escape(u64::from_le_bytes(chunk.try_into().unwrap_or_default())) {
            return true;
        }
    }
    if chunks.remainder().is_empty() {
        return false;
    }
    let last = match bytes.len().checked_sub(8) {
        Some(from) => u64::from_le_bytes(bytes[from..].try_into().unwrap_or_default()),
        None => bytes
            .iter()
            .rev()
            .fold(u64::from_le_bytes([b' '; 8]), |word, &b| {
                word << 8 | u64::from(b)
            }),
    };
    needs_escape(last)
}

fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    if !any_escape(bytes) {
        // The common case: nothing to escape, one copy.
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        while let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            if needs_escape(word) {
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else { break };
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // Escaped bytes are ASCII, so `start..i` ends on a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn push_key(out: &mut String, key: &str) {
    out.push(',');
    push_json_str(out, key);
    out.push(':');
}

/// OpenTelemetry attributes of a span (`otel.name`, `http.route`, `server.address`, ...): they
/// describe the exported span, and would repeat on every log line of the request.
const SPAN_ATTRIBUTE_NAMESPACES: &[&str] = &[
    "otel.",
    "http.",
    "url.",
    "server.",
    "client.",
    "network.",
    "user_agent.",
    "error.",
    "deployment.",
];

fn is_span_attribute(name: &str) -> bool {
    SPAN_ATTRIBUTE_NAMESPACES
        .iter()
        .any(|namespace| name.starts_with(namespace))
}

/// Whether the layer writes a key of this name itself; user fields with these names are
/// prefixed with `field.` (a `match`: one length switch instead of a comparison per name).
fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "timestamp"
            | "level"
            | "target"
            | "message"
            | "service"
            | "version"
            | "environment"
            | "trace_id"
            | "span_id"
    )
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        let mut scratch = String::new();
        attrs.record(&mut SpanCollector {
            fields: &mut fields,
            values: ValueWriter {
                redactor: &self.redactor,
                scratch: &mut scratch,
            },
        });
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            let mut scratch = String::new();
            values.record(&mut SpanCollector {
                fields,
                values: ValueWriter {
                    redactor: &self.redactor,
                    scratch: &mut scratch,
                },
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        BUFFERS.with(|buffers| {
            let Ok(mut buffers) = buffers.try_borrow_mut() else {
                return; // an event logged while writing an event (from a Debug impl): skip it
            };
            let (line, event_fields, message, scratch, names) = &mut *buffers;
            line.clear();
            event_fields.clear();
            message.clear();
            names.clear();
            event.record(&mut EventWriter {
                out: event_fields,
                message,
                names,
                values: ValueWriter {
                    redactor: &self.redactor,
                    scratch,
                },
            });

            let meta = event.metadata();
            line.push_str("{\"timestamp\":\"");
            crate::time::write_rfc3339(line, SystemTime::now());
            line.push_str("\",\"level\":\"");
            line.push_str(meta.level().as_str());
            line.push('"');
            line.push_str(",\"target\":");
            push_json_str(line, meta.target());
            if !message.is_empty() {
                line.push_str(",\"message\":");
                push_json_str(line, message);
            }
            line.push_str(&self.identity);
            // The event's span, looked up once: its trace context, then its scope's fields.
            let event_span = ctx.event_span(event);
            if let Some(trace) = self.trace_context(event_span.as_ref()) {
                line.push_str(",\"trace_id\":\"");
                push_hex(line, &trace.trace_id);
                line.push_str("\",\"span_id\":\"");
                push_hex(line, &trace.span_id);
                line.push('"');
            }
            // Span fields, innermost first; a name already written (by the event or an inner
            // span) is skipped, so the innermost value wins.
            if let Some(event_span) = event_span {
                for span in event_span.scope() {
                    let extensions = span.extensions();
                    let Some(fields) = extensions.get::<SpanFields>() else {
                        continue;
                    };
                    for (name, value) in fields.iter() {
                        if names.contains(name) {
                            continue;
                        }
                        names.push(name);
                        if is_reserved(name) {
                            line.push_str(",\"field.");
                            line.push_str(name);
                            line.push_str("\":");
                        } else {
                            push_key(line, name);
                        }
                        line.push_str(value);
                    }
                }
            }
            line.push_str(event_fields);
            line.push_str("}\n");
            let _ = self
                .make_writer
                .make_writer_for(meta)
                .write_all(line.as_bytes());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_fields_keep_their_first_order_and_take_the_last_value() {
        let mut fields = SpanFields::default();
        let names = |f: &SpanFields| {
            f.iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
        };
        assert!(names(&fields).is_empty());
        fields.set("request_id", "1".into());
        assert_eq!(names(&fields), ["request_id=1"]);
        fields.set("clinic", "2".into());
        fields.set("user", "3".into());
        fields.set("request_id", "4".into());
        fields.set("user", "5".into());
        assert_eq!(names(&fields), ["request_id=4", "clinic=2", "user=5"]);
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&s).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn escape_detection_matches_a_byte_by_byte_check() {
        let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        let mut samples: Vec<[u8; 8]> = vec![*b"plain ok", *b"\x7f\x80\xff !#[]"];
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut w = *b"abcdefgh";
                w[at] = b;
                samples.push(w);
                let mut high = [0xc3u8; 8];
                high[at] = b;
                samples.push(high);
            }
        }
        for w in samples {
            assert_eq!(
                needs_escape(u64::from_le_bytes(w)),
                w.iter().any(|&b| special(b)),
                "{w:?}"
            );
        }
    }

    #[test]
    fn a_special_byte_is_found_at_any_position_of_any_length() {
        for len in 0..=20 {
            let plain = vec![b'a'; len];
            assert!(!any_escape(&plain), "plain, {len} bytes");
            for at in 0..len {
                for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                    let mut text = plain.clone();
                    text[at] = special;
                    assert!(any_escape(&text), "{special:#x} at {at} of {len}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips_through_json(text in "\\PC*|[\"\\\\\\x00-\\x1f a-z]{0,40}") {
            let mut s = String::new();
            push_json_str(&mut s, &text);
            let parsed: String = serde_json::from_str(&s).unwrap();
            proptest::prop_assert_eq!(parsed, text);
        }
    }
}
