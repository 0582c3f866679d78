//! [`Report`]: every configuration problem found in one pass, printable as a table.

use std::fmt;

/// What kind of problem a variable has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// Required and not set (no default for this mode).
    Missing,
    /// Set but unparseable (not a number, not a URL, no match).
    Invalid,
    /// Parsed but outside the allowed range or length.
    OutOfRange,
    /// Not one of the allowed values (enum members, URL schemes).
    NotInSet,
    /// Rejected by a custom check.
    Rejected,
    /// The schema itself is wrong (duplicate variable, default that fails validation, bad regex).
    InvalidSchema,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Invalid => "invalid",
            ProblemKind::OutOfRange => "out of range",
            ProblemKind::NotInSet => "not allowed",
            ProblemKind::Rejected => "rejected",
            ProblemKind::InvalidSchema => "schema error",
        })
    }
}

/// One problem with one variable. `message` shows the offending value (quoted, shortened) unless
/// the variable is secret, in which case it shows `[REDACTED]` and the length at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The variable as read from the environment (with prefix).
    pub variable: String,
    /// The kind of problem.
    pub kind: ProblemKind,
    /// What is wrong.
    pub message: String,
    /// What a valid value looks like.
    pub expected: String,
    /// An example value from the schema, if any.
    pub example: Option<String>,
}

/// Every problem found while validating a configuration: returned by
/// [`Schema::load`](crate::Schema::load), printed by [`Schema::load_or_exit`](crate::Schema::load_or_exit).
///
/// `Display` is a table a person can act on:
///
/// ```text
/// configuration is invalid: 2 problems
///
///   VARIABLE       PROBLEM                                   EXPECTED          EXAMPLE
///   NILECARE_PORT  invalid: "eighty" is not a port number    port 1..=65535    8080
///   JWT_SECRET     missing                                   secret string     -
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    problems: Vec<Problem>,
}

impl Report {
    pub(crate) fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// The problems, in schema order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problem of one variable, if any.
    pub fn problem(&self, variable: &str) -> Option<&Problem> {
        self.problems.iter().find(|p| p.variable == variable)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "configuration is invalid: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        writeln!(f)?;
        let rows: Vec<[String; 4]> = self
            .problems
            .iter()
            .map(|p| {
                let problem = if p.message.is_empty() {
                    p.kind.to_string()
                } else {
                    format!("{}: {}", p.kind, p.message)
                };
                [
                    p.variable.clone(),
                    problem,
                    p.expected.clone(),
                    p.example.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let header = ["VARIABLE", "PROBLEM", "EXPECTED", "EXAMPLE"].map(String::from);
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            write!(f, " ")?;
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                if i == 3 {
                    write!(f, "  {cell}")?;
                } else {
                    write!(f, "  {cell:<w$}")?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Report {}
