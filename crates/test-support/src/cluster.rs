//! [`RedisCluster`]: a real local Redis Cluster of `redis-server` processes, optionally with
//! replicas, and the failover of a primary.

use std::thread;
use std::time::{Duration, Instant};

use crate::resp::Reply;
use crate::server::RedisServer;

/// Number of hash slots in Redis Cluster.
const SLOTS: u16 = 16_384;

/// A real Redis Cluster on 127.0.0.1: `masters` primaries, the slots split evenly between them,
/// optionally `replicas` replicas of each, ready when every node reports `cluster_state:ok` and
/// every replica's link to its primary is up. Nodes time out after 2 s (`cluster-node-timeout`),
/// so a killed primary's replica takes over within a few seconds
/// ([`fail_over`](Self::fail_over)).
///
/// ```no_run
/// let cluster = nilecare_test_support::RedisCluster::start(3);
/// let url = cluster.url(); // redis-cluster://127.0.0.1:p1?node=127.0.0.1:p2&node=127.0.0.1:p3
///
/// let mut replicated = nilecare_test_support::RedisCluster::start_with_replicas(3, 1);
/// let took = replicated.fail_over(0); // kill the primary of the first slot range
/// # let _ = (url, took);
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    /// Primaries first (in slot order), then the replicas of range 0, range 1, ...
    nodes: Vec<RedisServer>,
    /// `ranges[i]` = the slots of range `i` (inclusive).
    ranges: Vec<(u16, u16)>,
    /// `owners[i]` = the node now serving range `i`.
    owners: Vec<usize>,
    /// `replicas[i]` = the nodes replicating range `i` (a promoted one leaves the list).
    replicas: Vec<Vec<usize>>,
    /// Slots moved out of their range by [`migrate_slot`](Self::migrate_slot): slot → node.
    moved: Vec<(u16, usize)>,
}

/// A slot being moved between primaries ([`RedisCluster::begin_slot_migration`]).
#[derive(Debug, Clone)]
pub struct SlotMigration {
    slot: u16,
    source: usize,
    target: usize,
    target_id: String,
}

impl RedisCluster {
    /// Starts `masters` primaries, no replicas, and forms the cluster.
    ///
    /// # Panics
    /// When `masters < 3` (Redis Cluster needs three primaries for a quorum), when
    /// `redis-server` is missing, or when the cluster does not become healthy within 30 s.
    pub fn start(masters: usize) -> Self {
        Self::start_with_replicas(masters, 0)
    }

    /// Starts `masters` primaries with `replicas` replicas each and forms the cluster.
    ///
    /// # Panics
    /// As [`start`](Self::start), and when a replica does not sync with its primary in 30 s.
    pub fn start_with_replicas(masters: usize, replicas: usize) -> Self {
        assert!(
            masters >= 3,
            "a Redis Cluster needs at least 3 masters, got {masters}"
        );
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| RedisServer::builder().cluster_node().start())
            .collect();

        let per_node = SLOTS as usize / masters;
        let mut ranges = Vec::with_capacity(masters);
        for (i, node) in nodes[..masters].iter().enumerate() {
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
        let mut cluster = RedisCluster {
            owners: (0..masters).collect(),
            replicas: vec![Vec::new(); masters],
            nodes,
            ranges,
            moved: Vec::new(),
        };
        if replicas > 0 {
            cluster.attach_replicas(masters, replicas);
        }
        cluster.wait_until_healthy(Duration::from_secs(30));
        cluster
    }

    /// `CLUSTER REPLICATE` each replica once every node knows its primary.
    fn attach_replicas(&mut self, masters: usize, replicas: usize) {
        let ids: Vec<String> = self.nodes[..masters]
            .iter()
            .map(|n| {
                n.command(&["CLUSTER", "MYID"])
                    .as_text()
                    .expect("CLUSTER MYID")
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        for (range, id) in ids.iter().enumerate() {
            for k in 0..replicas {
                let index = masters + range * replicas + k;
                // The replica must have learned the primary's id through gossip first.
                loop {
                    let reply = self.nodes[index].command(&["CLUSTER", "REPLICATE", id]);
                    if reply == Reply::Status("OK".into()) {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "CLUSTER REPLICATE never succeeded: {reply:?}"
                    );
                    thread::sleep(Duration::from_millis(50));
                }
                self.replicas[range].push(index);
            }
        }
    }

    /// `redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&node=...` with every node (the form
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

    /// The nodes: the primaries in slot order, then the replicas.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, mutable (to kill, restart or pause one).
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Index of the node now serving `slot` (after a failover, the promoted replica).
    pub fn node_index_for_slot(&self, slot: u16) -> usize {
        match self.moved.iter().find(|(s, _)| *s == slot) {
            Some(&(_, node)) => node,
            None => self.owners[self.range_of_slot(slot)],
        }
    }

    /// Starts moving `slot` to the primary of range `to` as `redis-cli --cluster reshard`
    /// does: `IMPORTING` on the target, `MIGRATING` on the source. From now on clients asking
    /// the source for a key already moved get `ASK` to the target; keys stay where they are
    /// until [`migrate_keys`](Self::migrate_keys) moves them.
    ///
    /// # Panics
    /// When a node refuses a step.
    pub fn begin_slot_migration(&self, slot: u16, to: usize) -> SlotMigration {
        let source = self.node_index_for_slot(slot);
        let target = self.owners[to];
        assert_ne!(
            source, target,
            "slot {slot} is already served by range {to}"
        );
        let id = |node: usize| {
            self.nodes[node]
                .command(&["CLUSTER", "MYID"])
                .as_text()
                .expect("CLUSTER MYID")
        };
        let (source_id, target_id) = (id(source), id(target));
        let slot_text = slot.to_string();
        expect_ok(
            self.nodes[target].command(&[
                "CLUSTER",
                "SETSLOT",
                &slot_text,
                "IMPORTING",
                &source_id,
            ]),
            "SETSLOT IMPORTING",
        );
        expect_ok(
            self.nodes[source].command(&[
                "CLUSTER",
                "SETSLOT",
                &slot_text,
                "MIGRATING",
                &target_id,
            ]),
            "SETSLOT MIGRATING",
        );
        SlotMigration {
            slot,
            source,
            target,
            target_id,
        }
    }

    /// Moves up to `batch` keys of the migrating slot (`MIGRATE ... KEYS`); returns how many
    /// moved (0 when none is left on the source).
    ///
    /// # Panics
    /// When `MIGRATE` fails.
    pub fn migrate_keys(&self, migration: &SlotMigration, batch: usize) -> usize {
        let source = &self.nodes[migration.source];
        let keys = match source.command(&[
            "CLUSTER",
            "GETKEYSINSLOT",
            &migration.slot.to_string(),
            &batch.to_string(),
        ]) {
            Reply::Array(Some(keys)) => keys
                .iter()
                .filter_map(|k| match k {
                    Reply::Bulk(Some(bytes)) => Some(bytes.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            other => panic!("CLUSTER GETKEYSINSLOT: {other:?}"),
        };
        if keys.is_empty() {
            return 0;
        }
        let port = self.nodes[migration.target].port().to_string();
        let mut args: Vec<Vec<u8>> = ["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        args.extend(keys.iter().cloned());
        let reply = source.command(&args);
        assert!(
            matches!(reply, Reply::Status(ref s) if s == "OK" || s == "NOKEY"),
            "MIGRATE: {reply:?}"
        );
        keys.len()
    }

    /// Ends the migration: the slot belongs to the target on every primary
    /// (`SETSLOT ... NODE`), so clients get `MOVED` from now on.
    ///
    /// # Panics
    /// When keys are left on the source or a node refuses.
    pub fn finish_slot_migration(&mut self, migration: SlotMigration) {
        assert_eq!(
            self.migrate_keys(&migration, 1),
            0,
            "keys are left on the source: call migrate_keys until it returns 0"
        );
        let slot_text = migration.slot.to_string();
        // The target first, then the source, then the others (as `redis-cli --cluster` does):
        // a source that says MOVED before the target owns the slot would send clients back
        // and forth.
        let mut order = vec![migration.target, migration.source];
        order.extend(
            self.owners
                .iter()
                .copied()
                .filter(|n| *n != migration.target && *n != migration.source),
        );
        for node in order {
            let reply = self.nodes[node].command(&[
                "CLUSTER",
                "SETSLOT",
                &slot_text,
                "NODE",
                &migration.target_id,
            ]);
            expect_ok(reply, "SETSLOT NODE");
        }
        self.moved.retain(|(s, _)| *s != migration.slot);
        self.moved.push((migration.slot, migration.target));
    }

    /// Moves `slot` to the primary of range `to`, keys included, pausing `pause` between
    /// batches of 10 keys (so a test's load runs across the migration).
    pub fn migrate_slot(&mut self, slot: u16, to: usize, pause: Duration) {
        let migration = self.begin_slot_migration(slot, to);
        while self.migrate_keys(&migration, 10) > 0 {
            thread::sleep(pause);
        }
        self.finish_slot_migration(migration);
    }

    /// [`migrate_slot`](Self::migrate_slot) on a blocking thread, so a test's load keeps running
    /// on its runtime meanwhile; the handle gives the cluster back.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn migrate_slot_in_background(
        mut self,
        slot: u16,
        to: usize,
        pause: Duration,
    ) -> tokio::task::JoinHandle<Self> {
        tokio::task::spawn_blocking(move || {
            self.migrate_slot(slot, to, pause);
            self
        })
    }

    /// The slot range (as [`kill_primary`](Self::kill_primary) takes it) holding `slot`.
    ///
    /// # Panics
    /// When no range holds the slot.
    pub fn range_of_slot(&self, slot: u16) -> usize {
        self.ranges
            .iter()
            .position(|&(first, last)| (first..=last).contains(&slot))
            .unwrap_or_else(|| panic!("slot {slot} is not assigned"))
    }

    /// Kills the primary serving slot range `range` (SIGKILL) and waits until one of its
    /// replicas has been promoted and every remaining node reports `cluster_state:ok`; returns
    /// how long that took. [`node_index_for_slot`](Self::node_index_for_slot) then names the
    /// promoted node. The same as [`kill_primary`](Self::kill_primary) followed by
    /// [`await_promotion`](Self::await_promotion).
    ///
    /// # Panics
    /// When the range has no replica left, or the failover does not complete within 30 s.
    pub fn fail_over(&mut self, range: usize) -> Duration {
        let killed = self.kill_primary(range);
        self.await_promotion(range, killed);
        killed.elapsed()
    }

    /// Kills the primary serving slot range `range` (SIGKILL) and returns at once with the
    /// moment of the kill; [`await_promotion`](Self::await_promotion) then waits for its
    /// replica. Split from [`fail_over`](Self::fail_over) so a test can measure what clients
    /// see from the kill on, in the same thread.
    ///
    /// # Panics
    /// When the range has no replica to promote.
    pub fn kill_primary(&mut self, range: usize) -> Instant {
        assert!(
            !self.replicas[range].is_empty(),
            "slot range {range} has no replica to promote"
        );
        let old = self.owners[range];
        self.nodes[old].kill();
        Instant::now()
    }

    /// Waits until a replica of `range` has been promoted (after
    /// [`kill_primary`](Self::kill_primary) at `killed`) and the cluster is healthy again;
    /// returns how long after the kill the promotion completed.
    ///
    /// # Panics
    /// When that does not happen within 30 s of the kill.
    pub fn await_promotion(&mut self, range: usize, killed: Instant) -> Duration {
        let deadline = killed + Duration::from_secs(30);
        let promoted = loop {
            let promoted = self.replicas[range].iter().copied().find(|&r| {
                self.nodes[r]
                    .try_command(&["ROLE"])
                    .ok()
                    .is_some_and(|reply| role_is_master(&reply))
            });
            if let Some(p) = promoted {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "no replica of range {range} was promoted within 30 s"
            );
            thread::sleep(Duration::from_millis(50));
        };
        self.owners[range] = promoted;
        self.replicas[range].retain(|&r| r != promoted);
        self.wait_until_healthy(deadline.saturating_duration_since(Instant::now()));
        killed.elapsed()
    }

    /// [`await_promotion`](Self::await_promotion) on a blocking thread, so a test keeps calling
    /// meanwhile; the handle gives the cluster back with the time the promotion took.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn await_promotion_in_background(
        mut self,
        range: usize,
        killed: Instant,
    ) -> tokio::task::JoinHandle<(Self, Duration)> {
        tokio::task::spawn_blocking(move || {
            let took = self.await_promotion(range, killed);
            (self, took)
        })
    }

    /// Waits until every running node says `cluster_state:ok`, knows all the others and every
    /// replica's link to its primary is up.
    ///
    /// # Panics
    /// When that does not happen within `timeout`.
    pub fn wait_until_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let want_known = format!("cluster_known_nodes:{}", self.nodes.len());
        let live: Vec<usize> = self
            .owners
            .iter()
            .copied()
            .chain(self.replicas.iter().flatten().copied())
            .collect();
        loop {
            let infos: Vec<String> = live
                .iter()
                .map(|&i| {
                    self.nodes[i]
                        .try_command(&["CLUSTER", "INFO"])
                        .ok()
                        .and_then(|r| r.as_text())
                        .unwrap_or_default()
                })
                .collect();
            let clustered = infos.iter().all(|info| {
                info.contains("cluster_state:ok")
                    && info.contains(&want_known)
                    && info.contains("cluster_slots_ok:16384")
            });
            let synced = self.replicas.iter().flatten().all(|&r| {
                self.nodes[r]
                    .try_command(&["INFO", "replication"])
                    .ok()
                    .and_then(|reply| reply.as_text())
                    .is_some_and(|info| info.contains("master_link_status:up"))
            });
            if clustered && synced {
                return;
            }
            if Instant::now() >= deadline {
                panic!("cluster not healthy after {timeout:?}: {infos:#?}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a `ROLE` reply starts with `master`.
fn role_is_master(reply: &Reply) -> bool {
    match reply {
        Reply::Array(Some(items)) => items
            .first()
            .and_then(Reply::as_text)
            .is_some_and(|role| role == "master"),
        _ => false,
    }
}

fn expect_ok(reply: Reply, what: &str) {
    assert_eq!(reply, Reply::Status("OK".into()), "{what} failed");
}
