//! The environments deploy/ gives the orchestrator (the Kubernetes ConfigMap and Secret
//! example, the compose service) pass the orchestrator's own start-up validation, and the
//! shutdown timeline of the Deployment holds (`SHUTDOWN_GRACE` + preStop pause below
//! `terminationGracePeriodSeconds`).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::Path;
use std::time::Duration;

use nilecare::config_validator::Source;
use nilecare_orchestrator::Settings;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `key: value` lines indented under `section:` (a flat YAML mapping), quotes removed.
fn mapping(yaml: &str, section: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut inside = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match inside {
            None if text == format!("{section}:") => inside = Some(indent),
            Some(outer) if indent <= outer => inside = None,
            Some(_) => {
                let (key, value) = text.split_once(':').unwrap();
                let value = value.trim().trim_matches('"').to_owned();
                pairs.push((key.trim().to_owned(), value));
            }
            None => {}
        }
    }
    pairs
}

fn settings(pairs: Vec<(String, String)>) -> Settings {
    let source = Source::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Settings::from_source(&source).unwrap_or_else(|e| panic!("rejected: {e}"))
}

#[test]
fn the_kubernetes_configmap_and_secret_are_a_valid_configuration() {
    let mut pairs = mapping(&read("deploy/kubernetes/configmap.yaml"), "data");
    pairs.extend(mapping(
        &read("deploy/kubernetes/secret.example.yaml"),
        "stringData",
    ));
    assert!(pairs.len() >= 15, "{pairs:?}");
    let settings = settings(pairs);
    assert_eq!(settings.environment, "production");
    assert!(
        settings
            .redis_url
            .as_deref()
            .unwrap()
            .starts_with("redis-cluster://")
    );
    assert!(settings.auth_issuer.is_some());

    let deployment = read("deploy/kubernetes/deployment.yaml");
    let grace: u64 = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("terminationGracePeriodSeconds:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pre_stop: u64 = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("command: [\"sleep\", \""))
        .unwrap()
        .trim_end_matches("\"]")
        .parse()
        .unwrap();
    assert!(
        settings.shutdown_grace + Duration::from_secs(pre_stop) < Duration::from_secs(grace),
        "SHUTDOWN_GRACE {:?} + preStop {pre_stop}s must end before {grace}s",
        settings.shutdown_grace
    );
}

#[test]
fn the_compose_environment_is_a_valid_configuration() {
    let compose = read("deploy/docker-compose.yml");
    let orchestrator = compose
        .split("\n  orchestrator:\n")
        .nth(1)
        .unwrap()
        .split("\n  redis:\n")
        .next()
        .unwrap();
    // `${VAR:-default}` as compose resolves it without a .env file.
    let pairs: Vec<(String, String)> = mapping(orchestrator, "environment")
        .into_iter()
        .map(|(k, v)| {
            let v = match v.strip_prefix("${").and_then(|v| v.split_once(":-")) {
                Some((_, default)) => default.trim_end_matches('}').to_owned(),
                None => v,
            };
            (k, v)
        })
        .collect();
    assert!(pairs.iter().any(|(k, _)| k == "REDIS_URL"), "{pairs:?}");
    let settings = settings(pairs);
    assert_eq!(settings.redis_url.as_deref(), Some("redis://redis:6379"));
    assert_eq!(settings.environment, "development");
}
