//! The NileCare orchestrator: every nilecare crate in one axum service.
//!
//! ```text
//! cargo run --example orchestrator                               # all in memory, demo services in-process
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example orchestrator   # shared state on Redis
//! ```
//!
//! Then see the README's walkthrough (`curl -i localhost:8080/api/v1/patients/1`, twice).

use nilecare_orchestrator as service;

use nilecare::logger::{Format, Logger};
use nilecare::metrics::Metrics;
use nilecare::tracing::{TracingConfig, init};

#[tokio::main]
async fn main() {
    let settings = service::Settings::from_env_or_exit(); // every problem at once, exit 78
    // Spans are exported when a collector is configured (OTEL_EXPORTER_OTLP_ENDPOINT); without
    // one, requests still get ids and logs, and no span is built.
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    let tracing = match endpoint.filter(|e| !e.trim().is_empty()) {
        None => None,
        Some(_) => match TracingConfig::from_env("orchestrator").and_then(|c| init(&c)) {
            Ok(guard) => Some(guard),
            Err(error) => {
                eprintln!("tracing disabled: {error}");
                None
            }
        },
    };
    let mut logger = Logger::builder()
        .service("orchestrator")
        .version(env!("CARGO_PKG_VERSION"))
        .environment(settings.environment.clone())
        .filter(settings.log_level.clone())
        // A panic is one JSON line with the request's id, not plain text on stderr.
        .log_panics(true);
    logger = match settings.log_format.as_deref() {
        Some("json") => logger.format(Format::Json),
        Some("pretty") => logger.format(Format::Pretty),
        _ => logger,
    };
    if let Some(guard) = &tracing {
        logger = logger.with_layer(guard.layer());
    }
    let _log_guard = match logger.init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("logging: {error}");
            std::process::exit(1);
        }
    };
    let metrics = match Metrics::builder().service("orchestrator").install() {
        Ok(metrics) => metrics,
        Err(error) => {
            tracing::error!(%error, "installing the metrics recorder failed");
            std::process::exit(1);
        }
    };
    let running = match service::start(settings, &metrics).await {
        Ok(running) => running,
        Err(error) => {
            tracing::error!(%error, "the orchestrator could not start");
            std::process::exit(1);
        }
    };
    println!("orchestrator listening on http://{}", running.addr);
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    drop(tracing); // flushes and shuts the span exporter down
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
