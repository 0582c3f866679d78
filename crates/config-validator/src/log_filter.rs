//! Log filters (`LOG_LEVEL`, `RUST_LOG`): a level, or `target=level` directives. A bare word
//! other than a level is a typo (`loud`), not a target: it would silence every log line.

/// The levels a filter accepts, lowest to highest, and `off`.
pub const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// What [`parse_log_filter`] accepts, for error reports.
pub const LOG_FILTER_EXPECTED: &str = "a level (trace, debug, info, warn, error, off) or \
     comma-separated directives `level` / `target=level`, e.g. `info,nilecare=debug,hyper=warn`";

/// Checks a log filter and returns it normalized (trimmed, levels lowercased, no empty
/// directives). Each comma-separated directive is a level or `target=level`, the target a Rust
/// module path (`nilecare_cache`, `tower_http::trace`) of letters, digits, `_`, `-`, `.` and
/// `::`. Anything else is an error naming the directive and the accepted forms.
///
/// ```
/// use nilecare_config_validator::parse_log_filter;
///
/// assert_eq!(parse_log_filter(" INFO, nilecare=Debug ")?, "info,nilecare=debug");
/// assert!(parse_log_filter("loud").unwrap_err().contains("`loud`"));
/// assert!(parse_log_filter("nilecare=chatty").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn parse_log_filter(text: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for directive in text.split(',') {
        let directive = directive.trim();
        if directive.is_empty() {
            continue;
        }
        let normalized = match directive.split_once('=') {
            None => level(directive).map(str::to_owned),
            Some((target, lvl)) => {
                let target = target.trim();
                match (valid_target(target), level(lvl.trim())) {
                    (true, Some(lvl)) => Some(format!("{target}={lvl}")),
                    _ => None,
                }
            }
        };
        match normalized {
            Some(d) => out.push(d),
            None => {
                let shown: String = directive.chars().take(64).collect();
                return Err(format!(
                    "`{shown}` is not a log directive; expected {LOG_FILTER_EXPECTED}"
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(format!("is empty; expected {LOG_FILTER_EXPECTED}"));
    }
    Ok(out.join(","))
}

fn level(text: &str) -> Option<&'static str> {
    LOG_LEVELS
        .iter()
        .copied()
        .find(|l| l.eq_ignore_ascii_case(text))
}

fn valid_target(target: &str) -> bool {
    !target.is_empty()
        && target.len() <= 256
        && target.split("::").all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_accepted_and_normalized() {
        for (input, want) in [
            ("info", "info"),
            ("WARN", "warn"),
            ("off", "off"),
            ("info,nilecare=debug", "info,nilecare=debug"),
            (
                "tower_http::trace=warn, ,error",
                "tower_http::trace=warn,error",
            ),
            ("my-crate.v2=trace", "my-crate.v2=trace"),
        ] {
            assert_eq!(parse_log_filter(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn typos_and_bare_targets_are_errors_naming_the_directive() {
        for bad in [
            "loud",
            "nilecare",
            "info,verbose",
            "nilecare=chatty",
            "=info",
            "a::=info",
            "x[span]=debug",
            "",
            " , ",
        ] {
            let e = parse_log_filter(bad).unwrap_err();
            assert!(e.contains("expected a level"), "{bad}: {e}");
        }
        assert!(parse_log_filter("loud").unwrap_err().contains("`loud`"));
    }
}
