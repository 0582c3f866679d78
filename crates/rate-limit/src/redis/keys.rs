//! The Redis keys of one check: the state key always; the penalty box only for policies with a
//! block time (the script reads them in the same order).

use nilecare_redis::KeyPrefix;

use super::args::PolicyArgs;
use crate::quota::Policy;

/// Keys of (policy, key), all under the `{key}` hash tag: one cluster slot.
#[derive(Debug)]
pub(super) struct CheckKeys {
    state: String,
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
            block: (args[4] > 0).then(|| with(&state, ":block")),
            state,
        }
    }

    /// Every key (for a reset): state and penalty box.
    pub(super) fn all(prefix: &KeyPrefix, policy: &Policy, key: &str) -> [String; 2] {
        let state = Self::state_key(prefix, policy, key);
        let block = with(&state, ":block");
        [state, block]
    }

    /// The state key (its slot is the check's slot).
    pub(super) fn state(&self) -> &str {
        &self.state
    }

    /// Appends the keys in script order.
    pub(super) fn push_into(self, keys: &mut Vec<String>) {
        keys.push(self.state);
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
