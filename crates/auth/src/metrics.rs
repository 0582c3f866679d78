//! Metric names and recording (through the `metrics` facade).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_auth_verifications_total` | counter | `result` = `ok` or the error's [`label`](crate::TokenError::label), `unavailable` |
//! | `nilecare_auth_jwks_fetches_total` | counter | `result` = `ok` (provider), `shared` (taken from another instance's fetch), `error` |
//! | `nilecare_auth_jwks_fetched_timestamp_seconds` | gauge | `issuer` (configured, so bounded) |
//! | `nilecare_auth_revocation_syncs_total` | counter | `result` = `ok` / `error` |

/// The names, defined once in nilecare-metrics' catalogue (with their type, labels and help).
pub use nilecare_metrics::names::auth::{
    JWKS_FETCHED_TIMESTAMP_SECONDS, JWKS_FETCHES_TOTAL, REVOCATION_SYNCS_TOTAL, VERIFICATIONS_TOTAL,
};

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-auth");
}

pub(crate) fn verified(result: &'static str) {
    metrics::counter!(VERIFICATIONS_TOTAL, "result" => result).increment(1);
}

/// A key set loaded: `result` = `ok` (from the provider), `shared` (from another instance,
/// through the shared cache) or `error`; `fetched_at_ms` is when the provider was asked.
pub(crate) fn jwks_fetched(issuer: &str, result: &'static str, fetched_at_ms: u64) {
    metrics::counter!(JWKS_FETCHES_TOTAL, "result" => result).increment(1);
    if result != "error" {
        #[allow(clippy::cast_precision_loss)] // milliseconds since 1970 fit a double's 53 bits
        let at = fetched_at_ms as f64 / 1000.0;
        metrics::gauge!(JWKS_FETCHED_TIMESTAMP_SECONDS, "issuer" => issuer.to_owned()).set(at);
    }
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn revocations_synced(ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(REVOCATION_SYNCS_TOTAL, "result" => result).increment(1);
}
