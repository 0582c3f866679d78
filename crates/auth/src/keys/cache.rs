//! The key cache of one issuer: fetched once, refreshed in the background before it expires,
//! refetched (at most once per cooldown) when a token names an unknown `kid`, replaced whole on
//! every refresh, and kept serving while the provider is down, up to a maximum staleness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;

use super::fetch::{Fetcher, discover};
#[cfg(feature = "shared-keys")]
use super::shared::SharedKeySets;
use super::{KeySet, VerifyingKey};
use crate::error::{Error, Result, TokenError};
use crate::metrics;
use crate::verifier::unix_ms;

/// Where the keys come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A key set given in the configuration.
    Static(Arc<KeySet>),
    /// A JWKS address.
    Jwks(String),
    /// OIDC discovery of this issuer.
    Discovery(String),
    /// No public keys (HMAC only).
    None,
}

/// Timing of the cache.
#[derive(Debug, Clone)]
pub(crate) struct KeySettings {
    pub(crate) default_ttl: Duration,
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) max_stale: Duration,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(24 * 3600),
            refetch_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug)]
struct Loaded {
    set: Arc<KeySet>,
    fetched_at: Instant,
    /// Unix milliseconds of the provider fetch that produced the set (by this instance or,
    /// through the shared cache, another one).
    #[cfg_attr(not(feature = "shared-keys"), allow(dead_code))]
    fetched_at_ms: u64,
    /// When a background refresh starts (80 % of the time to live).
    refresh_at: Instant,
    /// When the set stops being fresh; it is served until `expires_at + max_stale`.
    expires_at: Instant,
}

/// The result of looking a key up without waiting.
#[derive(Debug)]
pub(crate) enum Lookup {
    Found(Arc<VerifyingKey>),
    /// The keys must be fetched first (none yet, too old, or an unknown `kid` may be refetched).
    Fetch,
    Invalid(TokenError),
}

/// One issuer's keys.
#[derive(Debug)]
pub(crate) struct KeyCache {
    /// The issuer, the metrics' label.
    issuer: String,
    source: Source,
    fetcher: Option<Fetcher>,
    settings: KeySettings,
    loaded: RwLock<Option<Arc<Loaded>>>,
    last_attempt: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    jwks_uri: Mutex<Option<String>>,
    fetch_lock: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
    #[cfg(feature = "shared-keys")]
    shared: Option<SharedKeySets>,
}

/// A key set just loaded, from the provider or the shared cache.
#[derive(Debug)]
struct Load {
    set: KeySet,
    /// Fresh for this long from now (already bounded).
    ttl: Duration,
    fetched_at_ms: u64,
    /// Taken from the shared cache (no provider request).
    shared: bool,
}

impl KeyCache {
    pub(crate) fn new(
        issuer: &str,
        source: Source,
        fetcher: Option<Fetcher>,
        settings: KeySettings,
    ) -> Self {
        let jwks_uri = match &source {
            Source::Jwks(url) => Some(url.clone()),
            _ => None,
        };
        KeyCache {
            issuer: issuer.to_owned(),
            source,
            fetcher,
            settings,
            loaded: RwLock::new(None),
            last_attempt: Mutex::new(None),
            last_error: Mutex::new(None),
            jwks_uri: Mutex::new(jwks_uri),
            fetch_lock: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
            #[cfg(feature = "shared-keys")]
            shared: None,
        }
    }

    /// Shares fetched key sets with other instances through `shared`.
    #[cfg(feature = "shared-keys")]
    pub(crate) fn with_shared(mut self, shared: SharedKeySets) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Whether keys are fetched (JWKS or discovery), rather than configured.
    #[cfg(feature = "shared-keys")]
    pub(crate) fn fetches(&self) -> bool {
        matches!(self.source, Source::Jwks(_) | Source::Discovery(_))
    }

    /// The address keys are fetched from, for messages.
    pub(crate) fn source_url(&self) -> String {
        match &self.source {
            Source::Static(_) => "the configured key set".into(),
            Source::Jwks(url) => url.clone(),
            Source::Discovery(issuer) => format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            Source::None => "no key source".into(),
        }
    }

    fn current(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn may_fetch_again(&self, now: Instant) -> bool {
        let last = *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
        last.is_none_or(|at| now.duration_since(at) >= self.settings.refetch_cooldown)
    }

    /// The key for a token, without waiting: [`Lookup::Fetch`] when the caller must
    /// [`fetch`](Self::fetch) first (with `refetch` false, an unknown `kid` in a usable set is
    /// [`TokenError::UnknownKey`]: the caller has just fetched). Starts a background refresh
    /// when the set is due.
    pub(crate) fn lookup(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
        refetch: bool,
    ) -> Lookup {
        let unknown = || TokenError::UnknownKey(kid.unwrap_or("").to_owned());
        let loaded = match &self.source {
            Source::Static(set) => {
                return match set.find(kid, alg) {
                    Ok(Some(key)) => Lookup::Found(key.clone()),
                    Ok(None) => Lookup::Invalid(unknown()),
                    Err(e) => Lookup::Invalid(e),
                };
            }
            Source::None => return Lookup::Invalid(unknown()),
            Source::Jwks(_) | Source::Discovery(_) => match self.current() {
                Some(loaded) => loaded,
                None => return Lookup::Fetch,
            },
        };
        let now = Instant::now();
        if now >= loaded.expires_at + self.settings.max_stale {
            return Lookup::Fetch;
        }
        if now >= loaded.refresh_at {
            self.refresh_in_background(now);
        }
        match loaded.set.find(kid, alg) {
            Ok(Some(key)) => Lookup::Found(key.clone()),
            Ok(None) if refetch && self.may_fetch_again(now) => Lookup::Fetch,
            Ok(None) => Lookup::Invalid(unknown()),
            Err(e) => Lookup::Invalid(e),
        }
    }

    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        if !self.may_fetch_again(now) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = self.clone();
        runtime.spawn(async move {
            let _ = cache.fetch().await;
            cache.refreshing.store(false, Ordering::Release);
        });
    }

    /// Fetches the key set unless another caller did while this one waited, or the cooldown
    /// since the last attempt has not passed. Fails only when no usable set remains.
    pub(crate) async fn fetch(&self) -> Result<()> {
        let asked = Instant::now();
        let _only_one = self.fetch_lock.lock().await;
        if let Some(loaded) = self.current() {
            if loaded.fetched_at >= asked {
                return Ok(());
            }
        }
        let now = Instant::now();
        if self.may_fetch_again(now) {
            *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
            match self.load().await {
                Ok(load) => {
                    metrics::jwks_fetched(
                        &self.issuer,
                        if load.shared { "shared" } else { "ok" },
                        load.fetched_at_ms,
                    );
                    let fetched_at = Instant::now();
                    tracing::debug!(
                        keys = load.set.len(),
                        skipped = load.set.skipped(),
                        ttl_secs = load.ttl.as_secs(),
                        shared = load.shared,
                        "loaded the issuer's key set"
                    );
                    *self.loaded.write().unwrap_or_else(|e| e.into_inner()) =
                        Some(Arc::new(Loaded {
                            set: Arc::new(load.set),
                            fetched_at,
                            fetched_at_ms: load.fetched_at_ms,
                            refresh_at: fetched_at + load.ttl.mul_f64(0.8),
                            expires_at: fetched_at + load.ttl,
                        }));
                    *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
                Err(message) => {
                    metrics::jwks_fetched(&self.issuer, "error", 0);
                    tracing::warn!(source = %self.source_url(), error = %message,
                        "fetching the issuer's key set failed");
                    *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
                }
            }
        }
        match self.current() {
            Some(loaded) if Instant::now() < loaded.expires_at + self.settings.max_stale => Ok(()),
            _ => Err(self.unavailable()),
        }
    }

    /// The error when no usable key set is cached.
    pub(crate) fn unavailable(&self) -> Error {
        let message = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "not fetched yet (refetch cooldown)".into());
        let message = match self.current() {
            Some(loaded) => format!(
                "{message}; the last key set, fetched {}s ago, is past its maximum staleness",
                loaded.fetched_at.elapsed().as_secs()
            ),
            None => message,
        };
        Error::KeysUnavailable {
            source_url: self.source_url(),
            message,
        }
    }

    /// The newest key set: another instance's from the shared cache when it is newer than the
    /// one held, else the provider's (then stored for the others).
    async fn load(&self) -> std::result::Result<Load, String> {
        #[cfg(feature = "shared-keys")]
        if let Some(shared) = &self.shared {
            let held = self.current().map(|l| l.fetched_at_ms);
            if let Some(found) = shared.newer(&self.source_url(), held).await {
                return Ok(Load {
                    set: found.set,
                    ttl: found.remaining.min(self.settings.max_ttl),
                    fetched_at_ms: found.fetched_at_ms,
                    shared: true,
                });
            }
        }
        let fetcher = self.fetcher.as_ref().ok_or("no HTTP client")?;
        let known = self
            .jwks_uri
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let url = match (known, &self.source) {
            (Some(url), _) => url,
            (None, Source::Discovery(issuer)) => {
                let url = discover(fetcher, issuer).await?;
                *self.jwks_uri.lock().unwrap_or_else(|e| e.into_inner()) = Some(url.clone());
                url
            }
            (None, _) => return Err("no JWKS address".into()),
        };
        let fetched = match fetcher.get(&url).await {
            Ok(fetched) => fetched,
            Err(e) => {
                if matches!(self.source, Source::Discovery(_)) {
                    // The provider may have moved its keys: discover again next time.
                    *self.jwks_uri.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
                return Err(format!("{url}: {e}"));
            }
        };
        let set = KeySet::parse(&fetched.body, &url).map_err(|e| e.to_string())?;
        let ttl = fetched
            .max_age
            .unwrap_or(self.settings.default_ttl)
            .clamp(self.settings.min_ttl, self.settings.max_ttl);
        let fetched_at_ms = unix_ms();
        #[cfg(feature = "shared-keys")]
        if let Some(shared) = &self.shared {
            shared
                .store(&self.source_url(), &fetched.body, fetched_at_ms, ttl)
                .await;
        }
        Ok(Load {
            set,
            ttl,
            fetched_at_ms,
            shared: false,
        })
    }
}
