//! [`Source`]: where raw values come from (process environment, `.env` file, explicit map).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// The process environment.
    Environment,
    /// A `.env` file.
    DotEnv,
    /// An explicit map ([`Source::from_pairs`]).
    Explicit,
    /// The variable's default.
    Default,
    /// The variable's development default.
    DevDefault,
}

#[derive(Clone, Debug)]
pub(crate) enum Raw {
    Text(String),
    NotUnicode,
}

/// A snapshot of raw variables. Reading never modifies the process environment.
///
/// ```
/// use nilecare_config_validator::Source;
///
/// let source = Source::from_pairs([("PORT", "8080"), ("LOG_FORMAT", "json")]);
/// assert_eq!(source.get("PORT"), Some("8080"));
/// ```
#[derive(Clone, Default)]
pub struct Source {
    vars: HashMap<String, (Raw, Origin)>,
}

impl Source {
    /// The process environment (values that are not UTF-8 are reported as invalid, not dropped).
    pub fn env() -> Source {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                let raw = v.into_string().map_or(Raw::NotUnicode, Raw::Text);
                Some((k, (raw, Origin::Environment)))
            })
            .collect();
        Source { vars }
    }

    /// An explicit set of variables (tests, embedded configs).
    pub fn from_pairs<I, K, V>(pairs: I) -> Source
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), (Raw::Text(v.into()), Origin::Explicit)))
            .collect();
        Source { vars }
    }

    /// Adds the variables of a `.env` file that are not already set (the process environment
    /// wins). Fails when the file is missing or malformed; the error gives the entry number,
    /// never a line's content.
    pub fn with_dotenv(mut self, path: impl AsRef<Path>) -> Result<Source> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let iter = dotenvy::from_path_iter(path).map_err(|e| Error::DotEnv {
            path: shown.clone(),
            message: match e {
                dotenvy::Error::Io(io) => io.to_string(),
                _ => "cannot be read".into(),
            },
        })?;
        for (i, item) in iter.enumerate() {
            let (k, v) = item.map_err(|e| Error::DotEnv {
                path: shown.clone(),
                message: match e {
                    dotenvy::Error::LineParse(_, _) => {
                        format!("entry {} cannot be parsed", i + 1)
                    }
                    dotenvy::Error::Io(io) => io.to_string(),
                    _ => format!("entry {} cannot be read", i + 1),
                },
            })?;
            self.vars.entry(k).or_insert((Raw::Text(v), Origin::DotEnv));
        }
        Ok(self)
    }

    /// Like [`with_dotenv`](Source::with_dotenv), but a missing file is not an error.
    pub fn with_dotenv_if_exists(self, path: impl AsRef<Path>) -> Result<Source> {
        if path.as_ref().exists() {
            self.with_dotenv(path)
        } else {
            Ok(self)
        }
    }

    /// Sets one variable (overrides).
    #[must_use]
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Source {
        self.vars
            .insert(name.into(), (Raw::Text(value.into()), Origin::Explicit));
        self
    }

    /// The raw text of a variable, if set and UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.vars.get(name) {
            Some((Raw::Text(s), _)) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn raw(&self, name: &str) -> Option<&(Raw, Origin)> {
        self.vars.get(name)
    }
}

impl std::fmt::Debug for Source {
    /// Lists variable names and origins only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.vars.iter().map(|(k, (_, o))| (k, o)).collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        f.debug_struct("Source").field("vars", &names).finish()
    }
}
