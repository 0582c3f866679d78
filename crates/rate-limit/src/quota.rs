//! [`Quota`] (how much, per how long), [`Algorithm`] and [`Policy`] (a named quota with options).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// Largest accepted limit: keeps every microsecond computation exact in Lua's doubles too.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// Longest accepted window.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// "`limit` requests per `window`", optionally with a `burst` capacity.
///
/// The constructors read the way they are written: `Quota::per_second(100)` allows 100 requests
/// each second, `Quota::per_minute(5)` 5 a minute. Zero, overflowing or out-of-range values are
/// errors, never panics.
///
/// ```
/// use std::time::Duration;
/// use nilecare_rate_limit::Quota;
///
/// let api = Quota::per_second(100)?.with_burst(20)?;
/// let login = Quota::per(Duration::from_secs(15 * 60), 5)?;
/// assert_eq!(api.limit(), 100);
/// assert!(Quota::per_second(0).is_err());
/// # Ok::<(), nilecare_rate_limit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    window: Duration,
    burst: Option<u64>,
}

impl Quota {
    /// `limit` requests per `window`.
    pub fn per(window: Duration, limit: u64) -> Result<Quota> {
        if limit == 0 {
            return Err(Error::InvalidQuota {
                field: "limit",
                message: "must be at least 1".into(),
            });
        }
        if limit > MAX_LIMIT {
            return Err(Error::InvalidQuota {
                field: "limit",
                message: format!("must be at most {MAX_LIMIT}, got {limit}"),
            });
        }
        if window < Duration::from_millis(1) || window > MAX_WINDOW {
            return Err(Error::InvalidQuota {
                field: "window",
                message: format!("must be between 1ms and 366 days, got {window:?}"),
            });
        }
        Ok(Quota {
            limit,
            window,
            burst: None,
        })
    }

    /// `limit` requests per second.
    pub fn per_second(limit: u64) -> Result<Quota> {
        Self::per(Duration::from_secs(1), limit)
    }

    /// `limit` requests per minute.
    pub fn per_minute(limit: u64) -> Result<Quota> {
        Self::per(Duration::from_secs(60), limit)
    }

    /// `limit` requests per hour.
    pub fn per_hour(limit: u64) -> Result<Quota> {
        Self::per(Duration::from_secs(3600), limit)
    }

    /// `limit` requests per day.
    pub fn per_day(limit: u64) -> Result<Quota> {
        Self::per(Duration::from_secs(86_400), limit)
    }

    /// `N` requests per `window_secs` (1 to 86 400) seconds, `N` checked at compile time.
    const fn per_const<const N: u64>(window_secs: u64) -> Quota {
        const {
            assert!(
                N >= 1 && N <= MAX_LIMIT,
                "a quota's limit must be 1..=MAX_LIMIT"
            )
        };
        Quota {
            limit: N,
            window: Duration::from_secs(window_secs),
            burst: None,
        }
    }

    /// `N` requests per second, checked at compile time (a zero or an `N` above
    /// [`MAX_LIMIT`] does not compile): the infallible form for literal quotas.
    ///
    /// ```
    /// use nilecare_rate_limit::{Policy, Quota};
    ///
    /// const API: Quota = Quota::per_minute_const::<600>();
    /// let policy = Policy::new("api", API)?; // only the name can still be wrong
    /// assert_eq!(API.limit(), 600);
    /// # Ok::<(), nilecare_rate_limit::Error>(())
    /// ```
    ///
    /// ```compile_fail
    /// let zero = nilecare_rate_limit::Quota::per_second_const::<0>();
    /// ```
    pub const fn per_second_const<const N: u64>() -> Quota {
        Self::per_const::<N>(1)
    }

    /// `N` requests per minute, checked at compile time.
    pub const fn per_minute_const<const N: u64>() -> Quota {
        Self::per_const::<N>(60)
    }

    /// `N` requests per hour, checked at compile time.
    pub const fn per_hour_const<const N: u64>() -> Quota {
        Self::per_const::<N>(3600)
    }

    /// `N` requests per day, checked at compile time.
    pub const fn per_day_const<const N: u64>() -> Quota {
        Self::per_const::<N>(86_400)
    }

    /// How many requests may arrive at once for the token bucket and GCRA (default: `limit`).
    /// The long-run rate stays `limit / window`. Ignored by the window algorithms.
    pub fn with_burst(mut self, burst: u64) -> Result<Quota> {
        if burst == 0 || burst > MAX_LIMIT {
            return Err(Error::InvalidQuota {
                field: "burst",
                message: format!("must be between 1 and {MAX_LIMIT}, got {burst}"),
            });
        }
        self.burst = Some(burst);
        Ok(self)
    }

    /// Requests per window.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The burst capacity (`limit` unless set).
    pub fn burst(&self) -> u64 {
        self.burst.unwrap_or(self.limit)
    }

    pub(crate) fn window_micros(&self) -> u64 {
        u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX)
    }
}

/// How a policy counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Counter per fixed window (`floor(now / window)`): cheapest; allows up to 2x at window edges.
    FixedWindow,
    /// Current window plus the previous one weighted by its remaining overlap: smooth, O(1)
    /// memory, close to exact (the default).
    #[default]
    SlidingWindow,
    /// Every request's timestamp in the window: exact, O(limit) memory per key.
    SlidingLog,
    /// Tokens refilled at `limit / window`, capacity `burst`.
    TokenBucket,
    /// Generic cell rate algorithm (one timestamp per key), burst tolerance `burst`.
    Gcra,
}

impl Algorithm {
    /// The algorithm's number in the Redis scripts.
    #[cfg(feature = "redis")]
    pub(crate) fn id(self) -> u8 {
        match self {
            Algorithm::FixedWindow => 1,
            Algorithm::SlidingWindow => 2,
            Algorithm::SlidingLog => 3,
            Algorithm::TokenBucket => 4,
            Algorithm::Gcra => 5,
        }
    }

    /// Lower-case name (metrics, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::SlidingWindow => "sliding_window",
            Algorithm::SlidingLog => "sliding_log",
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::Gcra => "gcra",
        }
    }
}

/// A named quota with its algorithm and options. Cheap to clone; backends keep state per
/// (policy name, algorithm, key), so two `Policy` values with the same name and algorithm
/// share their counts, and a policy whose algorithm changes starts afresh.
///
/// ```
/// use std::time::Duration;
/// use nilecare_rate_limit::{Algorithm, Policy, Quota};
///
/// let login = Policy::new("login", Quota::per_minute(5)?)?
///     .algorithm(Algorithm::SlidingLog)
///     .block_for(Duration::from_secs(15 * 60));     // penalty box after exhaustion
/// let search = Policy::new("search", Quota::per_second(20)?)?.shadow(true); // report only
/// # let _ = (login, search);
/// # Ok::<(), nilecare_rate_limit::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Policy {
    inner: Arc<PolicyInner>,
}

/// `<name>:<algorithm>` (see `PolicyInner::stored_name`).
fn stored_name(name: &str, algorithm: Algorithm) -> Arc<str> {
    let code = match algorithm {
        Algorithm::FixedWindow => "fw",
        Algorithm::SlidingWindow => "sw",
        Algorithm::SlidingLog => "log",
        Algorithm::TokenBucket => "tb",
        Algorithm::Gcra => "gcra",
    };
    Arc::from(format!("{name}:{code}"))
}

/// A new id for a backend instance that caches state in policies (unique per process).
pub(crate) fn next_backend_id() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A backend's cached per-policy state (see `PolicyInner::backend_state`).
pub(crate) type BackendState = Arc<dyn std::any::Any + Send + Sync>;

#[derive(Debug)]
pub(crate) struct PolicyInner {
    pub(crate) name: Arc<str>,
    /// `<name>:<algorithm>`: what a shared backend names the policy's state, so a policy whose
    /// algorithm changes (a new release, a rolling deploy) never reads another algorithm's state.
    pub(crate) stored_name: Arc<str>,
    /// A backend's state for this policy, cached on the first check so the next ones need no
    /// lookup: (the id of the backend instance, its state). The memory limiter keeps its
    /// per-policy key map here; other instances look theirs up by name. Type-erased so this
    /// module depends on no backend.
    pub(crate) backend_state: std::sync::OnceLock<(usize, BackendState)>,
    pub(crate) quota: Quota,
    /// GCRA's constants, computed once.
    pub(crate) gcra: crate::algorithm::GcraParams,
    pub(crate) algorithm: Algorithm,
    pub(crate) block_for: Option<Duration>,
    pub(crate) shadow: bool,
    pub(crate) metrics: crate::metrics::DecisionCounters,
}

impl Policy {
    /// A policy named `name` (1-64 characters of `[A-Za-z0-9_-]`: it is a metrics label and part
    /// of every key) with the sliding-window algorithm.
    pub fn new(name: impl Into<String>, quota: Quota) -> Result<Policy> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(Error::InvalidInput {
                field: "policy",
                message: format!("name must be 1-64 characters of [A-Za-z0-9_-], got {name:?}"),
            });
        }
        Ok(Policy {
            inner: Arc::new(PolicyInner {
                metrics: crate::metrics::DecisionCounters::new(&name),
                backend_state: std::sync::OnceLock::new(),
                stored_name: stored_name(&name, Algorithm::default()),
                name: Arc::from(name),
                gcra: crate::algorithm::GcraParams::new(&quota),
                quota,
                algorithm: Algorithm::default(),
                block_for: None,
                shadow: false,
            }),
        })
    }

    fn with(self, f: impl FnOnce(&mut PolicyInner)) -> Policy {
        let mut inner = PolicyInner {
            name: self.inner.name.clone(),
            stored_name: self.inner.stored_name.clone(),
            backend_state: std::sync::OnceLock::new(),
            quota: self.inner.quota,
            gcra: self.inner.gcra,
            algorithm: self.inner.algorithm,
            block_for: self.inner.block_for,
            shadow: self.inner.shadow,
            metrics: crate::metrics::DecisionCounters::new(&self.inner.name),
        };
        f(&mut inner);
        inner.stored_name = stored_name(&inner.name, inner.algorithm);
        Policy {
            inner: Arc::new(inner),
        }
    }

    /// The counting algorithm.
    #[must_use]
    pub fn algorithm(self, algorithm: Algorithm) -> Policy {
        self.with(|p| p.algorithm = algorithm)
    }

    /// After a denial, deny the key for this long (a penalty box) without counting.
    #[must_use]
    pub fn block_for(self, duration: Duration) -> Policy {
        self.with(|p| p.block_for = Some(duration).filter(|d| !d.is_zero()))
    }

    /// Shadow mode: evaluate and report (`Decision::shadow_limited`, metrics) but never deny.
    #[must_use]
    pub fn shadow(self, on: bool) -> Policy {
        self.with(|p| p.shadow = on)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The quota.
    pub fn quota(&self) -> Quota {
        self.inner.quota
    }

    /// The algorithm.
    pub fn algorithm_kind(&self) -> Algorithm {
        self.inner.algorithm
    }

    /// Whether the policy is in shadow mode.
    pub fn is_shadow(&self) -> bool {
        self.inner.shadow
    }

    /// The penalty-box duration, if any.
    pub fn block_duration(&self) -> Option<Duration> {
        self.inner.block_for
    }

    /// The limit reported in decisions and headers: the burst for the algorithms that have
    /// one (token bucket, GCRA), else the limit per window.
    pub(crate) fn reported_limit(&self) -> u64 {
        match self.algorithm_kind() {
            Algorithm::TokenBucket | Algorithm::Gcra => self.quota().burst(),
            _ => self.quota().limit(),
        }
    }

    pub(crate) fn inner(&self) -> &PolicyInner {
        &self.inner
    }
}
