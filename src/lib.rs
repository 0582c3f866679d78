//! The NileCare platform crates in one dependency.
//!
//! Each crate is re-exported under a short name behind a feature of the same name (all on by
//! default). Depend on the individual crates instead when you need only a few.
//!
//! | module | crate | feature |
//! |---|---|---|
//! | [`cache`] | `nilecare-cache` | `cache` |
//! | [`rate_limit`] | `nilecare-rate-limit` | `rate-limit` |
//! | [`tracing`] | `nilecare-tracing` | `tracing` |
//! | [`metrics`] | `nilecare-metrics` | `metrics` |
//! | [`service_discovery`] | `nilecare-service-discovery` | `service-discovery` |
//! | [`circuit_breaker`] | `nilecare-circuit-breaker` | `circuit-breaker` |
//! | [`logger`] | `nilecare-logger` | `logger` |
//! | [`config_validator`] | `nilecare-config-validator` | `config-validator` |
//! | [`error_handler`] | `nilecare-error-handler` | `error-handler` |
//! | [`redis`] | `nilecare-redis` | `redis` |
//! | [`auth`] | `nilecare-auth` | `auth` |
//! | [`tls`] | `nilecare-tls` | `tls` |
//! | [`versioning`] | `nilecare-versioning` | `versioning` |
//! | [`graphql`] | `nilecare-graphql` | `graphql` |
//! | [`messaging`] | `nilecare-messaging` | `messaging` |
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "auth")]
#[doc(inline)]
pub use nilecare_auth as auth;
#[cfg(feature = "cache")]
#[doc(inline)]
pub use nilecare_cache as cache;
#[cfg(feature = "circuit-breaker")]
#[doc(inline)]
pub use nilecare_circuit_breaker as circuit_breaker;
#[cfg(feature = "config-validator")]
#[doc(inline)]
pub use nilecare_config_validator as config_validator;
#[cfg(feature = "error-handler")]
#[doc(inline)]
pub use nilecare_error_handler as error_handler;
#[cfg(feature = "graphql")]
#[doc(inline)]
pub use nilecare_graphql as graphql;
#[cfg(feature = "logger")]
#[doc(inline)]
pub use nilecare_logger as logger;
#[cfg(feature = "messaging")]
#[doc(inline)]
pub use nilecare_messaging as messaging;
#[cfg(feature = "metrics")]
#[doc(inline)]
pub use nilecare_metrics as metrics;
#[cfg(feature = "rate-limit")]
#[doc(inline)]
pub use nilecare_rate_limit as rate_limit;
#[cfg(feature = "redis")]
#[doc(inline)]
pub use nilecare_redis as redis;
#[cfg(feature = "service-discovery")]
#[doc(inline)]
pub use nilecare_service_discovery as service_discovery;
#[cfg(feature = "tls")]
#[doc(inline)]
pub use nilecare_tls as tls;
#[cfg(feature = "tracing")]
#[doc(inline)]
pub use nilecare_tracing as tracing;
#[cfg(feature = "versioning")]
#[doc(inline)]
pub use nilecare_versioning as versioning;
