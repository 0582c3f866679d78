//! [`Schema`]: the declared variables, validated all at once.

use std::collections::HashSet;

use crate::config::{Config, Entry};
use crate::report::{Problem, ProblemKind, Report};
use crate::source::{Origin, Raw, Source};
use crate::var::Var;

/// Exit status for configuration errors (`EX_CONFIG` from sysexits.h).
pub const EX_CONFIG: i32 = 78;

/// Which defaults apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Only [`Var::default`]s apply (the default).
    #[default]
    Production,
    /// [`Var::dev_default`]s apply first, then defaults.
    Development,
}

impl Mode {
    /// `Development` when `variable` is `development`, `dev`, `local` or `test` (any case) in
    /// `source`, else `Production`: an unset or unknown value never relaxes production rules.
    pub fn from_source(source: &Source, variable: &str) -> Mode {
        match source.get(variable).map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if matches!(v.as_str(), "development" | "dev" | "local" | "test") => {
                Mode::Development
            }
            _ => Mode::Production,
        }
    }
}

/// The variables a service needs. [`load`](Schema::load) validates every one of them in one
/// pass and returns either a typed [`Config`] or a [`Report`] of **all** problems.
///
/// ```
/// use nilecare_config_validator::{Schema, Source, Var, fragments};
///
/// let schema = Schema::new()
///     .prefix("NILECARE_")
///     .var(Var::url("DATABASE_URL").schemes(["postgres"]).example("postgres://db/nilecare"))
///     .var(Var::secret("JWT_SECRET").min_len(32))
///     .vars(fragments::http_server());
///
/// let report = schema
///     .load(&Source::from_pairs([("NILECARE_PORT", "eighty"), ("NILECARE_JWT_SECRET", "short")]))
///     .unwrap_err();
/// assert_eq!(report.problems().len(), 3); // DATABASE_URL missing, JWT_SECRET short, PORT invalid
/// assert!(!report.to_string().contains("short\""));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Schema {
    prefix: String,
    vars: Vec<Var>,
    mode: Mode,
}

impl Schema {
    /// An empty schema (no prefix, production mode).
    pub fn new() -> Self {
        Self::default()
    }

    /// A prefix for every variable name (`NILECARE_` → `PORT` is read from `NILECARE_PORT`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Declares a variable.
    #[must_use]
    pub fn var(mut self, var: Var) -> Self {
        self.vars.push(var);
        self
    }

    /// Declares several variables (e.g. a [fragment](crate::fragments)).
    #[must_use]
    pub fn vars(mut self, vars: impl IntoIterator<Item = Var>) -> Self {
        self.vars.extend(vars);
        self
    }

    /// Which defaults apply.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Validates every variable against `source`.
    pub fn load(&self, source: &Source) -> Result<Config, Report> {
        let mut report = Report::default();
        let mut entries = Vec::with_capacity(self.vars.len());
        let mut seen = HashSet::new();
        for var in &self.vars {
            let full_name = format!("{}{}", self.prefix, var.name);
            let problem = |kind, message: String| Problem {
                variable: full_name.clone(),
                kind,
                message,
                expected: var.expected(),
                example: var.example.clone(),
            };
            let mut schema_ok = true;
            if !seen.insert(var.name.clone()) {
                report.push(problem(ProblemKind::InvalidSchema, "declared twice".into()));
                continue;
            }
            for misuse in &var.misuse {
                report.push(problem(ProblemKind::InvalidSchema, misuse.clone()));
                schema_ok = false;
            }
            for (label, default) in [("default", &var.default), ("dev_default", &var.dev_default)] {
                if let Some(d) = default {
                    if let Err(f) = var.parse(d) {
                        let shown = show(d, var.sensitive);
                        report.push(problem(
                            ProblemKind::InvalidSchema,
                            format!("{label} {shown} is invalid: {}", f.message),
                        ));
                        schema_ok = false;
                    }
                }
            }
            if !schema_ok {
                continue;
            }

            let raw = source.raw(&full_name);
            let given = match raw {
                Some((Raw::NotUnicode, _)) => {
                    report.push(problem(ProblemKind::Invalid, "is not valid UTF-8".into()));
                    continue;
                }
                Some((Raw::Text(s), origin)) if !s.trim().is_empty() => Some((s.as_str(), *origin)),
                _ => None, // unset or empty: treated alike
            };
            let fallback = match self.mode {
                Mode::Development => var
                    .dev_default
                    .as_deref()
                    .map(|d| (d, Origin::DevDefault))
                    .or(var.default.as_deref().map(|d| (d, Origin::Default))),
                Mode::Production => var.default.as_deref().map(|d| (d, Origin::Default)),
            };
            let (value, origin) = match given.or(fallback) {
                Some((text, origin)) => match var.parse(text) {
                    Ok(v) => (Some(v), Some(origin)),
                    Err(f) => {
                        let message = format!("{}: {}", show(text, var.sensitive), f.message);
                        report.push(problem(f.kind, message));
                        continue;
                    }
                },
                None if var.required => {
                    let message = match (self.mode, &var.dev_default) {
                        (Mode::Production, Some(_)) => {
                            "not set (its default applies in development only)".into()
                        }
                        _ => "not set".into(),
                    };
                    report.push(problem(ProblemKind::Missing, message));
                    continue;
                }
                None => (None, None),
            };
            entries.push(Entry {
                name: var.name.clone(),
                full_name,
                value,
                origin,
                sensitive: var.sensitive,
            });
        }
        if report.is_empty() {
            Ok(Config { entries })
        } else {
            Err(report)
        }
    }

    /// [`load`](Schema::load) for `main`: on problems, prints the report to stderr and exits
    /// with status 78 (`EX_CONFIG`).
    pub fn load_or_exit(&self, source: &Source) -> Config {
        match self.load(source) {
            Ok(config) => config,
            Err(report) => {
                eprintln!("{report}");
                std::process::exit(EX_CONFIG);
            }
        }
    }

    /// A table of every variable: name, expected, default, description (for `--help` output).
    pub fn help(&self) -> String {
        let mut out = String::new();
        for var in &self.vars {
            let default = match (&var.default, var.sensitive) {
                (Some(_), true) => " [default: [REDACTED]]".to_owned(),
                (Some(d), false) => format!(" [default: {d}]"),
                (None, _) if !var.required => " [optional]".to_owned(),
                (None, _) => " [required]".to_owned(),
            };
            out.push_str(&format!(
                "{}{}: {}{}\n",
                self.prefix,
                var.name,
                var.expected(),
                default
            ));
            if let Some(d) = &var.description {
                out.push_str(&format!("    {d}\n"));
            }
        }
        out
    }
}

/// The offending value as shown in a report: quoted and shortened, or redacted with its length.
fn show(value: &str, sensitive: bool) -> String {
    if sensitive {
        return format!("[REDACTED] ({} chars)", value.chars().count());
    }
    const MAX: usize = 40;
    if value.chars().count() > MAX {
        let cut: String = value.chars().take(MAX).collect();
        format!("{cut:?}…")
    } else {
        format!("{value:?}")
    }
}
