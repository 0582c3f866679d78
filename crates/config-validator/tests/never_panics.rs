//! Property test: arbitrary text never panics a parser; it yields a value or a report.

use nilecare_config_validator::{ItemKind, Schema, Source, Var};
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
}

const NAMES: [&str; 11] = ["S", "I", "F", "B", "P", "U", "D", "E", "L", "LI", "X"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_unicode_never_panics(value in any::<String>()) {
        let source = Source::from_pairs(NAMES.iter().map(|n| (*n, value.clone())));
        match schema().load(&source) {
            Ok(config) => { let _ = format!("{config:?}"); }
            Err(report) => { let _ = report.to_string(); }
        }
    }

    #[test]
    fn number_and_duration_shaped_text_never_panics(value in "[0-9a-zµ:/.,+ -]{0,40}") {
        let source = Source::from_pairs(NAMES.iter().map(|n| (*n, value.clone())));
        let _ = schema().load(&source).map(|c| format!("{c:?}")).map_err(|r| r.to_string());
    }
}
