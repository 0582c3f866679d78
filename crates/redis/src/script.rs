//! Lua scripts run with `EVALSHA`, re-loaded transparently on `NOSCRIPT`.

use std::sync::Arc;

use fred::interfaces::{ClusterInterface, LuaInterface};
use fred::prelude::Value;
use fred::types::{FromValue, MultipleKeys, MultipleValues};

use crate::error::{Error, Result};

/// A Lua script, identified by its SHA1, sent to the server once and then run by hash.
///
/// [`run`](Script::run) sends `EVALSHA`. When the server answers `NOSCRIPT` (it restarted, failed
/// over, or someone ran `SCRIPT FLUSH`), the script is loaded again (on every primary of a
/// cluster) and the call is retried once, so callers never see `NOSCRIPT`. One round trip in the
/// normal case.
///
/// Keep every key a script touches in one hash slot (see [`KeyPrefix::tagged`](crate::KeyPrefix::tagged))
/// so the script also runs on Redis Cluster.
///
/// ```
/// use nilecare_redis::Script;
///
/// static INCR_WITH_TTL: &str = r"
///     local n = redis.call('INCR', KEYS[1])
///     if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
///     return n";
/// let script = Script::new(INCR_WITH_TTL);
/// assert_eq!(script.sha1().len(), 40);
/// ```
#[derive(Clone)]
pub struct Script {
    inner: Arc<Inner>,
}

struct Inner {
    lua: String,
    sha1: String,
}

impl Script {
    /// Wraps the Lua source and computes its SHA1.
    pub fn new(lua: impl Into<String>) -> Self {
        let lua = lua.into();
        let sha1 = fred::util::sha1_hash(&lua);
        Script {
            inner: Arc::new(Inner { lua, sha1 }),
        }
    }

    /// The hex SHA1 the server knows the script by.
    pub fn sha1(&self) -> &str {
        &self.inner.sha1
    }

    /// The Lua source.
    pub fn lua(&self) -> &str {
        &self.inner.lua
    }

    /// Loads the script into the server's script cache (on every primary of a cluster). Optional:
    /// [`run`](Script::run) loads on demand.
    pub async fn load<C>(&self, client: &C) -> Result<()>
    where
        C: LuaInterface + Send + Sync,
    {
        let sha: String = if client.is_clustered() {
            client.script_load_cluster(self.inner.lua.clone()).await?
        } else {
            client.script_load(self.inner.lua.clone()).await?
        };
        debug_assert_eq!(sha, self.inner.sha1);
        Ok(())
    }

    /// Runs the script with `EVALSHA`, loading it first if the server does not know it.
    ///
    /// On a cluster whose slot is being migrated, a script whose keys already moved is sent to
    /// the new node with `ASKING` (see [`follow_migration`](crate::follow_migration)).
    pub async fn run<R, C, K, V>(&self, client: &C, keys: K, args: V) -> Result<R>
    where
        R: FromValue,
        C: LuaInterface + ClusterInterface + Send + Sync,
        K: Into<MultipleKeys> + Send,
        V: TryInto<MultipleValues> + Send,
        V::Error: Into<fred::error::Error> + Send,
    {
        let keys: MultipleKeys = keys.into();
        let args: MultipleValues = args.try_into().map_err(|e| Error::Redis(e.into()))?;
        match client
            .evalsha(self.inner.sha1.clone(), keys.clone(), args.clone())
            .await
        {
            Err(e) if is_noscript(&e) => {
                tracing::debug!(target: "nilecare_redis", sha1 = %self.inner.sha1, "NOSCRIPT: loading script again");
                self.load(client).await?;
                let again = client
                    .evalsha(self.inner.sha1.clone(), keys.clone(), args.clone())
                    .await;
                Ok(self.follow_migration(client, again, keys, args).await?)
            }
            other => Ok(self.follow_migration(client, other, keys, args).await?),
        }
    }
}

impl Script {
    /// The error path of [`run`](Script::run): `EVAL` (the target of a migration may not have
    /// loaded the script) with `ASKING` on the node the keys moved to.
    async fn follow_migration<R, C>(
        &self,
        client: &C,
        result: std::result::Result<R, fred::error::Error>,
        keys: MultipleKeys,
        args: MultipleValues,
    ) -> std::result::Result<R, fred::error::Error>
    where
        R: FromValue,
        C: ClusterInterface,
    {
        let keys = keys.inner();
        let first = match (&result, keys.first()) {
            (Err(e), Some(first)) if crate::is_migration_error(e) => first.as_bytes().to_vec(),
            _ => return result,
        };
        // `MultipleValues` flattened as fred flattens it for `EVALSHA`.
        let args = match args {
            Value::Array(values) => values,
            Value::Map(map) => map
                .inner()
                .into_iter()
                .flat_map(|(k, v)| [Value::Bytes(k.into_bytes()), v])
                .collect(),
            Value::Null => Vec::new(),
            one => vec![one],
        };
        let mut eval = Vec::with_capacity(2 + keys.len() + args.len());
        eval.push(Value::from(self.inner.lua.as_str()));
        eval.push(Value::from(keys.len() as i64));
        eval.extend(keys.into_iter().map(Value::from));
        eval.extend(args);
        crate::follow_migration(client, result, &first, "EVAL", || eval).await
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("sha1", &self.inner.sha1)
            .finish()
    }
}

fn is_noscript(e: &fred::error::Error) -> bool {
    e.details().starts_with("NOSCRIPT")
}
