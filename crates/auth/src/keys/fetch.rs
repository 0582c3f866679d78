//! Fetching key sets and OIDC discovery documents over HTTPS (rustls, ring) with a timeout and
//! a size limit.

use std::time::Duration;

use crate::error::{Error, Result};

/// The largest JWKS or discovery document read (a provider publishes a few keys: kilobytes).
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// A fetched document and how long its server says it stays fresh.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) max_age: Option<Duration>,
}

/// The HTTP client of one verifier.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub(crate) fn new(ca_pem: Option<&[u8]>, timeout: Duration) -> Result<Self> {
        let tls = nilecare_tls::client_config(ca_pem)
            .map_err(|e| Error::config("tls_ca", e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| Error::config("jwks", format!("building the HTTP client: {e}")))?;
        Ok(Fetcher { client })
    }

    /// `GET url`, expecting 200 and at most 1 MiB.
    pub(crate) async fn get(&self, url: &str) -> std::result::Result<Fetched, String> {
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(format!("document larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        let max_age = response
            .headers()
            .get_all("cache-control")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("document larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }
}

/// The error and its causes in one line (reqwest hides the TLS or connection cause in its
/// source chain).
fn describe(error: reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `max-age` of one `Cache-Control` header value; `no-store`/`no-cache` read as 0.
pub(crate) fn max_age(value: &str) -> Option<Duration> {
    let mut found = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = arg
                .trim()
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

/// Whether `url` may be fetched: HTTPS, or plain HTTP to a loopback host (development and
/// tests); a key set fetched over plain HTTP from the network could be replaced in transit.
pub(crate) fn check_url(field: &'static str, url: &str) -> Result<url::Url> {
    let parsed = url::Url::parse(url).map_err(|e| Error::config(field, format!("{url:?}: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(host)) => host == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(parsed)
            } else {
                Err(Error::config(
                    field,
                    format!("{url:?}: keys must be fetched over https (http only for loopback)"),
                ))
            }
        }
        other => Err(Error::config(
            field,
            format!("{url:?}: unsupported scheme {other:?}"),
        )),
    }
}

/// The OIDC discovery document's fields this crate reads.
#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The `jwks_uri` of `issuer` from its discovery document (OpenID Connect Discovery 1.0,
/// section 4): the document's `issuer` must equal the configured one exactly (section 4.3).
pub(crate) async fn discover(
    fetcher: &Fetcher,
    issuer: &str,
) -> std::result::Result<String, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let fetched = fetcher.get(&url).await?;
    let doc: Discovery = serde_json::from_slice(&fetched.body)
        .map_err(|e| format!("discovery document at {url}: {e}"))?;
    if doc.issuer != issuer {
        return Err(format!(
            "discovery document at {url} names issuer {:?}, expected {issuer:?}",
            doc.issuer
        ));
    }
    check_url("jwks_uri", &doc.jwks_uri).map_err(|e| e.to_string())?;
    Ok(doc.jwks_uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("MAX-AGE=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        assert!(check_url("jwks_url", "https://id.example/jwks").is_ok());
        assert!(check_url("jwks_url", "http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("jwks_url", "http://localhost/jwks").is_ok());
        assert!(check_url("jwks_url", "http://[::1]/jwks").is_ok());
        let err = check_url("jwks_url", "http://id.example/jwks")
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwks_url") && err.contains("https"), "{err}");
        let err = check_url("jwks_url", "ftp://x/").unwrap_err().to_string();
        assert!(err.contains("unsupported scheme"), "{err}");
        assert!(check_url("jwks_url", "not a url").is_err());
    }
}
