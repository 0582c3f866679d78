//! Tags: [`Cache::set_with_tags`] and [`Cache::invalidate_tag`].
//!
//! A tag's index lives at `<view prefix>@:tag:<escaped tag>` (a sorted set on Redis: member =
//! full key, score = its expiry). `@:` cannot be produced by a user key (they may not start with
//! `@`) nor by a tenant segment (tenant ids are never empty), so indexes never collide with
//! values. Members whose keys expired are pruned at every write of the tag and the index expires
//! with its last member, so it never outgrows the live keys carrying the tag.

use std::time::Duration;

use nilecare_redis::escape_key_part;
use serde::Serialize;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::stats::Counters;
use crate::store::Store;

/// Longest accepted tag, in bytes.
const MAX_TAG_LEN: usize = 256;
/// At most this many tags per value.
const MAX_TAGS: usize = 64;

fn check_tag(tag: &str) -> Result<()> {
    let bad = |message: String| Error::InvalidKey {
        field: "tag",
        message,
    };
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return Err(bad(format!(
            "must be 1 to {MAX_TAG_LEN} bytes, got {}",
            tag.len()
        )));
    }
    if tag.chars().any(char::is_control) {
        return Err(bad("must not contain control characters".into()));
    }
    Ok(())
}

impl<S: Store> Cache<S> {
    /// Stores `value` like [`set`](Self::set) and records that it carries `tags`
    /// (e.g. `["patient:123", "clinic:1"]`), so [`invalidate_tag`](Self::invalidate_tag) can
    /// remove it with every other key carrying one of them. Tags are per view (a tenant's tags
    /// are its own), 1..=256 bytes each, at most 64.
    ///
    /// The tag indexes are written before the value: if the value write fails, an index holds
    /// one key too many (harmless), never one too few.
    pub async fn set_with_tags<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        tags: &[&str],
    ) -> Result<()> {
        let started = self.start();
        let result = async {
            if tags.len() > MAX_TAGS {
                return Err(Error::InvalidKey {
                    field: "tags",
                    message: format!("at most {MAX_TAGS} per value, got {}", tags.len()),
                });
            }
            let indexes = tags
                .iter()
                .map(|t| self.tag_index(t))
                .collect::<Result<Vec<_>>>()?;
            let full = self.full_key(key)?;
            let ttl = self.effective_ttl(key, ttl)?;
            let bytes = self.envelope().encode(value)?;
            let member = [(full.clone(), ttl)];
            for index in &indexes {
                self.shared().store.add_to_tag(index, &member).await?;
            }
            self.shared().store.set(&full, bytes, ttl).await
        }
        .await;
        if result.is_ok() {
            Counters::add(&self.shared().counters.sets, 1);
        }
        self.finish("set_with_tags", started, &result);
        result
    }

    /// Deletes every key of this view that was stored with `tag` and has not expired (on every
    /// instance's L1 too, with a [`TieredStore`](crate::TieredStore)); returns how many went.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<u64> {
        let started = self.start();
        let result = async {
            let index = self.tag_index(tag)?;
            let keys = self.shared().store.take_tag(&index).await?;
            if keys.is_empty() {
                return Ok(0);
            }
            self.shared().store.delete(&keys).await
        }
        .await;
        if let Ok(n) = result {
            Counters::add(&self.shared().counters.deletes, n);
        }
        self.finish("invalidate_tag", started, &result);
        result
    }

    /// Entries in the index of `tag` (keys that expired may count until the tag's next write).
    pub async fn tag_size(&self, tag: &str) -> Result<u64> {
        self.shared().store.tag_len(&self.tag_index(tag)?).await
    }

    /// The full key of a tag's index in this view.
    pub fn tag_index(&self, tag: &str) -> Result<String> {
        check_tag(tag)?;
        Ok(self.scope().key(&format!("@:tag:{}", escape_key_part(tag))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked() {
        assert!(check_tag("patient:123").is_ok());
        for bad in ["", "a\nb", &"t".repeat(257)] {
            assert!(matches!(
                check_tag(bad),
                Err(Error::InvalidKey { field: "tag", .. })
            ));
        }
    }
}
