//! [`BreakerRegistry`]: breakers by name (per endpoint or service), from a default or named config.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::breaker::{BreakerSnapshot, CircuitBreaker};
use crate::config::BreakerConfig;
use crate::error::Result;
use crate::state::State;

/// Breakers by name, created on first use.
///
/// ```
/// use nilecare_circuit_breaker::{BreakerConfig, BreakerRegistry};
///
/// let registry = BreakerRegistry::new(BreakerConfig::default())?
///     .with_config("billing", BreakerConfig::default().failure_rate_threshold(25.0))?;
/// let billing = registry.get("billing")?;
/// assert_eq!(billing.config().validate().is_ok(), true);
/// assert_eq!(registry.snapshots().len(), 1);
/// # Ok::<(), nilecare_circuit_breaker::Error>(())
/// ```
#[derive(Debug)]
pub struct BreakerRegistry {
    default: BreakerConfig,
    named: HashMap<String, BreakerConfig>,
    idle_after: Duration,
    breakers: Mutex<HashMap<String, (CircuitBreaker, Instant)>>,
}

impl BreakerRegistry {
    /// A registry creating breakers with `default` unless a named config exists.
    pub fn new(default: BreakerConfig) -> Result<Self> {
        default.validate()?;
        Ok(BreakerRegistry {
            default,
            named: HashMap::new(),
            idle_after: Duration::from_secs(3600),
            breakers: Mutex::new(HashMap::new()),
        })
    }

    /// The config of the breaker called `name`.
    pub fn with_config(mut self, name: impl Into<String>, config: BreakerConfig) -> Result<Self> {
        config.validate()?;
        self.named.insert(name.into(), config);
        Ok(self)
    }

    /// Breakers not fetched for this long (and not open) are retired (default 1 h).
    #[must_use]
    pub fn idle_after(mut self, idle: Duration) -> Self {
        self.idle_after = idle;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (CircuitBreaker, Instant)>> {
        self.breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The breaker called `name`, created on first use.
    pub fn get(&self, name: &str) -> Result<CircuitBreaker> {
        let now = Instant::now();
        let mut map = self.lock();
        if let Some((breaker, used)) = map.get_mut(name) {
            *used = now;
            return Ok(breaker.clone());
        }
        let config = self.named.get(name).unwrap_or(&self.default).clone();
        let breaker = CircuitBreaker::new(name, config)?;
        map.insert(name.to_owned(), (breaker.clone(), now));
        Ok(breaker)
    }

    /// Snapshots of every breaker, for health endpoints.
    pub fn snapshots(&self) -> Vec<BreakerSnapshot> {
        let mut all: Vec<_> = self.lock().values().map(|(b, _)| b.metrics()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Names of the breakers that are open, forced open or half-open (for readiness).
    pub fn unhealthy(&self) -> Vec<String> {
        self.snapshots()
            .into_iter()
            .filter(|s| matches!(s.state, State::Open | State::ForcedOpen | State::HalfOpen))
            .map(|s| s.name)
            .collect()
    }

    /// Drops breakers idle longer than `idle_after`, unless open or still held elsewhere;
    /// returns how many went.
    pub fn retire_idle(&self) -> usize {
        let now = Instant::now();
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, (breaker, used)| {
            now.duration_since(*used) < self.idle_after
                || breaker.strong_count() > 1
                || matches!(
                    breaker.state(),
                    State::Open | State::ForcedOpen | State::HalfOpen
                )
        });
        before - map.len()
    }
}
