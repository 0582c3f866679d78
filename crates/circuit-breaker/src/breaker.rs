//! [`CircuitBreaker`]: the local breaker and its state machine (its permits are in `permit.rs`,
//! the call path shared with every breaker in `call.rs`).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use std::future::Future;

use tokio::sync::broadcast;

use crate::call::Breaker;

use crate::config::BreakerConfig;
use crate::error::{IllegalTransition, Rejected, Result};
use crate::event::BreakerEvent;
use crate::metrics::BreakerMetrics;
use crate::permit::{Kind, OwnedPermit, Permit, Ticket};
use crate::state::State;
use crate::window::{Totals, Window};

/// Events buffered per subscriber; a subscriber that falls further behind loses the oldest
/// (`RecvError::Lagged`).
const EVENT_CAPACITY: usize = 256;

/// How a finished call is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Counts as a success (or as slow, when it took long).
    Success,
    /// Counts as a failure.
    Failure,
    /// Not counted (e.g. a client error that says nothing about the dependency).
    Ignored,
}

impl Outcome {
    /// The default classification: `Ok` is a success, `Err` a failure.
    pub fn of<T, E>(result: &std::result::Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// Packs state (low 8 bits) and transition generation (the rest) into one atomic word, so the
/// closed path admits with a single load.
fn pack(state: State, generation: u64) -> u64 {
    generation << 8 | state as u64
}

fn unpack(word: u64) -> (State, u64) {
    (State::from_u8((word & 0xff) as u8), word >> 8)
}

#[repr(C)] // the fields every counted call touches first, on the lock's cache line
struct Core {
    generation: u64,
    window: Window,
    state: State,
    since: u64,
    open_until: u64,
    consecutive_opens: u32,
    half_open_since: u64,
    probes_admitted: u32,
    /// Calls `window` needs before its rates count (that of the state that created it).
    window_minimum: u32,
    rng: u64,
}

pub(crate) struct Inner {
    pub(crate) name: Arc<str>,
    config: BreakerConfig,
    pub(crate) clock: quanta::Clock,
    origin: u64,
    word: AtomicU64,
    core: CoreLock,
    events: broadcast::Sender<BreakerEvent>,
    metrics: BreakerMetrics,
    rejected: AtomicU64,
    /// Calls rejected since the last transition (resilience4j's `numberOfNotPermittedCalls`).
    not_permitted: AtomicU64,
    pub(crate) times_calls: bool,
    /// Outcomes not yet sent to the shared state (set when the breaker is shared through Redis).
    pending: std::sync::OnceLock<Arc<Pending>>,
}

/// Outcome counts waiting to be flushed to the shared window.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) calls: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) slow: AtomicU64,
}

impl Pending {
    /// Takes the counts accumulated since the last call.
    #[cfg(feature = "redis")]
    pub(crate) fn take(&self) -> (u64, u64, u64) {
        (
            self.calls.swap(0, Ordering::Relaxed),
            self.failures.swap(0, Ordering::Relaxed),
            self.slow.swap(0, Ordering::Relaxed),
        )
    }
}

impl Inner {
    fn now(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }

    fn reject(&self, state: State, retry_after: Option<Duration>) -> Rejected {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.not_permitted.fetch_add(1, Ordering::Relaxed);
        self.metrics.call("rejected");
        self.emit(|| BreakerEvent::Rejected {
            name: self.name.to_string(),
            state,
        });
        Rejected {
            name: self.name.to_string(),
            state,
            retry_after,
        }
    }

    fn emit(&self, event: impl FnOnce() -> BreakerEvent) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event());
        }
    }

    /// Applies time-driven transitions.
    fn tick(&self, core: &mut Core, now: u64) {
        match core.state {
            State::Open if now >= core.open_until => self.transition(core, State::HalfOpen, now),
            State::HalfOpen => {
                if let Some(max) = self.config.max_wait_in_half_open {
                    let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
                    if now.saturating_sub(core.half_open_since) >= max {
                        self.transition(core, State::Open, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// Changes state (under the lock, so each transition happens and is reported exactly once).
    fn transition(&self, core: &mut Core, to: State, now: u64) {
        let from = core.state;
        if from == to {
            return;
        }
        core.state = to;
        core.generation += 1;
        core.since = now;
        self.not_permitted.store(0, Ordering::Relaxed);
        match to {
            State::Closed => {
                core.window = Window::new(self.config.window);
                core.window_minimum = self.config.effective_minimum_calls();
                core.consecutive_opens = 0;
            }
            State::Open => {
                core.consecutive_opens = core.consecutive_opens.saturating_add(1);
                let wait = self.config.open_wait(core.consecutive_opens);
                let jitter = self.config.jitter;
                let wait = if jitter > 0.0 {
                    core.rng ^= core.rng << 13;
                    core.rng ^= core.rng >> 7;
                    core.rng ^= core.rng << 17;
                    let unit = (core.rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                    wait.mul_f64(1.0 + unit * jitter)
                } else {
                    wait
                };
                core.open_until =
                    now.saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
            }
            State::HalfOpen => {
                // As in resilience4j: half-open has a fresh count window of its permitted
                // calls, whose rates decide and which `metrics()` shows. OPEN keeps the window
                // of the state it came from (what opened it).
                core.half_open_since = now;
                core.probes_admitted = 0;
                core.window = Window::new(crate::config::WindowType::CountBased(
                    self.config.half_open_permits,
                ));
                core.window_minimum = self.config.half_open_minimum_calls();
            }
            State::Disabled | State::ForcedOpen | State::MetricsOnly => {
                core.window = Window::new(self.config.window);
                core.window_minimum = self.config.effective_minimum_calls();
            }
        }
        self.word
            .store(pack(to, core.generation), Ordering::Release);
        self.metrics.state_changed(Some(from), to);
        match to {
            State::Open | State::ForcedOpen => {
                tracing::warn!(breaker = %self.name, %from, %to, "circuit breaker transition")
            }
            _ => tracing::info!(breaker = %self.name, %from, %to, "circuit breaker transition"),
        }
        self.emit(|| BreakerEvent::Transition {
            name: self.name.to_string(),
            from,
            to,
        });
    }

    /// Records a finished call.
    pub(crate) fn finish(
        &self,
        kind: Kind,
        generation: u64,
        outcome: Outcome,
        elapsed: Option<Duration>,
        ended: Option<u64>,
    ) {
        if kind == Kind::Free {
            return;
        }
        let slow = elapsed.is_some_and(|e| e >= self.config.slow_call_duration);
        let failure = outcome == Outcome::Failure;
        match (outcome, slow) {
            (Outcome::Ignored, _) => self.metrics.call("ignored"),
            (Outcome::Failure, _) => self.metrics.call("failure"),
            (Outcome::Success, true) => self.metrics.call("slow"),
            (Outcome::Success, false) => self.metrics.call("success"),
        }
        if failure {
            self.emit(|| BreakerEvent::Failure {
                name: self.name.to_string(),
                elapsed: elapsed.unwrap_or_default(),
            });
        } else if slow && outcome == Outcome::Success {
            self.emit(|| BreakerEvent::SlowCall {
                name: self.name.to_string(),
                elapsed: elapsed.unwrap_or_default(),
            });
        }
        let mut core = lock(&self.core);
        if core.generation != generation {
            // The breaker changed state since this call was admitted: its outcome belongs to a
            // past window (or a past half-open round).
            return;
        }
        let config = &self.config;
        match kind {
            Kind::Counted => {
                if outcome == Outcome::Ignored {
                    return;
                }
                if let Some(pending) = self.pending.get() {
                    pending.calls.fetch_add(1, Ordering::Relaxed);
                    pending
                        .failures
                        .fetch_add(u64::from(failure), Ordering::Relaxed);
                    pending.slow.fetch_add(u64::from(slow), Ordering::Relaxed);
                }
                // Only time-based windows need the time of every call (the reading that timed
                // it, when there was one); count-based ones read the clock only when they
                // transition.
                let second = match config.window {
                    crate::config::WindowType::TimeBased(_) => {
                        let now = ended.map_or_else(
                            || self.now(),
                            |raw| self.clock.delta_as_nanos(self.origin, raw),
                        );
                        now / 1_000_000_000
                    }
                    crate::config::WindowType::CountBased(_) => 0,
                };
                core.window.record(failure, slow, second);
                if core.state != State::Closed {
                    return; // metrics-only records but never opens
                }
                let Totals {
                    calls,
                    failures,
                    slow: slow_calls,
                } = core.window.totals(second);
                if calls >= config.effective_minimum_calls()
                    && (percent(failures, calls) >= config.failure_rate_threshold
                        || percent(slow_calls, calls) >= config.slow_call_rate_threshold)
                {
                    let now = self.now();
                    self.transition(&mut core, State::Open, now);
                }
            }
            Kind::Probe => {
                if outcome == Outcome::Ignored {
                    // The probe did not happen (dropped, cancelled): give its slot back.
                    core.probes_admitted = core.probes_admitted.saturating_sub(1);
                    return;
                }
                // The same rule as the closed window: a slow call is slow whether it failed or not.
                core.window.record(failure, slow, 0);
                let Totals {
                    calls,
                    failures,
                    slow: slow_calls,
                } = core.window.totals(0);
                if calls >= config.half_open_minimum_calls() {
                    let reopen = percent(failures, calls) >= config.failure_rate_threshold
                        || percent(slow_calls, calls) >= config.slow_call_rate_threshold;
                    let to = if reopen { State::Open } else { State::Closed };
                    let now = self.now();
                    self.transition(&mut core, to, now);
                }
            }
            Kind::Free => {}
        }
    }
}

/// A circuit breaker (resilience4j semantics) guarding calls to one dependency.
///
/// Cheap to clone (one `Arc`). In CLOSED a call costs one atomic load to admit and one
/// uncontended lock to record, with no allocation; calls are timed only when slow-call detection
/// or a call timeout is configured.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use nilecare_circuit_breaker::{Breaker, BreakerConfig, BreakerError, CircuitBreaker, State, WaitStrategy, WindowType};
///
/// let breaker = CircuitBreaker::new(
///     "billing",
///     BreakerConfig::default()
///         .window(WindowType::CountBased(10))
///         .minimum_calls(4)
///         .failure_rate_threshold(50.0)
///         .wait(WaitStrategy::Fixed(Duration::from_secs(30))),
/// )?;
/// for _ in 0..4 {
///     let r: Result<(), BreakerError<&str>> = breaker.call(async { Err("502 from billing") }).await;
///     assert!(matches!(r, Err(BreakerError::Inner(_))));
/// }
/// assert_eq!(breaker.state(), State::Open);
/// match breaker.call(async { Ok::<_, &str>(()) }).await {
///     Err(BreakerError::Rejected(r)) => assert!(r.retry_after.is_some()),
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &&*self.inner.name)
            .field("state", &self.state())
            .finish()
    }
}

/// A snapshot for health endpoints and dashboards: the window of the current state (in
/// half-open, the probes; in open, the window that opened it), as resilience4j's `Metrics`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Time in that state.
    pub since: Duration,
    /// Calls in the window (resilience4j's buffered calls).
    pub calls: u32,
    /// Calls of the window that did not fail (slow successes included).
    pub successful_calls: u32,
    /// Failures in the window.
    pub failures: u32,
    /// Slow calls in the window.
    pub slow_calls: u32,
    /// Failure percentage of the window (0 when empty). It is only acted on once `calls`
    /// reaches `minimum_calls` (resilience4j reports -1 until then).
    pub failure_rate: f64,
    /// Slow-call percentage of the window (0 when empty); slow failures count as slow.
    pub slow_call_rate: f64,
    /// Calls the window needs before its rates can change the state: in closed,
    /// `minimum_calls` (capped at a count window's size); in half-open, the same capped at the
    /// permitted probes.
    pub minimum_calls: u32,
    /// Calls rejected since the last state transition (resilience4j's not-permitted calls).
    pub not_permitted: u64,
    /// Calls rejected since the breaker was created (never reset: a Prometheus-style total).
    pub rejected: u64,
}

impl BreakerSnapshot {
    /// Whether the window holds enough calls for its rates to count.
    pub fn rates_apply(&self) -> bool {
        self.calls >= self.minimum_calls
    }
}

/// The state machine's lock and the fields a counted call writes, on cache lines of their own.
#[repr(align(128))]
struct CoreLock(Mutex<Core>);

fn lock(core: &CoreLock) -> MutexGuard<'_, Core> {
    core.0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

impl CircuitBreaker {
    /// A breaker with the real clock.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Result<Self> {
        Self::with_clock(name, config, quanta::Clock::new())
    }

    /// A breaker reading time from `clock` (use `quanta::Clock::mock()` for deterministic tests).
    pub fn with_clock(
        name: impl Into<String>,
        config: BreakerConfig,
        clock: quanta::Clock,
    ) -> Result<Self> {
        config.validate()?;
        let name: Arc<str> = Arc::from(name.into());
        let origin = clock.raw();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let metrics = BreakerMetrics::new(&name);
        metrics.state_changed(None, State::Closed);
        Ok(CircuitBreaker {
            inner: Arc::new(Inner {
                times_calls: config.times_calls() || config.call_timeout.is_some(),
                core: CoreLock(Mutex::new(Core {
                    state: State::Closed,
                    generation: 0,
                    since: 0,
                    window: Window::new(config.window),
                    open_until: 0,
                    consecutive_opens: 0,
                    half_open_since: 0,
                    probes_admitted: 0,
                    window_minimum: config.effective_minimum_calls(),
                    rng: RandomState::new().hash_one(origin) | 1,
                })),
                word: AtomicU64::new(pack(State::Closed, 0)),
                name,
                config,
                clock,
                origin,
                events,
                metrics,
                rejected: AtomicU64::new(0),
                not_permitted: AtomicU64::new(0),
                pending: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// Subscribes to transitions, rejections, failures and slow calls.
    pub fn subscribe(&self) -> broadcast::Receiver<BreakerEvent> {
        self.inner.events.subscribe()
    }

    /// The current state (applying due time-based transitions: open → half-open after the wait,
    /// half-open → open after the maximum half-open wait).
    pub fn state(&self) -> State {
        let (state, _) = unpack(self.inner.word.load(Ordering::Acquire));
        if matches!(state, State::Open | State::HalfOpen) {
            let mut core = lock(&self.inner.core);
            let now = self.inner.now();
            self.inner.tick(&mut core, now);
            return core.state;
        }
        state
    }

    /// Asks to run one call. `Ok(permit)`: run it, then report with [`Permit::success`],
    /// [`Permit::failure`] or [`Permit::record`]; dropping the permit unreported counts as
    /// ignored and returns a half-open probe slot. `Err`: rejected.
    pub fn try_acquire(&self) -> std::result::Result<Permit<'_>, Rejected> {
        let (state, generation) = unpack(self.inner.word.load(Ordering::Acquire));
        let (kind, generation) = match state {
            State::Closed | State::MetricsOnly => (Kind::Counted, generation),
            State::Disabled => (Kind::Free, generation),
            State::ForcedOpen => return Err(self.inner.reject(State::ForcedOpen, None)),
            State::Open | State::HalfOpen => self.acquire_slow()?,
        };
        Ok(Permit {
            breaker: &self.inner,
            ticket: self.ticket(kind, generation),
        })
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a reference to the
    /// breaker (for futures that outlive the borrow, such as tower services).
    pub fn try_acquire_owned(&self) -> std::result::Result<OwnedPermit, Rejected> {
        let permit = self.try_acquire()?;
        let ticket = permit.take();
        Ok(OwnedPermit {
            breaker: self.inner.clone(),
            ticket,
        })
    }

    fn ticket(&self, kind: Kind, generation: u64) -> Ticket {
        Ticket {
            kind,
            generation,
            started: if self.inner.times_calls {
                self.inner.clock.raw()
            } else {
                0
            },
            done: false,
        }
    }

    fn acquire_slow(&self) -> std::result::Result<(Kind, u64), Rejected> {
        let mut core = lock(&self.inner.core);
        let now = self.inner.now();
        self.inner.tick(&mut core, now);
        match core.state {
            State::Closed | State::MetricsOnly => Ok((Kind::Counted, core.generation)),
            State::Disabled => Ok((Kind::Free, core.generation)),
            State::ForcedOpen => Err(self.inner.reject(State::ForcedOpen, None)),
            State::Open => {
                let wait = Duration::from_nanos(core.open_until.saturating_sub(now));
                Err(self.inner.reject(State::Open, Some(wait)))
            }
            State::HalfOpen => {
                if core.probes_admitted < self.inner.config.half_open_permits {
                    core.probes_admitted += 1;
                    Ok((Kind::Probe, core.generation))
                } else {
                    // All probes are out; their outcome decides. Suggest a short retry.
                    Err(self
                        .inner
                        .reject(State::HalfOpen, Some(Duration::from_secs(1))))
                }
            }
        }
    }

    /// A snapshot of state and window.
    pub fn metrics(&self) -> BreakerSnapshot {
        let mut core = lock(&self.inner.core);
        let now = self.inner.now();
        self.inner.tick(&mut core, now);
        let second = if core.state == State::HalfOpen {
            0
        } else {
            now / 1_000_000_000
        };
        let totals = core.window.totals(second);
        BreakerSnapshot {
            name: self.inner.name.to_string(),
            state: core.state,
            since: Duration::from_nanos(now.saturating_sub(core.since)),
            calls: totals.calls,
            successful_calls: totals.calls - totals.failures,
            failures: totals.failures,
            slow_calls: totals.slow,
            failure_rate: percent(totals.failures, totals.calls),
            slow_call_rate: percent(totals.slow, totals.calls),
            minimum_calls: core.window_minimum,
            not_permitted: self.inner.not_permitted.load(Ordering::Relaxed),
            rejected: self.inner.rejected.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn set(&self, to: State) {
        let mut core = lock(&self.inner.core);
        let now = self.inner.now();
        if core.state == to && to == State::Closed {
            core.window = Window::new(self.inner.config.window);
            core.window_minimum = self.inner.config.effective_minimum_calls();
            return;
        }
        self.inner.transition(&mut core, to, now);
    }

    /// Starts collecting outcomes for a shared window; returns the collector.
    #[cfg(feature = "redis")]
    pub(crate) fn share(&self) -> Arc<Pending> {
        self.inner.pending.get_or_init(Arc::default).clone()
    }

    /// Mirrors a shared OPEN record: open for exactly `remaining` (no local backoff).
    #[cfg(feature = "redis")]
    pub(crate) fn open_for(&self, remaining: Duration) {
        let mut core = lock(&self.inner.core);
        let now = self.inner.now();
        if core.state != State::Open {
            self.inner.transition(&mut core, State::Open, now);
        }
        core.open_until =
            now.saturating_add(u64::try_from(remaining.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Opens the breaker now (as if its rates had been exceeded), whatever its state; the wait
    /// starts now.
    pub fn transition_to_open(&self) {
        self.set(State::Open);
    }

    /// Moves an OPEN breaker to HALF_OPEN now, without waiting. From any other state this is an
    /// error naming both states (as resilience4j's illegal state transition).
    pub fn transition_to_half_open(&self) -> std::result::Result<(), IllegalTransition> {
        let mut core = lock(&self.inner.core);
        if core.state != State::Open {
            return Err(IllegalTransition {
                name: self.inner.name.to_string(),
                from: core.state,
                to: State::HalfOpen,
            });
        }
        let now = self.inner.now();
        self.inner.transition(&mut core, State::HalfOpen, now);
        Ok(())
    }

    /// Back to CLOSED with an empty window.
    pub fn reset(&self) {
        self.set(State::Closed);
    }

    /// Rejects every call until changed by hand.
    pub fn force_open(&self) {
        self.set(State::ForcedOpen);
    }

    /// Lets every call through, recording nothing.
    pub fn disable(&self) {
        self.set(State::Disabled);
    }

    /// Records calls but never opens.
    pub fn metrics_only(&self) {
        self.set(State::MetricsOnly);
    }
}

impl Breaker for CircuitBreaker {
    type Permit<'a> = Permit<'a>;

    fn name(&self) -> &str {
        CircuitBreaker::name(self)
    }

    fn config(&self) -> &BreakerConfig {
        CircuitBreaker::config(self)
    }

    fn state(&self) -> State {
        CircuitBreaker::state(self)
    }

    /// Never waits: [`try_acquire`](CircuitBreaker::try_acquire) in a ready future.
    fn acquire(&self) -> impl Future<Output = std::result::Result<Permit<'_>, Rejected>> + Send {
        std::future::ready(self.try_acquire())
    }
}

/// Hands the inner state to the registry (shared health listing).
impl CircuitBreaker {
    pub(crate) fn strong_count(&self) -> usize {
        Arc::strong_count(&self.inner)
    }
}
