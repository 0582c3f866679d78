#![allow(clippy::unwrap_used)]
//! Commands under load while a hash slot migrates between primaries of a real cluster
//! (`SETSLOT IMPORTING/MIGRATING`, `MIGRATE` in batches, `SETSLOT NODE`): keys already moved
//! answer `ASK`, then `MOVED` once the move completes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::Pool;
use fred::prelude::*;
use nilecare_redis::{RedisConfig, Script, connect, follow_migration, key_slot};
use nilecare_test_support::RedisCluster;

async fn pool(cluster: &RedisCluster) -> Pool {
    let config = RedisConfig::from_url(&cluster.url())
        .unwrap()
        .with_pool_size(2)
        .with_command_timeout(Duration::from_secs(2));
    connect(&config).await.unwrap()
}

const SET_AND_GET: &str = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])";

/// What the load saw: answers that were not the key's own value, and errors.
#[derive(Default)]
struct Seen {
    wrong: Mutex<Vec<String>>,
    errors: Mutex<Vec<String>>,
    ok: AtomicU64,
}

impl Seen {
    fn check(&self, key: &str, answer: Result<Option<String>, String>) {
        match answer {
            Ok(Some(v)) if v != key => self.wrong.lock().unwrap().push(format!("{key} got {v}")),
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.errors.lock().unwrap().push(format!("{key}: {e}")),
        }
    }
}

/// Each key holds its own name: a `SET`, a `GET` or a script on it, all through
/// `follow_migration` / `Script::run`.
async fn one_call(pool: &Pool, key: &str, turn: usize) -> Result<Option<String>, String> {
    match turn % 3 {
        0 => {
            let set = pool.set::<(), _, _>(key, key, None, None, false).await;
            follow_migration(pool, set, key.as_bytes(), "SET", || {
                vec![key.into(), key.into()]
            })
            .await
            .map(|()| None)
            .map_err(|e| e.to_string())
        }
        1 => {
            let got = pool.get::<Option<String>, _>(key).await;
            follow_migration(pool, got, key.as_bytes(), "GET", || vec![key.into()])
                .await
                .map_err(|e| e.to_string())
        }
        _ => Script::new(SET_AND_GET)
            .run::<Option<String>, _, _, _>(pool, key, key)
            .await
            .map_err(|e| e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_a_migrating_slot_succeed_under_load_with_their_own_answers() {
    let cluster = RedisCluster::start(3);
    let pool = pool(&cluster).await;
    let moving: Vec<String> = (0..40).map(|i| format!("{{ward-3}}:k{i}")).collect();
    let slot = key_slot(&moving[0]);
    let to = (cluster.range_of_slot(slot) + 1) % 3;
    // Keys that stay on the importing node: their connection also carries the `ASKING`s.
    let staying: Vec<String> = (0..10_000)
        .map(|i| format!("{{bed-{i}}}:x"))
        .filter(|k| cluster.range_of_slot(key_slot(k)) == to)
        .take(40)
        .collect();
    for key in moving.iter().chain(&staying) {
        let _: () = pool
            .set(key, key.as_str(), None, None, false)
            .await
            .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let mut load = Vec::new();
    for task in 0..8 {
        let keys = if task < 6 {
            moving.clone()
        } else {
            staying.clone()
        };
        let (pool, stop, seen) = (pool.clone(), stop.clone(), seen.clone());
        load.push(tokio::spawn(async move {
            let mut turn = task;
            while !stop.load(Ordering::Relaxed) {
                let key = &keys[turn % keys.len()];
                seen.check(key, one_call(&pool, key, turn).await);
                turn += 7;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = seen.ok.load(Ordering::Relaxed);
    let cluster = cluster
        .migrate_slot_in_background(slot, to, Duration::from_millis(50))
        .await
        .unwrap();
    let during = seen.ok.load(Ordering::Relaxed) - before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    assert_eq!(
        *seen.wrong.lock().unwrap(),
        Vec::<String>::new(),
        "answers of other commands"
    );
    assert_eq!(
        *seen.errors.lock().unwrap(),
        Vec::<String>::new(),
        "errors surfaced"
    );
    assert!(
        during > 100,
        "the load ran across the migration ({during} calls)"
    );
    let owner = &cluster.nodes()[cluster.node_index_for_slot(slot)];
    assert_eq!(
        owner.command(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        nilecare_test_support::Reply::Integer(40),
        "every key moved to the new owner"
    );
    for key in &moving {
        let got = pool.get::<Option<String>, _>(key.as_str()).await;
        let got = follow_migration(&pool, got, key.as_bytes(), "GET", || {
            vec![key.as_str().into()]
        });
        assert_eq!(got.await.unwrap().as_deref(), Some(key.as_str()));
    }
}
