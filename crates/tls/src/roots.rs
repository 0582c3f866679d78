//! Trust anchors (a configured CA, the system's, Mozilla's) and the rustls client configuration
//! built on them.

use std::sync::{Arc, LazyLock};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why a configured CA cannot be trusted. The calling crate reports it under its own field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The PEM text does not parse.
    #[error("unreadable PEM: {0}")]
    UnreadablePem(String),
    /// The PEM text holds no `CERTIFICATE` block.
    #[error("holds no PEM CERTIFICATE block")]
    NoCertificate,
    /// A certificate parsed but rustls cannot use it as a trust anchor.
    #[error("not a usable CA certificate: {0}")]
    Unusable(String),
}

/// The trust anchors of `pem` (one or more `CERTIFICATE` blocks) and nothing else.
///
/// # Errors
/// [`CaError`] when the text is not PEM, holds no certificate, or holds one that cannot be a
/// trust anchor.
pub fn ca_roots(pem: &[u8]) -> Result<rustls::RootCertStore, CaError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| CaError::UnreadablePem(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| CaError::Unusable(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(CaError::NoCertificate);
    }
    Ok(roots)
}

/// The system's roots, or Mozilla's where the system has none (slim containers); loaded once
/// per process.
pub fn system_roots() -> rustls::RootCertStore {
    static ROOTS: LazyLock<rustls::RootCertStore> = LazyLock::new(|| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system certificate rustls cannot use is skipped, as browsers do.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots
    });
    ROOTS.clone()
}

/// A rustls client configuration (ring provider, TLS 1.2 and 1.3) trusting the CA in `ca` when
/// given, else [`system_roots`] (see [`system_client_config`]).
///
/// # Errors
/// [`CaError`] for an unusable `ca`.
pub fn client_config(ca: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, CaError> {
    match ca {
        Some(pem) => Ok(config_with(ca_roots(pem)?)),
        None => Ok(system_client_config()),
    }
}

/// The client configuration trusting [`system_roots`], built once per process and shared.
pub fn system_client_config() -> Arc<rustls::ClientConfig> {
    static SYSTEM: LazyLock<Arc<rustls::ClientConfig>> =
        LazyLock::new(|| config_with(system_roots()));
    SYSTEM.clone()
}

fn config_with(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // `with_safe_default_protocol_versions` fails only for a provider without TLS 1.2 or 1.3;
    // the compiled-in ring provider has both, whatever the input.
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3");
    Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_ca_is_the_only_root() {
        let ca = nilecare_test_support::TestCa::new("tls crate CA");
        let roots = ca_roots(ca.pem().as_bytes()).expect("test CA");
        assert_eq!(roots.len(), 1);
        assert!(client_config(Some(ca.pem().as_bytes())).is_ok());
    }

    #[test]
    fn bad_pem_is_named() {
        assert_eq!(ca_roots(b"garbage").unwrap_err(), CaError::NoCertificate);
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            ca_roots(broken).unwrap_err(),
            CaError::UnreadablePem(_)
        ));
        let not_a_cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            ca_roots(not_a_cert).unwrap_err(),
            CaError::Unusable(_)
        ));
    }

    #[test]
    fn system_roots_are_never_empty() {
        assert!(!system_roots().is_empty());
    }
}
