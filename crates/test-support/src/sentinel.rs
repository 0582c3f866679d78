//! [`RedisSentinel`]: a primary, a replica and three `redis-server --sentinel` processes on free
//! ports, with a helper to fail the primary over.

use std::thread;
use std::time::{Duration, Instant};

use crate::resp::Reply;
use crate::server::RedisServer;

/// The name the sentinels monitor the primary under (`sentinelServiceName`).
pub const SENTINEL_SERVICE: &str = "nilecare";

/// A Sentinel deployment: primary, one replica, three sentinels (quorum 2), with
/// `down-after-milliseconds` 1 000 and `failover-timeout` 5 000, so a killed primary is
/// replaced within a few seconds.
///
/// ```no_run
/// let mut sentinel = nilecare_test_support::RedisSentinel::start();
/// let url = sentinel.url(); // redis+sentinel://127.0.0.1:<s1>/0?sentinelServiceName=nilecare&node=...
/// let killed = sentinel.kill_primary();
/// let took = sentinel.await_promotion(killed);
/// # let _ = (url, took);
/// ```
#[derive(Debug)]
pub struct RedisSentinel {
    /// The data nodes; `primary` indexes the current primary.
    nodes: Vec<RedisServer>,
    primary: usize,
    sentinels: Vec<RedisServer>,
}

fn text(reply: &Reply) -> Option<String> {
    reply.as_text()
}

impl RedisSentinel {
    /// Starts the five processes and waits until every sentinel knows the replica and the
    /// other sentinels (only then can they agree on a failover).
    ///
    /// # Panics
    /// When a process does not come up or the sentinels do not discover each other in 30 s.
    pub fn start() -> Self {
        let primary = RedisServer::start();
        let replica = RedisServer::builder()
            .arg("--replicaof")
            .arg("127.0.0.1")
            .arg(primary.port().to_string())
            .start();
        let config = format!(
            "sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
             sentinel failover-timeout {SENTINEL_SERVICE} 5000\n\
             sentinel parallel-syncs {SENTINEL_SERVICE} 1\n",
            port = primary.port()
        );
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::builder()
                    .config_file(config.clone())
                    .arg("--sentinel")
                    .start()
            })
            .collect();
        let deployment = RedisSentinel {
            nodes: vec![primary, replica],
            primary: 0,
            sentinels,
        };
        deployment.wait_until_discovered(Duration::from_secs(30));
        deployment
    }

    fn wait_until_discovered(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = self.sentinels.iter().all(|s| {
                let count = |what: &str| match s.try_command(&["SENTINEL", what, SENTINEL_SERVICE])
                {
                    Ok(Reply::Array(Some(items))) => items.len(),
                    _ => 0,
                };
                count("replicas") >= 1 && count("sentinels") >= 2
            });
            let synced = self.nodes[1 - self.primary]
                .try_command(&["INFO", "replication"])
                .ok()
                .and_then(|r| text(&r))
                .is_some_and(|info| info.contains("master_link_status:up"));
            if ready && synced {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not discover the replica and each other within {timeout:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `redis+sentinel://` URL of the deployment (every sentinel listed).
    pub fn url(&self) -> String {
        let mut url = format!(
            "redis+sentinel://127.0.0.1:{}/0?sentinelServiceName={SENTINEL_SERVICE}",
            self.sentinels[0].port()
        );
        for s in &self.sentinels[1..] {
            url.push_str(&format!("&node=127.0.0.1:{}", s.port()));
        }
        url
    }

    /// The current primary.
    pub fn primary(&self) -> &RedisServer {
        &self.nodes[self.primary]
    }

    /// The current replica.
    pub fn replica(&self) -> &RedisServer {
        &self.nodes[1 - self.primary]
    }

    /// Waits until the replica has every write the primary took (the replication offsets
    /// match), so a failover loses nothing that was acknowledged before.
    ///
    /// # Panics
    /// When the replica does not catch up within 10 s.
    pub fn await_replication(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let offset = |server: &RedisServer, field: &str| {
            server
                .try_command(&["INFO", "replication"])
                .ok()
                .and_then(|r| text(&r))
                .and_then(|info| {
                    info.lines()
                        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_owned()))
                })
                .and_then(|v| v.parse::<u64>().ok())
        };
        loop {
            let primary = offset(self.primary(), "master_repl_offset:");
            let replica = offset(self.replica(), "slave_repl_offset:");
            if primary.is_some() && primary == replica {
                return;
            }
            assert!(Instant::now() < deadline, "the replica did not catch up");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the primary (SIGKILL); returns when. [`await_promotion`](Self::await_promotion)
    /// then waits for the sentinels to promote the replica.
    pub fn kill_primary(&mut self) -> Instant {
        self.nodes[self.primary].kill();
        Instant::now()
    }

    /// Waits until the sentinels name the replica as primary and it answers as one; returns
    /// how long after `killed` that was.
    ///
    /// # Panics
    /// When no promotion happens within 30 s of the kill.
    pub fn await_promotion(&mut self, killed: Instant) -> Duration {
        let deadline = killed + Duration::from_secs(30);
        let candidate = 1 - self.primary;
        let port = self.nodes[candidate].port().to_string();
        loop {
            let named = self.sentinels.iter().all(|s| {
                matches!(
                    s.try_command(&["SENTINEL", "get-master-addr-by-name", SENTINEL_SERVICE]),
                    Ok(Reply::Array(Some(ref items))) if items.get(1).and_then(text).as_deref() == Some(port.as_str())
                )
            });
            let is_primary = self.nodes[candidate]
                .try_command(&["ROLE"])
                .ok()
                .is_some_and(|reply| match reply {
                    Reply::Array(Some(items)) => {
                        items.first().and_then(text).as_deref() == Some("master")
                    }
                    _ => false,
                });
            if named && is_primary {
                self.primary = candidate;
                return killed.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not promote the replica within 30 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`await_promotion`](Self::await_promotion) on a blocking thread, so a test keeps calling
    /// meanwhile; the handle gives the deployment back with the time the promotion took.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn await_promotion_in_background(
        mut self,
        killed: Instant,
    ) -> tokio::task::JoinHandle<(Self, Duration)> {
        tokio::task::spawn_blocking(move || {
            let took = self.await_promotion(killed);
            (self, took)
        })
    }
}
