//! [`TracingConfig`]: service identity, OTLP endpoint, sampling.

use std::time::Duration;

use crate::error::{Error, Result};

/// How spans travel to the collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over HTTP with protobuf bodies (port 4318, `/v1/traces`), the default.
    #[default]
    HttpProtobuf,
    /// OTLP over gRPC (port 4317); needs the `grpc` feature and a Tokio runtime at [`init`](crate::init).
    Grpc,
}

/// Tracing settings. [`TracingConfig::from_env`] reads the standard `OTEL_*` variables.
///
/// ```
/// use nilecare_tracing::TracingConfig;
///
/// let config = TracingConfig::new("orchestrator")
///     .version("1.4.0")
///     .environment("production")
///     .endpoint("http://otel-collector:4318")
///     .sample_ratio(0.1);
/// config.validate()?;
/// # Ok::<(), nilecare_tracing::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TracingConfig {
    pub(crate) service_name: String,
    pub(crate) service_version: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) endpoint: String,
    pub(crate) protocol: Protocol,
    pub(crate) sample_ratio: f64,
    pub(crate) export_timeout: Duration,
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) activate_context: bool,
}

impl TracingConfig {
    /// Defaults: endpoint `http://localhost:4318` (OTLP over HTTP/protobuf), every trace sampled.
    pub fn new(service_name: impl Into<String>) -> Self {
        TracingConfig {
            service_name: service_name.into(),
            service_version: None,
            environment: None,
            endpoint: "http://localhost:4318".into(),
            protocol: Protocol::HttpProtobuf,
            sample_ratio: 1.0,
            export_timeout: Duration::from_secs(5),
            ca_pem: None,
            activate_context: false,
        }
    }

    /// `OTEL_SERVICE_NAME` (else `default_service`), `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` or `grpc`),
    /// `OTEL_TRACES_SAMPLER_ARG` (a ratio), `DEPLOYMENT_ENVIRONMENT`, `OTEL_EXPORTER_OTLP_CERTIFICATE`
    /// (a PEM file of the CA to trust for an `https://` endpoint). A malformed ratio or an
    /// unreadable certificate file is an error naming the variable.
    pub fn from_env(default_service: &str) -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut config = TracingConfig::new(
            var("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service.to_owned()),
        );
        if let Some(endpoint) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            config.endpoint = endpoint;
        }
        if let Some(ratio) = var("OTEL_TRACES_SAMPLER_ARG") {
            config.sample_ratio = ratio.trim().parse().map_err(|_| Error::InvalidConfig {
                field: "OTEL_TRACES_SAMPLER_ARG",
                message: format!("not a number: {ratio:?}"),
            })?;
        }
        config.environment = var("DEPLOYMENT_ENVIRONMENT");
        if let Some(path) = var("OTEL_EXPORTER_OTLP_CERTIFICATE") {
            let pem = std::fs::read(path.trim()).map_err(|e| Error::InvalidConfig {
                field: "OTEL_EXPORTER_OTLP_CERTIFICATE",
                message: format!("cannot read {path:?}: {e}"),
            })?;
            crate::tls::parse_ca("OTEL_EXPORTER_OTLP_CERTIFICATE", &pem)?;
            config.ca_pem = Some(pem);
        }
        if let Some(protocol) = var("OTEL_EXPORTER_OTLP_PROTOCOL") {
            config.protocol = match protocol.trim() {
                "grpc" => Protocol::Grpc,
                "http/protobuf" => Protocol::HttpProtobuf,
                other => {
                    return Err(Error::InvalidConfig {
                        field: "OTEL_EXPORTER_OTLP_PROTOCOL",
                        message: format!("expected grpc or http/protobuf, got {other:?}"),
                    });
                }
            };
        }
        config.validate()?;
        Ok(config)
    }

    /// `service.version`.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// `deployment.environment.name`.
    #[must_use]
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The collector's base URL, e.g. `http://localhost:4318` (HTTP: `/v1/traces` is appended)
    /// or `http://localhost:4317` (gRPC).
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// The transport (default HTTP/protobuf).
    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Share of new traces sampled (0.0..=1.0); children follow their parent's decision.
    #[must_use]
    pub fn sample_ratio(mut self, ratio: f64) -> Self {
        self.sample_ratio = ratio;
        self
    }

    /// Trust only the CA certificates in `pem` for an `https://` endpoint (instead of the
    /// system's roots, or Mozilla's where the system has none).
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Time allowed for one export request.
    #[must_use]
    pub fn export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = timeout;
        self
    }

    /// Also make each span's OpenTelemetry context current while the span is entered, for
    /// other OpenTelemetry instrumentation inside it that reads `opentelemetry::Context::current()`
    /// (default off: this crate reads the context from the `tracing` span, and activating it on
    /// every poll of an instrumented future costs about a third of a non-sampled span).
    #[must_use]
    pub fn activate_context(mut self, on: bool) -> Self {
        self.activate_context = on;
        self
    }

    /// Checks every setting; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.service_name.trim().is_empty() {
            return Err(Error::InvalidConfig {
                field: "service_name",
                message: "must not be empty".into(),
            });
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(Error::InvalidConfig {
                field: "sample_ratio",
                message: format!("must be within 0.0..=1.0, got {}", self.sample_ratio),
            });
        }
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://"))
            || self.endpoint.parse::<http::Uri>().is_err()
        {
            return Err(Error::InvalidConfig {
                field: "endpoint",
                message: format!("must be an http(s) URL, got {:?}", self.endpoint),
            });
        }
        if self.protocol == Protocol::Grpc && !cfg!(feature = "grpc") {
            return Err(Error::InvalidConfig {
                field: "protocol",
                message: "gRPC export needs the `grpc` feature of nilecare-tracing".into(),
            });
        }
        if let Some(pem) = &self.ca_pem {
            crate::tls::parse_ca("certificate", pem)?;
            if !self.endpoint.starts_with("https://") {
                return Err(Error::InvalidConfig {
                    field: "certificate",
                    message: format!(
                        "a CA certificate is set but the endpoint {:?} is not https://",
                        self.endpoint
                    ),
                });
            }
        }
        if self.export_timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "export_timeout",
                message: "must be greater than zero".into(),
            });
        }
        Ok(())
    }

    pub(crate) fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
    }
}
