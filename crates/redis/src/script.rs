//! Lua scripts run with `EVALSHA`, re-loaded transparently on `NOSCRIPT`.

use std::sync::Arc;

use fred::interfaces::LuaInterface;
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
    pub async fn run<R, C, K, V>(&self, client: &C, keys: K, args: V) -> Result<R>
    where
        R: FromValue,
        C: LuaInterface + Send + Sync,
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
                Ok(client.evalsha(self.inner.sha1.clone(), keys, args).await?)
            }
            other => Ok(other?),
        }
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
