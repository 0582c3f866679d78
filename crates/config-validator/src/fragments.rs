//! Ready-made variable sets for the NileCare crates. Add them with
//! [`Schema::vars`](crate::Schema::vars).

use std::time::Duration;

use crate::var::Var;

/// Redis: `REDIS_URL` (optional: unset means in-memory backends; any `redis`, `rediss`,
/// `redis-cluster`, `redis+cluster`, `redis-sentinel`, `redis+sentinel` URL; its password is
/// masked in every rendering), `REDIS_TLS_CA_FILE` (optional PEM file of the CA to trust for
/// `rediss://`), `REDIS_POOL_SIZE` (1..=256, default 4), `REDIS_CONNECT_TIMEOUT`
/// (default 5s), `REDIS_COMMAND_TIMEOUT` (default 2s).
pub fn redis() -> Vec<Var> {
    vec![
        Var::url("REDIS_URL")
            .schemes([
                "redis",
                "rediss",
                "redis-cluster",
                "rediss-cluster",
                "redis+cluster",
                "rediss+cluster",
                "redis-sentinel",
                "rediss-sentinel",
                "redis+sentinel",
                "rediss+sentinel",
                "valkey",
                "valkeys",
            ])
            .optional()
            .description("Redis deployment; unset = in-memory backends")
            .example("redis://127.0.0.1:6379"),
        Var::string("REDIS_TLS_CA_FILE")
            .optional()
            .description("PEM file of the CA to trust for rediss:// (unset: the system's roots)")
            .example("/etc/nilecare/redis-ca.pem"),
        Var::integer("REDIS_POOL_SIZE")
            .range(1..=256)
            .default(4)
            .description("connections in the Redis pool"),
        Var::duration("REDIS_CONNECT_TIMEOUT")
            .range(Duration::from_millis(1)..=Duration::from_secs(3600))
            .default("5s")
            .description("time allowed for the first connection"),
        Var::duration("REDIS_COMMAND_TIMEOUT")
            .range(Duration::from_millis(1)..=Duration::from_secs(3600))
            .default("2s")
            .description("time after which a Redis command fails"),
    ]
}

/// OpenTelemetry: `OTEL_EXPORTER_OTLP_ENDPOINT` (optional http/https URL; unset = no export),
/// `OTEL_EXPORTER_OTLP_CERTIFICATE` (optional PEM file of the collector's CA),
/// `OTEL_SERVICE_NAME` (optional), `OTEL_TRACES_SAMPLER_ARG` (ratio 0.0..=1.0, default 1.0).
pub fn otel() -> Vec<Var> {
    vec![
        Var::url("OTEL_EXPORTER_OTLP_ENDPOINT")
            .schemes(["http", "https"])
            .optional()
            .description("OTLP collector; unset = traces are not exported")
            .example("http://localhost:4318"),
        Var::string("OTEL_SERVICE_NAME")
            .max_len(128)
            .optional()
            .description("service.name resource attribute"),
        Var::string("OTEL_EXPORTER_OTLP_CERTIFICATE")
            .optional()
            .description(
                "PEM file of the CA to trust for an https:// collector (unset: the system's roots)",
            )
            .example("/etc/nilecare/otel-ca.pem"),
        Var::float("OTEL_TRACES_SAMPLER_ARG")
            .range(0.0..=1.0)
            .default(1.0)
            .description("share of new traces sampled"),
    ]
}

/// Logging: `LOG_LEVEL` (a level or `target=level` directives, checked by
/// [`Var::log_filter`]; default `info`), `LOG_FORMAT` (`json` or `pretty`, optional: unset picks
/// pretty on a terminal, JSON otherwise).
pub fn logging() -> Vec<Var> {
    vec![
        Var::log_filter("LOG_LEVEL")
            .default("info")
            .dev_default("debug")
            .description("log level or target=level directives")
            .example("info,nilecare=debug"),
        Var::one_of("LOG_FORMAT", ["json", "pretty"])
            .optional()
            .description("json or pretty; unset = pretty on a terminal, json otherwise"),
    ]
}

/// HTTP server: `HOST` (default `0.0.0.0`, `127.0.0.1` in development), `PORT` (default 8080).
pub fn http_server() -> Vec<Var> {
    vec![
        Var::string("HOST")
            .check(|value| match value {
                crate::Value::String(host) if valid_host(host) => Ok(()),
                _ => Err("must be an IP address or a host name (no port, no scheme)".into()),
            })
            .default("0.0.0.0")
            .dev_default("127.0.0.1")
            .description("listen address"),
        Var::port("PORT").default(8080).description("listen port"),
    ]
}

/// An IP address or a DNS host name (letters, digits, `-`, dots; labels of 1 to 63 bytes).
fn valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
