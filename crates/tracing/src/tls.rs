//! TLS for OTLP export: the roots a client trusts (a configured CA, else the system's, else
//! Mozilla's) and the HTTP client built on them (rustls with the ring provider).

use std::time::Duration;

use crate::error::{Error, Result};

/// Checks that `pem` holds usable CA certificates; the error names `field`.
pub(crate) fn parse_ca(field: &'static str, pem: &[u8]) -> Result<()> {
    nilecare_tls::ca_roots(pem)
        .map(|_| ())
        .map_err(|e| Error::InvalidConfig {
            field,
            message: e.to_string(),
        })
}

/// A rustls client configuration (nilecare-tls: ring provider) trusting the configured CA,
/// else the system's roots, else Mozilla's.
pub(crate) fn client_config(ca: Option<&[u8]>) -> Result<rustls::ClientConfig> {
    nilecare_tls::client_config(ca)
        .map(|config| (*config).clone())
        .map_err(|e| Error::InvalidConfig {
            field: "certificate",
            message: e.to_string(),
        })
}

/// The blocking HTTP client of the OTLP/HTTP exporter, with TLS on rustls. Built on a thread
/// of its own: reqwest's blocking client must not be created (or dropped) on a Tokio worker.
pub(crate) fn http_client(
    ca: Option<&[u8]>,
    timeout: Duration,
) -> Result<reqwest::blocking::Client> {
    let tls = client_config(ca)?;
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| Error::Exporter("building the OTLP HTTP client panicked".into()))?
    .map_err(|e| Error::Exporter(format!("building the OTLP HTTP client: {e}")))
}

/// The TLS settings of the OTLP/gRPC channel: the configured CA, else the system's roots and
/// Mozilla's.
#[cfg(feature = "grpc")]
pub(crate) fn grpc_tls(ca: Option<&[u8]>) -> tonic::transport::ClientTlsConfig {
    let config = tonic::transport::ClientTlsConfig::new();
    match ca {
        Some(pem) => config.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
        None => config.with_native_roots().with_webpki_roots(),
    }
}
