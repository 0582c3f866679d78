//! [`Message`]: what is published and delivered: an id, a type, headers, a JSON payload.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::now_ms;
use crate::error::{Error, Result};

/// The envelope version written with every message; readers refuse other versions.
pub const ENVELOPE_VERSION: u32 = 1;
/// The longest message type, topic or group name.
pub const MAX_NAME_LEN: usize = 128;

/// Well-known header names.
pub mod headers {
    /// W3C trace context of the publisher (nilecare-tracing continues the trace).
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state.
    pub const TRACESTATE: &str = "tracestate";
    /// Groups the messages of one business transaction.
    pub const CORRELATION_ID: &str = "correlation-id";
    /// The tenant (clinic) the message belongs to.
    pub const TENANT: &str = "tenant";
    /// Set on a replayed dead letter: only this consumer group handles it (the others ack it
    /// unseen). See [`replay_dead_letter`](crate::replay_dead_letter).
    pub const REPLAY_FOR: &str = "replay-for";
    /// The version of the payload's schema for its type (set with
    /// [`Message::with_schema_version`](crate::Message::with_schema_version)); the envelope's
    /// own version is separate ([`ENVELOPE_VERSION`](crate::ENVELOPE_VERSION)).
    pub const SCHEMA_VERSION: &str = "schema-version";
}

/// A message: its id (unique, chosen by the publisher or generated), its type
/// (`patient.registered`), headers, a JSON payload and when it was published.
///
/// Cloning is cheap (the parts are shared): a broker hands the same message to every group.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    parts: Arc<Parts>,
    /// Which delivery this is (set by the consumer; not stored).
    attempt: u32,
}

/// What a message carries, shared by its clones.
#[derive(Debug, Clone, PartialEq)]
struct Parts {
    id: String,
    kind: String,
    published_at_ms: u64,
    headers: BTreeMap<String, String>,
    payload: Bytes,
}

/// Checks a topic, group, consumer or type name: 1-128 bytes of `A-Z a-z 0-9 . _ -` (no `{`,
/// `}` or `:`, which would reach another key's hash slot or namespace). Publishers and
/// consumers check their names; check names that come from outside (an admin request)
/// before giving them to a [`Broker`](crate::Broker) directly.
///
/// # Errors
/// [`Error::Invalid`] naming `field`.
pub fn check_name(field: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            field,
            message: format!("{name:?} must be 1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ -"),
        })
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A unique id: milliseconds, process id and a counter, in hex.
fn generate_id() -> String {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}-{:x}-{n:x}", now_ms(), std::process::id())
}

/// The largest payload a compressed one may expand to (a larger one is refused, so a
/// compression bomb cannot exhaust a consumer's memory).
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

#[cfg(feature = "redis")]
fn gzip(payload: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(payload.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(payload);
    Bytes::from(encoder.finish().unwrap_or_default())
}

#[cfg(feature = "redis")]
fn gunzip(compressed: &[u8], limit: usize) -> std::result::Result<Bytes, String> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("the gzip payload is corrupt: {e}"))?;
    if out.len() > limit {
        return Err(format!("the payload expands beyond {limit} bytes"));
    }
    Ok(Bytes::from(out))
}

impl Message {
    /// A message of type `kind` carrying `payload` as JSON, with a generated id.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `kind` or `payload`.
    pub fn new<T: Serialize + ?Sized>(kind: &str, payload: &T) -> Result<Self> {
        check_name("kind", kind)?;
        let payload = serde_json::to_vec(payload).map_err(|e| Error::Invalid {
            field: "payload",
            message: format!("not serializable as JSON: {e}"),
        })?;
        Ok(Message {
            parts: Arc::new(Parts {
                id: generate_id(),
                kind: kind.to_owned(),
                published_at_ms: now_ms(),
                headers: BTreeMap::new(),
                payload: Bytes::from(payload),
            }),
            attempt: 0,
        })
    }

    /// The producer's own id (idempotent publishing: the same id is one message to a
    /// consumer's [`ProcessedSet`](crate::ProcessedSet)). 1-128 characters of `A-Z a-z 0-9 . _ -`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `id`.
    pub fn with_id(mut self, id: &str) -> Result<Self> {
        check_name("id", id)?;
        Arc::make_mut(&mut self.parts).id = id.to_owned();
        Ok(self)
    }

    /// Adds a header (name: 1-128 characters of `A-Z a-z 0-9 . _ -`; value: at most 4 KiB, no
    /// control characters).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `header` (with the name; values may be secret and are not
    /// shown).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self> {
        check_name("header", name)?;
        if value.len() > 4096 || value.chars().any(char::is_control) {
            return Err(Error::Invalid {
                field: "header",
                message: format!(
                    "the value of {name} must be at most 4 KiB without control characters"
                ),
            });
        }
        Arc::make_mut(&mut self.parts)
            .headers
            .insert(name.to_owned(), value.to_owned());
        Ok(self)
    }

    /// Marks the payload as version `version` of its type's schema (header
    /// [`schema-version`](headers::SCHEMA_VERSION)), so a consumer can read old and new shapes
    /// side by side while producers move to a new one.
    ///
    /// # Errors
    /// Never in practice (the header name and value are valid); the signature follows
    /// [`with_header`](Self::with_header).
    pub fn with_schema_version(self, version: u32) -> Result<Self> {
        self.with_header(headers::SCHEMA_VERSION, &version.to_string())
    }

    /// The payload's schema version, when the producer set one and it is a number.
    pub fn schema_version(&self) -> Option<u32> {
        self.header(headers::SCHEMA_VERSION)?.parse().ok()
    }

    /// The message id.
    pub fn id(&self) -> &str {
        &self.parts.id
    }

    /// The message type.
    pub fn kind(&self) -> &str {
        &self.parts.kind
    }

    /// When it was published (milliseconds since the Unix epoch, the publisher's clock).
    pub fn published_at_ms(&self) -> u64 {
        self.parts.published_at_ms
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).map(String::as_str)
    }

    /// Every header.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.parts.headers
    }

    /// Which delivery of the message this is: 1 the first time, more after a retry or after
    /// its consumer died (0 on a message not yet delivered).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub(crate) fn set_attempt(&mut self, attempt: u32) {
        self.attempt = attempt;
    }

    /// The payload's JSON.
    pub fn payload_bytes(&self) -> &Bytes {
        &self.parts.payload
    }

    /// The payload as `T`.
    ///
    /// # Errors
    /// [`Error::Payload`] when the JSON is not a `T`.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.parts.payload).map_err(|source| Error::Payload {
            type_name: std::any::type_name::<T>(),
            source,
        })
    }

    /// The stream entry fields: `v`, `id`, `type`, `at`, `h` (headers as JSON), `p` (payload),
    /// and `z` = `gzip` when the payload is larger than `compress_above` and stored compressed.
    #[cfg(feature = "redis")]
    pub(crate) fn to_fields(&self, compress_above: Option<usize>) -> Vec<(&'static str, Bytes)> {
        let headers = serde_json::to_vec(&self.parts.headers).unwrap_or_else(|_| b"{}".to_vec());
        let mut fields = vec![
            ("v", Bytes::from(ENVELOPE_VERSION.to_string())),
            ("id", Bytes::from(self.parts.id.clone())),
            ("type", Bytes::from(self.parts.kind.clone())),
            ("at", Bytes::from(self.parts.published_at_ms.to_string())),
            ("h", Bytes::from(headers)),
        ];
        match compress_above.filter(|limit| self.parts.payload.len() > *limit) {
            Some(_) => {
                fields.push(("z", Bytes::from_static(b"gzip")));
                fields.push(("p", gzip(&self.parts.payload)));
            }
            None => fields.push(("p", self.parts.payload.clone())),
        }
        fields
    }

    /// The encoded size before compression (what the size limit counts).
    pub(crate) fn encoded_len(&self) -> usize {
        /// Counts bytes written (the headers' JSON length without building it).
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0 += bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let headers = if self.parts.headers.is_empty() {
            2
        } else {
            let mut count = Count(0);
            serde_json::to_writer(&mut count, &self.parts.headers).map_or(2, |()| count.0)
        };
        let digits = |n: u64| n.checked_ilog10().map_or(1, |d| d as usize + 1);
        // The names and values of v, id, type, at, h and p.
        (1 + digits(u64::from(ENVELOPE_VERSION)))
            + (2 + self.parts.id.len())
            + (4 + self.parts.kind.len())
            + (2 + digits(self.parts.published_at_ms))
            + (1 + headers)
            + (1 + self.parts.payload.len())
    }

    /// Reads stream entry fields back.
    #[cfg(feature = "redis")]
    pub(crate) fn from_fields(entry_id: &str, fields: &[(String, Bytes)]) -> Result<Self> {
        let bad = |reason: &str| Error::Decode {
            id: entry_id.to_owned(),
            reason: reason.to_owned(),
        };
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let text = |name: &str| -> Result<String> {
            let v = get(name).ok_or_else(|| bad(&format!("no field {name}")))?;
            String::from_utf8(v.to_vec()).map_err(|_| bad(&format!("field {name} is not UTF-8")))
        };
        if text("v")? != ENVELOPE_VERSION.to_string() {
            return Err(bad("unknown envelope version"));
        }
        let headers: BTreeMap<String, String> =
            serde_json::from_slice(get("h").ok_or_else(|| bad("no field h"))?)
                .map_err(|_| bad("headers are not a JSON object of strings"))?;
        Ok(Message {
            parts: Arc::new(Parts {
                id: text("id")?,
                kind: text("type")?,
                published_at_ms: text("at")?
                    .parse()
                    .map_err(|_| bad("field at is not a number"))?,
                headers,
                payload: match get("z").map(|z| z.as_ref()) {
                    None => get("p").cloned().ok_or_else(|| bad("no field p"))?,
                    Some(b"gzip") => gunzip(
                        get("p").ok_or_else(|| bad("no field p"))?,
                        MAX_DECOMPRESSED_BYTES,
                    )
                    .map_err(|reason| bad(&reason))?,
                    Some(_) => return Err(bad("unknown payload encoding (field z)")),
                },
            }),
            attempt: 1,
        })
    }
}

#[cfg(test)]
mod schema_tests {
    use super::Message;

    #[test]
    fn the_schema_version_travels_as_a_header() {
        let m = Message::new("patient.registered", &1).unwrap();
        assert_eq!(m.schema_version(), None);
        let m = m.with_schema_version(2).unwrap();
        assert_eq!(m.schema_version(), Some(2));
        assert_eq!(m.header("schema-version"), Some("2"));
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::{gunzip, gzip};

    #[test]
    fn encoded_len_is_the_size_of_the_stored_fields() {
        let plain =
            super::Message::new("visit.booked", &serde_json::json!({"patient": 7})).unwrap();
        let with_headers = plain
            .clone()
            .with_header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .unwrap()
            .with_header("tenant", "clinic-7")
            .unwrap();
        for m in [plain, with_headers] {
            let stored: usize = m
                .to_fields(None)
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum();
            assert_eq!(m.encoded_len(), stored);
        }
    }

    #[test]
    fn gzip_round_trips() {
        let payload =
            br#"{"patient":7,"notes":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#.repeat(50);
        let packed = gzip(&payload);
        assert!(packed.len() < payload.len() / 5);
        assert_eq!(gunzip(&packed, payload.len()).unwrap(), payload);
    }

    #[test]
    fn a_payload_expanding_past_the_limit_is_refused() {
        let bomb = gzip(&vec![0u8; 1_000_000]);
        assert!(bomb.len() < 10_000, "{}", bomb.len());
        let error = gunzip(&bomb, 999_999).unwrap_err();
        assert!(error.contains("expands beyond 999999 bytes"), "{error}");
        assert_eq!(gunzip(&bomb, 1_000_000).unwrap().len(), 1_000_000);
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let mut packed = gzip(&b"hello".repeat(100)).to_vec();
        packed.truncate(packed.len() / 2);
        assert!(gunzip(&packed, 1 << 20).unwrap_err().contains("corrupt"));
        assert!(gunzip(b"not gzip at all", 1 << 20).is_err());
    }
}
