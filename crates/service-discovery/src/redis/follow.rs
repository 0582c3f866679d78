//! Watching services on Redis: one pub/sub [`Listener`] per registry dispatches change notices
//! to one [`Follower`] per watched service, which re-reads the service and publishes the
//! snapshot to its watches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use nilecare_redis::{ChannelEvent, ChannelListener, listen};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Inner;
use crate::error::Result;
use crate::instance::ServiceInstance;
use crate::watch::{Snapshot, Watch};

/// The registry's subscription to the change channel.
#[derive(Debug)]
pub(crate) struct Listener {
    _subscription: ChannelListener,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Follows one service for every watch on it.
#[derive(Debug)]
pub(crate) struct Follower {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Shared {
    tx: watch::Sender<Snapshot>,
    /// Re-read now.
    notify: Notify,
    /// The subscription broke, lagged or was renewed: Redis may have restarted empty.
    reconnected: AtomicBool,
}

/// A watch on `service`, sharing the service's follower with other watches.
pub(crate) async fn watch(inner: &Arc<Inner>, service: &str) -> Result<Watch> {
    inner
        .listener
        .get_or_try_init(|| start_listener(inner))
        .await?;
    if let Some(follower) = existing(inner, service) {
        return Ok(subscribe(follower));
    }
    let listing = inner.list(service).await?;
    let mut followers = inner
        .followers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(follower) = followers.get(service).and_then(Weak::upgrade) {
        return Ok(subscribe(follower));
    }
    let snapshot: Snapshot = listing.instances.iter().map(|(i, _)| i.clone()).collect();
    let shared = Arc::new(Shared {
        tx: watch::Sender::new(snapshot),
        notify: Notify::new(),
        reconnected: AtomicBool::new(false),
    });
    let first_wait = next_wait(inner, &listing.instances, listing.now_ms);
    let task = tokio::spawn(follow(
        inner.clone(),
        service.to_owned(),
        shared.clone(),
        listing.instances,
        first_wait,
    ));
    let follower = Arc::new(Follower { shared, task });
    followers.retain(|_, f| f.strong_count() > 0);
    followers.insert(service.to_owned(), Arc::downgrade(&follower));
    Ok(subscribe(follower))
}

fn existing(inner: &Inner, service: &str) -> Option<Arc<Follower>> {
    inner
        .followers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(service)
        .and_then(Weak::upgrade)
}

fn subscribe(follower: Arc<Follower>) -> Watch {
    Watch::new(follower.shared.tx.subscribe(), Some(follower))
}

async fn start_listener(inner: &Arc<Inner>) -> Result<Arc<Listener>> {
    let (subscription, mut events) = listen(&inner.redis, &inner.channel).await?;
    let registry: Weak<Inner> = Arc::downgrade(inner);
    let task = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let Some(inner) = registry.upgrade() else {
                return;
            };
            let followers: Vec<Arc<Follower>> = {
                let map = inner
                    .followers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match &event {
                    ChannelEvent::Message(service) => std::str::from_utf8(service)
                        .ok()
                        .and_then(|s| map.get(s))
                        .and_then(Weak::upgrade)
                        .into_iter()
                        .collect(),
                    _ => map.values().filter_map(Weak::upgrade).collect(),
                }
            };
            for follower in followers {
                if !matches!(event, ChannelEvent::Message(_)) {
                    follower.shared.reconnected.store(true, Ordering::Relaxed);
                }
                follower.shared.notify.notify_one();
            }
        }
    });
    Ok(Arc::new(Listener {
        _subscription: subscription,
        task,
    }))
}

/// How long to sleep before the next unprompted re-read: just after the earliest known expiry
/// (a crashed instance leaves the snapshot right after its TTL lapses, with no notice), and at
/// most the resync interval.
fn next_wait(inner: &Inner, instances: &[(ServiceInstance, i64)], now_ms: i64) -> Duration {
    let resync = inner.config.resync_interval();
    instances
        .iter()
        .map(|(_, expiry)| *expiry)
        .min()
        .map(|earliest| Duration::from_millis((earliest - now_ms + 5).clamp(5, i64::MAX) as u64))
        .map_or(resync, |until| until.min(resync))
}

/// Re-reads `service` on each notice and timer. After a disconnect Redis may come back empty;
/// for one TTL from then the follower keeps the instances it knew whose TTL had not lapsed,
/// while their heartbeats re-register them, instead of announcing a mass departure.
async fn follow(
    inner: Arc<Inner>,
    service: String,
    shared: Arc<Shared>,
    mut known: Vec<(ServiceInstance, i64)>,
    mut wait: Duration,
) {
    let mut preserve_until: Option<Instant> = None;
    loop {
        tokio::select! {
            () = shared.notify.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
        if shared.reconnected.swap(false, Ordering::Relaxed) {
            preserve_until = Some(Instant::now() + inner.config.ttl());
        }
        match inner.list(&service).await {
            Ok(listing) => {
                let mut current = listing.instances;
                if preserve_until.is_some_and(|until| Instant::now() < until) {
                    for (instance, expiry) in &known {
                        if *expiry > listing.now_ms
                            && !current.iter().any(|(c, _)| c.id() == instance.id())
                        {
                            current.push((instance.clone(), *expiry));
                        }
                    }
                    current.sort_by(|a, b| a.0.id().cmp(b.0.id()));
                } else {
                    preserve_until = None;
                }
                wait = next_wait(&inner, &current, listing.now_ms);
                let snapshot: Snapshot = current.iter().map(|(i, _)| i.clone()).collect();
                shared.tx.send_if_modified(|seen| {
                    let changed = *seen != snapshot;
                    if changed {
                        *seen = snapshot;
                    }
                    changed
                });
                known = current;
            }
            Err(error) => {
                tracing::warn!(
                    target: "nilecare_service_discovery",
                    service,
                    %error,
                    "re-reading the service failed; keeping the last known instances"
                );
                wait = inner
                    .config
                    .resync_interval()
                    .min(Duration::from_millis(500));
            }
        }
    }
}
