//! Startup settings, validated all at once by nilecare-config-validator (exit 78 on errors).

use std::time::Duration;

use nilecare::config_validator::{Config, Mode, Report, Schema, Source, Var, fragments};

/// Everything the orchestrator reads at startup.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Listen address.
    pub host: String,
    /// Listen port (0: any free port).
    pub port: u16,
    /// `redis://`, `rediss://`, `redis-cluster://`, `redis-sentinel://`; none: every backend in
    /// memory.
    pub redis_url: Option<String>,
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
    pub environment: String,
    /// `LOG_LEVEL` (`RUST_LOG` syntax).
    pub log_level: String,
    /// `LOG_FORMAT`: `json` or `pretty` (none: JSON unless on a terminal).
    pub log_format: Option<String>,
}

impl Settings {
    /// The declared variables (shown by `--help` and in every error report).
    pub fn schema(mode: Mode) -> Schema {
        Schema::new()
            .mode(mode)
            .vars(fragments::http_server())
            .vars(fragments::redis())
            .vars(fragments::logging())
            .vars(fragments::otel())
            .var(
                Var::integer("RATE_LIMIT_PER_MINUTE")
                    .default(600)
                    .range(1..=1_000_000)
                    .description("API requests per minute per client IP"),
            )
            .var(Var::duration("CACHE_TTL").default("60s"))
            .var(Var::bool("DEMO_SERVICES").default(true))
            .var(Var::duration("DEMO_LATENCY").default("20ms"))
            .var(Var::duration("DOWNSTREAM_TIMEOUT").default("2s"))
            .var(Var::integer("DOWNSTREAM_ATTEMPTS").default(3).range(1..=10))
            .var(Var::duration("BREAKER_WAIT").default("5s"))
            .var(Var::duration("REGISTRY_TTL").default("15s"))
            .var(Var::duration("SHUTDOWN_GRACE").default("10s"))
    }

    /// Reads and checks every variable; the report lists every problem at once.
    pub fn from_source(source: &Source) -> Result<Settings, Report> {
        let mode = Mode::from_source(source, "APP_ENV");
        let config = Settings::schema(mode).load(source)?;
        Ok(Settings::from_config(&config, source))
    }

    /// From the process environment (and `.env` when present); prints the report and exits
    /// 78 (`EX_CONFIG`) when anything is wrong.
    pub fn from_env_or_exit() -> Settings {
        let source = Source::env()
            .with_dotenv_if_exists(".env")
            .unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(nilecare::config_validator::EX_CONFIG)
            });
        let mode = Mode::from_source(&source, "APP_ENV");
        let config = Settings::schema(mode).load_or_exit(&source);
        Settings::from_config(&config, &source)
    }

    fn from_config(config: &Config, source: &Source) -> Settings {
        // The schema checked every value; a failed get here would be a schema bug, and its
        // declared default is the safe answer.
        let duration = |name: &str, default: u64| {
            config
                .get::<Duration>(name)
                .unwrap_or(Duration::from_millis(default))
        };
        Settings {
            host: config
                .get("HOST")
                .unwrap_or_else(|_| "127.0.0.1".to_owned()),
            port: config.get("PORT").unwrap_or(8080),
            redis_url: config.get_optional("REDIS_URL").ok().flatten(),
            rate_limit_per_minute: config.get("RATE_LIMIT_PER_MINUTE").unwrap_or(600),
            cache_ttl: duration("CACHE_TTL", 60_000),
            demo_services: config.get("DEMO_SERVICES").unwrap_or(true),
            demo_latency: duration("DEMO_LATENCY", 20),
            downstream_timeout: duration("DOWNSTREAM_TIMEOUT", 2_000),
            downstream_attempts: config.get("DOWNSTREAM_ATTEMPTS").unwrap_or(3),
            breaker_wait: duration("BREAKER_WAIT", 5_000),
            registry_ttl: duration("REGISTRY_TTL", 15_000),
            shutdown_grace: duration("SHUTDOWN_GRACE", 10_000),
            environment: source.get("APP_ENV").unwrap_or("production").to_owned(),
            log_level: config
                .get("LOG_LEVEL")
                .unwrap_or_else(|_| "info".to_owned()),
            log_format: config.get_optional("LOG_FORMAT").ok().flatten(),
        }
    }
}
