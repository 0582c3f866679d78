//! RedisStore specifics against a real server: raw bytes in Redis, corrupt values, faults.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use nilecare_cache::{Cache, Compression, RedisStore};
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
use nilecare_test_support::{RedisServer, Reply, eventually};

async fn redis_cache(server: &RedisServer) -> Cache<RedisStore> {
    let config = RedisConfig::from_url(&server.url())
        .expect("url")
        .with_command_timeout(Duration::from_millis(500))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
    let pool = connect(&config).await.expect("connect");
    Cache::builder()
        .name("faults")
        .jitter(0.0)
        .compression(Compression::gzip().threshold(1024))
        .build(RedisStore::new(pool))
        .expect("cache")
}

fn raw(server: &RedisServer, key: &str) -> Vec<u8> {
    match server.command(&["GET", key]) {
        Reply::Bulk(Some(bytes)) => bytes,
        other => panic!("no value under {key}: {other:?}"),
    }
}

#[tokio::test]
async fn values_above_the_threshold_are_stored_gzip_compressed() {
    let server = RedisServer::start();
    let cache = redis_cache(&server).await;
    let big: Vec<String> = (0..200)
        .map(|i| format!("allergy note {i}: penicillin"))
        .collect();
    cache.set("records:1", &big, None).await.unwrap();
    cache.set("records:2", &"small", None).await.unwrap();

    let stored = raw(&server, &cache.full_key("records:1").unwrap());
    assert_eq!(stored[0], nilecare_cache::FORMAT_VERSION);
    assert_eq!(stored[1] & 0b100, 0b100, "gzip flag not set");
    assert_eq!(&stored[2..4], &[0x1f, 0x8b], "payload is not gzip");
    let json_len = serde_json::to_vec(&big).unwrap().len();
    assert!(
        stored.len() < json_len / 4,
        "{} vs {json_len}",
        stored.len()
    );
    assert_eq!(cache.get::<Vec<String>>("records:1").await, Some(big));

    let stored = raw(&server, &cache.full_key("records:2").unwrap());
    assert_eq!(
        stored,
        b"\x01\x00\"small\"".to_vec(),
        "small values stay plain JSON"
    );
}

#[tokio::test]
async fn corrupt_values_in_redis_are_misses_and_counted() {
    let server = RedisServer::start();
    let cache = redis_cache(&server).await;
    cache
        .set("records:ok", &"x".repeat(5_000), None)
        .await
        .unwrap();
    let good = raw(&server, &cache.full_key("records:ok").unwrap());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\xff\xfe not ours".to_vec()),
        ("foreign json", b"{\"written\":\"by another app\"}".to_vec()),
        ("truncated gzip", good[..good.len() / 2].to_vec()),
        ("wrong version", [&[9u8, 0][..], b"\"x\""].concat()),
        (
            "unknown flags",
            [&[1u8, 0b1000_0000][..], b"\"x\""].concat(),
        ),
        ("empty", Vec::new()),
    ];
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let key = format!("records:bad{i}");
        let full = cache.full_key(&key).unwrap();
        server.command(&[b"SET".as_slice(), full.as_bytes(), bytes.as_slice()]);
        let before = cache.stats();
        assert_eq!(cache.get::<String>(&key).await, None, "{what}");
        let after = cache.stats();
        assert_eq!(after.errors - before.errors, 1, "{what}: error not counted");
        assert_eq!(after.misses - before.misses, 1, "{what}: not a miss");
    }
    // the good value still reads
    assert_eq!(
        cache.get::<String>("records:ok").await.map(|s| s.len()),
        Some(5_000)
    );
}

#[tokio::test]
async fn a_killed_server_gives_fast_misses_and_write_errors_then_recovers() {
    let mut server = RedisServer::start();
    let cache = redis_cache(&server).await;
    cache.set("patients:1", &1, None).await.unwrap();

    server.kill();
    let started = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(5), cache.get::<u32>("patients:1"))
        .await
        .expect("get hung with the server down");
    assert_eq!(got, None);
    assert!(cache.stats().errors >= 1);
    let err = tokio::time::timeout(Duration::from_secs(5), cache.set("patients:2", &2, None))
        .await
        .expect("set hung with the server down")
        .unwrap_err();
    assert!(
        err.is_unavailable() || err.to_string().contains("redis"),
        "{err}"
    );
    let during_outage = started.elapsed();

    server.restart();
    let back = eventually(Duration::from_secs(5), || async {
        cache.set("patients:3", &3, None).await.is_ok()
    })
    .await;
    assert!(
        back,
        "cache did not recover after restart (outage calls took {during_outage:?})"
    );
    assert_eq!(cache.get::<u32>("patients:3").await, Some(3));
}

#[tokio::test]
async fn a_paused_server_cannot_stall_reads() {
    let server = RedisServer::start();
    let cache = redis_cache(&server).await;
    cache.set("patients:1", &1, None).await.unwrap();
    server.pause();
    // The read timeout is 50 ms; the outer bound only keeps a broken build from hanging.
    let got = tokio::time::timeout(Duration::from_secs(2), cache.get::<u32>("patients:1"))
        .await
        .expect("get was stalled by a paused server");
    assert_eq!(got, None);
    let err = cache.try_get::<u32>("patients:1").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    server.resume();
    let back = eventually(Duration::from_secs(5), || async {
        cache.get::<u32>("patients:1").await == Some(1)
    })
    .await;
    assert!(back);
}

#[tokio::test(flavor = "current_thread")]
async fn remote_operations_are_timed_per_operation_and_recorder() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let server = RedisServer::start();
    let cache = redis_cache(&server).await;
    let samples = |recorder: &DebuggingRecorder| {
        let mut by_operation = std::collections::BTreeMap::new();
        for (k, _, _, v) in recorder.snapshotter().snapshot().into_vec() {
            let k = k.key();
            if k.name() != "nilecare_cache_operation_duration_seconds" {
                continue;
            }
            assert!(
                k.labels()
                    .any(|l| l.key() == "cache" && l.value() == "faults"),
                "{k:?}"
            );
            let operation = k
                .labels()
                .find(|l| l.key() == "operation")
                .unwrap_or_else(|| panic!("{k:?}"));
            if let DebugValue::Histogram(s) = v {
                by_operation.insert(operation.value().to_owned(), s.len());
            }
        }
        by_operation
    };
    let first = DebuggingRecorder::new();
    {
        let _guard = metrics::set_default_local_recorder(&first);
        cache.set("k:1", &1u32, None).await.unwrap();
        let _ = cache.get::<u32>("k:1").await;
        let _ = cache.get::<u32>("k:2").await;
        cache.del("k:1").await.unwrap();
    }
    let second = DebuggingRecorder::new();
    {
        let _guard = metrics::set_default_local_recorder(&second);
        let _ = cache.get::<u32>("k:1").await;
    }
    let (first, second) = (samples(&first), samples(&second));
    assert_eq!(first.get("set"), Some(&1), "{first:?}");
    assert_eq!(first.get("get"), Some(&2), "{first:?}");
    assert_eq!(first.get("del"), Some(&1), "{first:?}");
    assert_eq!(second.get("get"), Some(&1), "{second:?}");
    assert_eq!(second.values().sum::<usize>(), 1, "{second:?}");
}
