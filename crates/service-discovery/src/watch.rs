//! [`Watch`]: the instances of one service as they change, as snapshots or as [`Change`]s.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::watch;

use crate::instance::ServiceInstance;

/// The instances of one service at one moment, ordered by id.
pub type Snapshot = Arc<[ServiceInstance]>;

/// One change to a watched service.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// An instance registered.
    Added(ServiceInstance),
    /// A registered instance changed (status, weight, metadata, ...): the new description.
    Updated(ServiceInstance),
    /// An instance left: deregistered, or its TTL lapsed. The last known description.
    Removed(ServiceInstance),
}

impl Change {
    /// The instance the change is about.
    pub fn instance(&self) -> &ServiceInstance {
        match self {
            Change::Added(i) | Change::Updated(i) | Change::Removed(i) => i,
        }
    }
}

/// Follows one service: [`current`](Watch::current) instances, then each [`Change`] with
/// [`next`](Watch::next) (or as a `Stream` with [`into_stream`](Watch::into_stream)).
/// Changes are computed from successive snapshots, so a burst of updates is never lost, only
/// coalesced: the watcher always converges on the registry's current state.
pub struct Watch {
    rx: watch::Receiver<Snapshot>,
    seen: Snapshot,
    pending: VecDeque<Change>,
    _keepalive: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("seen", &self.seen.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Watch {
    /// A watch on `rx`; `keepalive` is held as long as the watch (a backend's follower task).
    pub(crate) fn new(
        mut rx: watch::Receiver<Snapshot>,
        keepalive: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        let seen = rx.borrow_and_update().clone();
        Watch {
            rx,
            seen,
            pending: VecDeque::new(),
            _keepalive: keepalive,
        }
    }

    /// The instances as last seen by this watch (updated by [`next`](Watch::next) and
    /// [`changed`](Watch::changed)).
    pub fn current(&self) -> Snapshot {
        self.seen.clone()
    }

    /// Waits for the next snapshot that differs from the last one seen and returns it; `None`
    /// when the registry is gone.
    pub async fn changed(&mut self) -> Option<Snapshot> {
        loop {
            self.rx.changed().await.ok()?;
            let next = self.rx.borrow_and_update().clone();
            if next != self.seen {
                self.pending.extend(diff(&self.seen, &next));
                self.seen = next.clone();
                return Some(next);
            }
        }
    }

    /// The next change; `None` when the registry is gone.
    pub async fn next(&mut self) -> Option<Change> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some(change);
            }
            self.changed().await?;
        }
    }

    /// The changes as a `Stream`.
    pub fn into_stream(self) -> impl Stream<Item = Change> + Send + Unpin {
        Box::pin(futures_util::stream::unfold(self, |mut watch| async move {
            let change = watch.next().await?;
            Some((change, watch))
        }))
    }
}

/// The changes from `old` to `new` (both ordered by id).
pub(crate) fn diff(old: &[ServiceInstance], new: &[ServiceInstance]) -> Vec<Change> {
    let mut changes = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a.id() == b.id() => {
                if a != b {
                    changes.push(Change::Updated(b.clone()));
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.id() < b.id() => {
                changes.push(Change::Removed(a.clone()));
                i += 1;
            }
            (Some(a), None) => {
                changes.push(Change::Removed(a.clone()));
                i += 1;
            }
            (_, Some(b)) => {
                changes.push(Change::Added(b.clone()));
                j += 1;
            }
            (None, None) => break,
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::Status;

    fn i(id: &str) -> ServiceInstance {
        ServiceInstance::new("s", id, "http://h:1").expect("valid")
    }

    #[test]
    fn diff_reports_each_addition_update_and_removal() {
        let old = [i("a"), i("b"), i("d")];
        let new = [i("b").with_status(Status::Down), i("c"), i("d"), i("e")];
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Removed(i("a")),
                Change::Updated(i("b").with_status(Status::Down)),
                Change::Added(i("c")),
                Change::Added(i("e")),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }
}
