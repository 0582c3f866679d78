//! [`SharedBreaker`]: one breaker state for every instance, through Redis, with a local hot path.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use nilecare_redis::fred::clients::Pool;
use nilecare_redis::{KeyPrefix, Script};

use crate::breaker::{CircuitBreaker, Outcome, Pending};
use crate::call::{Breaker, CallPermit};
use crate::config::{BreakerConfig, WaitStrategy, WindowType};
use crate::error::Rejected;
use crate::permit::Permit;
use crate::state::State;

static SHARED_LUA: &str = include_str!("breaker.lua");

/// Shared-record states returned by the script.
const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Options of a [`SharedBreaker`].
#[derive(Clone, Debug)]
pub struct SharedOptions {
    /// How often outcomes are sent and the shared state read (default 250 ms): the delay after
    /// which an instance follows a state decided elsewhere.
    pub flush_interval: Duration,
    /// Timeout of each Redis call (default 200 ms).
    pub timeout: Duration,
    /// Key prefix (default `nilecare:cb:`).
    pub prefix: KeyPrefix,
}

impl Default for SharedOptions {
    fn default() -> Self {
        SharedOptions {
            flush_interval: Duration::from_millis(250),
            timeout: Duration::from_millis(200),
            prefix: KeyPrefix::default().segment("cb"),
        }
    }
}

struct Inner {
    local: CircuitBreaker,
    pending: Arc<Pending>,
    pool: Pool,
    script: Script,
    keys: Vec<String>,
    params: Vec<String>,
    options: SharedOptions,
    view: AtomicU8,
    redis_up: AtomicBool,
}

/// A circuit breaker whose state is shared by every instance through Redis (feature `redis`).
///
/// Each instance keeps a local [`CircuitBreaker`] for the hot path: in CLOSED a call costs what a
/// local call costs plus three atomic adds; outcomes are flushed every `flush_interval` in one
/// script that adds them to a shared per-second window and evaluates it against the thresholds.
/// When the shared breaker opens, every instance learns it at its next flush (so within one
/// `flush_interval`) and rejects locally until the shared wait ends; half-open probes are granted
/// by Redis, so the permitted number holds for the whole cluster. No Redis lock is ever held
/// while a call runs.
///
/// The shared window is time-based: a time-based config uses its length, a count-based one the
/// last 60 seconds. Open waits follow the config's strategy without jitter (probing is limited
/// cluster-wide anyway).
///
/// If Redis is unreachable, the instance decides alone with its local breaker (logged, and
/// exported as `nilecare_circuit_breaker_shared_available{name} 0`), and returns to the shared
/// state when Redis answers again. Outcomes of the outage are not replayed.
///
/// Needs a Tokio runtime (the flush loop is a task; it stops when the `SharedBreaker` is dropped).
#[derive(Clone)]
pub struct SharedBreaker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SharedBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBreaker")
            .field("name", &self.inner.local.name())
            .field("shared_state", &self.shared_state())
            .field("redis_available", &self.redis_available())
            .finish()
    }
}

impl SharedBreaker {
    /// Shares `local`'s state through `pool` with the default options.
    pub fn new(local: CircuitBreaker, pool: Pool) -> Self {
        Self::with_options(local, pool, SharedOptions::default())
    }

    /// Shares `local`'s state through `pool`.
    pub fn with_options(local: CircuitBreaker, pool: Pool, options: SharedOptions) -> Self {
        let config = local.config().clone();
        let window_s = match config.window {
            WindowType::TimeBased(n) => n,
            WindowType::CountBased(_) => 60,
        };
        let (initial, multiplier, max) = match config.wait {
            WaitStrategy::Fixed(d) => (d, 1.0, d),
            WaitStrategy::Backoff {
                initial,
                multiplier,
                max,
            } => (initial, multiplier, max),
        };
        let us = |d: Duration| d.as_micros().to_string();
        let params = vec![
            window_s.to_string(),
            config.minimum_calls.to_string(),
            config.failure_rate_threshold.to_string(),
            config.slow_call_rate_threshold.to_string(),
            us(initial),
            multiplier.to_string(),
            us(max),
            config.max_wait_in_half_open.map_or("0".into(), us),
            config.half_open_permits.to_string(),
        ];
        let tagged = options.prefix.tagged(local.name());
        let keys = vec![tagged.key("state"), tagged.key("window")];
        local.set(State::MetricsOnly); // shared decisions drive the state
        let pending = local.share();
        let inner = Arc::new(Inner {
            local,
            pending,
            pool,
            script: Script::new(SHARED_LUA),
            keys,
            params,
            options,
            view: AtomicU8::new(CLOSED),
            redis_up: AtomicBool::new(true),
        });
        tokio::spawn(flush_loop(Arc::downgrade(&inner)));
        SharedBreaker { inner }
    }

    /// The local breaker (its state mirrors the shared one while Redis is available).
    pub fn local(&self) -> &CircuitBreaker {
        &self.inner.local
    }

    /// Whether the shared state is in use (Redis answered the last flush).
    pub fn redis_available(&self) -> bool {
        self.inner.redis_up.load(Ordering::Relaxed)
    }

    /// The shared state as last learned: closed, open or half-open.
    pub fn shared_state(&self) -> State {
        match self.inner.view.load(Ordering::Relaxed) {
            OPEN => State::Open,
            HALF_OPEN => State::HalfOpen,
            _ => State::Closed,
        }
    }

    /// Sends pending outcomes and reads the shared state now (the flush loop does this every
    /// `flush_interval`).
    pub async fn flush(&self) {
        self.inner.flush().await;
    }
}

impl Breaker for SharedBreaker {
    type Permit<'a> = SharedPermit<'a>;

    fn name(&self) -> &str {
        self.inner.local.name()
    }

    fn config(&self) -> &BreakerConfig {
        self.inner.local.config()
    }

    fn state(&self) -> State {
        self.shared_state()
    }

    /// While the shared state is closed (or Redis is away) the local breaker admits; while it
    /// is open the local mirror rejects until the shared wait has passed; after that only
    /// probes granted by Redis run, so the permitted number holds for every instance.
    async fn acquire(&self) -> Result<SharedPermit<'_>, Rejected> {
        let inner = &self.inner;
        let local = || {
            inner
                .local
                .try_acquire()
                .map(|permit| SharedPermit(Admitted::Local(permit)))
        };
        if !inner.redis_up.load(Ordering::Relaxed) || inner.view.load(Ordering::Relaxed) == CLOSED {
            return local();
        }
        if inner.local.state() == State::Open {
            return local();
        }
        match inner.run(&["acquire"]).await {
            Ok(reply) if reply.first() == Some(&1) => {}
            Ok(reply) => {
                inner.apply(reply.get(1).copied(), reply.get(2).copied());
                return Err(Rejected {
                    name: inner.local.name().to_owned(),
                    state: State::HalfOpen,
                    retry_after: Some(inner.options.flush_interval.max(Duration::from_millis(100))),
                });
            }
            Err(()) => return local(),
        }
        // A probe granted cluster-wide. Reported even if the caller drops the permit.
        Ok(SharedPermit(Admitted::Probe(ProbeReport {
            inner: inner.clone(),
            outcome: Some(Outcome::Ignored),
            slow: false,
            started: std::time::Instant::now(),
        })))
    }
}

/// The permit of a [`SharedBreaker`]: the local breaker's while the shared state is closed (or
/// Redis is away), or a half-open probe granted by Redis for the whole cluster.
#[must_use = "report the outcome with CallPermit::report; dropping counts as ignored"]
#[derive(Debug)]
pub struct SharedPermit<'a>(Admitted<'a>);

#[derive(Debug)]
enum Admitted<'a> {
    Local(Permit<'a>),
    Probe(ProbeReport),
}

impl CallPermit for SharedPermit<'_> {
    async fn report(self, outcome: Outcome) {
        match self.0 {
            Admitted::Local(permit) => permit.record(outcome),
            Admitted::Probe(report) => {
                let elapsed = report.started.elapsed();
                report.finish(outcome, elapsed).await;
            }
        }
    }

    async fn report_elapsed(self, outcome: Outcome, elapsed: Duration) {
        match self.0 {
            Admitted::Local(permit) => permit.record_elapsed(outcome, elapsed),
            Admitted::Probe(report) => report.finish(outcome, elapsed).await,
        }
    }
}

/// Sends a probe's outcome; if dropped unsent (the caller cancelled), returns the probe slot.
struct ProbeReport {
    inner: Arc<Inner>,
    outcome: Option<Outcome>,
    slow: bool,
    started: std::time::Instant,
}

impl std::fmt::Debug for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeReport")
            .field("breaker", &self.inner.local.name())
            .finish()
    }
}

impl ProbeReport {
    /// Sends `outcome` (slow when `elapsed` reached the slow-call duration).
    async fn finish(mut self, outcome: Outcome, elapsed: Duration) {
        self.outcome = Some(outcome);
        self.slow = elapsed >= self.inner.local.config().slow_call_duration;
        self.send().await;
    }

    async fn send(&mut self) {
        if let Some(outcome) = self.outcome.take() {
            self.inner.report(outcome, self.slow).await;
        }
    }
}

impl Drop for ProbeReport {
    fn drop(&mut self) {
        if let Some(outcome) = self.outcome.take() {
            let inner = self.inner.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { inner.report(outcome, false).await });
            }
        }
    }
}

impl Inner {
    /// Runs the script with `op` and its arguments; `Err(())` means Redis is unavailable (the
    /// instance then decides locally).
    async fn run(&self, op_args: &[&str]) -> Result<Vec<i64>, ()> {
        let mut args: Vec<String> = Vec::with_capacity(1 + self.params.len() + 3);
        args.push(op_args[0].to_owned());
        args.extend(self.params.iter().cloned());
        args.extend(op_args[1..].iter().map(|a| (*a).to_owned()));
        let call = self.script.run(&self.pool, self.keys.clone(), args);
        match tokio::time::timeout(self.options.timeout, call).await {
            Ok(Ok(reply)) => {
                if !self.redis_up.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        breaker = self.local.name(),
                        "shared breaker state available again"
                    );
                    crate::metrics::shared_available(self.local.name(), true);
                    self.local.set(State::MetricsOnly);
                }
                Ok(reply)
            }
            Ok(Err(e)) => {
                self.fall_back(&e.to_string());
                Err(())
            }
            Err(_) => {
                self.fall_back("timeout");
                Err(())
            }
        }
    }

    fn fall_back(&self, why: &str) {
        if self.redis_up.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                breaker = self.local.name(),
                error = why,
                "shared breaker state unavailable; deciding locally"
            );
            crate::metrics::shared_available(self.local.name(), false);
            self.local.set(State::Closed);
        }
    }

    /// Mirrors the shared state into the local breaker.
    fn apply(&self, code: Option<i64>, remaining_us: Option<i64>) {
        let code = match code {
            Some(1) => OPEN,
            Some(2) => HALF_OPEN,
            _ => CLOSED,
        };
        let previous = self.view.swap(code, Ordering::Relaxed);
        let remaining = Duration::from_micros(remaining_us.unwrap_or(0).max(0).unsigned_abs());
        match code {
            OPEN => self.local.open_for(remaining),
            // Half-open is granted by Redis: locally stay open (no local probes) until closed.
            HALF_OPEN => self.local.open_for(Duration::ZERO),
            _ if previous != CLOSED => self.local.set(State::MetricsOnly),
            _ => {}
        }
    }

    async fn flush(&self) {
        let (calls, failures, slow) = self.pending.take();
        // Outcomes recorded while Redis was unavailable were decided locally; the first flush
        // after an outage does not replay them into the shared window.
        let (calls, failures, slow) = if self.redis_up.load(Ordering::Relaxed) {
            (calls, failures, slow)
        } else {
            (0, 0, 0)
        };
        let (c, f, s) = (calls.to_string(), failures.to_string(), slow.to_string());
        if let Ok(reply) = self.run(&["flush", &c, &f, &s]).await {
            self.apply(reply.first().copied(), reply.get(1).copied());
        }
    }

    async fn report(&self, outcome: Outcome, slow: bool) {
        let (failure, slow, ignored) = match outcome {
            Outcome::Failure => ("1", "0", "0"),
            Outcome::Success => ("0", if slow { "1" } else { "0" }, "0"),
            Outcome::Ignored => ("0", "0", "1"),
        };
        if let Ok(reply) = self.run(&["done", failure, slow, ignored]).await {
            self.apply(reply.first().copied(), reply.get(1).copied());
        }
    }
}

async fn flush_loop(inner: Weak<Inner>) {
    let interval = match inner.upgrade() {
        Some(i) => i.options.flush_interval,
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        inner.flush().await;
    }
}
