//! Every kind of configuration value (one variable per input line).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nilecare_config_validator::{ItemKind, Schema, Source, Var};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let names = ["S", "I", "F", "B", "P", "U", "D", "E", "L", "X", "LOG"];
    let pairs: Vec<(String, String)> = names
        .iter()
        .zip(text.split('\n').cycle())
        .map(|(n, v)| ((*n).to_owned(), v.to_owned()))
        .collect();
    let schema = Schema::new()
        .var(Var::string("S").max_len(10).matches("^[a-z]+$"))
        .var(Var::integer("I").range(-5..=5))
        .var(Var::float("F").range(0.0..=1.0))
        .var(Var::bool("B"))
        .var(Var::port("P"))
        .var(Var::url("U").schemes(["https", "redis"]))
        .var(Var::duration("D"))
        .var(Var::one_of("E", ["a", "b"]))
        .var(Var::list("L", ItemKind::Duration))
        .var(Var::secret("X").min_len(3))
        .var(Var::log_filter("LOG"));
    match schema.load(&Source::from_pairs(pairs)) {
        Ok(config) => drop(format!("{config:?}")),
        Err(report) => drop(report.to_string()),
    }
});
