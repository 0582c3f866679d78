//! The value kinds and their parsers. Every parser takes arbitrary text and returns a value or a
//! [`Failure`]; none panics (a property test feeds them random strings).

use std::time::Duration;

use crate::report::ProblemKind;
use crate::value::{Secret, Value};

/// Why a text was rejected.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Failure {
    pub(crate) kind: ProblemKind,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Failure {
            kind: ProblemKind::Invalid,
            message: message.into(),
        }
    }

    fn out_of_range(message: impl Into<String>) -> Self {
        Failure {
            kind: ProblemKind::OutOfRange,
            message: message.into(),
        }
    }
}

/// The type of list items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemKind {
    /// Strings.
    String,
    /// Integers.
    Integer,
    /// Floats.
    Float,
    /// Booleans.
    Bool,
    /// Ports.
    Port,
    /// URLs.
    Url,
    /// Durations.
    Duration,
}

/// A variable's type with its constraints.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    String {
        min_len: usize,
        max_len: usize,
        pattern: Option<String>,
        secret: bool,
    },
    Integer {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Bool,
    Port,
    Url {
        schemes: Vec<String>,
    },
    Duration {
        min: Duration,
        max: Duration,
    },
    Enum {
        allowed: Vec<String>,
    },
    List {
        item: Box<Kind>,
    },
}

impl Kind {
    pub(crate) fn string() -> Kind {
        Kind::String {
            min_len: 0,
            max_len: usize::MAX,
            pattern: None,
            secret: false,
        }
    }

    pub(crate) fn integer() -> Kind {
        Kind::Integer {
            min: i64::MIN,
            max: i64::MAX,
        }
    }

    pub(crate) fn float() -> Kind {
        Kind::Float {
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
        }
    }

    pub(crate) fn url() -> Kind {
        Kind::Url {
            schemes: Vec::new(),
        }
    }

    pub(crate) fn duration() -> Kind {
        Kind::Duration {
            min: Duration::ZERO,
            max: Duration::MAX,
        }
    }

    pub(crate) fn item(item: ItemKind) -> Kind {
        match item {
            ItemKind::String => Kind::string(),
            ItemKind::Integer => Kind::integer(),
            ItemKind::Float => Kind::float(),
            ItemKind::Bool => Kind::Bool,
            ItemKind::Port => Kind::Port,
            ItemKind::Url => Kind::url(),
            ItemKind::Duration => Kind::duration(),
        }
    }

    /// The innermost kind (the item kind of a list), where constraints apply.
    pub(crate) fn leaf_mut(&mut self) -> &mut Kind {
        match self {
            Kind::List { item } => item.leaf_mut(),
            other => other,
        }
    }

    /// What a valid value looks like, for the report.
    pub(crate) fn expected(&self) -> String {
        match self {
            Kind::String {
                min_len,
                max_len,
                pattern,
                secret,
            } => {
                let mut s = if *secret { "secret string" } else { "string" }.to_owned();
                match (*min_len, *max_len) {
                    (0, usize::MAX) => {}
                    (min, usize::MAX) => s.push_str(&format!(", at least {min} chars")),
                    (0, max) => s.push_str(&format!(", at most {max} chars")),
                    (min, max) => s.push_str(&format!(", {min}-{max} chars")),
                }
                if let Some(p) = pattern {
                    s.push_str(&format!(", matching /{p}/"));
                }
                s
            }
            Kind::Integer { min, max } => match (*min, *max) {
                (i64::MIN, i64::MAX) => "integer".into(),
                (min, i64::MAX) => format!("integer >= {min}"),
                (i64::MIN, max) => format!("integer <= {max}"),
                (min, max) => format!("integer {min}..={max}"),
            },
            Kind::Float { min, max } => {
                if min.is_infinite() && max.is_infinite() {
                    "number".into()
                } else {
                    format!("number {min}..={max}")
                }
            }
            Kind::Bool => "true/false (also 1/0, yes/no, on/off)".into(),
            Kind::Port => "port 1..=65535".into(),
            Kind::Url { schemes } if schemes.is_empty() => "URL".into(),
            Kind::Url { schemes } => format!("URL ({})", schemes.join(", ")),
            Kind::Duration { .. } => "duration like 500ms, 30s, 5m, 1h".into(),
            Kind::Enum { allowed } => format!("one of: {}", allowed.join(", ")),
            Kind::List { item } => format!("comma-separated list of {}", item.expected()),
        }
    }

    pub(crate) fn is_secret(&self) -> bool {
        matches!(self, Kind::String { secret: true, .. })
    }

    /// Parses `raw` (already trimmed by the caller for everything but secrets).
    pub(crate) fn parse(&self, raw: &str) -> Result<Value, Failure> {
        match self {
            Kind::String {
                min_len,
                max_len,
                pattern,
                secret,
            } => {
                let len = raw.chars().count();
                if len < *min_len {
                    return Err(Failure::out_of_range(format!(
                        "too short: {len} chars, need at least {min_len}"
                    )));
                }
                if len > *max_len {
                    return Err(Failure::out_of_range(format!(
                        "too long: {len} chars, at most {max_len}"
                    )));
                }
                if let Some(p) = pattern {
                    let re = regex_lite::Regex::new(p)
                        .map_err(|e| Failure::invalid(format!("bad pattern in schema: {e}")))?;
                    if !re.is_match(raw) {
                        return Err(Failure::invalid(format!("does not match /{p}/")));
                    }
                }
                Ok(if *secret {
                    Value::Secret(Secret::new(raw))
                } else {
                    Value::String(raw.to_owned())
                })
            }
            Kind::Integer { min, max } => {
                let n: i64 = raw
                    .parse()
                    .map_err(|_| Failure::invalid("not an integer"))?;
                if n < *min || n > *max {
                    return Err(Failure::out_of_range(format!(
                        "{n} is outside {min}..={max}"
                    )));
                }
                Ok(Value::Integer(n))
            }
            Kind::Float { min, max } => {
                let x: f64 = raw.parse().map_err(|_| Failure::invalid("not a number"))?;
                if !x.is_finite() {
                    return Err(Failure::invalid("not a finite number"));
                }
                if x < *min || x > *max {
                    return Err(Failure::out_of_range(format!(
                        "{x} is outside {min}..={max}"
                    )));
                }
                Ok(Value::Float(x))
            }
            Kind::Bool => parse_bool(raw).map(Value::Bool),
            Kind::Port => {
                let n: u32 = raw
                    .parse()
                    .map_err(|_| Failure::invalid("not a port number"))?;
                match u16::try_from(n) {
                    Ok(p) if p > 0 => Ok(Value::Port(p)),
                    _ => Err(Failure::out_of_range(format!("{n} is outside 1..=65535"))),
                }
            }
            Kind::Url { schemes } => {
                let url = url::Url::parse(raw)
                    .map_err(|e| Failure::invalid(format!("not a URL ({e})")))?;
                if !schemes.is_empty() && !schemes.iter().any(|s| s == url.scheme()) {
                    return Err(Failure {
                        kind: ProblemKind::NotInSet,
                        message: format!("scheme `{}` is not allowed", url.scheme()),
                    });
                }
                Ok(Value::Url(url))
            }
            Kind::Duration { min, max } => {
                let d = parse_duration(raw)?;
                if d < *min || d > *max {
                    return Err(Failure::out_of_range(format!(
                        "{d:?} is outside {min:?}..={max:?}"
                    )));
                }
                Ok(Value::Duration(d))
            }
            Kind::Enum { allowed } => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(raw))
                .map(|a| Value::String(a.clone()))
                .ok_or_else(|| Failure {
                    kind: ProblemKind::NotInSet,
                    message: "not one of the allowed values".into(),
                }),
            Kind::List { item } => {
                if raw.trim().is_empty() {
                    return Ok(Value::List(Vec::new()));
                }
                raw.split(',')
                    .enumerate()
                    .map(|(i, part)| {
                        let part = part.trim();
                        if part.is_empty() {
                            return Err(Failure::invalid(format!("item {} is empty", i + 1)));
                        }
                        item.parse(part).map_err(|f| Failure {
                            kind: f.kind,
                            message: format!("item {}: {}", i + 1, f.message),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::List)
            }
        }
    }
}

/// `true/false`, `1/0`, `yes/no`, `on/off`, any case.
pub(crate) fn parse_bool(raw: &str) -> Result<bool, Failure> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Failure::invalid("not a boolean")),
    }
}

/// `500ms`, `30s`, `5m`, `1h`, `2d`, `250us`, and sums like `1h30m`. A unit is required.
pub(crate) fn parse_duration(raw: &str) -> Result<Duration, Failure> {
    let bad = || Failure::invalid("not a duration (use e.g. 500ms, 30s, 5m, 1h)");
    if raw.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = raw;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ns" => Some(Duration::from_nanos(n)),
            "us" | "µs" => Some(Duration::from_micros(n)),
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3_600).map(Duration::from_secs),
            "d" => n.checked_mul(86_400).map(Duration::from_secs),
            _ => return Err(bad()),
        }
        .ok_or_else(|| Failure::out_of_range("duration overflows"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| Failure::out_of_range("duration overflows"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in [
            "",
            "30",
            "s",
            "1x",
            "-1s",
            "1.5s",
            " 1s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration("18446744073709551615d").unwrap_err().kind,
            ProblemKind::OutOfRange
        );
    }

    #[test]
    fn bools() {
        for t in ["true", "TRUE", "1", "yes", "On"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "0", "no", "OFF"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn ports_and_lists() {
        assert_eq!(Kind::Port.parse("8080"), Ok(Value::Port(8080)));
        assert_eq!(
            Kind::Port.parse("0").unwrap_err().kind,
            ProblemKind::OutOfRange
        );
        assert_eq!(
            Kind::Port.parse("70000").unwrap_err().kind,
            ProblemKind::OutOfRange
        );
        let list = Kind::List {
            item: Box::new(Kind::Port),
        };
        assert_eq!(
            list.parse("80, 443"),
            Ok(Value::List(vec![Value::Port(80), Value::Port(443)]))
        );
        assert!(
            list.parse("80,,443")
                .unwrap_err()
                .message
                .contains("item 2")
        );
        assert!(list.parse("80,x").unwrap_err().message.contains("item 2"));
    }
}
