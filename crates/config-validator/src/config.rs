//! [`Config`]: the validated values, read typed or deserialized into your struct.

use std::fmt;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::source::Origin;
use crate::value::{FromValue, Value, mismatch};

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) full_name: String,
    pub(crate) value: Option<Value>,
    pub(crate) origin: Option<Origin>,
    pub(crate) sensitive: bool,
}

/// A validated configuration. Every value already has its declared type: reading it converts,
/// it does not parse text again.
///
/// ```
/// use nilecare_config_validator::{Schema, Source, Var};
///
/// let config = Schema::new()
///     .prefix("APP_")
///     .var(Var::port("PORT").default(8080))
///     .var(Var::secret("TOKEN"))
///     .load(&Source::from_pairs([("APP_TOKEN", "t0ps3cret")]))?;
/// let port: u16 = config.get("PORT")?;
/// assert_eq!(port, 8080);
/// assert!(!format!("{config:?}").contains("t0ps3cret"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) entries: Vec<Entry>,
}

impl Config {
    fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries
            .iter()
            .find(|e| e.name == name || e.full_name == name)
            .ok_or_else(|| Error::Unknown {
                name: name.to_owned(),
            })
    }

    /// The value of a variable (declared name, with or without prefix) as `T`. Fails when the
    /// variable is unknown, unset (optional without default) or of another type.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T> {
        let entry = self.entry(name)?;
        let value = entry.value.as_ref().ok_or_else(|| Error::Unset {
            name: entry.full_name.clone(),
        })?;
        T::from_value(value).ok_or_else(|| mismatch::<T>(&entry.full_name, value))
    }

    /// Like [`get`](Config::get), with `None` for an optional variable that is not set.
    pub fn get_optional<T: FromValue>(&self, name: &str) -> Result<Option<T>> {
        let entry = self.entry(name)?;
        match &entry.value {
            None => Ok(None),
            Some(value) => T::from_value(value)
                .map(Some)
                .ok_or_else(|| mismatch::<T>(&entry.full_name, value)),
        }
    }

    /// The typed value, `None` when unset or unknown.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.entry(name).ok().and_then(|e| e.value.as_ref())
    }

    /// Where a set value came from.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.entry(name).ok().and_then(|e| e.origin)
    }

    /// Deserializes into your struct: field names are the variable names in lower case without
    /// the prefix (`DATABASE_URL` → `database_url`); unset optional variables are absent (use
    /// `Option` or `#[serde(default)]`); durations deserialize into `std::time::Duration`,
    /// secrets into [`Secret`](crate::Secret) or `String`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nilecare_config_validator::{Schema, Secret, Source, Var};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Settings { port: u16, timeout: Duration, api_key: Secret, region: Option<String> }
    ///
    /// let settings: Settings = Schema::new()
    ///     .var(Var::port("PORT"))
    ///     .var(Var::duration("TIMEOUT").default("1m30s"))
    ///     .var(Var::secret("API_KEY"))
    ///     .var(Var::string("REGION").optional())
    ///     .load(&Source::from_pairs([("PORT", "9000"), ("API_KEY", "k")]))?
    ///     .deserialize()?;
    /// assert_eq!((settings.port, settings.timeout), (9000, Duration::from_secs(90)));
    /// assert_eq!(settings.region, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .entries
            .iter()
            .filter_map(|e| Some((e.name.to_ascii_lowercase(), e.value.as_ref()?.to_json())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
            let mut message = e.to_string();
            for entry in self.entries.iter().filter(|e| e.sensitive) {
                if let Some(v) = &entry.value {
                    if let serde_json::Value::String(s) = v.to_json() {
                        if !s.is_empty() {
                            message = message.replace(&s, "[REDACTED]");
                        }
                    }
                }
            }
            Error::Deserialize { message }
        })
    }

    /// `(name with prefix, value)` for every set variable, secrets redacted in `Debug`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries
            .iter()
            .filter_map(|e| Some((e.full_name.as_str(), e.value.as_ref()?)))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for e in &self.entries {
            match (&e.value, e.sensitive) {
                (None, _) => map.entry(&e.full_name, &format_args!("<unset>")),
                (Some(_), true) => map.entry(&e.full_name, &format_args!("[REDACTED]")),
                (Some(v), false) => map.entry(&e.full_name, v),
            };
        }
        map.finish()
    }
}
