//! The state machine against a mock clock.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use nilecare_circuit_breaker::Breaker as _;
use nilecare_circuit_breaker::{
    BreakerConfig, BreakerError, BreakerEvent, CircuitBreaker, Clock, Error, Outcome, State,
    WaitStrategy, WindowType,
};

fn breaker(config: BreakerConfig) -> (CircuitBreaker, Arc<quanta::Mock>) {
    let (clock, mock): (Clock, _) = Clock::mock();
    mock.increment(Duration::from_secs(1_000));
    (
        CircuitBreaker::with_clock("dep", config, clock).unwrap(),
        mock,
    )
}

fn small(window: u32, min: u32, percent: f64) -> BreakerConfig {
    BreakerConfig::default()
        .window(WindowType::CountBased(window))
        .minimum_calls(min)
        .failure_rate_threshold(percent)
        .wait(WaitStrategy::Fixed(Duration::from_secs(10)))
        .half_open_permits(2)
}

fn outcome(b: &CircuitBreaker, failure: bool) {
    let p = b.try_acquire().unwrap();
    if failure { p.failure() } else { p.success() }
}

#[test]
fn opens_exactly_at_the_threshold_after_minimum_calls() {
    let (b, _) = breaker(small(4, 4, 50.0));
    outcome(&b, true);
    outcome(&b, true);
    outcome(&b, true);
    assert_eq!(b.state(), State::Closed, "below minimum calls");
    outcome(&b, false); // 3 of 4 = 75 %
    assert_eq!(b.state(), State::Open);

    let (b, _) = breaker(small(4, 4, 50.0));
    for f in [true, false, false, false] {
        outcome(&b, f); // 25 %
    }
    assert_eq!(b.state(), State::Closed);
    outcome(&b, true); // window now: F F? no - last 4: false,false,false,true = 25 %
    assert_eq!(b.state(), State::Closed);
    outcome(&b, true); // last 4: false,false,true,true = 50 % exactly
    assert_eq!(b.state(), State::Open, "50 % must open at a 50 % threshold");
}

#[test]
fn slow_successes_open_on_the_slow_call_rate() {
    let (b, mock) = breaker(small(4, 4, 100.0).slow_calls(Duration::from_millis(100), 50.0));
    for slow in [false, true, false, true] {
        let p = b.try_acquire().unwrap();
        mock.increment(Duration::from_millis(if slow { 150 } else { 10 }));
        p.success();
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.metrics().slow_calls,
        2,
        "the snapshot shows the window that opened it"
    );
}

#[test]
fn time_window_forgets_old_failures() {
    let (b, mock) = breaker(small(1, 3, 50.0).window(WindowType::TimeBased(10)));
    outcome(&b, true);
    outcome(&b, true);
    mock.increment(Duration::from_secs(11));
    outcome(&b, true);
    outcome(&b, false);
    outcome(&b, false);
    assert_eq!(
        b.state(),
        State::Closed,
        "old failures still counted: {:?}",
        b.metrics()
    );
    outcome(&b, true); // 2 of 4 in the window
    assert_eq!(b.state(), State::Open);
}

#[test]
fn open_rejects_with_retry_after_then_half_opens_and_closes() {
    let (b, mock) = breaker(small(2, 2, 50.0));
    outcome(&b, true);
    outcome(&b, true);
    let r = b.try_acquire().unwrap_err();
    assert_eq!(r.state, State::Open);
    assert_eq!(r.retry_after, Some(Duration::from_secs(10)));
    mock.increment(Duration::from_secs(4));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after,
        Some(Duration::from_secs(6))
    );
    mock.increment(Duration::from_secs(6));
    assert_eq!(b.state(), State::HalfOpen);
    outcome(&b, false);
    assert_eq!(b.state(), State::HalfOpen, "one probe of two");
    outcome(&b, false);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn failing_probes_reopen_with_backoff() {
    let (b, mock) = breaker(small(2, 2, 50.0).wait(WaitStrategy::Backoff {
        initial: Duration::from_secs(10),
        multiplier: 2.0,
        max: Duration::from_secs(25),
    }));
    outcome(&b, true);
    outcome(&b, true);
    for expected in [20, 25, 25] {
        mock.increment(Duration::from_secs(30));
        assert_eq!(b.state(), State::HalfOpen);
        outcome(&b, true);
        outcome(&b, false);
        assert_eq!(b.state(), State::Open);
        assert_eq!(
            b.try_acquire().unwrap_err().retry_after,
            Some(Duration::from_secs(expected))
        );
    }
}

#[test]
fn half_open_admits_exactly_the_permits_among_100_concurrent_callers() {
    let (b, mock) = breaker(small(2, 2, 50.0).half_open_permits(3));
    outcome(&b, true);
    outcome(&b, true);
    mock.increment(Duration::from_secs(10));
    let permits: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100).map(|_| s.spawn(|| b.try_acquire())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let admitted: Vec<_> = permits.into_iter().filter_map(Result::ok).collect();
    assert_eq!(admitted.len(), 3, "never more probes than permitted");
    // A cancelled probe (dropped unreported) gives its slot back.
    let mut admitted = admitted;
    drop(admitted.pop());
    let again = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    for p in admitted {
        p.success();
    }
    again.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn half_open_gives_up_after_its_maximum_wait() {
    let (b, mock) = breaker(small(2, 2, 50.0).max_wait_in_half_open(Duration::from_secs(5)));
    outcome(&b, true);
    outcome(&b, true);
    mock.increment(Duration::from_secs(10));
    let probe = b.try_acquire().unwrap();
    mock.increment(Duration::from_secs(6));
    assert_eq!(b.state(), State::Open);
    probe.success(); // a late probe from the old round changes nothing
    assert_eq!(b.state(), State::Open);
}

#[test]
fn stale_permits_do_not_count_in_a_new_window() {
    let (b, _) = breaker(small(2, 2, 50.0));
    let old = b.try_acquire().unwrap();
    b.force_open();
    b.reset();
    old.failure();
    assert_eq!(b.metrics().calls, 0);
}

#[test]
fn forced_disabled_and_metrics_only() {
    let (b, _) = breaker(small(2, 2, 50.0));
    b.force_open();
    let r = b.try_acquire().unwrap_err();
    assert_eq!((r.state, r.retry_after), (State::ForcedOpen, None));
    b.disable();
    for _ in 0..10 {
        outcome(&b, true);
    }
    assert_eq!(b.state(), State::Disabled);
    assert_eq!(b.metrics().calls, 0, "disabled records nothing");
    b.metrics_only();
    for _ in 0..10 {
        outcome(&b, true);
    }
    assert_eq!(b.state(), State::MetricsOnly, "metrics-only never opens");
    assert_eq!(b.metrics().failures, 2);
    b.reset();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn each_transition_is_reported_exactly_once() {
    let (b, _) = breaker(small(40, 40, 50.0));
    let mut events = b.subscribe();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..20 {
                    if let Ok(p) = b.try_acquire() {
                        p.failure();
                    }
                }
            });
        }
    });
    let mut transitions = 0;
    let mut failures = 0;
    loop {
        let e = match events.try_recv() {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
            Err(e) => panic!("events lost: {e:?}"),
        };
        match e {
            BreakerEvent::Transition {
                from: State::Closed,
                to: State::Open,
                ..
            } => transitions += 1,
            BreakerEvent::Failure { .. } => failures += 1,
            _ => {}
        }
    }
    assert_eq!(transitions, 1);
    assert!(failures >= 40);
    assert!(b.metrics().rejected > 0);
}

#[tokio::test]
async fn call_counts_timeouts_and_falls_back() {
    let b = CircuitBreaker::new(
        "slow-dep",
        small(2, 2, 50.0).call_timeout(Duration::from_millis(20)),
    )
    .unwrap();
    for _ in 0..2 {
        let r = b
            .call(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok::<_, ()>(())
            })
            .await;
        assert!(matches!(r, Err(BreakerError::Timeout(_))));
    }
    assert_eq!(b.state(), State::Open);
    let v = b
        .call_with_fallback(async { Ok::<_, String>("live") }, |e| async move {
            assert!(e.is_rejected());
            Ok("cached")
        })
        .await;
    assert_eq!(v, Ok("cached"));
    let ignored = b
        .call_classified(async { Err::<(), _>("404") }, |_| Outcome::Ignored)
        .await;
    assert!(ignored.unwrap_err().is_rejected());
}

#[test]
fn bad_config_names_the_field() {
    let cases = [
        (
            BreakerConfig::default().failure_rate_threshold(0.0),
            "failure_rate_threshold",
        ),
        (
            BreakerConfig::default().failure_rate_threshold(101.0),
            "failure_rate_threshold",
        ),
        (
            BreakerConfig::default().window(WindowType::CountBased(0)),
            "window",
        ),
        (
            BreakerConfig::default().window(WindowType::TimeBased(0)),
            "window",
        ),
        (BreakerConfig::default().minimum_calls(0), "minimum_calls"),
        (
            BreakerConfig::default().half_open_permits(0),
            "half_open_permits",
        ),
        (
            BreakerConfig::default().wait(WaitStrategy::Fixed(Duration::ZERO)),
            "wait",
        ),
        (
            BreakerConfig::default().wait(WaitStrategy::Backoff {
                initial: Duration::from_secs(5),
                multiplier: 0.5,
                max: Duration::from_secs(10),
            }),
            "wait",
        ),
        (BreakerConfig::default().jitter(0.9), "jitter"),
        (
            BreakerConfig::default().call_timeout(Duration::ZERO),
            "call_timeout",
        ),
        (
            BreakerConfig::default().slow_calls(Duration::ZERO, 50.0),
            "slow_call_duration",
        ),
    ];
    for (config, field) in cases {
        match CircuitBreaker::new("x", config) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}
