//! Which field names are sensitive.

use std::sync::Arc;

/// Substrings of field names whose values are written as `[REDACTED]` (case-insensitive):
/// `access_token`, `db_password`, `Authorization` all match.
pub const DEFAULT_SENSITIVE: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "private_key",
    "credential",
];

/// What a sensitive value is written as.
pub const REDACTED: &str = "[REDACTED]";

/// The set of sensitive name fragments.
#[derive(Clone, Debug)]
pub(crate) struct Redactor {
    fragments: Arc<[String]>,
}

impl Redactor {
    pub(crate) fn new(extra: &[String]) -> Self {
        let mut all: Vec<String> = DEFAULT_SENSITIVE.iter().map(|s| (*s).to_owned()).collect();
        all.extend(extra.iter().map(|s| s.to_ascii_lowercase()));
        Redactor {
            fragments: all.into(),
        }
    }

    /// Identity of this set (for caches keyed by redactor).
    pub(crate) fn id(&self) -> usize {
        self.fragments.as_ptr() as usize
    }

    /// Whether values of this field are hidden.
    pub(crate) fn is_sensitive(&self, name: &str) -> bool {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            let lower = name.to_ascii_lowercase();
            self.fragments.iter().any(|f| lower.contains(f.as_str()))
        } else {
            self.fragments.iter().any(|f| name.contains(f.as_str()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_match_case_insensitively() {
        let r = Redactor::new(&["ssn".into()]);
        for name in [
            "password",
            "db_password",
            "Authorization",
            "access_token",
            "api_key",
            "patient_ssn",
        ] {
            assert!(r.is_sensitive(name), "{name}");
        }
        for name in ["patient_id", "message", "route", "status"] {
            assert!(!r.is_sensitive(name), "{name}");
        }
    }
}
