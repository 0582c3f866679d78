//! Startup settings, validated all at once by nilecare-config-validator (exit 78 on errors).

use std::time::Duration;

use nilecare::config_validator::{Mode, Schema, Source, Value, Var, fragments};

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Everything the orchestrator reads at startup (each field is the variable of the same name,
/// lowercased; the schema holds every default).
#[derive(Clone, serde::Deserialize)]
pub struct Settings {
    /// Listen address.
    pub host: String,
    /// Listen port (0: any free port).
    pub port: u16,
    /// `redis://`, `rediss://`, `redis-cluster://`, `redis-sentinel://`; none: every backend in
    /// memory.
    pub redis_url: Option<String>,
    /// PEM file of the CA to trust for `rediss://` (none: the system's roots).
    pub redis_tls_ca_file: Option<String>,
    /// Connections in the Redis pool.
    pub redis_pool_size: usize,
    /// Limit of the first Redis connection.
    pub redis_connect_timeout: Duration,
    /// Limit of each Redis command.
    pub redis_command_timeout: Duration,
    /// Requests per minute per client IP on the API routes.
    pub rate_limit_per_minute: u32,
    /// TTL of cached GET responses (unless the downstream sets `max-age`).
    pub cache_ttl: Duration,
    /// Start the demo patients, appointments and billing services in this process.
    pub demo_services: bool,
    /// Simulated latency of each demo service call.
    pub demo_latency: Duration,
    /// Limit of each try of a downstream call.
    pub downstream_timeout: Duration,
    /// Tries of an idempotent downstream call (on different instances).
    pub downstream_attempts: u32,
    /// How long a downstream's circuit breaker stays open before probing.
    pub breaker_wait: Duration,
    /// Registration TTL in the service registry.
    pub registry_ttl: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// The deployment environment (`APP_ENV`).
    #[serde(rename = "app_env")]
    pub environment: String,
    /// `LOG_LEVEL`: a level or `target=level` directives (checked and normalized).
    pub log_level: String,
    /// `LOG_FORMAT`: `json` or `pretty` (none: JSON unless on a terminal).
    pub log_format: Option<String>,
    /// `AUTH_ISSUER`: the issuer of accepted tokens (none: the development issuer in
    /// development, no accepted token in production).
    pub auth_issuer: Option<String>,
    /// `AUTH_JWKS_URL`: the issuer's JWKS (none: OIDC discovery of `AUTH_ISSUER`).
    pub auth_jwks_url: Option<String>,
    /// `AUTH_AUDIENCE`: the audience tokens must name.
    pub auth_audience: String,
    /// `AUTH_ROLES_CLAIM`: the claim holding roles (dotted for nested claims).
    pub auth_roles_claim: String,
    /// `AUTH_TENANT_CLAIM`: the claim naming the caller's clinic (the cache tenant).
    pub auth_tenant_claim: String,
    /// `METRICS_MAX_TENANTS`: clinics with a metrics label of their own (the busiest; the rest
    /// are `other`).
    pub metrics_max_tenants: usize,
    /// `GRAPHQL_COMPLEXITY_PER_MINUTE`: complexity units (about one per field asked) each caller
    /// may spend per minute on `/graphql`.
    pub graphql_complexity_per_minute: u32,
    /// `GRAPHQL_PERSISTED_QUERIES`: `automatic` (clients may send a document's hash once it was
    /// registered) or `off`.
    pub graphql_persisted_queries: String,
}

/// Every field, with the Redis URL's password (and a sentinel password) shown as `***`.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redis_url = self.redis_url.as_deref().map(|url| {
            nilecare::redis::RedisConfig::from_url(url).map_or_else(
                |_| "<unparsable, hidden>".to_owned(),
                |c| c.redacted_url().to_owned(),
            )
        });
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("redis_url", &redis_url)
            .field("redis_tls_ca_file", &self.redis_tls_ca_file)
            .field("redis_pool_size", &self.redis_pool_size)
            .field("redis_connect_timeout", &self.redis_connect_timeout)
            .field("redis_command_timeout", &self.redis_command_timeout)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("cache_ttl", &self.cache_ttl)
            .field("demo_services", &self.demo_services)
            .field("demo_latency", &self.demo_latency)
            .field("downstream_timeout", &self.downstream_timeout)
            .field("downstream_attempts", &self.downstream_attempts)
            .field("breaker_wait", &self.breaker_wait)
            .field("registry_ttl", &self.registry_ttl)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("environment", &self.environment)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("auth_issuer", &self.auth_issuer)
            .field("auth_jwks_url", &self.auth_jwks_url)
            .field("auth_audience", &self.auth_audience)
            .field("auth_roles_claim", &self.auth_roles_claim)
            .field("auth_tenant_claim", &self.auth_tenant_claim)
            .field("metrics_max_tenants", &self.metrics_max_tenants)
            .field(
                "graphql_complexity_per_minute",
                &self.graphql_complexity_per_minute,
            )
            .field("graphql_persisted_queries", &self.graphql_persisted_queries)
            .finish()
    }
}

impl Settings {
    /// The declared variables (shown by `--help` and in every error report).
    pub fn schema(mode: Mode) -> Schema {
        Schema::new()
            .mode(mode)
            .vars(fragments::http_server())
            // A request must not wait 2 s (the fragment's default) on a struggling Redis.
            .vars(fragments::redis().into_iter().map(|var| match var.name() {
                "REDIS_COMMAND_TIMEOUT" => var.default("500ms"),
                // The scheme check of the fragment, plus everything the Redis crate checks
                // (database number, sentinel service name, node list), at startup.
                "REDIS_URL" => var.check(|value| {
                    match value {
                        Value::Url(url) => nilecare::redis::RedisConfig::from_url(url.as_str())
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        _ => Ok(()),
                    }
                }),
                _ => var,
            }))
            .var(
                Var::one_of(
                    "APP_ENV",
                    [
                        "production",
                        "staging",
                        "development",
                        "dev",
                        "local",
                        "test",
                    ],
                )
                .default("production"),
            )
            .vars(fragments::logging())
            .vars(fragments::otel())
            .var(
                Var::integer("RATE_LIMIT_PER_MINUTE")
                    .default(600)
                    .range(1..=1_000_000_000)
                    .description("API requests per minute per client IP"),
            )
            .var(
                Var::duration("CACHE_TTL")
                    .default("60s")
                    .range(secs(1)..=secs(86_400)),
            )
            .var(Var::bool("DEMO_SERVICES").default(true))
            .var(
                Var::duration("DEMO_LATENCY")
                    .default("20ms")
                    .range(Duration::ZERO..=secs(10)),
            )
            .var(
                Var::duration("DOWNSTREAM_TIMEOUT")
                    .default("2s")
                    .range(Duration::from_millis(1)..=secs(300)),
            )
            .var(Var::integer("DOWNSTREAM_ATTEMPTS").default(3).range(1..=10))
            .var(
                Var::duration("BREAKER_WAIT")
                    .default("5s")
                    .range(Duration::from_millis(1)..=secs(3600)),
            )
            .var(
                Var::duration("REGISTRY_TTL")
                    .default("15s")
                    .range(secs(1)..=secs(3600)),
            )
            .var(
                Var::duration("SHUTDOWN_GRACE")
                    .default("10s")
                    .range(Duration::ZERO..=secs(600)),
            )
            .var(
                Var::string("AUTH_ISSUER")
                    .max_len(512)
                    .optional()
                    .description("issuer (iss) of accepted tokens; unset: development issuer in development, none in production")
                    .example("https://id.nilecare.example/realms/clinic"),
            )
            .var(
                Var::url("AUTH_JWKS_URL")
                    .schemes(["https", "http"])
                    .optional()
                    .description("the issuer's JWKS; unset: OIDC discovery of AUTH_ISSUER"),
            )
            .var(
                Var::string("AUTH_AUDIENCE")
                    .max_len(256)
                    .default("orchestrator")
                    .description("audience (aud) tokens must name"),
            )
            .var(
                Var::string("AUTH_ROLES_CLAIM")
                    .max_len(128)
                    .default("roles")
                    .description("claim holding roles, dotted for nested claims (realm_access.roles)"),
            )
            .var(
                Var::integer("METRICS_MAX_TENANTS")
                    .default(50)
                    .range(1..=10_000)
                    .description("clinics with a metrics label of their own, the busiest by traffic; the rest are `other`"),
            )
            .var(
                Var::string("AUTH_TENANT_CLAIM")
                    .max_len(128)
                    .default("clinic_id")
                    .description("claim naming the caller's clinic (the cache tenant)"),
            )
            .var(
                Var::integer("GRAPHQL_COMPLEXITY_PER_MINUTE")
                    .default(100_000)
                    .range(1..=1_000_000_000)
                    .description("GraphQL complexity units (about one per field) per caller per minute"),
            )
            .var(
                Var::one_of("GRAPHQL_PERSISTED_QUERIES", ["automatic", "off"])
                    .default("automatic")
                    .description("automatic persisted queries (a document's hash instead of the document)"),
            )
    }

    /// Reads and checks every variable; the error (a `Report`) lists every problem at once.
    pub fn from_source(
        source: &Source,
    ) -> Result<Settings, Box<dyn std::error::Error + Send + Sync>> {
        let mode = Mode::from_source(source, "APP_ENV");
        let config = Settings::schema(mode).load(source)?;
        Ok(config.deserialize()?)
    }

    /// From the process environment (and `.env` when present); prints the report and exits
    /// 78 (`EX_CONFIG`) when anything is wrong.
    pub fn from_env_or_exit() -> Settings {
        let exit = |message: &dyn std::fmt::Display| -> ! {
            eprintln!("{message}");
            std::process::exit(nilecare::config_validator::EX_CONFIG)
        };
        let source = Source::env()
            .with_dotenv_if_exists(".env")
            .unwrap_or_else(|e| exit(&e));
        let mode = Mode::from_source(&source, "APP_ENV");
        let config = Settings::schema(mode).load_or_exit(&source);
        config.deserialize().unwrap_or_else(|e| exit(&e))
    }
}
