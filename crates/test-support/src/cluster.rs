//! [`RedisCluster`]: a real local Redis Cluster of `redis-server` processes.

use std::thread;
use std::time::{Duration, Instant};

use crate::resp::Reply;
use crate::server::RedisServer;

/// Number of hash slots in Redis Cluster.
const SLOTS: u16 = 16_384;

/// A real Redis Cluster on 127.0.0.1: `masters` primaries (no replicas), the slots split evenly
/// between them, ready when every node reports `cluster_state:ok`.
///
/// ```no_run
/// let cluster = nilecare_test_support::RedisCluster::start(3);
/// let url = cluster.url(); // redis-cluster://127.0.0.1:p1?node=127.0.0.1:p2&node=127.0.0.1:p3
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// `ranges[i]` = the slots node `i` owns (inclusive).
    ranges: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts `masters` nodes and forms the cluster.
    ///
    /// # Panics
    /// When `masters < 3` (Redis Cluster needs three primaries for a quorum), when
    /// `redis-server` is missing, or when the cluster does not become healthy within 30 s.
    pub fn start(masters: usize) -> Self {
        assert!(
            masters >= 3,
            "a Redis Cluster needs at least 3 masters, got {masters}"
        );
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| RedisServer::builder().cluster_node().start())
            .collect();

        let per_node = SLOTS as usize / masters;
        let mut ranges = Vec::with_capacity(masters);
        for (i, node) in nodes.iter().enumerate() {
            let first = (i * per_node) as u16;
            let last = if i + 1 == masters {
                SLOTS - 1
            } else {
                ((i + 1) * per_node - 1) as u16
            };
            let mut args = vec!["CLUSTER".to_owned(), "ADDSLOTS".to_owned()];
            args.extend((first..=last).map(|s| s.to_string()));
            expect_ok(node.command(&args), "CLUSTER ADDSLOTS");
            ranges.push((first, last));
        }
        for other in &nodes[1..] {
            expect_ok(
                nodes[0].command(&["CLUSTER", "MEET", "127.0.0.1", &other.port().to_string()]),
                "CLUSTER MEET",
            );
        }
        let cluster = RedisCluster { nodes, ranges };
        cluster.wait_until_healthy(Duration::from_secs(30));
        cluster
    }

    /// `redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&node=...` (the form
    /// `nilecare_redis::RedisConfig::from_url` and fred accept).
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://{}", self.nodes[0].addr());
        for (i, node) in self.nodes[1..].iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str("node=");
            url.push_str(&node.addr());
        }
        url
    }

    /// The nodes, in slot order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, mutable (to kill, restart or pause one).
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Index of the node that owns `slot`.
    pub fn node_index_for_slot(&self, slot: u16) -> usize {
        self.ranges
            .iter()
            .position(|&(first, last)| (first..=last).contains(&slot))
            .unwrap_or_else(|| panic!("slot {slot} is not assigned"))
    }

    /// Waits until every node says `cluster_state:ok` and knows all the others.
    ///
    /// # Panics
    /// When that does not happen within `timeout`.
    pub fn wait_until_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let want_known = format!("cluster_known_nodes:{}", self.nodes.len());
        loop {
            let infos: Vec<String> = self
                .nodes
                .iter()
                .map(|n| {
                    n.try_command(&["CLUSTER", "INFO"])
                        .ok()
                        .and_then(|r| r.as_text())
                        .unwrap_or_default()
                })
                .collect();
            let healthy = infos.iter().all(|info| {
                info.contains("cluster_state:ok")
                    && info.contains(&want_known)
                    && info.contains("cluster_slots_ok:16384")
            });
            if healthy {
                return;
            }
            if Instant::now() >= deadline {
                panic!("cluster not healthy after {timeout:?}: {infos:#?}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn expect_ok(reply: Reply, what: &str) {
    assert_eq!(reply, Reply::Status("OK".into()), "{what} failed");
}
