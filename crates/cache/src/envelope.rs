//! The stored value format: `[version][flags][payload]`.
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | format version, currently `1` |
//! | 1 | flags: bits 0-1 codec (`0` JSON, `1` MessagePack), bit 2 gzip, bit 3 stale-at, other bits zero |
//! | 2..10 | only with bit 3: when the value goes stale, unix milliseconds, big-endian `u64` |
//! | then | the payload, gzip-compressed when bit 2 is set |
//!
//! The stale-at stamp is written by `get_or_set_with` under a stale-while-revalidate policy;
//! plain reads ignore it (the value is still valid until the store expires it).
//!
//! A reader rejects anything else (foreign data, a newer version, unknown flags, corrupt gzip,
//! a payload that decompresses beyond the size limit, a payload of another type): the cache
//! treats it as a miss and counts an error.

use std::fmt;
use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression as GzLevel;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The format version written by this release.
pub const FORMAT_VERSION: u8 = 1;
const CODEC_MASK: u8 = 0b0000_0011;
const FLAG_GZIP: u8 = 0b0000_0100;
const FLAG_STALE_AT: u8 = 0b0000_1000;
const KNOWN_FLAGS: u8 = CODEC_MASK | FLAG_GZIP | FLAG_STALE_AT;
const STAMP_LEN: usize = 8;

/// How values are serialized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// JSON (serde_json): readable in `redis-cli`, the default.
    #[default]
    Json,
    /// MessagePack (rmp-serde, named fields): smaller and faster.
    #[cfg(feature = "msgpack")]
    #[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
    MessagePack,
}

impl Codec {
    fn id(self) -> u8 {
        match self {
            Codec::Json => 0,
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => 1,
        }
    }
}

/// gzip compression of large values.
///
/// ```
/// use nilecare_cache::Compression;
/// let c = Compression::gzip().threshold(4096).level(9);
/// assert_eq!(c.threshold_bytes(), Some(4096));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    threshold: Option<usize>,
    level: u32,
}

impl Compression {
    /// gzip payloads larger than 1 KiB at level 6 (kept only when it actually shrinks them).
    pub const fn gzip() -> Self {
        Compression {
            threshold: Some(1024),
            level: 6,
        }
    }

    /// Never compress.
    pub const fn disabled() -> Self {
        Compression {
            threshold: None,
            level: 6,
        }
    }

    /// Compress payloads strictly larger than `bytes`.
    #[must_use]
    pub const fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = Some(bytes);
        self
    }

    /// gzip level 0..=9 (checked when the cache is built).
    #[must_use]
    pub const fn level(mut self, level: u32) -> Self {
        self.level = level;
        self
    }

    /// The threshold, `None` when disabled.
    pub const fn threshold_bytes(&self) -> Option<usize> {
        self.threshold
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.level > 9 {
            return Err(Error::InvalidConfig {
                field: "compression.level",
                message: format!("must be 0..=9, got {}", self.level),
            });
        }
        Ok(())
    }
}

impl Default for Compression {
    fn default() -> Self {
        Compression::gzip()
    }
}

/// Why a stored value could not be read.
#[derive(Debug)]
pub(crate) enum DecodeError {
    TooShort,
    Version(u8),
    Flags(u8),
    Gzip(std::io::Error),
    TooLarge(usize),
    Codec(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort => f.write_str("value shorter than its header"),
            DecodeError::Version(v) => write!(f, "unknown format version {v}"),
            DecodeError::Flags(x) => write!(f, "unknown flags {x:#010b}"),
            DecodeError::Gzip(e) => write!(f, "corrupt gzip payload: {e}"),
            DecodeError::TooLarge(max) => write!(f, "payload decompresses beyond {max} bytes"),
            DecodeError::Codec(e) => {
                write!(f, "payload does not decode to the requested type: {e}")
            }
        }
    }
}

/// Encoder/decoder for one cache's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Envelope {
    pub(crate) codec: Codec,
    pub(crate) compression: Compression,
    pub(crate) max_value_bytes: usize,
}

impl Envelope {
    pub(crate) fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes> {
        self.encode_stamped(value, None)
    }

    /// Encodes `value`, stamped with the unix-millisecond time it goes stale when given.
    pub(crate) fn encode_stamped<T: Serialize + ?Sized>(
        &self,
        value: &T,
        stale_at_ms: Option<u64>,
    ) -> Result<Bytes> {
        let mut out = Vec::with_capacity(128);
        let mut flags = self.codec.id();
        if stale_at_ms.is_some() {
            flags |= FLAG_STALE_AT;
        }
        out.extend_from_slice(&[FORMAT_VERSION, flags]);
        if let Some(ms) = stale_at_ms {
            out.extend_from_slice(&ms.to_be_bytes());
        }
        let header = out.len();
        match self.codec {
            Codec::Json => {
                serde_json::to_writer(&mut out, value).map_err(|e| Error::Encode(e.to_string()))?
            }
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => rmp_serde::encode::write_named(&mut out, value)
                .map_err(|e| Error::Encode(e.to_string()))?,
        }
        let payload_len = out.len() - header;
        if payload_len > self.max_value_bytes {
            return Err(Error::Encode(format!(
                "value is {payload_len} bytes, above the {} byte limit",
                self.max_value_bytes
            )));
        }
        if let Some(threshold) = self.compression.threshold {
            if payload_len > threshold {
                let mut gz = GzEncoder::new(
                    Vec::with_capacity(payload_len / 2 + 16),
                    GzLevel::new(self.compression.level),
                );
                // Writing into a Vec cannot fail.
                let compressed = gz
                    .write_all(&out[header..])
                    .and_then(|()| gz.finish())
                    .map_err(|e| Error::Encode(e.to_string()))?;
                if compressed.len() < payload_len {
                    let mut packed = Vec::with_capacity(compressed.len() + header);
                    packed.extend_from_slice(&out[..header]);
                    packed[1] |= FLAG_GZIP;
                    packed.extend_from_slice(&compressed);
                    return Ok(Bytes::from(packed));
                }
            }
        }
        Ok(Bytes::from(out))
    }

    pub(crate) fn decode<T: DeserializeOwned>(&self, stored: &[u8]) -> Result<T, DecodeError> {
        self.decode_stamped(stored).map(|(value, _)| value)
    }

    /// Decodes a value and its stale-at stamp (unix milliseconds), if it carries one.
    pub(crate) fn decode_stamped<T: DeserializeOwned>(
        &self,
        stored: &[u8],
    ) -> Result<(T, Option<u64>), DecodeError> {
        let [version, flags, rest @ ..] = stored else {
            return Err(DecodeError::TooShort);
        };
        if *version != FORMAT_VERSION {
            return Err(DecodeError::Version(*version));
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::Flags(*flags));
        }
        let (stale_at, payload) = if flags & FLAG_STALE_AT != 0 {
            let Some((stamp, payload)) = rest.split_first_chunk::<STAMP_LEN>() else {
                return Err(DecodeError::TooShort);
            };
            (Some(u64::from_be_bytes(*stamp)), payload)
        } else {
            (None, rest)
        };
        let inflated;
        let payload = if flags & FLAG_GZIP != 0 {
            let mut buf = Vec::with_capacity(payload.len() * 3);
            let limit = self.max_value_bytes as u64 + 1;
            GzDecoder::new(payload)
                .take(limit)
                .read_to_end(&mut buf)
                .map_err(DecodeError::Gzip)?;
            if buf.len() > self.max_value_bytes {
                return Err(DecodeError::TooLarge(self.max_value_bytes));
            }
            inflated = buf;
            &inflated[..]
        } else {
            payload
        };
        let value = match flags & CODEC_MASK {
            0 => serde_json::from_slice(payload).map_err(|e| DecodeError::Codec(e.to_string())),
            #[cfg(feature = "msgpack")]
            1 => rmp_serde::from_slice(payload).map_err(|e| DecodeError::Codec(e.to_string())),
            other => Err(DecodeError::Codec(format!(
                "codec {other} is not compiled in (enable the `msgpack` feature)"
            ))),
        }?;
        Ok((value, stale_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(compression: Compression) -> Envelope {
        Envelope {
            codec: Codec::Json,
            compression,
            max_value_bytes: 1 << 20,
        }
    }

    #[test]
    fn small_values_are_plain_large_ones_gzip() {
        let e = env(Compression::gzip());
        let small = e.encode(&"hello").unwrap();
        assert_eq!(&small[..2], &[1, 0]);
        assert_eq!(&small[2..], b"\"hello\"");
        let big = "patient ".repeat(500);
        let packed = e.encode(&big).unwrap();
        assert_eq!(packed[1] & FLAG_GZIP, FLAG_GZIP);
        assert!(packed.len() < big.len() / 10);
        assert_eq!(e.decode::<String>(&packed).unwrap(), big);
    }

    #[test]
    fn incompressible_data_is_kept_plain() {
        // pseudo-random hex does not shrink below its own size under gzip's header overhead
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: String = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(
                    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        [(x % 62) as usize],
                )
            })
            .collect();
        let e = env(Compression::gzip().level(1));
        let packed = e.encode(&noise).unwrap();
        assert_eq!(e.decode::<String>(&packed).unwrap(), noise);
    }

    #[test]
    fn corrupt_values_are_rejected_not_panicked_on() {
        let e = env(Compression::gzip());
        let good = e.encode(&"x".repeat(5000)).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![1],
            b"{\"json\":1}".to_vec(),
            vec![2, 0, b'1'],
            vec![1, 0b1000_0000, b'1'],
            good[..good.len() / 2].to_vec(),
            vec![1, FLAG_GZIP, 1, 2, 3],
            vec![1, 3, b'1'],
            vec![1, FLAG_STALE_AT, 0, 0, 0],
            vec![1, 0b0001_0000, b'1'],
        ];
        for bytes in cases {
            assert!(e.decode::<String>(&bytes).is_err(), "{bytes:?}");
        }
        // right format, wrong type
        let n = e.encode(&42).unwrap();
        assert!(matches!(e.decode::<String>(&n), Err(DecodeError::Codec(_))));
    }

    #[test]
    fn stale_at_stamps_round_trip_plain_and_compressed() {
        let e = env(Compression::gzip());
        for value in ["short".to_owned(), "patient ".repeat(500)] {
            let stamped = e.encode_stamped(&value, Some(1_700_000_000_123)).unwrap();
            assert_eq!(stamped[1] & FLAG_STALE_AT, FLAG_STALE_AT);
            let (back, at) = e.decode_stamped::<String>(&stamped).unwrap();
            assert_eq!(
                (back.as_str(), at),
                (value.as_str(), Some(1_700_000_000_123))
            );
            // plain reads see the value
            assert_eq!(e.decode::<String>(&stamped).unwrap(), value);
        }
        let plain = e.encode(&"x").unwrap();
        assert_eq!(e.decode_stamped::<String>(&plain).unwrap().1, None);
    }

    #[test]
    fn decompression_is_bounded() {
        let e = env(Compression::gzip());
        let bomb = e.encode(&"a".repeat(100_000)).unwrap();
        let strict = Envelope {
            max_value_bytes: 10_000,
            ..e
        };
        assert!(matches!(
            strict.decode::<String>(&bomb),
            Err(DecodeError::TooLarge(_))
        ));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn gzip_small() -> Envelope {
            Envelope {
                codec: Codec::Json,
                compression: Compression {
                    threshold: Some(16),
                    level: 6,
                },
                max_value_bytes: 1 << 20,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]

            /// Random bytes (foreign values, corruption) never panic the decoder.
            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), header in 0u8..4) {
                let mut stored = bytes;
                if header > 0 && !stored.is_empty() {
                    stored[0] = FORMAT_VERSION; // reach the flag, stamp and gzip paths too
                }
                let e = gzip_small();
                let _ = e.decode::<serde_json::Value>(&stored);
                let _ = e.decode_stamped::<String>(&stored);
            }

            /// What is encoded decodes to the same value and stamp; every strict prefix of an
            /// encoding is an error, never another value.
            #[test]
            fn encodings_round_trip_and_truncations_are_errors(
                value in "[ -~é名]{0,80}",
                stamp in proptest::option::of(any::<u64>()),
            ) {
                let e = gzip_small();
                let encoded = e.encode_stamped(&value, stamp).unwrap();
                prop_assert_eq!(e.decode_stamped::<String>(&encoded).unwrap(), (value.clone(), stamp));
                for cut in 0..encoded.len() {
                    prop_assert!(e.decode_stamped::<String>(&encoded[..cut]).is_err(), "prefix {} decoded", cut);
                }
            }
        }
    }
}
