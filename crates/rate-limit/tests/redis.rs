//! The Redis limiter against real servers: algorithms, all-or-nothing, distribution over several
//! instances (standalone and cluster), faults with the resilient limiter.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use support::{ALL, allowed};

use std::sync::Arc;
use std::time::{Duration, Instant};

use nilecare_rate_limit::{
    Algorithm, Error, OnRedisFailure, Policy, Quota, RateLimiter, RedisLimiter, ResilientLimiter,
};
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
use nilecare_test_support::{RedisCluster, RedisServer, Reply, eventually};

async fn redis_limiter(url: &str) -> RedisLimiter {
    let config = RedisConfig::from_url(url)
        .unwrap()
        .with_pool_size(2)
        .with_command_timeout(Duration::from_millis(500))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
    RedisLimiter::new(connect(&config).await.unwrap())
        .with_timeout(Duration::from_millis(300))
        .unwrap()
}

/// Where the state of `stored` (a stored key) under `p` lives, as the README documents it:
/// `nilecare:rl:{<key>}:<policy>:<algorithm>`.
fn state_key(p: &Policy, a: Algorithm, stored: &str) -> String {
    let code = match a {
        Algorithm::FixedWindow => "fw",
        Algorithm::SlidingWindow => "sw",
        Algorithm::SlidingLog => "log",
        Algorithm::TokenBucket => "tb",
        Algorithm::Gcra => "gcra",
    };
    nilecare_redis::KeyPrefix::default()
        .segment("rl")
        .tagged_key(stored, &format!("{}:{code}", p.name()))
}

/// Sleeps until 5 ms after the next full second of the server's clock (`TIME`), so that a burst
/// of checks stays inside one 1-second window.
async fn align_to_window(server: &RedisServer) {
    let micros = match server.command(&["TIME"]) {
        nilecare_test_support::Reply::Array(Some(parts)) => parts[1]
            .as_text()
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0),
        other => panic!("TIME answered {other:?}"),
    };
    tokio::time::sleep(Duration::from_micros(1_005_000 - micros)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_holds_its_limit_and_refills() {
    let server = Arc::new(RedisServer::start());
    let l = redis_limiter(&server.url()).await;
    let tasks: Vec<_> = ALL
        .into_iter()
        .map(|a| {
            let (l, server) = (l.clone(), server.clone());
            tokio::spawn(async move {
                let p = Policy::new(format!("p-{}", a.as_str()), Quota::per_second(10).unwrap())
                    .unwrap()
                    .algorithm(a);
                // Token bucket and GCRA refill continuously (one unit per 100 ms): a burst that
                // runs long may earn one more.
                let most = if matches!(a, Algorithm::TokenBucket | Algorithm::Gcra) {
                    11
                } else {
                    10
                };
                align_to_window(&server).await;
                let first = allowed(&l, &p, "k", 25).await;
                assert!((10..=most).contains(&first), "{a:?}: {first}");
                let d = l.check(&p, "k", 1).await.unwrap();
                assert!(!d.allowed && d.remaining == 0, "{a:?}: {d:?}");
                assert!(
                    d.retry_after.expect("retry_after") <= Duration::from_secs(2),
                    "{a:?}: {d:?}"
                );
                // Denied requests consumed nothing: two windows later everything is back.
                tokio::time::sleep(Duration::from_secs(2)).await;
                align_to_window(&server).await;
                let again = allowed(&l, &p, "k", 25).await;
                assert!((10..=most).contains(&again), "{a:?} after refill: {again}");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // TTLs on every key: nothing lingers without expiry.
    let keys = nilecare_redis::scan_keys(l.pool(), "nilecare:rl:*")
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        let ttl = server
            .command(&["PTTL", key.as_str()])
            .as_integer()
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

#[tokio::test]
async fn check_many_peek_refund_reset_penalty_and_shadow() {
    let server = RedisServer::start();
    check_many_peek_refund_reset_penalty_and_shadow_on(&server.url()).await;
}

async fn check_many_peek_refund_reset_penalty_and_shadow_on(url: &str) {
    let l = redis_limiter(url).await;
    let wide = Policy::new("wide", Quota::per_minute(5).unwrap()).unwrap();
    let narrow = Policy::new("narrow", Quota::per_minute(2).unwrap())
        .unwrap()
        .algorithm(Algorithm::TokenBucket);
    for _ in 0..2 {
        let d = l
            .check_many(&[(&wide, "u", 1), (&narrow, "u", 1)])
            .await
            .unwrap();
        assert!(d.iter().all(|d| d.allowed), "{d:?}");
    }
    let d = l
        .check_many(&[(&wide, "u", 1), (&narrow, "u", 1)])
        .await
        .unwrap();
    assert!(d.iter().all(|d| !d.allowed), "{d:?}");
    assert_eq!(
        l.peek(&wide, "u").await.unwrap().remaining,
        3,
        "failed check_many consumed"
    );

    let log = Policy::new("log", Quota::per_minute(3).unwrap())
        .unwrap()
        .algorithm(Algorithm::SlidingLog);
    assert!(!l.consume(&log, "k", 4).await.unwrap().allowed);
    assert!(!l.check(&log, "k", 1).await.unwrap().allowed);
    l.refund(&log, "k", 2).await.unwrap();
    assert!(l.check(&log, "k", 1).await.unwrap().allowed);
    l.reset(&log, "k").await.unwrap();
    assert_eq!(allowed(&l, &log, "k", 5).await, 3);

    let login = Policy::new("login", Quota::per(Duration::from_millis(100), 1).unwrap())
        .unwrap()
        .block_for(Duration::from_secs(30));
    assert_eq!(allowed(&l, &login, "ip", 2).await, 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let d = l.check(&login, "ip", 1).await.unwrap();
    assert!(
        !d.allowed && d.retry_after.unwrap() > Duration::from_secs(20),
        "{d:?}"
    );

    let shadow = Policy::new("shadow", Quota::per_minute(1).unwrap())
        .unwrap()
        .shadow(true);
    assert!(l.check(&shadow, "k", 1).await.unwrap().allowed);
    let d = l.check(&shadow, "k", 1).await.unwrap();
    assert!(d.allowed && d.shadow_limited);
}

#[tokio::test]
async fn every_algorithm_peeks_consumes_refunds_and_resets() {
    let server = RedisServer::start();
    every_algorithm_peeks_consumes_refunds_and_resets_on(&server.url()).await;
}

/// The same scenarios on a real 3-primary cluster: each key's script runs on its slot's node
/// (every algorithm, fixed window included, peek/refund/reset, the penalty box, shadow mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_refund_reset_penalty_box_and_every_algorithm_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    check_many_peek_refund_reset_penalty_and_shadow_on(&cluster.url()).await;
    every_algorithm_peeks_consumes_refunds_and_resets_on(&cluster.url()).await;
}

async fn every_algorithm_peeks_consumes_refunds_and_resets_on(url: &str) {
    let l = redis_limiter(url).await;
    for a in ALL {
        // A day-long quota: nothing refills or rolls over while the test runs.
        let p = Policy::new(format!("p-{}", a.as_str()), Quota::per_day(3).unwrap())
            .unwrap()
            .algorithm(a);
        support::peek_consume_refund_reset(&l, &p).await;
    }
}

#[tokio::test]
async fn check_many_counts_the_same_key_twice() {
    let server = RedisServer::start();
    let l = redis_limiter(&server.url()).await;
    for a in ALL {
        let once = Policy::new(
            format!("once-{}", a.as_str()),
            Quota::per_minute(1).unwrap(),
        )
        .unwrap()
        .algorithm(a);
        let d = l
            .check_many(&[(&once, "k", 1), (&once, "k", 1)])
            .await
            .unwrap();
        assert!(d.iter().all(|d| !d.allowed), "{a:?}: {d:?}");
        assert!(l.check(&once, "k", 1).await.unwrap().allowed, "{a:?}");
        assert!(!l.check(&once, "k", 1).await.unwrap().allowed, "{a:?}");

        let three = Policy::new(
            format!("three-{}", a.as_str()),
            Quota::per_minute(3).unwrap(),
        )
        .unwrap()
        .algorithm(a);
        let d = l
            .check_many(&[(&three, "k", 1), (&three, "k", 2)])
            .await
            .unwrap();
        assert!(d.iter().all(|d| d.allowed), "{a:?}: {d:?}");
        assert_eq!(d[1].remaining, 0, "{a:?}: the second entry sees the first");
        assert!(
            !l.check(&three, "k", 1).await.unwrap().allowed,
            "{a:?}: both consumed"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn redis_checks_are_counted_and_timed_per_policy() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let server = RedisServer::start();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    for max_batch in [64, 1] {
        let l = redis_limiter(&server.url())
            .await
            .with_max_batch(max_batch)
            .unwrap();
        let p = Policy::new(format!("timed-{max_batch}"), Quota::per_minute(2).unwrap()).unwrap();
        assert_eq!(allowed(&l, &p, "k", 3).await, 2);
        let snapshot = snapshotter.snapshot().into_vec();
        let of_policy = |name: &str| {
            snapshot
                .iter()
                .filter(|(k, _, _, _)| {
                    k.key().name() == name
                        && k.key()
                            .labels()
                            .any(|l| l.key() == "policy" && l.value() == p.name())
                })
                .map(|(k, _, _, v)| {
                    (
                        k.key()
                            .labels()
                            .map(|l| l.value().to_owned())
                            .collect::<Vec<_>>(),
                        v,
                    )
                })
                .collect::<Vec<_>>()
        };
        let durations = of_policy("nilecare_ratelimit_check_duration_seconds");
        assert_eq!(durations.len(), 1, "{durations:?}");
        assert!(
            durations[0].0.contains(&"redis".to_owned()),
            "{durations:?}"
        );
        match &durations[0].1 {
            DebugValue::Histogram(samples) => {
                assert_eq!(samples.len(), 3, "one sample per check");
                assert!(
                    samples
                        .iter()
                        .all(|s| s.into_inner() > 0.0 && s.into_inner() < 1.0)
                );
            }
            other => panic!("not a histogram: {other:?}"),
        }
        let decisions = of_policy("nilecare_ratelimit_decisions_total");
        let count = |result: &str| {
            decisions
                .iter()
                .find(|(labels, _)| labels.contains(&result.to_owned()))
                .map(|(_, v)| *v)
        };
        assert_eq!(
            count("allowed"),
            Some(&DebugValue::Counter(2)),
            "{decisions:?}"
        );
        assert_eq!(
            count("limited"),
            Some(&DebugValue::Counter(1)),
            "{decisions:?}"
        );
    }
}

/// 4 limiters with their own pools hammer one key concurrently.
async fn distributed(url: &str) {
    let limiters: Vec<RedisLimiter> = futures_join(url).await;
    for (a, slack) in [
        (Algorithm::SlidingWindow, 0),
        (Algorithm::Gcra, 5),
        (Algorithm::TokenBucket, 5),
    ] {
        let p = Policy::new(
            format!("dist-{}", a.as_str()),
            Quota::per_minute(200).unwrap(),
        )
        .unwrap()
        .algorithm(a);
        let started = Instant::now();
        let tasks: Vec<_> = limiters
            .iter()
            .flat_map(|l| (0..4).map(move |_| l.clone()))
            .map(|l| {
                let p = p.clone();
                tokio::spawn(async move {
                    let mut ok = 0u64;
                    for _ in 0..40 {
                        ok += u64::from(l.check(&p, "hot", 1).await.unwrap().allowed);
                    }
                    ok
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        // 640 attempts; the quota is 200 plus what refills while the test runs (200/min).
        let refill = (started.elapsed().as_secs_f64() * 200.0 / 60.0).ceil() as u64;
        assert!(total >= 200, "{a:?}: only {total} allowed");
        assert!(
            total <= 200 + refill + slack,
            "{a:?}: {total} allowed, refill {refill}"
        );
    }
}

async fn futures_join(url: &str) -> Vec<RedisLimiter> {
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(redis_limiter(url).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_never_exceed_the_quota() {
    let server = RedisServer::start();
    distributed(&server.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_never_exceed_the_quota_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    distributed(&cluster.url()).await;
    let l = redis_limiter(&cluster.url()).await;
    let p = Policy::new("x", Quota::per_minute(5).unwrap()).unwrap();
    let cross = l.check_many(&[(&p, "a", 1), (&p, "b", 1)]).await;
    assert!(
        matches!(cross, Err(Error::InvalidInput { field: "key", .. })),
        "{cross:?}"
    );
    let same = l.check_many(&[(&p, "a", 1), (&p, "a", 1)]).await.unwrap();
    assert!(same.iter().all(|d| d.allowed));

    // Concurrent checks of keys on different slots: batches split per slot, each key exact.
    let log = Policy::new("log", Quota::per_minute(10).unwrap())
        .unwrap()
        .algorithm(Algorithm::SlidingLog);
    const CLIENTS: [&str; 12] = [
        "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11",
    ];
    let tasks: Vec<_> = CLIENTS
        .iter()
        .map(|k| spawn_checks(&l, &log, k, 15))
        .collect();
    for (key, t) in CLIENTS.iter().zip(tasks) {
        let allowed = decisions(t).await.iter().filter(|d| d.allowed).count();
        assert_eq!(allowed, 10, "key {key}");
    }
}

#[tokio::test]
async fn a_killed_redis_falls_back_locally_and_recovers() {
    let mut server = RedisServer::start();
    let l = ResilientLimiter::new(redis_limiter(&server.url()).await)
        .on_redis_failure(OnRedisFailure::Fallback { share: 0.5 })
        .unwrap();
    let p = Policy::new("api", Quota::per_minute(10).unwrap()).unwrap();
    assert!(!l.check(&p, "k", 1).await.unwrap().fallback);

    server.kill();
    let started = Instant::now();
    let mut local_allowed = 0;
    for _ in 0..20 {
        let d = tokio::time::timeout(Duration::from_secs(2), l.check(&p, "k", 1))
            .await
            .expect("a check hung while Redis was down")
            .unwrap();
        assert!(d.fallback, "{d:?}");
        local_allowed += usize::from(d.allowed);
    }
    assert_eq!(local_allowed, 5, "the local share is half of 10");
    // Only the first check waited for the timeout; the others skipped the dead Redis.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    server.restart();
    let back = eventually(Duration::from_secs(5), || async {
        l.check(&p, "fresh", 1).await.is_ok_and(|d| !d.fallback)
    })
    .await;
    assert!(back, "decisions never came back from Redis");
}

#[tokio::test]
async fn a_paused_redis_is_decided_within_the_timeout_and_fail_closed_denies() {
    let server = RedisServer::start();
    let redis = redis_limiter(&server.url()).await;
    let closed = ResilientLimiter::new(redis.clone())
        .on_redis_failure(OnRedisFailure::Closed)
        .unwrap();
    let open = ResilientLimiter::new(redis)
        .on_redis_failure(OnRedisFailure::Open)
        .unwrap();
    let p = Policy::new("api", Quota::per_minute(10).unwrap()).unwrap();
    server.pause();
    let started = Instant::now();
    let d = tokio::time::timeout(Duration::from_secs(3), closed.check(&p, "k", 1))
        .await
        .expect("hung on a paused server")
        .unwrap();
    assert!(d.fallback && !d.allowed);
    let d = open.check(&p, "k", 1).await.unwrap();
    assert!(d.fallback && d.allowed);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.resume();
}

#[tokio::test]
async fn blocked_keys_are_rejected_locally_without_a_round_trip() {
    let server = RedisServer::start();
    let l = ResilientLimiter::new(redis_limiter(&server.url()).await)
        .on_redis_failure(OnRedisFailure::Open)
        .unwrap();
    let p = Policy::new("api", Quota::per_minute(1).unwrap()).unwrap();
    assert!(l.check(&p, "k", 1).await.unwrap().allowed);
    assert!(!l.check(&p, "k", 1).await.unwrap().allowed);
    // With Redis frozen, a round trip would time out into the fail-open fallback (allowed).
    server.pause();
    let d = l.check(&p, "k", 1).await.unwrap();
    assert!(!d.allowed && !d.fallback, "not rejected locally: {d:?}");
    server.resume();
}

/// Spawns `n` concurrent checks of `key` and returns their decisions.
fn spawn_checks(
    l: &RedisLimiter,
    p: &Policy,
    key: &'static str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<nilecare_rate_limit::Decision>> {
    (0..n)
        .map(|_| {
            let (l, p) = (l.clone(), p.clone());
            tokio::spawn(async move { l.check(&p, key, 1).await.unwrap() })
        })
        .collect()
}

async fn decisions(
    tasks: Vec<tokio::task::JoinHandle<nilecare_rate_limit::Decision>>,
) -> Vec<nilecare_rate_limit::Decision> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_share_script_calls_and_decide_as_if_one_by_one() {
    let server = RedisServer::start();
    let l = redis_limiter(&server.url())
        .await
        .with_max_in_flight(1)
        .unwrap();
    // The sliding log never refills within the test: exactly `limit` checks pass.
    let hot = Policy::new("hot", Quota::per_minute(100).unwrap())
        .unwrap()
        .algorithm(Algorithm::SlidingLog);
    let cold = Policy::new("cold", Quota::per_minute(1000).unwrap())
        .unwrap()
        .algorithm(Algorithm::SlidingLog);
    assert!(l.check(&cold, "warm-up", 1).await.unwrap().allowed); // loads the script
    server.reset_stats();

    let hot_tasks = spawn_checks(&l, &hot, "h", 300);
    let cold_tasks = spawn_checks(&l, &cold, "c", 50);
    let hot = decisions(hot_tasks).await;
    let cold = decisions(cold_tasks).await;

    let calls = server.command_calls("evalsha");
    assert!(
        calls <= 350 / 4,
        "350 concurrent checks took {calls} script calls"
    );
    // A log is trimmed and counted once per key and call, however many checks of the call
    // share it (two keys here).
    for command in ["zremrangebyscore", "zcard"] {
        let n = server.command_calls(command);
        assert!(
            n <= 2 * calls,
            "{n} {command} for 350 checks of 2 keys in {calls} script calls"
        );
    }
    // Each allowed check saw the state its predecessors left: remaining 99, 98, …, 0 once each.
    let mut remaining: Vec<u64> = hot
        .iter()
        .filter(|d| d.allowed)
        .map(|d| d.remaining)
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..100).collect::<Vec<u64>>());
    assert!(
        hot.iter()
            .filter(|d| !d.allowed)
            .all(|d| d.retry_after.is_some())
    );
    // A denied check in the same call does not deny the others.
    assert!(cold.iter().all(|d| d.allowed), "{cold:?}");
    // Every allowed unit is one member of its log: none lost to a member named twice.
    for (p, key, units) in [("hot", "h", 100), ("cold", "c", 50)] {
        let p = Policy::new(p, Quota::per_minute(1).unwrap())
            .unwrap()
            .algorithm(Algorithm::SlidingLog);
        let log = state_key(&p, Algorithm::SlidingLog, key);
        assert_eq!(server.command(&["ZCARD", &log]).as_integer(), Some(units));
    }
}

/// Fills a sliding log with `units` members named as this crate names the next unit of every
/// microsecond in `[start + lead, start + lead + units)` (`<µs>:<units + 1>`), scored at `start`
/// (the script's own `TIME`). Returns `start`.
fn fill_log_with_next_names(server: &RedisServer, log: &str, lead: i64, units: i64) -> i64 {
    const FILL: &str = r"
        local t = redis.call('TIME')
        local start = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local lead, units = tonumber(ARGV[1]), tonumber(ARGV[2])
        for i = 0, units - 1, 500 do
          local args = { KEYS[1] }
          for u = i, math.min(units - 1, i + 499) do
            args[#args + 1] = start
            args[#args + 1] = string.format('%d:%d', start + lead + u, units + 1)
          end
          redis.call('ZADD', unpack(args))
        end
        return string.format('%d', start)";
    let (lead, units) = (lead.to_string(), units.to_string());
    let start = server.command(&["EVAL", FILL, "1", log, &lead, &units]);
    start.as_text().and_then(|s| s.parse().ok()).unwrap()
}

#[tokio::test]
async fn a_sliding_log_unit_named_like_an_existing_one_is_still_counted() {
    // A server clock that went back can give a unit the name of a member the log holds. The
    // test makes that happen: it names 100 000 members as the next unit of each microsecond of
    // a 100 ms window and checks inside that window (aiming again when the check lands outside).
    const UNITS: i64 = 100_000;
    let server = RedisServer::start();
    let l = redis_limiter(&server.url()).await;
    let p = Policy::new("log", Quota::per_minute(1_000_000).unwrap())
        .unwrap()
        .algorithm(Algorithm::SlidingLog);
    let log = state_key(&p, Algorithm::SlidingLog, "k");
    assert!(l.peek(&p, "k").await.unwrap().allowed); // loads the script
    let mut lead = 0;
    for _attempt in 0..10 {
        server.command(&["DEL", &log]);
        let start = fill_log_with_next_names(&server, &log, lead, UNITS);
        let d = l.check(&p, "k", 1).await.unwrap();
        assert!(d.allowed, "{d:?}");
        assert_eq!(
            server.command(&["ZCARD", &log]).as_integer(),
            Some(UNITS + 1),
            "the allowed unit is not in the log"
        );
        let newest = server.command(&["ZRANGE", &log, "-1", "-1", "WITHSCORES"]);
        let Reply::Array(Some(newest)) = newest else {
            panic!("{newest:?}")
        };
        let (name, at) = (newest[0].as_text().unwrap(), newest[1].as_text().unwrap());
        let at: i64 = at.parse().unwrap();
        if (start + lead..start + lead + UNITS).contains(&at) {
            // The unit's first name was taken: it is stored under another, and counted.
            assert_ne!(name, format!("{at}:{}", UNITS + 1));
            assert_eq!(d.remaining, 1_000_000 - UNITS as u64 - 1);
            let next = l.check(&p, "k", 1).await.unwrap();
            assert_eq!(next.remaining, 1_000_000 - UNITS as u64 - 2, "{next:?}");
            return;
        }
        // Aim the next window's middle where this check landed.
        lead = at - start - UNITS / 2;
    }
    panic!("no check landed inside the window of taken names in 10 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_call_writes_each_key_once_and_decides_as_if_one_by_one() {
    let server = RedisServer::start();
    let l = redis_limiter(&server.url())
        .await
        .with_max_in_flight(1)
        .unwrap();
    for a in [
        Algorithm::FixedWindow,
        Algorithm::SlidingWindow,
        Algorithm::TokenBucket,
        Algorithm::Gcra,
    ] {
        // A day-long quota: nothing refills or rolls over while the test runs.
        let p = Policy::new(format!("hot-{}", a.as_str()), Quota::per_day(100).unwrap())
            .unwrap()
            .algorithm(a);
        assert_eq!(l.peek(&p, "h").await.unwrap().remaining, 100); // loads the script
        server.reset_stats();
        let d = decisions(spawn_checks(&l, &p, "h", 300)).await;
        let (calls, sets) = (server.command_calls("evalsha"), server.command_calls("set"));
        let mut remaining: Vec<u64> = d
            .iter()
            .filter(|d| d.allowed)
            .map(|d| d.remaining)
            .collect();
        remaining.sort_unstable();
        assert_eq!(remaining, (0..100).collect::<Vec<u64>>(), "{a:?}");
        assert!(calls < 100, "{a:?}: 300 checks took {calls} script calls");
        assert!(
            (1..=calls).contains(&sets),
            "{a:?}: {sets} writes of one key in {calls} script calls"
        );
    }
}

#[tokio::test]
async fn a_state_it_did_not_write_reads_as_a_fresh_key() {
    let server = RedisServer::start();
    let l = redis_limiter(&server.url()).await;
    let nan = [0xffu8; 24]; // three NaN doubles
    for (i, garbage) in [&b"not a state"[..], &nan[..], &[0u8; 3][..]]
        .iter()
        .enumerate()
    {
        for a in [
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
            Algorithm::TokenBucket,
            Algorithm::Gcra,
        ] {
            let p = Policy::new(format!("p{i}-{}", a.as_str()), Quota::per_day(2).unwrap())
                .unwrap()
                .algorithm(a);
            let key = state_key(&p, a, "k");
            server.command(&[b"SET".as_slice(), key.as_bytes(), garbage]);
            l.refund(&p, "k", 1).await.unwrap();
            assert_eq!(allowed(&l, &p, "k", 3).await, 2, "{a:?} over {garbage:?}");
            assert_eq!(l.peek(&p, "k").await.unwrap().remaining, 0, "{a:?}");
        }
    }
}

/// Callers in a loop (check, then check again): the callers one script call answers are all in
/// the next call. One worker thread and one call in flight make the order of the runtime's
/// tasks the only variable: without the flush task's yield, the first caller the runtime runs
/// after a reply gets a call of its own, and the calls alternate between one check and the
/// rest (41-44 calls for 20 rounds here; 28 with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn callers_answered_together_are_checked_together_in_the_next_call() {
    const CALLERS: usize = 16;
    const ROUNDS: u64 = 20;
    let server = RedisServer::start();
    let l = Arc::new(
        redis_limiter(&server.url())
            .await
            .with_max_in_flight(1)
            .unwrap(),
    );
    let p = Policy::new("loop", Quota::per_minute(1_000_000).unwrap()).unwrap();
    assert!(l.check(&p, "warm-up", 1).await.unwrap().allowed); // loads the script
    server.reset_stats();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (l, p) = (l.clone(), p.clone());
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    assert!(l.check(&p, "client", 1).await.unwrap().allowed);
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    let calls = server.command_calls("evalsha");
    assert!(
        calls <= ROUNDS * 7 / 4,
        "{CALLERS} callers checking {ROUNDS} times each took {calls} script calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_one_sends_every_check_in_its_own_call() {
    let server = RedisServer::start();
    let l = redis_limiter(&server.url())
        .await
        .with_max_batch(1)
        .unwrap();
    let p = Policy::new("p", Quota::per_minute(1000).unwrap()).unwrap();
    assert!(l.check(&p, "warm-up", 1).await.unwrap().allowed);
    server.reset_stats();
    let all = decisions(spawn_checks(&l, &p, "k", 40)).await;
    assert!(all.iter().all(|d| d.allowed));
    assert_eq!(server.command_calls("evalsha"), 40);
    for bad in [0, 1025] {
        let e = redis_limiter(&server.url()).await.with_max_batch(bad);
        assert!(
            matches!(
                e,
                Err(Error::InvalidConfig {
                    field: "max_batch",
                    ..
                })
            ),
            "{e:?}"
        );
    }
    let e = redis_limiter(&server.url()).await.with_max_in_flight(0);
    assert!(
        matches!(
            e,
            Err(Error::InvalidConfig {
                field: "max_in_flight",
                ..
            })
        ),
        "{e:?}"
    );
}

/// The layer over a Redis limiter whose server is paused: fail open by default, 503 when told to
/// fail closed; both counted with `reason="unavailable"`.
#[cfg(feature = "axum")]
#[tokio::test(flavor = "current_thread")]
async fn layer_fails_open_or_closed_as_configured_when_redis_is_unavailable() {
    use axum::Router;
    use axum::routing::get;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use nilecare_rate_limit::{KeyExtractor, OnUnavailable, RateLimitLayer};
    use tower::ServiceExt;

    let server = RedisServer::start();
    let limiter = redis_limiter(&server.url()).await;
    let policy = Policy::new("api", Quota::per_minute(100).unwrap()).unwrap();
    let app = |on: OnUnavailable| {
        Router::new().route("/r", get(|| async { "ok" })).layer(
            RateLimitLayer::new(limiter.clone())
                .policy(policy.clone())
                .key(KeyExtractor::global())
                .on_unavailable(on),
        )
    };
    let call = |router: Router| async move {
        let req = http::Request::get("/r")
            .body(axum::body::Body::empty())
            .unwrap();
        router.oneshot(req).await.unwrap()
    };
    // Up: checked and counted.
    let r = call(app(OnUnavailable::Allow)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("ratelimit"));

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    server.pause();
    let open = call(app(OnUnavailable::Allow)).await;
    assert_eq!(open.status(), 200, "fail open lets the request through");
    assert!(
        !open.headers().contains_key("ratelimit"),
        "no decision, no state header"
    );
    let closed = call(app(OnUnavailable::Deny)).await;
    assert_eq!(closed.status(), 503, "fail closed refuses");
    assert_eq!(closed.headers()["retry-after"], "1");
    assert_eq!(closed.headers()["content-type"], "application/problem+json");
    server.resume();

    let snapshot = snapshotter.snapshot().into_vec();
    let counted = |action: &str| {
        snapshot
            .iter()
            .find(|(k, _, _, _)| {
                k.key().name() == "nilecare_ratelimit_layer_failures_total"
                    && k.key().labels().any(|l| l.value() == "unavailable")
                    && k.key().labels().any(|l| l.value() == action)
            })
            .map(|(_, _, _, v)| v)
    };
    assert_eq!(counted("allowed"), Some(&DebugValue::Counter(1)));
    assert_eq!(counted("denied"), Some(&DebugValue::Counter(1)));
}

/// A key longer than `MAX_KEY_LEN` is stored under its digest (the documented layout), limited
/// like any other on Redis, and reset and refunded through the same digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_key_is_stored_under_its_digest_and_limited() {
    let server = RedisServer::start();
    let l = redis_limiter(&server.url()).await;
    let long = "k".repeat(4_000);
    let digest = nilecare_rate_limit::stored_key(&long).unwrap().into_owned();
    assert!(digest.starts_with(nilecare_rate_limit::DIGEST_PREFIX));
    for a in ALL {
        let p = Policy::new(format!("long-{}", a.as_str()), Quota::per_day(2).unwrap())
            .unwrap()
            .algorithm(a);
        assert_eq!(allowed(&l, &p, &long, 4).await, 2, "{a:?}");
        let key = state_key(&p, a, &digest);
        assert_eq!(
            server.command(&["EXISTS", &key]),
            nilecare_test_support::Reply::Integer(1),
            "{a:?}: state under {key}"
        );
        l.refund(&p, &long, 1).await.unwrap();
        assert_eq!(
            allowed(&l, &p, &long, 2).await,
            1,
            "{a:?}: refunded through the digest"
        );
        l.reset(&p, &long).await.unwrap();
        assert_eq!(
            server.command(&["EXISTS", &key]),
            nilecare_test_support::Reply::Integer(0),
            "{a:?}: reset through the digest"
        );
    }
}

/// A key's slot moved between primaries while four instances check it with every algorithm
/// (keys already moved answer `ASK`, then `MOVED`): no check fails, and the tight policy's
/// state moves with its keys, so the limit holds across the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migrated_under_load_surfaces_no_error_and_keeps_the_limit() {
    let cluster = RedisCluster::start(3);
    let limiters = futures_join(&cluster.url()).await;
    let key = "clinic-7";
    let slot = nilecare_redis::key_slot(&format!("{{{key}}}"));
    let loose: Vec<Policy> = ALL
        .iter()
        .map(|a| {
            Policy::new(
                format!("loose-{}", a.as_str()),
                Quota::per_minute(1_000_000).unwrap(),
            )
            .unwrap()
            .algorithm(*a)
        })
        .collect();
    let tight = Policy::new("tight", Quota::per_minute(60).unwrap()).unwrap();
    assert!(limiters[0].check(&tight, key, 1).await.unwrap().allowed);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for (n, limiter) in limiters.iter().enumerate() {
        let (limiter, loose, tight, stop) =
            (limiter.clone(), loose.clone(), tight.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let (mut errors, mut checks, mut tight_allowed) = (Vec::new(), 0u64, 0u64);
            let mut turn = n;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let policy = if turn % 6 == 5 {
                    &tight
                } else {
                    &loose[turn % loose.len()]
                };
                match limiter.check(policy, key, 1).await {
                    Ok(d) if policy.name() == "tight" => tight_allowed += u64::from(d.allowed),
                    Ok(d) => assert!(d.allowed, "{}: denied under a loose quota", policy.name()),
                    Err(e) => errors.push(format!("{}: {e}", policy.name())),
                }
                checks += 1;
                turn += 1;
            }
            (errors, checks, tight_allowed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let to = (cluster.range_of_slot(slot) + 1) % 3;
    let cluster = cluster
        .migrate_slot_in_background(slot, to, Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut errors, mut checks, mut tight_allowed) = (Vec::new(), 0, 1);
    for task in load {
        let (e, c, t) = task.await.unwrap();
        errors.extend(e);
        checks += c;
        tight_allowed += t;
    }
    assert_eq!(errors, Vec::<String>::new());
    assert!(checks > 200, "the load ran ({checks} checks)");
    // 60 per minute: the test runs well under a minute, so the sliding window allows at most
    // 60 plus the little that slides out meanwhile (none within the first window).
    assert!(tight_allowed <= 61, "{tight_allowed} allowed of 60");
    let owner = &cluster.nodes()[cluster.node_index_for_slot(slot)];
    let moved = owner.command(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
    assert!(
        matches!(moved, nilecare_test_support::Reply::Integer(n) if n >= 6),
        "the limiter's keys are on the new owner: {moved:?}"
    );
}

/// A release changes the algorithm of a policy it keeps the name of: every algorithm after
/// every other on one key, on one Redis. Each starts afresh (its full quota) and none fails on
/// the state the previous one left (a sorted set for the sliding log, 24 bytes meaning
/// something else for the others).
#[tokio::test]
async fn a_policy_whose_algorithm_changes_starts_afresh_without_errors() {
    let server = RedisServer::start();
    let l = redis_limiter(&server.url()).await;
    for before in ALL {
        for after in ALL {
            if before == after {
                continue;
            }
            let name = format!("login-{}-{}", before.as_str(), after.as_str());
            let old = Policy::new(name.as_str(), Quota::per_hour(3).unwrap())
                .unwrap()
                .algorithm(before);
            assert_eq!(allowed(&l, &old, "user-7", 4).await, 3, "{before:?}");
            let new = old.clone().algorithm(after);
            for n in 0..3 {
                let d = l.check(&new, "user-7", 1).await;
                assert!(
                    matches!(d, Ok(ref d) if d.allowed),
                    "{before:?} then {after:?}, check {n}: {d:?}"
                );
            }
            assert!(!l.check(&new, "user-7", 1).await.unwrap().allowed);
        }
    }
}
