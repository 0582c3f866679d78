//! [`Var`]: one declared variable: its type, constraints, defaults and documentation.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use crate::parse::{Failure, ItemKind, Kind};
use crate::report::ProblemKind;
use crate::value::Value;

/// A custom check run on the parsed value; `Err` carries the message for the report.
pub(crate) type Check = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// A custom parser for [`Var::custom`].
pub(crate) type Parser = Arc<dyn Fn(&str) -> Result<Value, String> + Send + Sync>;

/// Bounds for [`Var::range`]: integer, float or duration ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bounds {
    /// Inclusive integer range.
    Integer(i64, i64),
    /// Inclusive float range.
    Float(f64, f64),
    /// Inclusive duration range.
    Duration(Duration, Duration),
}

macro_rules! int_bounds {
    ($($t:ty),*) => {$(
        impl From<RangeInclusive<$t>> for Bounds {
            fn from(r: RangeInclusive<$t>) -> Self {
                Bounds::Integer(i64::from(*r.start()), i64::from(*r.end()))
            }
        }
    )*};
}
int_bounds!(i32, i64, u16, u32, u8);

impl From<RangeInclusive<f64>> for Bounds {
    fn from(r: RangeInclusive<f64>) -> Self {
        Bounds::Float(*r.start(), *r.end())
    }
}

impl From<RangeInclusive<Duration>> for Bounds {
    fn from(r: RangeInclusive<Duration>) -> Self {
        Bounds::Duration(*r.start(), *r.end())
    }
}

/// One environment variable of a [`Schema`](crate::Schema).
///
/// Required unless [`optional`](Var::optional) or given a [`default`](Var::default). Defaults are
/// written as text and validated like any value, so a bad default is reported too.
///
/// ```
/// use std::time::Duration;
/// use nilecare_config_validator::{ItemKind, Var};
///
/// let vars = [
///     Var::port("PORT").default(8080).description("HTTP listen port"),
///     Var::url("DATABASE_URL").schemes(["postgres", "postgresql"]).example("postgres://db/app"),
///     Var::secret("JWT_SECRET").min_len(32),
///     Var::integer("DB_POOL").range(1..=64).default(10).dev_default(2),
///     Var::duration("REQUEST_TIMEOUT").range(Duration::from_millis(10)..=Duration::from_secs(60)).default("30s"),
///     Var::one_of("LOG_FORMAT", ["json", "pretty"]).optional(),
///     Var::list("CORS_ORIGINS", ItemKind::Url).optional(),
///     Var::string("CLINIC_CODE").matches("^[A-Z]{3}-[0-9]{2}$").optional(),
///     Var::integer("SHARDS").check(|v| match v {
///         nilecare_config_validator::Value::Integer(n) if n.count_ones() == 1 => Ok(()),
///         _ => Err("must be a power of two".into()),
///     }).default(4),
/// ];
/// # let _ = vars;
/// ```
#[derive(Clone)]
pub struct Var {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) custom: Option<(String, Parser)>,
    pub(crate) required: bool,
    pub(crate) sensitive: bool,
    pub(crate) default: Option<String>,
    pub(crate) dev_default: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) example: Option<String>,
    pub(crate) checks: Vec<Check>,
    /// Builder misuse (a range on a bool, ...), reported as schema problems.
    pub(crate) misuse: Vec<String>,
}

impl Var {
    fn new(name: impl Into<String>, kind: Kind) -> Self {
        Var {
            name: name.into(),
            kind,
            custom: None,
            required: true,
            sensitive: false,
            default: None,
            dev_default: None,
            description: None,
            example: None,
            checks: Vec::new(),
            misuse: Vec::new(),
        }
    }

    /// Any text.
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, Kind::string())
    }

    /// A 64-bit integer; constrain with [`range`](Var::range).
    pub fn integer(name: impl Into<String>) -> Self {
        Self::new(name, Kind::integer())
    }

    /// A finite float; constrain with [`range`](Var::range).
    pub fn float(name: impl Into<String>) -> Self {
        Self::new(name, Kind::float())
    }

    /// `true/false`, `1/0`, `yes/no`, `on/off` (any case).
    pub fn bool(name: impl Into<String>) -> Self {
        Self::new(name, Kind::Bool)
    }

    /// A TCP port, 1..=65535.
    pub fn port(name: impl Into<String>) -> Self {
        Self::new(name, Kind::Port)
    }

    /// A URL; restrict the schemes with [`schemes`](Var::schemes). Passwords in URLs are shown as
    /// `***` in every rendering.
    pub fn url(name: impl Into<String>) -> Self {
        Self::new(name, Kind::url())
    }

    /// A duration: `500ms`, `30s`, `5m`, `1h`, `2d`, sums like `1h30m`.
    pub fn duration(name: impl Into<String>) -> Self {
        Self::new(name, Kind::duration())
    }

    /// One of `allowed` (case-insensitive; the value is normalised to the listed spelling).
    pub fn one_of<I, S>(name: impl Into<String>, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let allowed: Vec<String> = allowed.into_iter().map(Into::into).collect();
        let mut var = Self::new(name, Kind::Enum { allowed });
        if matches!(&var.kind, Kind::Enum { allowed } if allowed.is_empty()) {
            var.misuse
                .push("one_of needs at least one allowed value".into());
        }
        var
    }

    /// A comma-separated list of `item`s (whitespace around items is trimmed; empty items are an
    /// error). Constraints ([`range`](Var::range), [`schemes`](Var::schemes), ...) apply to each item.
    pub fn list(name: impl Into<String>, item: ItemKind) -> Self {
        Self::new(
            name,
            Kind::List {
                item: Box::new(Kind::item(item)),
            },
        )
    }

    /// A secret string: never shown in `Debug`, `Display`, reports or logs (at most
    /// `[REDACTED]` and its length); read it as [`Secret`](crate::Secret).
    pub fn secret(name: impl Into<String>) -> Self {
        let mut var = Self::new(
            name,
            Kind::String {
                min_len: 0,
                max_len: usize::MAX,
                pattern: None,
                secret: true,
            },
        );
        var.sensitive = true;
        var
    }

    /// A value parsed by your own function; `expected` describes valid values in the report.
    ///
    /// ```
    /// use nilecare_config_validator::{Value, Var};
    /// let v = Var::custom("RATIO", "a ratio like 3:1", |s: &str| -> Result<Value, String> {
    ///     let (a, b) = s.split_once(':').ok_or("missing `:`")?;
    ///     let a: i64 = a.parse().map_err(|_| "left side is not a number")?;
    ///     let b: i64 = b.parse().map_err(|_| "right side is not a number")?;
    ///     Ok(Value::List(vec![Value::Integer(a), Value::Integer(b)]))
    /// });
    /// # let _ = v;
    /// ```
    pub fn custom<F, E>(name: impl Into<String>, expected: impl Into<String>, parse: F) -> Self
    where
        F: Fn(&str) -> Result<Value, E> + Send + Sync + 'static,
        E: Into<String>,
    {
        let mut var = Self::new(name, Kind::string());
        var.custom = Some((
            expected.into(),
            Arc::new(move |s: &str| parse(s).map_err(Into::into)),
        ));
        var
    }

    /// A log filter ([`parse_log_filter`](crate::parse_log_filter)): a level or `target=level`
    /// directives; a bare word like `loud` is an error listing the accepted forms, never a
    /// filter that silently drops every line. The value is the normalized filter text.
    pub fn log_filter(name: impl Into<String>) -> Self {
        Self::custom(
            name,
            crate::log_filter::LOG_FILTER_EXPECTED,
            |text: &str| -> Result<Value, String> {
                crate::log_filter::parse_log_filter(text).map(Value::String)
            },
        )
    }

    /// Must be set (the default).
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// May be absent; read it with [`Config::get_optional`](crate::Config::get_optional).
    #[must_use]
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Used when the variable is absent (in every mode unless a dev default overrides it).
    #[must_use]
    pub fn default(mut self, value: impl fmt::Display) -> Self {
        self.default = Some(value.to_string());
        self
    }

    /// Used when absent in [`Mode::Development`](crate::Mode::Development) only; production then
    /// needs the variable set (or a [`default`](Var::default)).
    #[must_use]
    pub fn dev_default(mut self, value: impl fmt::Display) -> Self {
        self.dev_default = Some(value.to_string());
        self
    }

    /// What the variable is for (shown by [`Schema::help`](crate::Schema::help)).
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// An example value (shown in reports).
    #[must_use]
    pub fn example(mut self, value: impl Into<String>) -> Self {
        self.example = Some(value.into());
        self
    }

    /// Marks the value sensitive: shown as `[REDACTED]` everywhere. Strings become
    /// [`Secret`](crate::Secret)s.
    #[must_use]
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        if let Kind::String { secret, .. } = self.kind.leaf_mut() {
            *secret = true;
        }
        self
    }

    /// Inclusive bounds for integers (`1..=64`), floats (`0.0..=1.0`) or durations.
    #[must_use]
    pub fn range(mut self, bounds: impl Into<Bounds>) -> Self {
        let bounds = bounds.into();
        match (self.kind.leaf_mut(), bounds) {
            (Kind::Integer { min, max }, Bounds::Integer(lo, hi)) => (*min, *max) = (lo, hi),
            (Kind::Float { min, max }, Bounds::Float(lo, hi)) => (*min, *max) = (lo, hi),
            (Kind::Float { min, max }, Bounds::Integer(lo, hi)) => {
                (*min, *max) = (lo as f64, hi as f64)
            }
            (Kind::Duration { min, max }, Bounds::Duration(lo, hi)) => (*min, *max) = (lo, hi),
            (kind, bounds) => self.misuse.push(format!(
                "range {bounds:?} does not apply to {}",
                kind.expected()
            )),
        }
        self
    }

    /// Minimum length in characters (strings and secrets).
    #[must_use]
    pub fn min_len(mut self, n: usize) -> Self {
        match self.kind.leaf_mut() {
            Kind::String { min_len, .. } => *min_len = n,
            _ => self.misuse.push("min_len applies to strings only".into()),
        }
        self
    }

    /// Maximum length in characters (strings and secrets).
    #[must_use]
    pub fn max_len(mut self, n: usize) -> Self {
        match self.kind.leaf_mut() {
            Kind::String { max_len, .. } => *max_len = n,
            _ => self.misuse.push("max_len applies to strings only".into()),
        }
        self
    }

    /// The string must match this regular expression (`regex-lite` syntax; anchor it with `^…$`
    /// to match the whole value).
    #[must_use]
    pub fn matches(mut self, pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        if let Err(e) = regex_lite::Regex::new(&pattern) {
            self.misuse
                .push(format!("pattern /{pattern}/ does not compile: {e}"));
        }
        match self.kind.leaf_mut() {
            Kind::String { pattern: p, .. } => *p = Some(pattern),
            _ => self.misuse.push("matches applies to strings only".into()),
        }
        self
    }

    /// Allowed URL schemes (`["https"]`, `["redis", "rediss"]`).
    #[must_use]
    pub fn schemes<I, S>(mut self, schemes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match self.kind.leaf_mut() {
            Kind::Url { schemes: s } => *s = schemes.into_iter().map(Into::into).collect(),
            _ => self.misuse.push("schemes applies to URLs only".into()),
        }
        self
    }

    /// A further check on the parsed value; `Err(message)` becomes a `rejected` problem.
    #[must_use]
    pub fn check<F>(mut self, check: F) -> Self
    where
        F: Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    {
        self.checks.push(Arc::new(check));
        self
    }

    /// The declared name (without prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What valid values look like.
    pub fn expected(&self) -> String {
        match &self.custom {
            Some((expected, _)) => expected.clone(),
            None => self.kind.expected(),
        }
    }

    /// Parses and checks one raw value.
    pub(crate) fn parse(&self, raw: &str) -> Result<Value, Failure> {
        let raw = if self.kind.is_secret() {
            raw
        } else {
            raw.trim()
        };
        let value = match &self.custom {
            Some((_, parser)) => parser(raw).map_err(Failure::invalid)?,
            None => self.kind.parse(raw)?,
        };
        for check in &self.checks {
            check(&value).map_err(|message| Failure {
                kind: ProblemKind::Rejected,
                message,
            })?;
        }
        Ok(value)
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        let mut d = f.debug_struct("Var");
        d.field("name", &self.name)
            .field("expected", &self.expected())
            .field("required", &self.required);
        if self.sensitive {
            d.field("default", &hide(&self.default))
                .field("dev_default", &hide(&self.dev_default));
        } else {
            d.field("default", &self.default)
                .field("dev_default", &self.dev_default);
        }
        d.finish_non_exhaustive()
    }
}
