//! resilience4j's `CircuitBreakerStateMachineTest` scenarios, one test per scenario with the same
//! configuration, call sequences and expected numbers, written for this crate's API:
//!
//! - `tryAcquirePermission()` is `try_acquire()` (a permit held until it is recorded;
//!   `releasePermission()` is dropping it unrecorded);
//! - `onSuccess(d)` / `onError(d, e)` are `record_elapsed(Success | Failure, d)`; the ignored
//!   `NumberFormatException` is `Outcome::Ignored`;
//! - `getMetrics()` is `metrics()`: a failure rate of -1 ("not enough calls") is
//!   `!rates_apply()`; `getNumberOfNotPermittedCalls()` is `not_permitted` (reset on every
//!   transition, as resilience4j's; the lifetime total is `rejected`).
//!
//! Deliberate differences, documented in the crate README: there is no FORCED_CLOSE state
//! (METRICS_ONLY records and never opens, the same numbers), no event for "failure rate
//! exceeded" (the transition event says it), and `reset()` is allowed from CLOSED (it clears the
//! window) where resilience4j refuses a CLOSED → CLOSED transition.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use nilecare_circuit_breaker::{
    BreakerConfig, BreakerEvent, CircuitBreaker, Clock, Outcome, Permit, State, WaitStrategy,
    WindowType,
};

/// resilience4j's `setUp`: failure rate 50 %, 4 permitted calls in half-open, slow calls from
/// 4 s at 50 %, a time-based window of 5 s with a minimum of 5 calls, 5 s open.
fn config() -> BreakerConfig {
    BreakerConfig::default()
        .failure_rate_threshold(50.0)
        .half_open_permits(4)
        .slow_calls(Duration::from_secs(4), 50.0)
        .window(WindowType::TimeBased(5))
        .minimum_calls(5)
        .wait(WaitStrategy::Fixed(Duration::from_secs(5)))
}

fn breaker_with(config: BreakerConfig) -> (CircuitBreaker, Arc<quanta::Mock>) {
    let (clock, mock): (Clock, _) = Clock::mock();
    mock.increment(Duration::from_secs(1_000));
    (
        CircuitBreaker::with_clock("testName", config, clock).unwrap(),
        mock,
    )
}

fn breaker() -> (CircuitBreaker, Arc<quanta::Mock>) {
    breaker_with(config())
}

fn acquire(b: &CircuitBreaker) -> bool {
    b.try_acquire().map(drop_unrecorded_later).is_ok()
}

/// Keeps a permit out (as resilience4j's acquired-but-not-finished permission).
fn drop_unrecorded_later(p: Permit<'_>) {
    std::mem::forget(p);
}

fn on_success(b: &CircuitBreaker, took: Duration) {
    b.try_acquire()
        .unwrap()
        .record_elapsed(Outcome::Success, took);
}

fn on_error(b: &CircuitBreaker, took: Duration) {
    b.try_acquire()
        .unwrap()
        .record_elapsed(Outcome::Failure, took);
}

/// The ignored exception (`NumberFormatException` in resilience4j's configuration).
fn on_ignored(b: &CircuitBreaker) {
    b.try_acquire()
        .unwrap()
        .record_elapsed(Outcome::Ignored, Duration::ZERO);
}

const FAST: Duration = Duration::ZERO;

/// resilience4j's `assertCircuitBreakerMetricsEqualTo(failureRate, successful, buffered,
/// failed, notPermitted)`.
fn assert_metrics(
    b: &CircuitBreaker,
    failure_rate: f64,
    successful: u32,
    buffered: u32,
    failed: u32,
    not_permitted: u64,
) {
    let m = b.metrics();
    let rate = if m.rates_apply() {
        m.failure_rate
    } else {
        -1.0
    };
    assert_eq!(
        (
            rate,
            m.successful_calls,
            m.calls,
            m.failures,
            m.not_permitted
        ),
        (failure_rate, successful, buffered, failed, not_permitted),
        "{m:?}"
    );
}

fn assert_reset(b: &CircuitBreaker) {
    assert_metrics(b, -1.0, 0, 0, 0, 0);
}

fn half_open(b: &CircuitBreaker) {
    b.transition_to_open();
    b.transition_to_half_open().unwrap();
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn should_return_the_correct_name() {
    assert_eq!(breaker().0.name(), "testName");
}

#[test]
fn should_throw_call_not_permitted_exception_when_state_is_open() {
    let (b, _) = breaker();
    b.transition_to_open();
    assert!(b.try_acquire().is_err());
    assert_eq!(b.metrics().not_permitted, 1);
}

#[test]
fn should_throw_call_not_permitted_exception_when_state_is_forced_open() {
    let (b, _) = breaker();
    b.force_open();
    assert!(b.try_acquire().is_err());
    assert_eq!(b.metrics().not_permitted, 1);
}

#[test]
fn should_increase_counter_on_release_permission() {
    let (b, _) = breaker();
    half_open(&b);
    let held: Vec<_> = (0..4).map(|_| b.try_acquire().unwrap()).collect();
    assert!(b.try_acquire().is_err());
    assert!(b.try_acquire().is_err());
    drop(held); // releasePermission: unrecorded permits give their slot back
    assert!(b.try_acquire().is_ok());
}

#[test]
fn should_throw_call_not_permitted_exception_when_not_further_test_calls_are_permitted() {
    let (b, _) = breaker();
    half_open(&b);
    let _held: Vec<_> = (0..4).map(|_| b.try_acquire().unwrap()).collect();
    assert!(b.try_acquire().is_err());
    assert_eq!(b.metrics().not_permitted, 1);
}

#[test]
fn should_only_permit_four_calls_in_half_open_state() {
    let (b, _) = breaker();
    assert_reset(&b);
    half_open(&b);
    for _ in 0..4 {
        assert!(acquire(&b));
    }
    assert!(!acquire(&b));
    assert!(!acquire(&b));
    half_open(&b);
    for _ in 0..4 {
        assert!(acquire(&b));
    }
    assert!(!acquire(&b));
    assert!(!acquire(&b));
}

#[test]
fn should_open_after_failure_rate_threshold_exceeded() {
    let (b, _) = breaker();
    let mut events = b.subscribe();
    assert_eq!(b.state(), State::Closed);
    assert_reset(&b);
    on_error(&b, FAST);
    assert_eq!(b.state(), State::Closed);
    assert_metrics(&b, -1.0, 0, 1, 1, 0);
    on_error(&b, FAST);
    assert_metrics(&b, -1.0, 0, 2, 2, 0);
    on_error(&b, FAST);
    assert_metrics(&b, -1.0, 0, 3, 3, 0);
    on_success(&b, FAST);
    assert_eq!(b.state(), State::Closed);
    assert_metrics(&b, -1.0, 1, 4, 3, 0);
    on_success(&b, FAST);
    // The window is full and the failure rate above 50 %.
    assert_eq!(b.state(), State::Open);
    let m = b.metrics();
    assert_eq!((m.calls, m.failures, m.failure_rate), (5, 3, 60.0));
    assert_metrics(&b, 60.0, 2, 5, 3, 0);
    let opened = std::iter::from_fn(|| events.try_recv().ok())
        .filter(|e| {
            matches!(
                e,
                BreakerEvent::Transition {
                    to: State::Open,
                    ..
                }
            )
        })
        .count();
    assert_eq!(opened, 1);
    assert!(!acquire(&b));
    assert_metrics(&b, 60.0, 2, 5, 3, 1);
}

#[test]
fn should_open_after_slow_call_rate_threshold_exceeded() {
    let (b, _) = breaker();
    assert_reset(&b);
    let slow = Duration::from_secs(5);
    on_error(&b, slow);
    assert_eq!(b.state(), State::Closed);
    on_success(&b, slow);
    assert_eq!(b.state(), State::Closed);
    on_error(&b, Duration::from_millis(100));
    assert_eq!(b.state(), State::Closed);
    on_success(&b, Duration::from_millis(100));
    assert_eq!(b.state(), State::Closed);
    on_success(&b, slow);
    // Slow calls 3 of 5 (a slow failure is slow too): 60 %.
    assert_eq!(b.state(), State::Open);
    let m = b.metrics();
    assert_eq!((m.calls, m.slow_calls, m.slow_call_rate), (5, 3, 60.0));
}

#[test]
fn should_transition_to_half_open_after_wait_duration() {
    let (b, clock) = breaker();
    b.transition_to_open();
    assert_reset(&b);
    assert_eq!(b.state(), State::Open);
    assert!(!acquire(&b));
    clock.increment(Duration::from_secs(3));
    assert_eq!(b.state(), State::Open, "the 5 s wait has not elapsed");
    assert!(!acquire(&b));
    assert_metrics(&b, -1.0, 0, 0, 0, 2);
    clock.increment(Duration::from_secs(3));
    assert!(acquire(&b));
    assert_eq!(b.state(), State::HalfOpen);
    assert_reset(&b);
}

#[test]
fn should_transition_to_half_open_after_wait_interval() {
    // ofExponentialBackoff(5000): 5 s, then 7.5 s (multiplier 1.5).
    let (b, clock) = breaker_with(
        BreakerConfig::default()
            .failure_rate_threshold(50.0)
            .window(WindowType::CountBased(5))
            .half_open_permits(4)
            .wait(WaitStrategy::Backoff {
                initial: Duration::from_secs(5),
                multiplier: 1.5,
                max: Duration::from_secs(3_600),
            }),
    );
    b.transition_to_open();
    assert_reset(&b);
    assert!(!acquire(&b));
    clock.increment(Duration::from_secs(3));
    assert_eq!(b.state(), State::Open);
    assert!(!acquire(&b));
    assert_metrics(&b, -1.0, 0, 0, 0, 2);
    clock.increment(Duration::from_secs(3));
    assert!(acquire(&b));
    assert_eq!(b.state(), State::HalfOpen);
    assert_reset(&b);

    b.transition_to_open();
    clock.increment(Duration::from_secs(6));
    assert_eq!(b.state(), State::Open, "the second wait is 7.5 s");
    assert!(!acquire(&b));
    clock.increment(Duration::from_secs(5));
    assert!(acquire(&b));
    assert_eq!(b.state(), State::HalfOpen);
    assert_reset(&b);
}

#[test]
fn should_transition_back_to_open_state_when_failure_rate_is_above_threshold() {
    let (b, _) = breaker();
    half_open(&b);
    assert_reset(&b);
    on_error(&b, FAST);
    on_error(&b, FAST);
    on_success(&b, FAST);
    on_error(&b, FAST);
    assert_eq!(b.state(), State::Open);
    // The half-open window that reopened it: 75 %, 1 success, 4 buffered, 3 failed.
    assert_metrics(&b, 75.0, 1, 4, 3, 0);
}

#[test]
fn should_transition_back_to_open_state_when_slow_call_rate_is_above_threshold() {
    let (b, _) = breaker();
    half_open(&b);
    for _ in 0..3 {
        on_success(&b, Duration::from_secs(5));
    }
    on_success(&b, Duration::from_secs(1));
    assert_eq!(b.state(), State::Open);
    let m = b.metrics();
    assert_eq!(m.slow_calls, 3);
    assert_eq!(m.slow_call_rate, 75.0);
    assert_eq!(m.failure_rate, 0.0);
}

#[test]
fn should_transition_back_to_closed_state_when_failure_is_below_threshold() {
    let (b, _) = breaker();
    half_open(&b);
    assert_reset(&b);
    on_error(&b, FAST);
    on_success(&b, FAST);
    on_success(&b, FAST);
    on_success(&b, FAST);
    assert!(acquire(&b));
    assert_eq!(b.state(), State::Closed);
    assert_reset(&b);
    on_success(&b, FAST);
    assert_metrics(&b, -1.0, 1, 1, 0, 0);
}

#[test]
fn should_reset_metrics() {
    let (b, _) = breaker();
    assert_eq!(b.state(), State::Closed);
    assert_reset(&b);
    on_success(&b, FAST);
    on_error(&b, FAST);
    assert_metrics(&b, -1.0, 1, 2, 1, 0);
    b.reset();
    assert_reset(&b);
}

#[test]
fn should_disable_circuit_breaker() {
    let (b, _) = breaker();
    b.disable();
    assert_eq!(b.state(), State::Disabled);
    assert_reset(&b);
    on_success(&b, FAST);
    for _ in 0..4 {
        on_error(&b, FAST);
    }
    assert_reset(&b);
}

#[test]
fn should_force_open_circuit_breaker() {
    let (b, clock) = breaker();
    b.force_open();
    assert_eq!(b.state(), State::ForcedOpen);
    assert!(!acquire(&b));
    clock.increment(Duration::from_secs(6));
    assert!(!acquire(&b));
    assert_eq!(b.state(), State::ForcedOpen, "no half-open after the wait");
    assert_metrics(&b, -1.0, 0, 0, 0, 2);
}

#[test]
fn should_force_close_circuit_breaker() {
    // FORCED_CLOSE is METRICS_ONLY here: always admits, records, never opens.
    let (b, _) = breaker();
    b.metrics_only();
    assert_eq!(b.state(), State::MetricsOnly);
    on_success(&b, Duration::from_secs(1));
    on_error(&b, Duration::from_secs(1));
    assert_eq!(b.state(), State::MetricsOnly);
    let m = b.metrics();
    assert_eq!((m.failures, m.successful_calls), (1, 1));
}

#[test]
fn should_release_permission_when_exception_ignored() {
    let (b, _) = breaker();
    half_open(&b);
    on_success(&b, FAST);
    assert_eq!(b.state(), State::HalfOpen);
    assert_metrics(&b, -1.0, 1, 1, 0, 0);
    on_success(&b, FAST);
    assert_metrics(&b, -1.0, 2, 2, 0, 0);
    on_success(&b, FAST);
    assert_eq!(b.state(), State::HalfOpen);
    assert_metrics(&b, -1.0, 3, 3, 0, 0);
    on_ignored(&b);
    assert_eq!(b.state(), State::HalfOpen);
    assert_metrics(&b, -1.0, 3, 3, 0, 0);
    on_error(&b, FAST);
    assert_eq!(b.state(), State::Closed);
    assert_reset(&b);
}

#[test]
fn should_ignore_exceptions_and_then_transition_to_closed() {
    let (b, _) = breaker();
    half_open(&b);
    for _ in 0..4 {
        on_ignored(&b);
        assert_eq!(b.state(), State::HalfOpen);
    }
    assert_reset(&b);
    for _ in 0..3 {
        on_success(&b, FAST);
        assert_eq!(b.state(), State::HalfOpen);
    }
    assert_metrics(&b, -1.0, 3, 3, 0, 0);
    on_success(&b, FAST);
    assert_eq!(b.state(), State::Closed);
    assert_reset(&b);
}

#[test]
fn should_not_allow_transition_from_closed_to_half_open() {
    let (b, _) = breaker();
    let e = b.transition_to_half_open().unwrap_err();
    assert_eq!(
        e.to_string(),
        "circuit breaker 'testName' cannot go from closed to half_open"
    );
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn should_not_allow_transition_from_closed_to_closed() {
    // Deliberate difference: `reset()` from CLOSED is allowed and clears the window.
    let (b, _) = breaker();
    on_success(&b, FAST);
    let mut events = b.subscribe();
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_reset(&b);
    assert!(events.try_recv().is_err(), "no transition was reported");
}

#[test]
fn should_reset_to_closed_state() {
    let (b, _) = breaker();
    b.transition_to_open();
    b.reset();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn should_reset_closed_state() {
    let (b, _) = breaker();
    on_success(&b, FAST);
    on_success(&b, FAST);
    assert_eq!(b.metrics().successful_calls, 2);
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().successful_calls, 0);
}

#[test]
fn should_reset_metrics_after_metrics_only_state_transition() {
    let (b, _) = breaker();
    on_success(&b, FAST);
    on_success(&b, FAST);
    assert_eq!(b.metrics().successful_calls, 2);
    b.metrics_only();
    assert_eq!(b.state(), State::MetricsOnly);
    assert_eq!(b.metrics().successful_calls, 0);
}

#[test]
fn should_record_metrics_in_metrics_only_state() {
    let (b, _) = breaker();
    b.metrics_only();
    assert!(acquire(&b));
    assert_eq!(b.state(), State::MetricsOnly);
    assert_reset(&b);
    let mut events = b.subscribe();
    on_error(&b, FAST);
    assert_metrics(&b, -1.0, 0, 1, 1, 0);
    on_error(&b, FAST);
    assert_metrics(&b, -1.0, 0, 2, 2, 0);
    on_error(&b, FAST);
    assert_metrics(&b, -1.0, 0, 3, 3, 0);
    on_success(&b, FAST);
    assert_metrics(&b, -1.0, 1, 4, 3, 0);
    on_success(&b, FAST);
    assert_eq!(b.state(), State::MetricsOnly);
    assert_metrics(&b, 60.0, 2, 5, 3, 0);
    on_error(&b, FAST);
    assert_eq!(b.state(), State::MetricsOnly);
    let transitions = std::iter::from_fn(|| events.try_recv().ok())
        .filter(|e| matches!(e, BreakerEvent::Transition { .. }))
        .count();
    assert_eq!(transitions, 0);
}

/// Beyond the scenarios: a count window smaller than `minimum_calls` still opens (resilience4j
/// caps the minimum at the window size).
#[test]
fn minimum_calls_is_capped_by_a_count_window() {
    let (b, _) = breaker_with(
        BreakerConfig::default()
            .window(WindowType::CountBased(5))
            .failure_rate_threshold(50.0),
    );
    for _ in 0..5 {
        on_error(&b, FAST);
    }
    assert_eq!(
        b.state(),
        State::Open,
        "minimum 100 capped at the window of 5"
    );
}
