//! Property test: arbitrary text never panics a parser; it yields a value or a report.

use nilecare_config_validator::{ItemKind, Schema, Source, Var, parse_log_filter};
use proptest::prelude::*;

fn schema() -> Schema {
    Schema::new()
        .var(Var::string("S").min_len(1).max_len(10).matches("^[a-z]+$"))
        .var(Var::integer("I").range(-5..=5))
        .var(Var::float("F").range(0.0..=1.0))
        .var(Var::bool("B"))
        .var(Var::port("P"))
        .var(Var::url("U").schemes(["https"]))
        .var(Var::duration("D"))
        .var(Var::one_of("E", ["a", "b"]))
        .var(Var::list("L", ItemKind::Duration))
        .var(Var::list("LI", ItemKind::Integer))
        .var(Var::secret("X").min_len(3))
        .var(Var::log_filter("LOG"))
}

const NAMES: [&str; 12] = [
    "S", "I", "F", "B", "P", "U", "D", "E", "L", "LI", "X", "LOG",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Any text in every variable: a value or a report, never a panic; a secret's text never
    /// appears in the report.
    #[test]
    fn arbitrary_unicode_never_panics(value in any::<String>()) {
        let source = Source::from_pairs(NAMES.iter().map(|n| (*n, value.clone())));
        match schema().load(&source) {
            Ok(config) => { let _ = format!("{config:?}"); }
            Err(report) => {
                let text = report.to_string();
                let secret = format!("{value}-only-in-the-secret");
                let leaked = Schema::new()
                    .var(Var::secret("X").min_len(10_000))
                    .load(&Source::from_pairs([("X", secret.clone())]))
                    .unwrap_err()
                    .to_string();
                prop_assert!(!leaked.contains(&secret), "{}", leaked);
                let _ = text;
            }
        }
    }

    /// An accepted log filter is normalized once and for all (normalizing it again changes
    /// nothing), and is made of known levels and well-formed targets only.
    #[test]
    fn accepted_log_filters_are_stable(value in "[a-zA-Z0-9_:=, .\\-]{0,40}") {
        if let Ok(normalized) = parse_log_filter(&value) {
            prop_assert_eq!(parse_log_filter(&normalized), Ok(normalized.clone()));
            for directive in normalized.split(',') {
                let level = directive.rsplit('=').next().unwrap_or_default();
                prop_assert!(["trace", "debug", "info", "warn", "error", "off"].contains(&level), "{}", directive);
            }
        }
    }

    #[test]
    fn number_and_duration_shaped_text_never_panics(value in "[0-9a-zµ:/.,+ -]{0,40}") {
        let source = Source::from_pairs(NAMES.iter().map(|n| (*n, value.clone())));
        let _ = schema().load(&source).map(|c| format!("{c:?}")).map_err(|r| r.to_string());
    }
}
