//! Building a connected fred [`Pool`] from a [`RedisConfig`].

use std::time::Duration;

use fred::clients::Pool;
use fred::interfaces::ClientLike;
use fred::types::Builder;

use crate::config::RedisConfig;
use crate::error::{Error, Result};

/// Connects to the deployment described by `config` (standalone, cluster or sentinel) and returns
/// a pool of `config.pool_size()` connections.
///
/// Every command sent through the pool fails after `command_timeout` instead of hanging, and lost
/// connections come back according to the reconnect policy. With `fail_fast` (the default) this
/// function fails when the first connection cannot be made within `connect_timeout`; without it,
/// it returns at once and the pool connects in the background.
///
/// ```no_run
/// # async fn demo() -> nilecare_redis::Result<()> {
/// use fred::prelude::*;
/// let config = nilecare_redis::RedisConfig::from_url("redis://127.0.0.1:6379")?;
/// let pool = nilecare_redis::connect(&config).await?;
/// let _: () = pool.set("greeting", "hello", None, None, false).await?;
/// # Ok(()) }
/// ```
pub async fn connect(config: &RedisConfig) -> Result<Pool> {
    config.validate()?;
    let pool = builder(config).build_pool(config.pool_size())?;

    if !config.fail_fast() {
        // Background connection; the reconnect policy keeps trying.
        let _handles = pool.connect_pool();
        return Ok(pool);
    }

    let handles = pool.connect_pool();
    // A little more than the connect timeout: fred applies it per connection attempt.
    let budget = config.connect_timeout() + Duration::from_millis(250);
    let connected = connected(pool.wait_for_connect(), || {
        pool.clients().iter().all(ClientLike::is_connected)
    });
    match tokio::time::timeout(budget, connected).await {
        Ok(Ok(())) => {
            tracing::debug!(target: "nilecare_redis", redis = %config, topology = %config.topology(), "connected");
            Ok(pool)
        }
        Ok(Err(e)) => {
            shut_down(&pool, handles).await;
            Err(Error::Connect {
                target: config.redacted_url().to_owned(),
                source: e,
            })
        }
        Err(_) => {
            shut_down(&pool, handles).await;
            Err(Error::ConnectTimeout {
                target: config.redacted_url().to_owned(),
                after: config.connect_timeout(),
            })
        }
    }
}

/// Waits for fred's `wait_for_connect` or for `is_connected` to hold, whichever comes first.
///
/// fred's `wait_for_connect` reads the client state and then subscribes to the connect
/// notification: a connection made between the two is never announced to it, and it waits
/// forever (seen as a rare start-up timeout on a loaded machine). Checking the state every few
/// milliseconds closes that window; errors of the first attempt still come from fred.
pub(crate) async fn connected<E>(
    wait: impl Future<Output = std::result::Result<(), E>>,
    is_connected: impl Fn() -> bool,
) -> std::result::Result<(), E> {
    let polled = async {
        while !is_connected() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (wait, polled) = (std::pin::pin!(wait), std::pin::pin!(polled));
    match futures_util::future::select(wait, polled).await {
        futures_util::future::Either::Left((result, _)) => result,
        futures_util::future::Either::Right(((), _)) => Ok(()),
    }
}

/// How often fred writes one command (first try included) before it gives up.
const MAX_COMMAND_ATTEMPTS: u32 = 3;

/// How many `MOVED`/`ASK` redirections fred follows itself: none. fred 10.1's `ASK` handling
/// is unsafe: it writes `ASKING` to the target and reads the next reply of that connection as
/// its answer, so a command already in flight there receives `OK` instead of its own reply
/// (measured: a `GET` of an unrelated key answered `OK` 254 times during one slot migration),
/// then it routes the command back to the source; and when the command's attempts run out
/// inside that step it stops the client's connection task for good. With no redirections
/// allowed, fred answers "Too many redirections" without sending `ASKING` (after a `MOVED` it
/// still refreshes its slot map first), and [`follow_migration`](crate::follow_migration)
/// sends the command again: to the new owner after `MOVED`, with `ASKING` in one pipeline to
/// the importing node after `ASK`.
const MAX_REDIRECTIONS: u32 = 0;

/// A fred builder with the timeouts and reconnect policy of `config` (for pools and the other
/// client kinds of this crate).
pub(crate) fn builder(config: &RedisConfig) -> Builder {
    let mut builder = Builder::from_config(config.fred_config().clone());
    builder
        .with_connection_config(|c| {
            c.connection_timeout = config.connect_timeout();
            c.internal_command_timeout = config.connect_timeout().max(config.command_timeout());
            c.max_command_attempts = MAX_COMMAND_ATTEMPTS;
            c.max_redirections = MAX_REDIRECTIONS;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = config.command_timeout();
        });
    if let Some(policy) = config.reconnect().to_fred() {
        builder.set_policy(policy);
    }
    builder
}

/// Stops the connection tasks of a pool that failed to come up, so nothing keeps reconnecting
/// in the background after `connect` returned an error.
async fn shut_down(pool: &Pool, handles: Vec<fred::types::ConnectHandle>) {
    let _ = tokio::time::timeout(Duration::from_millis(200), pool.quit()).await;
    for handle in handles {
        handle.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_missed_connect_notification_is_caught_by_the_state() {
        // fred's wait that missed its notification never resolves; the state says connected.
        let up = Arc::new(AtomicBool::new(false));
        let flag = up.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            flag.store(true, Ordering::SeqCst);
        });
        let missed = std::future::pending::<std::result::Result<(), ()>>();
        let waited = tokio::time::timeout(
            Duration::from_secs(2),
            connected(missed, || up.load(Ordering::SeqCst)),
        )
        .await;
        assert_eq!(waited, Ok(Ok(())));
    }

    #[tokio::test]
    async fn an_error_of_the_first_attempt_still_comes_through() {
        let failed = async { Err::<(), _>("refused") };
        assert_eq!(connected(failed, || false).await, Err("refused"));
    }
}
