//! Pattern operations built on `SCAN` (never `KEYS`), on every primary of a cluster.

use std::pin::Pin;

use fred::clients::Pool;
use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::Key;
use futures_util::{Stream, StreamExt};

use crate::error::Result;

/// Keys asked for per `SCAN` page and deleted per `UNLINK`.
const BATCH: usize = 500;

type KeyStream = Pin<Box<dyn Stream<Item = Result<Key, fred::error::Error>> + Send>>;

fn scan(pool: &Pool, pattern: &str) -> KeyStream {
    let client = pool.next();
    if client.is_clustered() {
        Box::pin(client.scan_cluster_buffered(pattern.to_owned(), Some(BATCH as u32), None))
    } else {
        Box::pin(client.scan_buffered(pattern.to_owned(), Some(BATCH as u32), None))
    }
}

/// Every key matching `pattern` (a `SCAN MATCH` glob; build it with
/// [`KeyPrefix::pattern`](crate::KeyPrefix::pattern) so user text cannot widen it).
/// Collects into memory: meant for bounded namespaces (tests, admin tools).
pub async fn scan_keys(pool: &Pool, pattern: &str) -> Result<Vec<String>> {
    let mut stream = scan(pool, pattern);
    let mut keys = Vec::new();
    while let Some(key) = stream.next().await {
        if let Some(s) = key?.into_string() {
            keys.push(s);
        }
    }
    Ok(keys)
}

/// Deletes (with `UNLINK`, in batches of 500) every key matching `pattern` and returns how many
/// went. On a cluster it scans every primary and groups each batch by hash slot. Keys written
/// while the scan runs may or may not be deleted (`SCAN` semantics).
pub async fn delete_matching(pool: &Pool, pattern: &str) -> Result<u64> {
    delete_matching_where(pool, pattern, |_| true).await
}

/// Like [`delete_matching`], deleting only the matching keys for which `keep_deleting(key)` is
/// `true` (for exclusions a glob cannot express).
pub async fn delete_matching_where(
    pool: &Pool,
    pattern: &str,
    keep_deleting: impl Fn(&str) -> bool,
) -> Result<u64> {
    let mut stream = scan(pool, pattern);
    let mut batch = Vec::with_capacity(BATCH);
    let mut deleted = 0;
    while let Some(key) = stream.next().await {
        let key = key?;
        if key.as_str().is_some_and(&keep_deleting) {
            batch.push(key);
        }
        if batch.len() >= BATCH {
            deleted += unlink_keys(pool, std::mem::take(&mut batch)).await?;
        }
    }
    deleted += unlink_keys(pool, batch).await?;
    Ok(deleted)
}

/// `UNLINK`s `keys` and returns how many existed. On a cluster the keys are grouped by hash slot
/// (one `UNLINK` per slot), so keys may come from anywhere in the keyspace.
pub async fn unlink_keys<K>(pool: &Pool, keys: impl IntoIterator<Item = K>) -> Result<u64>
where
    K: Into<Key>,
{
    let keys: Vec<Key> = keys.into_iter().map(Into::into).collect();
    if keys.is_empty() {
        return Ok(0);
    }
    let mut deleted = 0;
    if pool.is_clustered() {
        for (_slot, group) in fred::util::group_by_hash_slot(keys)? {
            let group = Vec::from(group);
            let first = group.first().map(|k| k.as_bytes().to_vec());
            let unlinked = pool.unlink(group.clone()).await;
            let n: u64 = crate::follow_migration(
                pool,
                unlinked,
                &first.unwrap_or_default(),
                "UNLINK",
                || group.into_iter().map(fred::prelude::Value::from).collect(),
            )
            .await?;
            deleted += n;
        }
    } else {
        let n: u64 = pool.unlink(keys).await?;
        deleted += n;
    }
    Ok(deleted)
}
