//! [`Partitions`]: a topic split into partition topics by a key, for per-key ordering.
//!
//! A message goes to the partition of its key (`patient-42` always to the same one), and each
//! partition is consumed in order by one consumer of a group at a time
//! ([`ConsumerBuilder::run_partitions`](crate::ConsumerBuilder::run_partitions)): messages of
//! one key are handled one after the other, in publishing order, while different partitions
//! proceed in parallel (on different instances, or different tasks of one). On Redis each
//! partition is a stream with its own hash tag, so a cluster spreads them over its nodes.

use crate::error::{Error, Result};
use crate::message::check_name;

/// The most partitions of one topic.
pub const MAX_PARTITIONS: u16 = 1024;

/// A topic's partition topics: `<topic>.p0` .. `<topic>.p<n-1>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitions {
    topics: Vec<String>,
}

/// FNV-1a, 64 bits: stable across processes, versions and platforms (the partition of a key
/// must never change while messages of it are in flight).
fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Partitions {
    /// `count` partitions of `topic` (1 to [`MAX_PARTITIONS`]). The count is part of the data
    /// layout: changing it moves keys to other partitions, so drain the topic first.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `topic` or `partitions`.
    pub fn new(topic: &str, count: u16) -> Result<Self> {
        if !(1..=MAX_PARTITIONS).contains(&count) {
            return Err(Error::Invalid {
                field: "partitions",
                message: format!("must be 1-{MAX_PARTITIONS}, got {count}"),
            });
        }
        let topics: Vec<String> = (0..count).map(|i| format!("{topic}.p{i}")).collect();
        check_name("topic", topic)?;
        for partition in &topics {
            check_name("topic", partition)?;
        }
        Ok(Partitions { topics })
    }

    /// The partition topic of `key`: publish there (`publisher.publish(partitions.topic_for(&key), &message)`).
    pub fn topic_for(&self, key: &str) -> &str {
        let n = self.topics.len() as u64;
        let index = usize::try_from(fnv1a(key) % n).unwrap_or(0);
        &self.topics[index]
    }

    /// Every partition topic, in order.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_goes_to_the_same_partition_and_keys_spread() {
        let partitions = Partitions::new("orders", 8).unwrap();
        assert_eq!(partitions.topics()[0], "orders.p0");
        assert_eq!(
            partitions.topic_for("patient-42"),
            partitions.topic_for("patient-42")
        );
        let mut used = std::collections::HashSet::new();
        for i in 0..200 {
            used.insert(partitions.topic_for(&format!("patient-{i}")).to_owned());
        }
        assert_eq!(used.len(), 8, "200 keys reach every partition");
        // Stable across versions: a fixed known value.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn bad_counts_and_names_are_named() {
        assert!(matches!(
            Partitions::new("orders", 0),
            Err(Error::Invalid {
                field: "partitions",
                ..
            })
        ));
        assert!(matches!(
            Partitions::new("orders", 2000),
            Err(Error::Invalid {
                field: "partitions",
                ..
            })
        ));
        assert!(matches!(
            Partitions::new("or{ders}", 2),
            Err(Error::Invalid { field: "topic", .. })
        ));
    }
}
