//! [`ResolvedService`]: one followed service, its local balancer and the task that keeps it
//! current (registry changes, probes, ejections).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Options;
use crate::balance::{Balancer, Guard, OutlierSink, Stats};
use crate::health::{self, ProbeClient, ProbeResult};
use crate::instance::{ServiceInstance, Status};
use crate::watch::{Snapshot, Watch};

/// What the resolver thinks of a registered, Up instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Picked.
    Healthy,
    /// Failing its active health checks.
    Unhealthy,
    /// Ejected by outlier detection until the ejection ends.
    Ejected,
}

/// A service followed by a [`Resolver`](crate::Resolver): cheap to clone, picks without
/// waiting. The following stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct ResolvedService {
    view: Arc<View>,
}

#[derive(Debug)]
struct View {
    name: Arc<str>,
    balancer: RwLock<Arc<Balancer>>,
    health: RwLock<HashMap<String, Health>>,
    panicking: AtomicBool,
    selections: nilecare_metrics::CachedCounters<1>,
    task: std::sync::OnceLock<JoinHandle<()>>,
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

impl ResolvedService {
    /// Starts following through `watch`; the first balancer is built before returning.
    pub(crate) fn follow(name: &str, watch: Watch, options: Arc<Options>) -> Self {
        let (outlier_tx, outlier_rx) = mpsc::unbounded_channel();
        let mut state = State {
            name: name.into(),
            snapshot: watch.current(),
            stats: HashMap::new(),
            probes: HashMap::new(),
            ejections: HashMap::new(),
            outlier_tx,
            options,
        };
        let view = Arc::new(View {
            name: name.into(),
            balancer: RwLock::new(Arc::new(Balancer::new(state.options.strategy, []))),
            health: RwLock::new(HashMap::new()),
            panicking: AtomicBool::new(false),
            selections: crate::metrics::selections(name),
            task: std::sync::OnceLock::new(),
        });
        state.rebuild(&view);
        let task = tokio::spawn(run(state, watch, outlier_rx, Arc::downgrade(&view)));
        let _ = view.task.set(task);
        ResolvedService { view }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.view.name
    }

    /// An instance to call, or `None` when none may be picked.
    pub fn select(&self) -> Option<Guard> {
        let guard = self
            .view
            .balancer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .select();
        if guard.is_some() {
            self.view.selections.increment(0, 1);
        }
        guard
    }

    /// The current balancer: every registered instance, those the resolver will not pick
    /// (unhealthy, ejected, outside the preferred zone) shown as Down.
    pub fn balancer(&self) -> Arc<Balancer> {
        self.view
            .balancer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What the resolver thinks of the registered, Up instance `id`.
    pub fn health(&self, id: &str) -> Option<Health> {
        self.view
            .health
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    }

    /// Whether panic mode is on: too few healthy instances, so all registered Up instances
    /// are picked.
    pub fn is_panicking(&self) -> bool {
        self.view.panicking.load(Ordering::Relaxed)
    }
}

/// Active-check bookkeeping of one instance.
#[derive(Debug, Default)]
struct Probes {
    unhealthy: bool,
    successes: u32,
    failures: u32,
}

/// Outlier bookkeeping of one instance.
#[derive(Debug, Default)]
struct Ejection {
    until: Option<Instant>,
    times: u32,
}

/// Everything the follower task owns.
struct State {
    name: Arc<str>,
    options: Arc<Options>,
    snapshot: Snapshot,
    stats: HashMap<String, Arc<Stats>>,
    probes: HashMap<String, Probes>,
    ejections: HashMap<String, Ejection>,
    outlier_tx: mpsc::UnboundedSender<Arc<str>>,
}

impl State {
    fn health_of(&self, id: &str) -> Health {
        if self.ejections.get(id).is_some_and(|e| e.until.is_some()) {
            Health::Ejected
        } else if self.probes.get(id).is_some_and(|p| p.unhealthy) {
            Health::Unhealthy
        } else {
            Health::Healthy
        }
    }

    fn registered_up(&self) -> impl Iterator<Item = &ServiceInstance> {
        self.snapshot.iter().filter(|i| i.is_up())
    }

    /// Forgets instances that left and builds the balancer over the ones that may be picked.
    fn rebuild(&mut self, view: &View) {
        let present: HashSet<&str> = self.snapshot.iter().map(ServiceInstance::id).collect();
        self.stats.retain(|id, _| present.contains(id.as_str()));
        self.probes.retain(|id, _| present.contains(id.as_str()));
        self.ejections.retain(|id, _| present.contains(id.as_str()));

        let health: HashMap<String, Health> = self
            .registered_up()
            .map(|i| (i.id().to_owned(), self.health_of(i.id())))
            .collect();
        let registered = health.len();
        let healthy = health.values().filter(|h| **h == Health::Healthy).count();
        let panicking =
            registered > 0 && healthy * 100 < self.options.panic_threshold as usize * registered;
        if panicking != view.panicking.swap(panicking, Ordering::Relaxed) {
            if panicking {
                tracing::warn!(
                    target: "nilecare_service_discovery",
                    service = &*self.name, healthy, registered,
                    "panic mode: too few healthy instances, balancing over all"
                );
            } else {
                tracing::info!(target: "nilecare_service_discovery", service = &*self.name, "panic mode over");
            }
        }
        let mut pickable: HashSet<&str> = health
            .iter()
            .filter(|(_, h)| panicking || **h == Health::Healthy)
            .map(|(id, _)| id.as_str())
            .collect();
        if let Some(zone) = &self.options.zone {
            let local: HashSet<&str> = self
                .snapshot
                .iter()
                .filter(|i| pickable.contains(i.id()) && i.zone() == Some(zone.as_str()))
                .map(ServiceInstance::id)
                .collect();
            if !local.is_empty() {
                pickable = local;
            }
        }

        let mut entries = Vec::with_capacity(self.snapshot.len());
        for instance in self.snapshot.iter() {
            let stats = self
                .stats
                .entry(instance.id().to_owned())
                .or_insert_with(|| {
                    Arc::new(Stats::new(self.options.outliers.as_ref().map(|o| {
                        OutlierSink {
                            id: instance.id().into(),
                            threshold: o.consecutive_failures,
                            tx: self.outlier_tx.clone(),
                        }
                    })))
                })
                .clone();
            let effective = if pickable.contains(instance.id()) || !instance.is_up() {
                instance.clone()
            } else {
                instance.clone().with_status(Status::Down)
            };
            entries.push((effective, stats));
        }
        let balancer = Arc::new(Balancer::with_stats(self.options.strategy, entries));
        *view
            .balancer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = balancer;

        let count = |status: Status| {
            self.snapshot
                .iter()
                .filter(|i| i.status() == status)
                .count()
        };
        let ejected = health.values().filter(|h| **h == Health::Ejected).count();
        let unhealthy = health.values().filter(|h| **h == Health::Unhealthy).count();
        crate::metrics::instances(
            &self.name,
            healthy,
            count(Status::Draining),
            count(Status::Down) + unhealthy,
            ejected,
        );
        *view
            .health
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = health;
    }

    /// Applies one probe result; whether the instance's health flipped.
    fn record_probe(&mut self, id: &str, result: ProbeResult) -> bool {
        crate::metrics::health_check(&self.name, result.label());
        let Some(check) = &self.options.health_check else {
            return false;
        };
        let (healthy_after, unhealthy_after) = (check.healthy_threshold, check.unhealthy_threshold);
        let probes = self.probes.entry(id.to_owned()).or_default();
        let was = probes.unhealthy;
        if result == ProbeResult::Success {
            probes.failures = 0;
            probes.successes += 1;
            if probes.unhealthy && probes.successes >= healthy_after {
                probes.unhealthy = false;
            }
        } else {
            probes.successes = 0;
            probes.failures += 1;
            if !probes.unhealthy && probes.failures >= unhealthy_after {
                probes.unhealthy = true;
            }
        }
        if was != probes.unhealthy {
            tracing::info!(
                target: "nilecare_service_discovery",
                service = &*self.name, id, healthy = !probes.unhealthy,
                "health check changed an instance's health"
            );
        }
        was != probes.unhealthy
    }

    /// Ejects `id` unless the cap is reached; whether it was ejected.
    fn eject(&mut self, id: &str) -> bool {
        let Some(outliers) = &self.options.outliers else {
            return false;
        };
        let registered = self.registered_up().count();
        let ejected = self
            .ejections
            .values()
            .filter(|e| e.until.is_some())
            .count();
        let known = self.registered_up().any(|i| i.id() == id);
        let already = self.ejections.get(id).is_some_and(|e| e.until.is_some());
        let capped = ejected * 100 >= outliers.max_ejection_percent as usize * registered;
        if let Some(stats) = self.stats.get(id) {
            // Count afresh: after a refused ejection the next run of failures asks again.
            stats.reset_failures();
        }
        if !known || already || capped {
            return false;
        }
        let ejection = self.ejections.entry(id.to_owned()).or_default();
        ejection.times += 1;
        let length = outliers.base_ejection_time * ejection.times;
        ejection.until = Some(Instant::now() + length);
        crate::metrics::ejection(&self.name);
        tracing::warn!(
            target: "nilecare_service_discovery",
            service = &*self.name, id, times = ejection.times, ?length,
            "outlier ejected"
        );
        true
    }

    /// Ends the ejections that are over; whether any ended.
    fn end_ejections(&mut self, now: Instant) -> bool {
        let mut ended = false;
        for (id, ejection) in &mut self.ejections {
            if ejection.until.is_some_and(|until| until <= now) {
                ejection.until = None;
                ended = true;
                if let Some(stats) = self.stats.get(id) {
                    stats.reset_failures();
                }
            }
        }
        ended
    }

    fn next_ejection_end(&self) -> Option<Instant> {
        self.ejections.values().filter_map(|e| e.until).min()
    }

    /// Starts one round of probes; results arrive on `results`.
    fn start_probes(
        &self,
        client: &ProbeClient,
        results: &mpsc::UnboundedSender<(String, ProbeResult)>,
    ) {
        let Some(check) = &self.options.health_check else {
            return;
        };
        for instance in self.registered_up().filter(|i| health::probeable(i)) {
            let (client, check, instance, results) = (
                client.clone(),
                check.clone(),
                instance.clone(),
                results.clone(),
            );
            tokio::spawn(async move {
                let result = health::probe(&client, &check, &instance).await;
                let _ = results.send((instance.id().to_owned(), result));
            });
        }
    }
}

/// Keeps the view current until it is dropped or the registry goes away.
async fn run(
    mut state: State,
    mut watch: Watch,
    mut outliers: mpsc::UnboundedReceiver<Arc<str>>,
    view: Weak<View>,
) {
    let far = Duration::from_secs(86_400 * 365);
    let client: ProbeClient = health::http_client(
        state
            .options
            .health_check
            .as_ref()
            .map_or_else(crate::tls::default_config, health::HealthCheck::tls_config),
    );
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<(String, ProbeResult)>();
    let mut next_probe = Instant::now();
    loop {
        let probing = state.options.health_check.is_some();
        let ejection_end = state
            .next_ejection_end()
            .unwrap_or_else(|| Instant::now() + far);
        let probe_at = if probing {
            next_probe
        } else {
            Instant::now() + far
        };
        let changed = tokio::select! {
            snapshot = watch.changed() => match snapshot {
                Some(snapshot) => {
                    state.snapshot = snapshot;
                    true
                }
                None => return,
            },
            Some(id) = outliers.recv() => state.eject(&id),
            Some((id, result)) = probe_rx.recv() => state.record_probe(&id, result),
            () = tokio::time::sleep_until(ejection_end) => state.end_ejections(Instant::now()),
            () = tokio::time::sleep_until(probe_at) => {
                state.start_probes(&client, &probe_tx);
                if let Some(check) = &state.options.health_check {
                    next_probe = Instant::now() + check.next_wait();
                }
                false
            }
        };
        if changed {
            let Some(view) = view.upgrade() else {
                return;
            };
            state.rebuild(&view);
        }
    }
}
