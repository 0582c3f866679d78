//! Every metric name the crates define is in nilecare-metrics' catalogue, under the crate that
//! emits it. Here, in the facade's tests, so that nilecare-metrics needs no dev-dependency on
//! the crates that depend on it (they can be published in order).

use nilecare::metrics::lookup;

#[test]
fn the_cache_crate_emits_only_catalogued_names() {
    use nilecare::cache::metrics as cache;
    for name in [
        cache::REQUESTS_TOTAL,
        cache::OPERATION_DURATION_SECONDS,
        cache::ERRORS_TOTAL,
        cache::EVICTIONS_TOTAL,
        cache::TENANT_LOOKUPS_TOTAL,
    ] {
        let entry = lookup(name).unwrap_or_else(|| panic!("{name} is not catalogued"));
        assert_eq!(entry.emitted_by, "nilecare-cache");
    }
}

#[test]
fn the_rate_limit_crate_emits_only_catalogued_names() {
    use nilecare::rate_limit::metrics as rl;
    for name in [
        rl::DECISIONS_TOTAL,
        rl::CHECK_DURATION_SECONDS,
        rl::LAYER_FAILURES_TOTAL,
        rl::TENANT_DECISIONS_TOTAL,
    ] {
        let entry = lookup(name).unwrap_or_else(|| panic!("{name} is not catalogued"));
        assert_eq!(entry.emitted_by, "nilecare-rate-limit");
    }
}

#[test]
fn the_circuit_breaker_crate_emits_only_catalogued_names() {
    use nilecare::circuit_breaker::metrics as cb;
    for name in [
        cb::STATE,
        cb::CALLS_TOTAL,
        cb::TRANSITIONS_TOTAL,
        cb::SHARED_AVAILABLE,
    ] {
        let entry = lookup(name).unwrap_or_else(|| panic!("{name} is not catalogued"));
        assert_eq!(entry.emitted_by, "nilecare-circuit-breaker");
    }
}

#[test]
fn the_service_discovery_crate_emits_only_catalogued_names() {
    use nilecare::service_discovery::metrics as sd;
    for name in [
        sd::INSTANCES,
        sd::SELECTIONS_TOTAL,
        sd::EJECTIONS_TOTAL,
        sd::HEALTH_CHECKS_TOTAL,
    ] {
        let entry = lookup(name).unwrap_or_else(|| panic!("{name} is not catalogued"));
        assert_eq!(entry.emitted_by, "nilecare-service-discovery");
    }
}

#[test]
fn the_auth_crate_emits_only_catalogued_names() {
    use nilecare::auth::metrics as auth;
    for name in [
        auth::VERIFICATIONS_TOTAL,
        auth::JWKS_FETCHES_TOTAL,
        auth::JWKS_FETCHED_TIMESTAMP_SECONDS,
        auth::REVOCATION_SYNCS_TOTAL,
    ] {
        let entry = lookup(name).unwrap_or_else(|| panic!("{name} is not catalogued"));
        assert_eq!(entry.emitted_by, "nilecare-auth");
    }
}

#[test]
fn the_versioning_crate_emits_only_catalogued_names() {
    let entry = lookup(nilecare::versioning::metrics::REQUESTS_TOTAL).expect("catalogued");
    assert_eq!(entry.emitted_by, "nilecare-versioning");
}
