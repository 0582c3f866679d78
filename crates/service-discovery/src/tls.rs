//! TLS for `https://` instances (probes and `ServiceClient`): nilecare-tls' client
//! configuration (rustls, ring) trusting a configured CA, else the system's roots, else
//! Mozilla's.

use std::sync::Arc;

use crate::error::{Error, Result};

/// The client configuration trusting the system's roots (Mozilla's where the system has none),
/// built once per process.
pub(crate) fn default_config() -> Arc<rustls::ClientConfig> {
    nilecare_tls::system_client_config()
}

/// The client configuration trusting only the CA certificates in `pem`; errors name `field`.
pub(crate) fn config_for_ca(field: &'static str, pem: &[u8]) -> Result<Arc<rustls::ClientConfig>> {
    nilecare_tls::client_config(Some(pem)).map_err(|e| Error::InvalidConfig {
        field,
        message: e.to_string(),
    })
}
