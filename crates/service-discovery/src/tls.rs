//! TLS for `https://` instances (probes and `ServiceClient`): rustls with the ring provider,
//! trusting a configured CA, else the system's roots, else Mozilla's.

use std::sync::{Arc, LazyLock};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{Error, Result};

fn config_with(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The client configuration trusting the system's roots (Mozilla's where the system has none),
/// loaded once per process.
pub(crate) fn default_config() -> Arc<rustls::ClientConfig> {
    static DEFAULT: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        config_with(roots)
    });
    DEFAULT.clone()
}

/// The client configuration trusting only the CA certificates in `pem`; errors name `field`.
pub(crate) fn config_for_ca(field: &'static str, pem: &[u8]) -> Result<Arc<rustls::ClientConfig>> {
    let bad = |message: String| Error::InvalidConfig { field, message };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| bad(format!("unreadable PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM CERTIFICATE block".into()));
    }
    Ok(config_with(roots))
}
