//! Balancer distributions: exact round-robin cycle, weighted proportions (and their smooth
//! spread), random coverage, least-connections preferring the idle instance, and only Up
//! instances ever picked.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::HashMap;

use nilecare_service_discovery::{Balancer, ServiceInstance, Status, Strategy};

fn instance(id: &str, weight: u32) -> ServiceInstance {
    ServiceInstance::new("patients", id, format!("http://{id}:8080"))
        .unwrap()
        .with_weight(weight)
        .unwrap()
}

fn picks(balancer: &Balancer, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| balancer.select().unwrap().id().to_owned())
        .collect()
}

fn counts(ids: &[String]) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for id in ids {
        *c.entry(id.clone()).or_default() += 1;
    }
    c
}

#[test]
fn round_robin_cycles_exactly_and_skips_instances_that_are_not_up() {
    let b = Balancer::new(
        Strategy::RoundRobin,
        [
            instance("a", 1),
            instance("b", 1).with_status(Status::Draining),
            instance("c", 1),
            instance("d", 1).with_status(Status::Down),
        ],
    );
    let ids = picks(&b, 6);
    let pairs: Vec<&str> = ids.iter().map(String::as_str).collect();
    // a and c alternate; b and d never come
    assert!(pairs.iter().all(|id| *id == "a" || *id == "c"), "{pairs:?}");
    assert_eq!(
        counts(&ids),
        HashMap::from([("a".into(), 3), ("c".into(), 3)])
    );
}

#[test]
fn weighted_round_robin_is_proportional_and_smooth() {
    let b = Balancer::new(
        Strategy::WeightedRoundRobin,
        [instance("a", 5), instance("b", 1), instance("c", 1)],
    );
    // The promise: nginx's smooth sequence, entered at an offset that depends on the calling
    // thread (threads start apart so concurrent callers do not pick in lockstep): any 7
    // consecutive picks of one thread are a rotation of "aabacaa".
    let seven = picks(&b, 7).join("");
    assert!(
        format!("{seven}{seven}").contains("aabacaa"),
        "{seven} is not a rotation of nginx's smooth sequence aabacaa"
    );
    let c = counts(&picks(&b, 10_000));
    let share = |id: &str| c[id] as f64 / 10_000.0;
    assert!((share("a") - 5.0 / 7.0).abs() < 0.01, "{c:?}");
    assert!((share("b") - 1.0 / 7.0).abs() < 0.01, "{c:?}");
}

#[test]
fn random_reaches_every_up_instance_evenly() {
    let b = Balancer::new(
        Strategy::Random,
        [
            instance("a", 1),
            instance("b", 1),
            instance("c", 1),
            instance("x", 1).with_status(Status::Down),
        ],
    );
    let c = counts(&picks(&b, 9_000));
    assert!(!c.contains_key("x"));
    for id in ["a", "b", "c"] {
        assert!((2_500..=3_500).contains(&c[id]), "{c:?}");
    }
}

#[test]
fn least_connections_prefers_the_idle_instance() {
    let b = Balancer::new(
        Strategy::LeastConnections,
        [instance("busy", 1), instance("idle", 1)],
    );
    // hold 50 calls on "busy" (picks of "idle" are dropped, i.e. finish, at once)
    let held: Vec<_> = std::iter::repeat_with(|| b.select().unwrap())
        .filter(|g| g.id() == "busy")
        .take(50)
        .collect();
    assert!(held.iter().all(|g| g.in_flight() == 50));
    // two random choices differ half the time, and then "idle" wins: about 75 %
    let c = counts(&picks(&b, 2_000));
    let idle = c.get("idle").copied().unwrap_or(0);
    assert!(
        (1_350..=1_650).contains(&idle),
        "P2C should favour the idle instance: {c:?}"
    );
    drop(held);
    let g = b.select().unwrap();
    assert_eq!(g.in_flight(), 1, "guards release their count on drop");
}

#[test]
fn nothing_up_means_no_pick() {
    for strategy in [
        Strategy::RoundRobin,
        Strategy::WeightedRoundRobin,
        Strategy::Random,
        Strategy::LeastConnections,
    ] {
        let down = Balancer::new(strategy, [instance("a", 1).with_status(Status::Down)]);
        assert!(down.select().is_none(), "{strategy:?}");
        let empty = Balancer::new(strategy, []);
        assert!(empty.select().is_none(), "{strategy:?}");
    }
}

#[test]
fn large_weights_run_the_smooth_algorithm_live() {
    // weights summing beyond the precomputed schedule's bound (65 536)
    let b = Balancer::new(
        Strategy::WeightedRoundRobin,
        (0..7).map(|i| instance(&format!("i{i}"), 10_000 - i)),
    );
    let c = counts(&picks(&b, 40_000));
    let share = c["i0"] as f64 / 40_000.0;
    assert!((share - 10_000.0 / 69_979.0).abs() < 0.01, "{c:?}");
}

#[test]
fn peak_ewma_steers_away_from_a_slow_instance() {
    let b = Balancer::new(
        Strategy::PeakEwma,
        [instance("fast", 1), instance("slow", 1)],
    );
    // Teach the balancer: calls to "slow" take 20 ms, calls to "fast" return at once.
    for _ in 0..20 {
        let guard = b.select().unwrap();
        if guard.id() == "slow" {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let c = counts(&picks(&b, 2000));
    // Two random candidates: whenever they differ, "fast" wins (about 3 in 4 picks).
    assert!(c["fast"] > 1300, "{c:?}");
}

#[test]
fn round_robin_stays_exact_when_threads_pick_at_once() {
    let b = std::sync::Arc::new(Balancer::new(
        Strategy::RoundRobin,
        [
            instance("a", 1),
            instance("b", 1),
            instance("c", 1),
            instance("d", 1),
        ],
    ));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || picks(&b, 1000))
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        let mine = t.join().unwrap();
        // Each thread cycles through every instance in order.
        let c = counts(&mine);
        assert!(c.values().all(|n| *n == 250), "{c:?}");
        all.extend(mine);
    }
    assert!(counts(&all).values().all(|n| *n == 750));
}
