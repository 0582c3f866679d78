//! The operations assets in docs/operations are valid and only use catalogued metrics.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::Command;

use nilecare_metrics::catalogue::{CATALOGUE, lookup};

fn operations_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(operations_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is missing ({e}): install the Debian package `prometheus` (scripts/test does this)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Metric-looking tokens of a PromQL expression that belong to our families.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| {
            t.starts_with("nilecare_") || t.starts_with("http_server_") || t.starts_with("process_")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    assert!(promtool(&["check", "rules", "alerts.yml"]).contains("SUCCESS"));
    assert!(promtool(&["test", "rules", "alerts.test.yml"]).contains("SUCCESS"));
    promtool(&["check", "config", "prometheus.yml"]);
}

#[test]
fn alert_rules_only_use_catalogued_metrics() {
    let rules = std::fs::read_to_string(operations_dir().join("alerts.yml")).unwrap();
    let names = metric_names(&rules);
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        assert!(
            lookup(&name).is_some(),
            "alerts.yml uses {name}, which is not in the catalogue"
        );
    }
}

#[test]
fn the_dashboard_parses_and_only_queries_catalogued_metrics() {
    let text = std::fs::read_to_string(operations_dir().join("grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut queried = Vec::new();
    for panel in panels {
        // A row only groups the panels below it.
        let Some(targets) = panel["targets"].as_array() else {
            assert_eq!(
                panel["type"], "row",
                "panel {} has no query",
                panel["title"]
            );
            continue;
        };
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "panel {} queries nothing we emit: {expr}",
                panel["title"]
            );
            queried.extend(names);
        }
    }
    for name in &queried {
        assert!(
            lookup(name).is_some(),
            "the dashboard queries {name}, which is not in the catalogue"
        );
    }
    // RED per route, cache, rate limit, breakers, discovery and process are all covered.
    for family in [
        "http_server_",
        "nilecare_cache_",
        "nilecare_ratelimit_",
        "nilecare_circuit_breaker_",
        "nilecare_discovery_",
        "nilecare_messaging_",
        "process_",
    ] {
        assert!(
            queried.iter().any(|n| n.starts_with(family)),
            "no panel for {family}"
        );
    }
}

#[test]
fn the_readme_lists_the_whole_catalogue() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for m in CATALOGUE {
        assert!(
            readme.contains(&format!("`{}`", m.name)),
            "README misses {}",
            m.name
        );
    }
}
