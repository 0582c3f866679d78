//! [`Revocations`]: the revocation state every verification consults, kept in this process and
//! synchronised with a shared log, so a check costs no round trip.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::any::AnyRevocationStore;
use crate::error::{Error, Result, TokenError};
use crate::memory::MemoryRevocationStore;
use crate::store::{Revocation, RevocationStore};

/// How often a shared log is read, and how stale the local copy may get before checks fail
/// closed.
#[derive(Debug, Clone, Copy)]
pub struct RevocationSettings {
    /// Interval between reads of a shared log (default 1 s): the bound on how long another
    /// instance's revocation takes to be seen here.
    pub sync_interval: Duration,
    /// When no read has succeeded for this long (default 30 s), checks answer
    /// [`Error::RevocationUnavailable`] (the layer: 503) instead of trusting an old copy.
    pub max_staleness: Duration,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        RevocationSettings {
            sync_interval: Duration::from_secs(1),
            max_staleness: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// `jti` → until (Unix seconds).
    tokens: HashMap<String, u64>,
    /// `sub` → since (Unix seconds).
    subjects: HashMap<String, u64>,
}

impl State {
    fn apply(&mut self, revocation: &Revocation) {
        match revocation {
            Revocation::Token { jti, until } => {
                let entry = self.tokens.entry(jti.clone()).or_insert(*until);
                *entry = (*entry).max(*until);
            }
            Revocation::Subject { sub, since } => {
                let entry = self.subjects.entry(sub.clone()).or_insert(*since);
                *entry = (*entry).max(*since);
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    store: AnyRevocationStore,
    settings: RevocationSettings,
    state: RwLock<State>,
    /// Whether `state` holds anything (checks skip the lock and hashing when not).
    any: AtomicBool,
    last_sync: Mutex<Instant>,
    cursor: tokio::sync::Mutex<Option<String>>,
}

/// Revoked tokens (by `jti`, until their `exp`) and subjects ("every token issued before T"),
/// checked on every verification from a local copy.
///
/// On a shared store (Redis) a background task reads the log every
/// [`sync_interval`](RevocationSettings::sync_interval): another instance's revocation takes
/// effect here within that interval plus one round trip. When the store stays unreachable for
/// [`max_staleness`](RevocationSettings::max_staleness), checks fail closed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> nilecare_auth::Result<()> {
/// use nilecare_auth::Revocations;
///
/// let revocations = Revocations::memory();
/// revocations.revoke_token("token-id-1", 4_102_444_800).await?;
/// assert!(revocations.check(Some("token-id-1"), Some("u1"), Some(1)).is_err());
/// revocations.revoke_subject("u2", 1_000).await?;            // log out everywhere
/// assert!(revocations.check(None, Some("u2"), Some(999)).is_err());
/// assert!(revocations.check(None, Some("u2"), Some(1_000)).is_ok()); // issued since: fine
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

impl Revocations {
    /// Revocations in this process only.
    pub fn memory() -> Self {
        Self::build(
            MemoryRevocationStore::new().into(),
            RevocationSettings::default(),
        )
    }

    /// Revocations in `store`, read once now and then every `settings.sync_interval` in the
    /// background (on the current Tokio runtime) while this value or a clone lives. When the
    /// first read fails the state starts empty and stale (logged), and checks fail closed once
    /// `max_staleness` has passed without a successful read.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero interval or a staleness bound below the interval.
    pub async fn start(
        store: impl Into<AnyRevocationStore>,
        settings: RevocationSettings,
    ) -> Result<Self> {
        if settings.sync_interval.is_zero() {
            return Err(Error::config("sync_interval", "must be more than zero"));
        }
        if settings.max_staleness < settings.sync_interval {
            return Err(Error::config(
                "max_staleness",
                format!(
                    "{:?} is shorter than sync_interval {:?}",
                    settings.max_staleness, settings.sync_interval
                ),
            ));
        }
        let revocations = Self::build(store.into(), settings);
        if let Err(e) = revocations.sync().await {
            tracing::warn!(error = %e, "reading the revocation log failed; retrying in the background");
        }
        if revocations.inner.store.is_shared() {
            let weak = Arc::downgrade(&revocations.inner);
            tokio::spawn(sync_loop(weak, settings.sync_interval));
        }
        Ok(revocations)
    }

    fn build(store: AnyRevocationStore, settings: RevocationSettings) -> Self {
        Revocations {
            inner: Arc::new(Inner {
                store,
                settings,
                state: RwLock::new(State::default()),
                any: AtomicBool::new(false),
                last_sync: Mutex::new(Instant::now()),
                cursor: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Revokes the token with this `jti` until `until` (its `exp`, Unix seconds).
    ///
    /// # Errors
    /// The store's error (Redis unreachable); then nothing was revoked, here or elsewhere.
    pub async fn revoke_token(&self, jti: &str, until: u64) -> Result<()> {
        self.revoke(Revocation::Token {
            jti: jti.to_owned(),
            until,
        })
        .await
    }

    /// Revokes every token of `sub` issued before `since` (Unix seconds; tokens without `iat`
    /// too).
    ///
    /// # Errors
    /// The store's error; then nothing was revoked.
    pub async fn revoke_subject(&self, sub: &str, since: u64) -> Result<()> {
        self.revoke(Revocation::Subject {
            sub: sub.to_owned(),
            since,
        })
        .await
    }

    async fn revoke(&self, revocation: Revocation) -> Result<()> {
        self.inner.store.append(&revocation).await?;
        self.apply(std::slice::from_ref(&revocation));
        Ok(())
    }

    fn apply(&self, revocations: &[Revocation]) {
        if revocations.is_empty() {
            return;
        }
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        for revocation in revocations {
            state.apply(revocation);
        }
        self.inner.any.store(true, Ordering::Release);
    }

    /// Reads what the log gained since the last read. Called by the background task; public
    /// for applications that want a revocation seen before the next interval.
    ///
    /// # Errors
    /// The store's error.
    pub async fn sync(&self) -> Result<()> {
        let mut cursor = self.inner.cursor.lock().await;
        loop {
            let read = self.inner.store.read_after(cursor.as_deref()).await;
            crate::metrics::revocations_synced(read.is_ok());
            let (revocations, next) = read?;
            self.apply(&revocations);
            let more = next != *cursor && !revocations.is_empty();
            *cursor = next;
            if !more {
                break;
            }
        }
        *self
            .inner
            .last_sync
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.forget_expired();
        Ok(())
    }

    /// Drops token revocations whose token has expired anyway.
    fn forget_expired(&self) {
        let now = crate::verifier::unix_now();
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        state.tokens.retain(|_, until| *until >= now);
    }

    /// Whether a token with these claims may pass: `Err(InvalidToken(Revoked))` when its `jti`
    /// or its subject (issued before the subject's revocation) is revoked;
    /// `Err(RevocationUnavailable)` when a shared log has not been read for longer than
    /// `max_staleness`. No I/O.
    ///
    /// # Errors
    /// As above.
    pub fn check(&self, jti: Option<&str>, sub: Option<&str>, iat: Option<u64>) -> Result<()> {
        if self.inner.store.is_shared() {
            let last = *self
                .inner
                .last_sync
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let age = last.elapsed();
            if age > self.inner.settings.max_staleness {
                return Err(Error::RevocationUnavailable(format!(
                    "the revocation log was last read {}s ago (maximum staleness {}s)",
                    age.as_secs(),
                    self.inner.settings.max_staleness.as_secs()
                )));
            }
        }
        if !self.inner.any.load(Ordering::Acquire) {
            return Ok(());
        }
        let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        let token_revoked = jti.is_some_and(|jti| state.tokens.contains_key(jti));
        let subject_revoked = sub
            .and_then(|sub| state.subjects.get(sub))
            .is_some_and(|since| iat.is_none_or(|iat| iat < *since));
        if token_revoked || subject_revoked {
            return Err(TokenError::Revoked.into());
        }
        Ok(())
    }
}

async fn sync_loop(inner: Weak<Inner>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let revocations = Revocations { inner };
        if let Err(e) = revocations.sync().await {
            tracing::warn!(error = %e, "reading the revocation log failed");
        }
    }
}
