//! Commands on a key whose hash slot is being moved between cluster primaries.
//!
//! While a slot migrates (`CLUSTER SETSLOT ... MIGRATING/IMPORTING`, `MIGRATE`, as
//! `redis-cli --cluster reshard` does it), the source answers `ASK <slot> <target>` for a key it
//! no longer holds, and `TRYAGAIN` for a multi-key command whose keys are split between the two
//! nodes. fred 10.1 does not follow `ASK` safely (see `connect`'s notes: pools from
//! [`connect`](crate::connect) let fred follow no redirection at all), so this module does: it
//! finds the node the source is migrating to and sends `ASKING` and the command to it in one
//! pipeline, so nothing can come between the two on that connection; after `MOVED` it sends the
//! command again once fred has re-read the slot map; `TRYAGAIN` is retried after a short pause,
//! for up to two seconds in all.

use std::time::Duration;

use fred::clients::{Pipeline, WithOptions};
use fred::interfaces::{ClientLike, ClusterInterface};
use fred::prelude::{Error as FredError, ErrorKind, Server, Value};
use fred::types::config::Options;
use fred::types::{ClusterHash, CustomCommand, FromValue};

/// How long a command keeps following its keys before the last error is returned: a migration
/// step (`MIGRATE` of a batch of keys) takes milliseconds; a slot whose keys are split for
/// longer than this is reported.
const FOLLOW_FOR: Duration = Duration::from_secs(2);

/// The first pause after `TRYAGAIN` (doubling up to [`MAX_PAUSE`]).
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// Passes `result` through, unless it failed because `key`'s slot is being migrated: then
/// `command` (its arguments, key included, from `args`) is sent to the node the key moved to,
/// with `ASKING`, and that answer is returned. Any other failure comes back unchanged, and
/// `args` is only called on this path, so the normal path costs nothing.
///
/// Wrap the commands on a cluster that must survive resharding:
///
/// ```no_run
/// # async fn demo(pool: &fred::clients::Pool) -> Result<(), fred::error::Error> {
/// use fred::prelude::*;
/// let key = "{ward-3}:beds";
/// let found = pool.get(key).await;
/// let beds: Option<String> =
///     nilecare_redis::follow_migration(pool, found, key.as_bytes(), "GET", || vec![key.into()])
///         .await?;
/// # Ok(()) }
/// ```
///
/// On a deployment that is not a cluster this returns `result` unchanged.
pub async fn follow_migration<R, C>(
    client: &C,
    result: Result<R, FredError>,
    key: &[u8],
    command: &'static str,
    args: impl FnOnce() -> Vec<Value>,
) -> Result<R, FredError>
where
    R: FromValue,
    C: ClusterInterface,
{
    let error = match result {
        Err(error) if client.is_clustered() && is_migration_error(&error) => error,
        other => return other,
    };
    let args = args();
    let slot = fred::util::redis_keyslot(key);
    let mut error = error;
    let started = tokio::time::Instant::now();
    let mut pause = FIRST_PAUSE;
    while started.elapsed() < FOLLOW_FOR {
        let again = if is_tryagain(&error) {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
            None
        } else {
            // `None` once the migration is over: fred has re-read the slot map after the
            // `MOVED` that followed, so the command goes to the new owner.
            migration_target(client, slot).await
        };
        let result = match again {
            Some(target) => {
                tracing::debug!(target: "nilecare_redis", slot, %target, command, "following ASK to the importing node");
                let pipeline = on_node(client, target);
                let () = pipeline
                    .custom(routed("ASKING", slot), Vec::<Value>::new())
                    .await?;
                let () = pipeline.custom(routed(command, slot), args.clone()).await?;
                pipeline.last::<R>().await
            }
            None => {
                client
                    .custom::<R, _>(routed(command, slot), args.clone())
                    .await
            }
        };
        match result {
            Err(e) if is_migration_error(&e) => error = e,
            done => return done,
        }
    }
    Err(error)
}

/// `true` for the failures a slot migration causes: fred declining a redirection ("Too many
/// redirections"; "Max attempts reached" comes from a pool built without [`connect`](crate::connect),
/// whose fred still follows `ASK` itself) or the server's `TRYAGAIN` / `ASK`.
pub fn is_migration_error(error: &FredError) -> bool {
    let details = error.details();
    (matches!(error.kind(), ErrorKind::Routing)
        && (details.starts_with("Too many redirections") || details.starts_with("Max attempts")))
        || is_tryagain(error)
        || details.starts_with("ASK ")
}

fn is_tryagain(error: &FredError) -> bool {
    error.details().starts_with("TRYAGAIN")
}

/// Commands for one node. A pipeline, not `with_options` alone: fred applies nested options
/// outermost first when a command is sent directly, so a `client` that is itself a
/// `WithOptions` (a store's timeouts) would reset the node; a pipeline applies them innermost
/// first. The commands run with the pool's command timeout.
fn on_node<C: ClientLike>(client: &C, node: Server) -> Pipeline<WithOptions<C>> {
    Pipeline::from(client.with_options(&Options {
        cluster_node: Some(node),
        ..Options::default()
    }))
}

fn routed(command: &'static str, slot: u16) -> CustomCommand {
    CustomCommand::new_static(command, ClusterHash::Custom(slot), false)
}

/// The node `slot` is being migrated to, read from the `CLUSTER NODES` of the node serving it
/// (its own line carries `[<slot>->-<target id>]` while it migrates).
async fn migration_target<C: ClusterInterface>(client: &C, slot: u16) -> Option<Server> {
    let source = client.cached_cluster_state()?.get_server(slot)?.clone();
    let pipeline = on_node(client, source);
    let () = pipeline
        .custom(
            CustomCommand::new_static("CLUSTER", ClusterHash::Random, false),
            vec!["NODES"],
        )
        .await
        .ok()?;
    let nodes: String = pipeline.last().await.ok()?;
    parse_migration_target(&nodes, slot)
}

/// Parses `CLUSTER NODES` as the migrating node prints it: the target's id from the
/// `[<slot>->-<id>]` entry of the `myself` line, then that id's `host:port@bus-port`.
fn parse_migration_target(nodes: &str, slot: u16) -> Option<Server> {
    let marker = format!("[{slot}->-");
    let me = nodes
        .lines()
        .find(|line| line.split(' ').nth(2).is_some_and(|f| f.contains("myself")))?;
    let id = me
        .split(' ')
        .find_map(|part| part.strip_prefix(marker.as_str()))?
        .strip_suffix(']')?;
    let line = nodes
        .lines()
        .find(|line| line.split(' ').next() == Some(id))?;
    let address = line.split(' ').nth(1)?.split(['@', ',']).next()?;
    let (host, port) = address.rsplit_once(':')?;
    Some(Server::new(host, port.parse::<u16>().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATING: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,node-b master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [4103->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
";

    #[test]
    fn the_target_comes_from_the_migrating_entry_of_the_own_line() {
        assert_eq!(
            parse_migration_target(MIGRATING, 4103),
            Some(Server::new("127.0.0.1", 30002))
        );
    }

    #[test]
    fn no_target_for_a_slot_that_is_not_migrating() {
        assert_eq!(parse_migration_target(MIGRATING, 4104), None);
        assert_eq!(parse_migration_target("", 4103), None);
        assert_eq!(parse_migration_target("garbage line\n", 4103), None);
    }

    #[test]
    fn only_migration_failures_are_followed() {
        assert!(is_migration_error(&FredError::new(
            ErrorKind::Routing,
            "Too many redirections."
        )));
        assert!(is_migration_error(&FredError::new(
            ErrorKind::Routing,
            "Max attempts reached."
        )));
        assert!(is_migration_error(&FredError::new(
            ErrorKind::Unknown,
            "TRYAGAIN Multiple keys request during rehashing of slot"
        )));
        assert!(!is_migration_error(&FredError::new(
            ErrorKind::Timeout,
            "Request timed out."
        )));
        assert!(!is_migration_error(&FredError::new(
            ErrorKind::Unknown,
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        )));
    }
}
