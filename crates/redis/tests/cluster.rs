//! nilecare-redis against a real 3-master Redis Cluster.

use std::collections::HashSet;
use std::time::Duration;

use fred::prelude::*;
use nilecare_redis::{
    KeyPrefix, RedisConfig, Script, Topology, connect, delete_matching, follow_migration, key_slot,
    ping,
};
use nilecare_test_support::{RedisCluster, Reply};

async fn pool(cluster: &RedisCluster) -> fred::clients::Pool {
    let config = RedisConfig::from_url(&cluster.url())
        .expect("cluster URL parses")
        .with_pool_size(2)
        .with_command_timeout(Duration::from_secs(2));
    assert_eq!(config.topology(), Topology::Cluster);
    connect(&config).await.expect("cluster connects")
}

const SWAP: &str = r"
    redis.call('SET', KEYS[1], ARGV[1])
    redis.call('SET', KEYS[2], ARGV[2])
    return redis.call('MGET', KEYS[1], KEYS[2])";

#[tokio::test]
async fn scripts_with_hash_tagged_keys_run_on_every_node_and_survive_flush() {
    let cluster = RedisCluster::start(3);
    let pool = pool(&cluster).await;
    ping(&pool).await.unwrap();
    let script = Script::new(SWAP);
    let root = KeyPrefix::default().segment("test");

    // Pick tags until the scripts have run on all three masters.
    let mut nodes_used = HashSet::new();
    for i in 0..200 {
        let tagged = root.tagged(&format!("user:{i}"));
        let (a, b) = (tagged.key("a"), tagged.key("b"));
        assert_eq!(key_slot(&a), key_slot(&b));
        let got: Vec<String> = script
            .run(&pool, vec![a.clone(), b], vec!["x", "y"])
            .await
            .unwrap();
        assert_eq!(got, vec!["x", "y"]);
        let node = cluster.node_index_for_slot(key_slot(&a));
        assert_eq!(
            cluster.nodes()[node]
                .command(&["GET", a.as_str()])
                .as_text()
                .as_deref(),
            Some("x"),
            "key not on the owning node"
        );
        nodes_used.insert(node);
        if nodes_used.len() == 3 {
            break;
        }
    }
    assert_eq!(nodes_used.len(), 3);

    for node in cluster.nodes() {
        assert_eq!(
            node.command(&["SCRIPT", "FLUSH"]),
            Reply::Status("OK".into())
        );
    }
    for i in 0..30 {
        let tagged = root.tagged(&format!("user:{i}"));
        let got: Vec<String> = script
            .run(
                &pool,
                vec![tagged.key("a"), tagged.key("b")],
                vec!["p", "q"],
            )
            .await
            .unwrap();
        assert_eq!(got, vec!["p", "q"]);
    }
}

#[tokio::test]
async fn delete_matching_scans_every_primary() {
    let cluster = RedisCluster::start(3);
    let pool = pool(&cluster).await;
    let p = KeyPrefix::default().segment("bulk");
    for i in 0..300 {
        let _: () = pool
            .set(p.key(&format!("k{i}")), i, None, None, false)
            .await
            .unwrap();
    }
    let _: () = pool.set("keep-me", 1, None, None, false).await.unwrap();
    let per_node: Vec<i64> = cluster
        .nodes()
        .iter()
        .map(|n| n.command(&["DBSIZE"]).as_integer().unwrap())
        .collect();
    assert!(
        per_node.iter().all(|&n| n > 0),
        "keys not spread: {per_node:?}"
    );

    let n = delete_matching(&pool, &p.pattern_all()).await.unwrap();
    assert_eq!(n, 300);
    let total: i64 = cluster
        .nodes()
        .iter()
        .map(|n| n.command(&["DBSIZE"]).as_integer().unwrap())
        .sum();
    assert_eq!(total, 1);
}

/// A slot moved to another primary while no command runs (IMPORTING / MIGRATING, keys moved,
/// SETSLOT NODE on the target first): commands on its keys, through `follow_migration`, reach
/// the new owner (fred re-reads the slot map on the `MOVED`; the command is sent again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_follow_a_slot_moved_between_primaries() {
    let mut cluster = RedisCluster::start(3);
    let pool = pool(&cluster).await;
    let keys: Vec<String> = (0..20).map(|i| format!("{{ward-3}}:k{i}")).collect();
    for key in &keys {
        let _: () = pool.set(key, "v0", None, None, false).await.unwrap();
    }
    let slot = key_slot(&keys[0]);
    let to = (cluster.range_of_slot(slot) + 1) % 3;
    cluster.migrate_slot(slot, to, Duration::ZERO);
    let owner = &cluster.nodes()[cluster.node_index_for_slot(slot)];
    assert_eq!(
        owner.command(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        Reply::Integer(20)
    );
    for key in &keys {
        let got = pool.get(key).await;
        let v: String = follow_migration(&pool, got, key.as_bytes(), "GET", || vec![key.into()])
            .await
            .unwrap();
        assert_eq!(v, "v0", "{key} after the move");
        let set = pool.set(key, "v1", None, None, false).await;
        let () = follow_migration(&pool, set, key.as_bytes(), "SET", || {
            vec![key.into(), "v1".into()]
        })
        .await
        .unwrap();
    }
    assert_eq!(
        owner.command(&["GET", &keys[0]]).as_text().as_deref(),
        Some("v1"),
        "written on the new owner"
    );
}
