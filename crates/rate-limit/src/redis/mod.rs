//! [`RedisLimiter`]: every algorithm in one Lua script on Redis (standalone or Cluster): at most
//! one `EVALSHA` per check (concurrent checks share one), time from Redis `TIME`, TTLs on every
//! key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nilecare_redis::fred::clients::Pool;
use nilecare_redis::fred::error::ErrorKind;
use nilecare_redis::fred::interfaces::ClientLike;
use nilecare_redis::{KeyPrefix, Script};
use tokio::sync::oneshot;

use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::quota::Policy;
use crate::store::{Check, RateLimiter};

mod args;
mod batch;
mod keys;

use args::{ScriptArgs, policy_args};
use batch::{Batcher, Entry, Reply, timeout_error};
use keys::CheckKeys;

static LIMITER_LUA: &str = include_str!("limiter.lua");

/// Check modes understood by the script.
const MODE_CHECK: u64 = 1;
const MODE_PEEK: u64 = 2;
const MODE_CONSUME: u64 = 3;

/// Reply values per check.
const REPLY_PER_ENTRY: usize = 5;

/// Hash slots of a Redis Cluster.
pub(crate) const SLOTS: u16 = 16_384;

/// A rate limiter shared by every instance through Redis.
///
/// Each check runs in a script that reads the time from Redis (`TIME`, so instance clocks do
/// not matter), evaluates every entry, and writes only if all pass. Keys:
/// `nilecare:rl:{<key>}:<policy>:<algorithm>` (a string, or a sorted set for the sliding log),
/// plus `…:block`; the `{<key>}` hash tag keeps all policies of one key in
/// one slot, so `check_many` over one key runs on Redis Cluster. Every key has a TTL, so idle
/// keys vanish on their own.
///
/// Concurrent checks share script calls: at most one call per pool connection runs at a time
/// (see [`with_max_in_flight`](Self::with_max_in_flight)), and each carries every check queued
/// while the previous ones ran, up to [`with_max_batch`](Self::with_max_batch). A lone check
/// is sent at once; under load Redis runs a few large scripts instead of one per check. The
/// script evaluates a batch's checks one after the other, so each decision is the one its own
/// call would have given. `check_many` is always one call of its own.
///
/// Errors and timeouts are returned; wrap it in a [`ResilientLimiter`](crate::ResilientLimiter)
/// to decide locally instead.
#[derive(Clone)]
pub struct RedisLimiter {
    pool: Pool,
    script: Script,
    refund_script: Script,
    prefix: KeyPrefix,
    timeout: Duration,
    max_batch: usize,
    max_in_flight: usize,
    batcher: Arc<Batcher>,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("max_batch", &self.max_batch)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// The hash slot holding `(policy, key)`'s state (`None` for a key the limiter refuses).
    pub(crate) fn slot(&self, policy: &Policy, key: &str) -> Option<u16> {
        let stored = crate::input::stored_key(key).ok()?;
        let state = CheckKeys::state_key(&self.prefix, policy, &stored);
        Some(nilecare_redis::fred::util::redis_keyslot(state.as_bytes()))
    }

    /// The slot ranges served by the node that serves `slot`, from the pool's view of the
    /// cluster; every slot when Redis is not a cluster (or the view is not known yet).
    pub(crate) fn node_slots(&self, slot: u16) -> Vec<std::ops::RangeInclusive<u16>> {
        use nilecare_redis::fred::interfaces::ClusterInterface;
        let every = || vec![0..=SLOTS - 1];
        let Some(routing) = self.pool.next().cached_cluster_state() else {
            return every();
        };
        match routing.get_server(slot) {
            Some(server) => routing
                .slots()
                .iter()
                .filter(|range| &range.primary == server)
                .map(|range| range.start..=range.end)
                .collect(),
            None => every(),
        }
    }

    /// Default time a check may take before it fails.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

    /// Default number of checks one script call carries at most.
    pub const DEFAULT_MAX_BATCH: usize = 64;

    /// A limiter on `pool` with prefix `nilecare:rl:`, a 50 ms timeout per check, batches of up
    /// to 64 checks and one script call in flight per pool connection.
    pub fn new(pool: Pool) -> Self {
        let script = Script::new(LIMITER_LUA);
        let max_in_flight = pool.size().max(1);
        let batcher = Arc::new(Batcher::new(
            pool.clone(),
            script.clone(),
            Self::DEFAULT_TIMEOUT,
            Self::DEFAULT_MAX_BATCH,
            max_in_flight,
        ));
        RedisLimiter {
            pool,
            script,
            refund_script: Script::new(REFUND_LUA),
            prefix: KeyPrefix::default().segment("rl"),
            timeout: Self::DEFAULT_TIMEOUT,
            max_batch: Self::DEFAULT_MAX_BATCH,
            max_in_flight,
            batcher,
        }
    }

    /// The key prefix (e.g. `myapp:rl:`); rejected when it contains `{`, `}`, whitespace or
    /// control characters.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self> {
        self.prefix = KeyPrefix::new(prefix).map_err(|e| Error::InvalidConfig {
            field: "prefix",
            message: e.to_string(),
        })?;
        Ok(self)
    }

    /// Time a check may take before it fails with a timeout (default 50 ms).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self> {
        if timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "timeout",
                message: "must be greater than zero".into(),
            });
        }
        self.timeout = timeout;
        Ok(self.rebuild_batcher())
    }

    /// Most checks one script call carries (default 64, at most 1024). `1` sends every check in
    /// its own call, with no limit on calls in flight.
    pub fn with_max_batch(mut self, max_batch: usize) -> Result<Self> {
        if !(1..=1024).contains(&max_batch) {
            return Err(Error::InvalidConfig {
                field: "max_batch",
                message: format!("must be between 1 and 1024, got {max_batch}"),
            });
        }
        self.max_batch = max_batch;
        Ok(self.rebuild_batcher())
    }

    /// Most batched script calls in flight at once (default: the pool size). More calls in
    /// flight lower the wait under light load; fewer make larger batches under heavy load.
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Result<Self> {
        if max_in_flight == 0 {
            return Err(Error::InvalidConfig {
                field: "max_in_flight",
                message: "must be greater than zero".into(),
            });
        }
        self.max_in_flight = max_in_flight;
        Ok(self.rebuild_batcher())
    }

    fn rebuild_batcher(mut self) -> Self {
        self.batcher = Arc::new(Batcher::new(
            self.pool.clone(),
            self.script.clone(),
            self.timeout,
            self.max_batch,
            self.max_in_flight,
        ));
        self
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// `check_many`: one script call, one group (all or nothing).
    async fn run_group(&self, checks: &[(&Policy, &str, u64, u64)]) -> Result<Vec<Decision>> {
        if self.pool.is_clustered() {
            let first = checks.first().map(|c| c.1);
            if checks.iter().any(|c| Some(c.1) != first) {
                return Err(Error::InvalidInput {
                    field: "key",
                    message: "check_many on Redis Cluster needs every entry on the same key".into(),
                });
            }
        }
        let mut keys = Vec::with_capacity(checks.len() * 3);
        let mut args = ScriptArgs::default();
        let mut group = Vec::with_capacity(checks.len());
        for (policy, key, cost, mode) in checks {
            let policy_args = policy_args(policy);
            CheckKeys::new(&self.prefix, policy, &policy_args, key).push_into(&mut keys);
            group.push((policy_args, *cost, *mode));
        }
        args.group(group.into_iter());
        let started = Instant::now();
        let reply: Vec<i64> = self.eval(&self.script, keys, args.into_argv()).await?;
        let elapsed = started.elapsed();
        if reply.len() != checks.len() * REPLY_PER_ENTRY {
            return Err(redis_error(
                ErrorKind::Protocol,
                format!(
                    "script returned {} values for {} checks",
                    reply.len(),
                    checks.len()
                ),
            ));
        }
        Ok(checks
            .iter()
            .zip(reply.chunks_exact(REPLY_PER_ENTRY))
            .map(|((policy, _, _, _), r)| {
                crate::metrics::redis_duration(policy, elapsed);
                decision(policy, r)
            })
            .collect())
    }

    /// Runs a script within the check timeout.
    async fn eval<R: nilecare_redis::fred::types::FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<u64>,
    ) -> Result<R> {
        match tokio::time::timeout(self.timeout, script.run(&self.pool, keys, args)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(timeout_error(self.timeout)),
        }
    }

    /// One check through the batcher (or its own call when batching is off).
    async fn one(&self, policy: &Policy, key: &str, cost: u64, mode: u64) -> Result<Decision> {
        let key = &*crate::input::checked(key, cost, mode == MODE_PEEK)?;
        if self.max_batch == 1 {
            let mut d = self.run_group(&[(policy, key, cost, mode)]).await?;
            return d.pop().ok_or_else(|| Error::InvalidInput {
                field: "key",
                message: "no decision returned".into(),
            });
        }
        let policy_args = policy_args(policy);
        let keys = CheckKeys::new(&self.prefix, policy, &policy_args, key);
        let slot = nilecare_redis::fred::util::redis_keyslot(keys.state().as_bytes());
        let (reply, answer) = oneshot::channel::<Result<Reply>>();
        let started = Instant::now();
        self.batcher.submit(Entry {
            keys,
            policy: policy_args,
            cost,
            mode,
            slot,
            reply,
        });
        let r = match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => {
                return Err(redis_error(
                    ErrorKind::Canceled,
                    "the rate-limit batch was dropped before it answered".into(),
                ));
            }
            Err(_) => return Err(timeout_error(self.timeout)),
        };
        crate::metrics::redis_duration(policy, started.elapsed());
        Ok(decision(policy, &r))
    }
}

/// The decision from one check's script reply: allowed, remaining, reset, retry, shadow.
fn decision(policy: &Policy, r: &[i64]) -> Decision {
    let us = |v: i64| Duration::from_micros(v.max(0).unsigned_abs());
    Decision {
        allowed: r[0] == 1,
        limit: policy.reported_limit(),
        remaining: r[1].max(0).unsigned_abs(),
        reset_after: us(r[2]),
        retry_after: (r[3] >= 0).then(|| us(r[3])),
        shadow_limited: r[4] == 1,
        fallback: false,
    }
}

fn redis_error(kind: ErrorKind, message: String) -> Error {
    Error::Redis(nilecare_redis::Error::Redis(
        nilecare_redis::fred::error::Error::new(kind, message),
    ))
}

impl RateLimiter for RedisLimiter {
    async fn check(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        let d = self.one(policy, key, u64::from(cost), MODE_CHECK).await?;
        crate::metrics::record(policy, &d);
        Ok(d)
    }

    async fn check_many(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        let keys = checks
            .iter()
            .map(|(_, key, cost)| crate::input::checked(key, u64::from(*cost), false))
            .collect::<Result<Vec<_>>>()?;
        let entries: Vec<_> = checks
            .iter()
            .zip(&keys)
            .map(|((p, _, c), k)| (*p, &**k, u64::from(*c), MODE_CHECK))
            .collect();
        let decisions = self.run_group(&entries).await?;
        for ((policy, _, _), d) in checks.iter().zip(&decisions) {
            crate::metrics::record(policy, d);
        }
        Ok(decisions)
    }

    async fn peek(&self, policy: &Policy, key: &str) -> Result<Decision> {
        self.one(policy, key, 1, MODE_PEEK).await
    }

    async fn consume(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        self.one(policy, key, u64::from(cost), MODE_CONSUME).await
    }

    async fn refund(&self, policy: &Policy, key: &str, cost: u32) -> Result<()> {
        let key = &*crate::input::checked(key, u64::from(cost), false)?;
        let state = CheckKeys::state_key(&self.prefix, policy, key);
        let q = policy.quota();
        let args = vec![
            u64::from(policy.algorithm_kind().id()),
            q.limit(),
            q.window_micros(),
            q.burst(),
            u64::from(cost),
        ];
        let _: i64 = self.eval(&self.refund_script, vec![state], args).await?;
        Ok(())
    }

    async fn reset(&self, policy: &Policy, key: &str) -> Result<()> {
        let key = &*crate::input::stored_key(key)?;
        nilecare_redis::unlink_keys(&self.pool, CheckKeys::all(&self.prefix, policy, key)).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// Gives units back: lower the window count, pop log entries, add tokens, move the TAT back.
static REFUND_LUA: &str = r"
local algo, limit, w, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local k = KEYS[1]
if algo == 3 then redis.call('ZPOPMAX', k, cost) return 1 end
local v = redis.call('GET', k)
if type(v) ~= 'string' or #v ~= 24 then return 0 end
local a, b, c = struct.unpack('<ddd', v)
if a - a ~= 0 or b - b ~= 0 or c - c ~= 0 then return 0 end
if algo == 1 or algo == 2 then b = math.max(0, b - cost)
elseif algo == 4 then a = math.min(burst, a + cost)
else a = a - cost * (w / limit) end
redis.call('SET', k, struct.pack('<ddd', a, b, c), 'KEEPTTL')
return 1
";
