//! nilecare-redis against real redis-server processes.

use std::time::Duration;

use fred::prelude::*;
use nilecare_redis::{
    Error, KeyPrefix, ReconnectPolicy, RedisConfig, Script, connect, delete_matching, ping,
    scan_keys,
};
use nilecare_test_support::{RedisServer, Reply, eventually};

fn config(url: &str) -> RedisConfig {
    RedisConfig::from_url(url)
        .expect("test URL parses")
        .with_pool_size(2)
        .with_command_timeout(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_secs(2))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(10),
            Duration::from_millis(200),
        ))
}

const INCR_BOTH: &str = r"
    local a = redis.call('INCRBY', KEYS[1], ARGV[1])
    local b = redis.call('INCRBY', KEYS[2], ARGV[1])
    return a + b";

#[tokio::test]
async fn connects_pings_and_round_trips_a_value() {
    let server = RedisServer::start();
    let pool = connect(&config(&server.url())).await.unwrap();
    let latency = ping(&pool).await.unwrap();
    assert!(latency < Duration::from_millis(500), "{latency:?}");
    let _: () = pool.set("k", "v", None, None, false).await.unwrap();
    let v: String = pool.get("k").await.unwrap();
    assert_eq!(v, "v");
    // it really went to this server
    assert_eq!(
        server.command(&["GET", "k"]).as_text().as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn authenticates_with_the_url_password_and_never_echoes_it() {
    let server = RedisServer::builder().password("hunter2-secret").start();
    let pool = connect(&config(&server.url())).await.unwrap();
    ping(&pool).await.unwrap();

    let wrong = format!("redis://:wrong-secret@{}", server.addr());
    let err = connect(&config(&wrong)).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("wrong-secret"), "{shown}");
}

#[tokio::test]
async fn script_reloads_after_script_flush() {
    let server = RedisServer::start();
    let pool = connect(&config(&server.url())).await.unwrap();
    let script = Script::new(INCR_BOTH);
    let keys = KeyPrefix::default().segment("test").tagged("t");
    let ks = vec![keys.key("a"), keys.key("b")];

    let n: i64 = script.run(&pool, ks.clone(), 1).await.unwrap();
    assert_eq!(n, 2);

    assert_eq!(
        server.command(&["SCRIPT", "FLUSH"]),
        Reply::Status("OK".into())
    );
    // The flush really removed it: a bare EVALSHA now fails with NOSCRIPT.
    let bare: Result<i64, _> = pool.evalsha(script.sha1(), ks.clone(), 1).await;
    assert!(bare.unwrap_err().details().starts_with("NOSCRIPT"));

    let n: i64 = script.run(&pool, ks.clone(), 1).await.unwrap();
    assert_eq!(n, 4);
}

#[tokio::test]
async fn reconnects_after_restart_and_scripts_keep_working() {
    let mut server = RedisServer::start();
    let pool = connect(&config(&server.url())).await.unwrap();
    let script = Script::new(INCR_BOTH);
    let _: () = pool.set("before", 1, None, None, false).await.unwrap();
    let _: i64 = script.run(&pool, vec!["{s}a", "{s}b"], 1).await.unwrap();

    server.restart();

    let recovered = eventually(Duration::from_secs(5), || async {
        ping(&pool).await.is_ok()
    })
    .await;
    assert!(recovered, "pool did not reconnect within 5s");
    // Data is gone (it was a real restart) and the script cache too: run() must reload.
    let before: Option<i64> = pool.get("before").await.unwrap();
    assert_eq!(before, None);
    let n: i64 = script.run(&pool, vec!["{s}a", "{s}b"], 1).await.unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_paused_server_makes_commands_fail_within_the_timeout() {
    let server = RedisServer::start();
    let pool = connect(&config(&server.url())).await.unwrap();
    ping(&pool).await.unwrap();

    server.pause();
    // The outer bound only guards the test; the inner command timeout (500 ms) must fire first.
    let result = tokio::time::timeout(Duration::from_secs(5), pool.get::<Option<String>, _>("k"))
        .await
        .expect("command hung past the command timeout");
    let err = Error::from(result.unwrap_err());
    assert!(err.is_unavailable(), "expected a timeout, got {err}");
    let ping_err = tokio::time::timeout(Duration::from_secs(5), ping(&pool))
        .await
        .expect("ping hung")
        .unwrap_err();
    assert!(ping_err.is_unavailable(), "{ping_err}");

    server.resume();
    let recovered = eventually(Duration::from_secs(5), || async {
        ping(&pool).await.is_ok()
    })
    .await;
    assert!(recovered, "commands did not succeed again after resume");
}

#[tokio::test]
async fn fail_fast_rejects_a_dead_server_and_lazy_connect_recovers() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();

    let err = connect(&config(&url)).await.unwrap_err();
    assert!(
        err.is_unavailable() || matches!(err, Error::Redis(_)),
        "{err}"
    );

    // fail_fast = false: starts while Redis is down, works once it is back.
    let pool = connect(&config(&url).with_fail_fast(false)).await.unwrap();
    let down = tokio::time::timeout(Duration::from_secs(5), ping(&pool))
        .await
        .expect("ping hung while the server was down");
    assert!(down.is_err());
    server.restart();
    let recovered = eventually(Duration::from_secs(5), || async {
        ping(&pool).await.is_ok()
    })
    .await;
    assert!(recovered, "lazy pool never connected");
}

#[tokio::test]
async fn a_star_in_a_user_segment_cannot_match_other_keys() {
    let server = RedisServer::start();
    let pool = connect(&config(&server.url())).await.unwrap();
    let root = KeyPrefix::default().segment("t");
    for tenant in ["a*", "abc", "a", "a*b"] {
        let key = root.segment(tenant).key("1");
        let _: () = pool.set(key, tenant, None, None, false).await.unwrap();
    }
    let mut found = scan_keys(&pool, &root.segment("a*").pattern_all())
        .await
        .unwrap();
    found.sort();
    assert_eq!(found, vec!["nilecare:t:a*:1".to_owned()]);

    // `?` and `[...]` are literal too.
    let _: () = pool
        .set(root.segment("x?").key("1"), 1, None, None, false)
        .await
        .unwrap();
    let _: () = pool
        .set(root.segment("xy").key("1"), 1, None, None, false)
        .await
        .unwrap();
    let found = scan_keys(&pool, &root.segment("x?").pattern_all())
        .await
        .unwrap();
    assert_eq!(found, vec!["nilecare:t:x?:1".to_owned()]);

    // Deleting tenant `a*` leaves every other tenant alone.
    let n = delete_matching(&pool, &root.segment("a*").pattern_all())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let left = scan_keys(&pool, &root.pattern_all()).await.unwrap();
    assert_eq!(left.len(), 5, "{left:?}");
}

#[tokio::test]
async fn delete_matching_removes_every_match_in_batches() {
    let server = RedisServer::start();
    let pool = connect(&config(&server.url())).await.unwrap();
    let p = KeyPrefix::default().segment("bulk");
    let pairs: Vec<(String, i64)> = (0..1_234).map(|i| (p.key(&format!("k{i}")), i)).collect();
    let _: () = pool.mset(pairs).await.unwrap();
    let _: () = pool.set("unrelated", 1, None, None, false).await.unwrap();

    let n = delete_matching(&pool, &p.pattern_all()).await.unwrap();
    assert_eq!(n, 1_234);
    assert_eq!(server.command(&["DBSIZE"]).as_integer(), Some(1));
}
