//! [`VerifierBuilder`]: one issuer's verification rules, validated when built.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::claims::ClaimPaths;
use crate::error::{Error, Result};
use crate::keys::fetch::{Fetcher, check_url};
use crate::keys::{KeyCache, KeySet, KeySettings, Source};
use crate::revocations::Revocations;
use crate::token::{algorithm_name, is_hmac};
use crate::verifier::{Inner, Verifier};

/// The default largest token accepted (bytes).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A shared secret: never shown in `Debug`.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(*** {} bytes)", self.0.len())
    }
}

#[derive(Debug, Clone)]
enum Keys {
    Unset,
    Jwks(String),
    Discovery,
    Static(KeySet),
}

/// Builds a [`Verifier`] for one issuer. Required: [`issuer`](Self::issuer), an
/// [`audience`](Self::audience) (or [`any_audience`](Self::any_audience)) and a key source
/// ([`jwks_url`](Self::jwks_url), [`oidc_discovery`](Self::oidc_discovery),
/// [`key_set`](Self::key_set)) or, for HMAC algorithms only, a
/// [`shared_secret`](Self::shared_secret).
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierBuilder {
    issuer: Option<String>,
    audiences: Vec<String>,
    any_audience: bool,
    algorithms: Vec<Algorithm>,
    keys: Keys,
    secret: Option<Secret>,
    leeway: Duration,
    require_exp: bool,
    required: Vec<String>,
    max_token_bytes: usize,
    paths: ClaimPaths,
    key_settings: KeySettings,
    fetch_timeout: Duration,
    tls_ca: Option<Vec<u8>>,
    revocations: Option<Revocations>,
    #[cfg(feature = "shared-keys")]
    shared_keys: Option<nilecare_cache::Cache>,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        VerifierBuilder {
            issuer: None,
            audiences: Vec::new(),
            any_audience: false,
            algorithms: vec![Algorithm::RS256],
            keys: Keys::Unset,
            secret: None,
            leeway: Duration::from_secs(30),
            require_exp: true,
            required: Vec::new(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            paths: ClaimPaths::default(),
            key_settings: KeySettings::default(),
            fetch_timeout: Duration::from_secs(5),
            tls_ca: None,
            revocations: None,
            #[cfg(feature = "shared-keys")]
            shared_keys: None,
        }
    }
}

impl VerifierBuilder {
    /// The issuer (`iss`), compared exactly.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// An accepted audience: `aud` must contain one of those given (call again for more).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts any `aud` (for issuers that do not set it). A deliberate choice: a token minted
    /// for another service then also passes here.
    pub fn any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// The algorithm allow-list (default `[RS256]`). HMAC algorithms need a
    /// [`shared_secret`](Self::shared_secret); `none` does not exist here.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Keys from this JWKS address (HTTPS; plain HTTP only to a loopback host).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys = Keys::Jwks(url.into());
        self
    }

    /// Keys from the JWKS named by the issuer's OpenID Connect discovery document
    /// (`<issuer>/.well-known/openid-configuration`, whose `issuer` must equal the configured
    /// one).
    pub fn oidc_discovery(mut self) -> Self {
        self.keys = Keys::Discovery;
        self
    }

    /// A fixed key set (no fetching).
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.keys = Keys::Static(keys);
        self
    }

    /// The shared secret of HS256/384/512 (at least as many bytes as the hash: 32, 48, 64).
    /// Never logged or shown in `Debug`.
    pub fn shared_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(Secret(secret.into()));
        self
    }

    /// Clock skew allowed for `exp`, `nbf` and `iat` (default 30 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Whether `exp` is required (default `true`).
    pub fn require_exp(mut self, required: bool) -> Self {
        self.require_exp = required;
        self
    }

    /// A claim that must be present (e.g. `sub`, `jti`).
    pub fn require_claim(mut self, name: impl Into<String>) -> Self {
        self.required.push(name.into());
        self
    }

    /// The largest token accepted, checked before any parsing (default 8 KiB, 256 B-1 MiB).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Claims holding roles, dotted for nested objects (default `["roles"]`; Keycloak:
    /// `realm_access.roles`). Replaces the list.
    pub fn roles_claims(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.paths.roles = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Claims holding scopes (default `["scope", "scp"]`: a space-separated string or an
    /// array). Replaces the list.
    pub fn scope_claims(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.paths.scopes = paths.into_iter().map(Into::into).collect();
        self
    }

    /// The claim naming the caller's tenant (e.g. `clinic_id`), exposed as
    /// [`Claims::tenant`](crate::Claims::tenant) and checked: 1-64 characters of
    /// `A-Z a-z 0-9 - _ . :`.
    pub fn tenant_claim(mut self, path: impl Into<String>) -> Self {
        self.paths.tenant = Some(path.into());
        self
    }

    /// Time allowed for one JWKS or discovery fetch (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Key set lifetime when the response has no `Cache-Control: max-age` (default 5 min), and
    /// the bounds any `max-age` is clamped to (default 30 s to 24 h). A background refresh
    /// starts at 80 % of the lifetime.
    pub fn jwks_ttl(mut self, default: Duration, min: Duration, max: Duration) -> Self {
        self.key_settings.default_ttl = default;
        self.key_settings.min_ttl = min;
        self.key_settings.max_ttl = max;
        self
    }

    /// At most one refetch per this interval for tokens naming an unknown `kid` (default 30 s):
    /// a flood of made-up `kid`s costs the provider one request per interval.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.key_settings.refetch_cooldown = cooldown;
        self
    }

    /// How long past its expiry a key set keeps verifying while the provider cannot be reached
    /// (default 24 h): a provider outage does not become an outage of every service.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.key_settings.max_stale = max_stale;
        self
    }

    /// Trust only this CA (PEM) for JWKS and discovery fetches, instead of the system's roots.
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca = Some(pem.into());
        self
    }

    /// Checks every verified token against these revocations.
    pub fn revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Shares fetched key sets with the other instances through `cache` (a nilecare-cache on
    /// Redis; a memory cache shares between verifiers of one process). The instance that
    /// fetches stores the provider's document (under `auth:jwks:<source address>`, fresh for the
    /// same lifetime); the others take it instead of asking the provider, on start, on refresh
    /// and on an unknown `kid` when another instance already fetched the rotated set. A cache
    /// failure falls back to the provider. Whoever can write the cache can publish keys: give
    /// it the provider's trust (Redis with ACLs and TLS).
    #[cfg(feature = "shared-keys")]
    #[cfg_attr(docsrs, doc(cfg(feature = "shared-keys")))]
    pub fn shared_key_sets(mut self, cache: nilecare_cache::Cache) -> Self {
        self.shared_keys = Some(cache);
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field: no issuer or audience, an empty allow-list,
    /// HMAC without a secret (or a secret shorter than the hash), asymmetric algorithms without
    /// a key source, a JWKS address that is not HTTPS, bounds out of range, an unreadable CA.
    pub fn build(self) -> Result<Verifier> {
        let issuer = self
            .issuer
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::config("issuer", "required (the iss of accepted tokens)"))?;
        if self.audiences.is_empty() && !self.any_audience {
            return Err(Error::config(
                "audience",
                "required (the aud your tokens carry), or any_audience() to accept any",
            ));
        }
        if self.algorithms.is_empty() {
            return Err(Error::config("algorithms", "the allow-list is empty"));
        }
        let hmac: Vec<Algorithm> = self
            .algorithms
            .iter()
            .copied()
            .filter(|a| is_hmac(*a))
            .collect();
        let asymmetric = self.algorithms.iter().any(|a| !is_hmac(*a));
        match (&self.secret, hmac.iter().max_by_key(|a| hash_bytes(**a))) {
            (None, Some(alg)) => {
                return Err(Error::config(
                    "shared_secret",
                    format!("required for {}", algorithm_name(*alg)),
                ));
            }
            (Some(secret), Some(alg)) if secret.0.len() < hash_bytes(*alg) => {
                return Err(Error::config(
                    "shared_secret",
                    format!(
                        "{} needs at least {} bytes, got {}",
                        algorithm_name(*alg),
                        hash_bytes(*alg),
                        secret.0.len()
                    ),
                ));
            }
            (Some(_), None) => {
                return Err(Error::config(
                    "shared_secret",
                    "set, but no HS256/384/512 algorithm is allowed",
                ));
            }
            _ => {}
        }
        if !(256..=1024 * 1024).contains(&self.max_token_bytes) {
            return Err(Error::config(
                "max_token_bytes",
                format!("must be 256..=1048576, got {}", self.max_token_bytes),
            ));
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(Error::config(
                "leeway",
                format!("must be at most 300s, got {:?}", self.leeway),
            ));
        }
        let ks = &self.key_settings;
        if ks.min_ttl > ks.max_ttl || ks.max_ttl.is_zero() {
            return Err(Error::config(
                "jwks_ttl",
                format!(
                    "min {:?} must not exceed max {:?} (> 0)",
                    ks.min_ttl, ks.max_ttl
                ),
            ));
        }
        if self.fetch_timeout.is_zero() {
            return Err(Error::config("fetch_timeout", "must be more than zero"));
        }
        for path in self
            .paths
            .roles
            .iter()
            .chain(&self.paths.scopes)
            .chain(&self.paths.tenant)
        {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(Error::config(
                    "claims",
                    format!("{path:?} is not a claim path"),
                ));
            }
        }
        let source = match self.keys {
            Keys::Unset if asymmetric => {
                return Err(Error::config(
                    "keys",
                    "asymmetric algorithms need jwks_url, oidc_discovery or key_set",
                ));
            }
            Keys::Unset => Source::None,
            Keys::Jwks(url) => {
                check_url("jwks_url", &url)?;
                Source::Jwks(url)
            }
            Keys::Discovery => {
                check_url("issuer", &issuer)?;
                Source::Discovery(issuer.clone())
            }
            Keys::Static(set) => Source::Static(Arc::new(set)),
        };
        let fetcher = match source {
            Source::Jwks(_) | Source::Discovery(_) => {
                Some(Fetcher::new(self.tls_ca.as_deref(), self.fetch_timeout)?)
            }
            _ => None,
        };
        let mut required = self.required;
        if self.require_exp {
            required.push("exp".into());
        }
        let keys = KeyCache::new(&issuer, source, fetcher, self.key_settings);
        #[cfg(feature = "shared-keys")]
        let keys = match self.shared_keys {
            Some(cache) if keys.fetches() => {
                let shared = crate::keys::shared::SharedKeySets::new(cache, &keys.source_url())?;
                keys.with_shared(shared)
            }
            Some(_) => {
                return Err(Error::config(
                    "shared_key_sets",
                    "needs a fetched key source (jwks_url or oidc_discovery)",
                ));
            }
            None => keys,
        };
        Ok(Verifier::from_inner(Inner {
            keys: Arc::new(keys),
            secret: self
                .secret
                .map(|s| jsonwebtoken::DecodingKey::from_secret(&s.0)),
            issuer,
            audiences: self.audiences,
            algorithms: self.algorithms,
            leeway: self.leeway.as_secs(),
            required,
            max_token_bytes: self.max_token_bytes,
            paths: self.paths,
            revocations: self.revocations,
        }))
    }
}

/// The output size of an HMAC algorithm's hash, the least secret length (RFC 7518 3.2).
fn hash_bytes(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}
