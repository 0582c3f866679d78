//! The Redis keys of one check: the state key always; the sliding log's sequence and the
//! penalty box only for policies that use them (the script reads them in the same order).

use nilecare_redis::KeyPrefix;

use super::args::PolicyArgs;
use crate::quota::{Algorithm, Policy};

/// Keys of (policy, key), all under the `{key}` hash tag: one cluster slot.
#[derive(Debug)]
pub(super) struct CheckKeys {
    state: String,
    seq: Option<String>,
    block: Option<String>,
}

impl CheckKeys {
    /// The state key alone (refunds touch nothing else).
    pub(super) fn state_key(prefix: &KeyPrefix, policy: &Policy, key: &str) -> String {
        prefix.tagged_key(key, &policy.inner().stored_name)
    }

    /// The keys the script reads for `policy` (whose script arguments are `args`).
    pub(super) fn new(prefix: &KeyPrefix, policy: &Policy, args: &PolicyArgs, key: &str) -> Self {
        let state = Self::state_key(prefix, policy, key);
        CheckKeys {
            seq: (args[0] == u64::from(Algorithm::SlidingLog.id())).then(|| with(&state, ":seq")),
            block: (args[4] > 0).then(|| with(&state, ":block")),
            state,
        }
    }

    /// Every key (for a reset): state, sequence, penalty box.
    pub(super) fn all(prefix: &KeyPrefix, policy: &Policy, key: &str) -> [String; 3] {
        let state = Self::state_key(prefix, policy, key);
        let (seq, block) = (with(&state, ":seq"), with(&state, ":block"));
        [state, seq, block]
    }

    /// The state key (its slot is the check's slot).
    pub(super) fn state(&self) -> &str {
        &self.state
    }

    /// Appends the keys in script order.
    pub(super) fn push_into(self, keys: &mut Vec<String>) {
        keys.push(self.state);
        keys.extend(self.seq);
        keys.extend(self.block);
    }
}

/// `base` followed by `suffix`, in one allocation.
fn with(base: &str, suffix: &str) -> String {
    let mut k = String::with_capacity(base.len() + suffix.len());
    k.push_str(base);
    k.push_str(suffix);
    k
}
