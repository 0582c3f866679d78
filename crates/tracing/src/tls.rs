//! TLS for OTLP export: the roots a client trusts (a configured CA, else the system's, else
//! Mozilla's) and the HTTP client built on them (rustls with the ring provider).

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{Error, Result};

/// The certificates of `pem` (one or more `CERTIFICATE` blocks); the error names `field`.
pub(crate) fn parse_ca(field: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::InvalidConfig {
            field,
            message: format!("unreadable PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::InvalidConfig {
            field,
            message: "holds no PEM CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The root store: the configured CA alone when given, else the system's roots, else (a system
/// without a CA bundle, as in slim containers) Mozilla's.
fn roots(ca: Option<&[u8]>) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca {
        for cert in parse_ca("certificate", pem)? {
            roots.add(cert).map_err(|e| Error::InvalidConfig {
                field: "certificate",
                message: format!("not a usable CA certificate: {e}"),
            })?;
        }
        return Ok(roots);
    }
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    Ok(roots)
}

/// A rustls client configuration (ring provider) trusting [`roots`].
pub(crate) fn client_config(ca: Option<&[u8]>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Exporter(e.to_string()))?
        .with_root_certificates(roots(ca)?)
        .with_no_client_auth())
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
