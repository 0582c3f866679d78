//! [`init`]: the OTLP exporter, the tracer provider and the propagator; [`TracingGuard`].

use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::BaggagePropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::Registry;

use crate::config::{Protocol, TracingConfig};
use crate::error::{Error, Result};
use crate::sampling::{ExportFilter, PresetIdGenerator};

/// Owns the tracer provider. Give [`layer`](TracingGuard::layer) to your subscriber (e.g.
/// `nilecare_logger::Logger::builder().with_layer(guard.layer())`); dropping the guard exports
/// what is buffered and shuts the exporter down (on its own thread, so it does not deadlock a
/// current-thread runtime).
#[must_use = "dropping the guard shuts tracing down; keep it until the end of main"]
#[derive(Debug)]
pub struct TracingGuard {
    provider: SdkTracerProvider,
    service: String,
    activate_context: bool,
    /// The provider's sampler, also given to the layer's filter (server spans are decided
    /// before they are built: see `sampling.rs`).
    sampler: Sampler,
}

/// The subscriber layer that turns `tracing` spans into OpenTelemetry spans.
pub type OtelLayer = Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync>;

impl TracingGuard {
    /// The `tracing` layer recording spans into this provider: spans at INFO and above (the
    /// server and client spans of this crate are INFO), and WARN and ERROR events as span
    /// events. It carries its own filter, so the log level does not decide what is traced: with
    /// nilecare-logger at `warn` or `error` every request is still traced. Spans carry no
    /// `busy_ns`/`idle_ns` and no thread attributes (a request's task moves between threads).
    ///
    /// [`ServerTraceLayer`](crate::ServerTraceLayer) finds this layer's sampler in the
    /// dispatcher and decides each request before building its span: a request that is not
    /// sampled costs no OpenTelemetry span at all, only its context (ids for log lines and
    /// outgoing calls).
    pub fn layer(&self) -> OtelLayer {
        use tracing_subscriber::Layer as _;
        Box::new(
            tracing_opentelemetry::layer()
                .with_tracer(self.provider.tracer(self.service.clone()))
                .with_tracked_inactivity(false)
                .with_threads(false)
                .with_context_activation(self.activate_context)
                .with_filter(ExportFilter::new(self.sampler.clone())),
        )
    }

    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("nilecare-tracing: shutting the exporter down failed: {e}");
        }
    }
}

/// Sets up OTLP export (HTTP/protobuf, or gRPC with the `grpc` feature) with a batch span processor, the resource
/// (`service.name`, `service.version`, `deployment.environment.name`), a parent-based ratio sampler,
/// and the W3C `traceparent`/`tracestate` + baggage propagator. An unreachable collector only
/// costs dropped spans (the SDK logs its export errors); the service is unaffected.
pub fn init(config: &TracingConfig) -> Result<TracingGuard> {
    config.validate()?;
    let exporter = match config.protocol {
        Protocol::HttpProtobuf => {
            use opentelemetry_otlp::WithHttpConfig;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(crate::tls::http_client(
                    config.ca_pem.as_deref(),
                    config.export_timeout,
                )?)
                .with_endpoint(config.traces_url())
                .with_timeout(config.export_timeout)
                .build()
        }
        #[cfg(feature = "grpc")]
        Protocol::Grpc => {
            // tonic's channel lives on the runtime it was created in.
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(Error::InvalidConfig {
                    field: "protocol",
                    message: "gRPC export must be initialised inside a Tokio runtime".into(),
                });
            }
            use opentelemetry_otlp::WithTonicConfig;
            let builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint.clone())
                .with_timeout(config.export_timeout);
            if config.endpoint.starts_with("https://") {
                builder
                    .with_tls_config(crate::tls::grpc_tls(config.ca_pem.as_deref()))
                    .build()
            } else {
                builder.build()
            }
        }
        #[cfg(not(feature = "grpc"))]
        Protocol::Grpc => unreachable!("validate() rejects gRPC without the grpc feature"),
    }
    .map_err(|e| Error::Exporter(e.to_string()))?;
    let mut attributes = Vec::new();
    if let Some(v) = &config.service_version {
        attributes.push(KeyValue::new("service.version", v.clone()));
    }
    if let Some(e) = &config.environment {
        attributes.push(KeyValue::new("deployment.environment.name", e.clone()));
    }
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes(attributes)
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler.clone())
        .with_id_generator(PresetIdGenerator::default())
        .with_resource(resource)
        .build();
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(crate::propagation::W3cTraceContext::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    #[cfg(feature = "logger")]
    {
        nilecare_logger::set_span_trace_context_provider(crate::context::logger_span_context);
        nilecare_logger::set_trace_context_provider(crate::context::logger_context);
    }
    Ok(TracingGuard {
        provider,
        service: config.service_name.clone(),
        activate_context: config.activate_context,
        sampler,
    })
}
