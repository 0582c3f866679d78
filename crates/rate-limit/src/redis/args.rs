//! The limiter script's arguments: each distinct policy once, then groups of checks that refer
//! to it by index (a batch of 64 checks of one policy sends 6 policy numbers, not 6 × 64).

use crate::quota::Policy;

/// Script arguments per policy: algorithm, limit, window (µs), burst, block (µs), shadow.
pub(super) type PolicyArgs = [u64; 6];

/// The script arguments of `policy`.
pub(super) fn policy_args(policy: &Policy) -> PolicyArgs {
    let q = policy.quota();
    [
        u64::from(policy.algorithm_kind().id()),
        q.limit(),
        q.window_micros(),
        q.burst(),
        policy
            .block_duration()
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        u64::from(policy.is_shadow()),
    ]
}

/// ARGV of one script call, built group by group.
#[derive(Debug, Default)]
pub(super) struct ScriptArgs {
    policies: Vec<PolicyArgs>,
    groups: u64,
    /// Per group: its entry count, then (policy index, cost, mode) per entry.
    checks: Vec<u64>,
}

impl ScriptArgs {
    /// Adds a group of (policy, cost, mode) checks, consumed all or nothing.
    pub(super) fn group(&mut self, checks: impl ExactSizeIterator<Item = (PolicyArgs, u64, u64)>) {
        self.groups += 1;
        self.checks.push(checks.len() as u64);
        for (policy, cost, mode) in checks {
            let index = self.policy_index(policy);
            self.checks.extend([index, cost, mode]);
        }
    }

    /// The 1-based index of `policy` in the table, added if new.
    fn policy_index(&mut self, policy: PolicyArgs) -> u64 {
        let at = match self.policies.iter().position(|p| *p == policy) {
            Some(at) => at,
            None => {
                self.policies.push(policy);
                self.policies.len() - 1
            }
        };
        at as u64 + 1
    }

    /// The arguments in script order.
    pub(super) fn into_argv(self) -> Vec<u64> {
        let mut argv = Vec::with_capacity(2 + self.policies.len() * 6 + self.checks.len());
        argv.push(self.policies.len() as u64);
        argv.extend(self.policies.iter().flatten());
        argv.push(self.groups);
        argv.extend(self.checks);
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_sent_once_and_referred_to_by_index() {
        let (a, b) = ([1, 10, 1_000_000, 10, 0, 0], [5, 3, 60_000_000, 3, 0, 1]);
        let mut args = ScriptArgs::default();
        args.group([(a, 1, 1)].into_iter());
        args.group([(b, 2, 1), (a, 1, 3)].into_iter());
        assert_eq!(
            args.into_argv(),
            [
                vec![2],
                a.to_vec(),
                b.to_vec(),
                vec![2, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 3],
            ]
            .concat()
        );
    }
}
