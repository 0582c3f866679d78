//! Tenant labels that cannot explode: at most `N` tenants get a label of their own, chosen by
//! traffic (a Space-Saving heavy-hitters sketch), the rest share `other`; values are checked
//! (1-64 characters of `A-Z a-z 0-9 - _ . :`) so a hostile header cannot mint series.
//!
//! [`TenantLabels`] is the bound, shared by every layer of a service; [`RequestTenant`] is one
//! request's tenant, put in the request's extensions by [`HttpMetricsLayer`](crate::HttpMetricsLayer)
//! and read by the cache and rate-limit layers, so each crate labels its metrics with the same
//! bounded value without bounding anything itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use metrics::{Counter, SharedString};

use crate::read_mostly::ReadMostly;

/// The label of requests whose tenant is not tracked (or not a valid tenant id).
pub const OTHER_TENANT: &str = "other";
/// The label of requests without a tenant.
pub const NO_TENANT: &str = "none";
/// The longest tenant id accepted.
pub const MAX_TENANT_LEN: usize = 64;

/// Whether `tenant` is a valid tenant id: 1-64 characters of `A-Z a-z 0-9 - _ . :`, and not one
/// of the reserved labels `other` / `none`.
pub fn is_valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_LEN
        && tenant != OTHER_TENANT
        && tenant != NO_TENANT
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[derive(Debug)]
struct Count {
    /// Estimated requests (an overestimate by at most `error`); incremented under the read lock
    /// for tracked tenants, the hot path.
    count: AtomicU64,
    /// The count of the entry this one replaced.
    error: u64,
    /// The tenant's own label while it is tracked (shared: cloning it is a reference count).
    label: Option<SharedString>,
}

impl Count {
    fn guaranteed(&self) -> u64 {
        self.count
            .load(Ordering::Relaxed)
            .saturating_sub(self.error)
    }
}

#[derive(Debug, Default)]
struct Sketch {
    /// Every counted tenant; the tracked ones carry their label (one lookup per request).
    counts: HashMap<Box<str>, Count>,
    /// How many entries carry a label (at most `max_tracked`).
    tracked: usize,
    /// A lower bound of the smallest count among tracked tenants (counts only grow).
    promote_above: u64,
}

#[derive(Debug)]
struct Inner {
    max_tracked: usize,
    min_requests: u64,
    capacity: usize,
    sketch: RwLock<Sketch>,
}

/// The bounded set of tenant labels of one service (cheap to clone; share one).
///
/// A tenant gets a label of its own once the sketch guarantees it sent at least
/// [`min_requests`](Self::min_requests) (default 10) and, when `max_tracked` tenants are
/// already labelled, more than the least busy of them (which then folds into `other`).
///
/// Memory: a sketch of `4 × max_tracked` tenants (at least 64), each at most 64 bytes plus its
/// counters, and `max_tracked` labels: about 30 KB for the default 50. Series: each labelled
/// metric gets at most `max_tracked + 2` tenant values (`other`, `none`) while the busiest
/// tenants stay the busiest; one-off and made-up tenant ids never get a label. A tenant
/// displaced by a busier one keeps its old series until the recorder drops idle series
/// ([`MetricsBuilder::idle_timeout`](crate::MetricsBuilder::idle_timeout)).
#[derive(Debug, Clone)]
pub struct TenantLabels {
    inner: Arc<Inner>,
}

impl Default for TenantLabels {
    fn default() -> Self {
        Self::new(50)
    }
}

impl TenantLabels {
    /// At most `max_tracked` tenants with a label of their own (at least 1).
    pub fn new(max_tracked: usize) -> Self {
        let max_tracked = max_tracked.max(1);
        TenantLabels {
            inner: Arc::new(Inner {
                max_tracked,
                min_requests: 10,
                capacity: (max_tracked * 4).max(64),
                sketch: RwLock::new(Sketch::default()),
            }),
        }
    }

    /// Requests a tenant must have sent (as the sketch guarantees) before it gets a label of its
    /// own (default 10, at least 1). Call before sharing the labels.
    #[must_use]
    pub fn min_requests(self, requests: u64) -> Self {
        TenantLabels {
            inner: Arc::new(Inner {
                max_tracked: self.inner.max_tracked,
                min_requests: requests.max(1),
                capacity: self.inner.capacity,
                sketch: RwLock::new(Sketch::default()),
            }),
        }
    }

    /// The most tenants with their own label.
    pub fn max_tracked(&self) -> usize {
        self.inner.max_tracked
    }

    /// Counts one request of `tenant` and returns its label: the tenant itself when tracked,
    /// `other` when not (or invalid), `none` without one.
    pub fn observe(&self, tenant: Option<&str>) -> SharedString {
        let Some(tenant) = tenant else {
            return SharedString::const_str(NO_TENANT);
        };
        if !is_valid_tenant(tenant) {
            return SharedString::const_str(OTHER_TENANT);
        }
        {
            // The hot path: a tracked tenant, counted under the read lock.
            let sketch = self
                .inner
                .sketch
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = sketch.counts.get(tenant) {
                if let Some(label) = &count.label {
                    count.count.fetch_add(1, Ordering::Relaxed);
                    return label.clone();
                }
            }
        }
        let mut sketch = self
            .inner
            .sketch
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let guaranteed = match sketch.count(tenant, self.inner.capacity) {
            (_, Some(label)) => return label,
            (guaranteed, None) => guaranteed,
        };
        if guaranteed < self.inner.min_requests {
            return SharedString::const_str(OTHER_TENANT);
        }
        if sketch.tracked < self.inner.max_tracked {
            return sketch.track(tenant);
        }
        if guaranteed <= sketch.promote_above {
            return SharedString::const_str(OTHER_TENANT);
        }
        // A possibly busier tenant: compare with the least busy tracked one.
        let (least, least_count) = sketch.least_tracked();
        if guaranteed > least_count {
            sketch.untrack(&least);
            let label = sketch.track(tenant);
            sketch.promote_above = sketch.least_tracked().1;
            label
        } else {
            sketch.promote_above = least_count;
            SharedString::const_str(OTHER_TENANT)
        }
    }

    /// Tenants the sketch counts now (at most `4 × max_tracked`, at least 64): the memory bound.
    pub fn sketch_len(&self) -> usize {
        self.inner
            .sketch
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .counts
            .len()
    }

    /// The tenants with their own label, busiest first, with their estimated request counts.
    pub fn tracked(&self) -> Vec<(String, u64)> {
        let sketch = self
            .inner
            .sketch
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut tracked: Vec<(String, u64)> = sketch
            .counts
            .iter()
            .filter(|(_, c)| c.label.is_some())
            .map(|(t, c)| (t.to_string(), c.count.load(Ordering::Relaxed)))
            .collect();
        tracked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        tracked
    }
}

impl Sketch {
    /// Space-Saving: counts `tenant` (replacing the least counted entry when full); its
    /// guaranteed count and its label when tracked.
    fn count(&mut self, tenant: &str, capacity: usize) -> (u64, Option<SharedString>) {
        if let Some(count) = self.counts.get_mut(tenant) {
            *count.count.get_mut() += 1;
            return (count.guaranteed(), count.label.clone());
        }
        let mut new = Count {
            count: AtomicU64::new(1),
            error: 0,
            label: None,
        };
        if self.counts.len() >= capacity {
            let least = self
                .counts
                .iter()
                .map(|(t, c)| (t, c.count.load(Ordering::Relaxed), c.label.is_some()))
                .min_by_key(|(_, count, _)| *count)
                .map(|(t, count, tracked)| (t.clone(), count, tracked));
            if let Some((tenant, count, tracked)) = least {
                self.counts.remove(&tenant);
                if tracked {
                    self.tracked -= 1;
                }
                new.count = AtomicU64::new(count + 1);
                new.error = count;
            }
        }
        let guaranteed = new.guaranteed();
        self.counts.insert(Box::from(tenant), new);
        (guaranteed, None)
    }

    fn track(&mut self, tenant: &str) -> SharedString {
        let label = SharedString::from_shared(Arc::from(tenant));
        if let Some(count) = self.counts.get_mut(tenant) {
            count.label = Some(label.clone());
            self.tracked += 1;
        }
        label
    }

    fn untrack(&mut self, tenant: &str) {
        if let Some(count) = self.counts.get_mut(tenant) {
            if count.label.take().is_some() {
                self.tracked -= 1;
            }
        }
    }

    fn least_tracked(&self) -> (Box<str>, u64) {
        self.counts
            .iter()
            .filter(|(_, c)| c.label.is_some())
            .map(|(t, c)| (t.clone(), c.guaranteed()))
            .min_by_key(|(_, c)| *c)
            .unwrap_or_else(|| (Box::from(""), 0))
    }
}

/// One request's tenant: what the request named when it arrived, possibly refined by an inner
/// layer that knows better (the authenticated clinic claim), resolved to its bounded label once,
/// when a layer first records a metric with it. Put in the request's extensions by
/// [`HttpMetricsLayer::tenant`](crate::HttpMetricsLayer::tenant).
#[derive(Debug, Clone)]
pub struct RequestTenant {
    inner: Arc<RequestTenantInner>,
}

#[derive(Debug)]
struct RequestTenantInner {
    labels: TenantLabels,
    named: Named,
    refined: OnceLock<Box<str>>,
    label: OnceLock<SharedString>,
}

/// The tenant a request named, kept inline (valid ids are at most 64 bytes): no allocation per
/// request.
#[derive(Debug)]
enum Named {
    None,
    /// Too long to be a tenant id: labelled `other` when resolved.
    Invalid,
    Inline {
        len: u8,
        bytes: [u8; MAX_TENANT_LEN],
    },
}

impl Named {
    fn new(tenant: Option<&str>) -> Self {
        match tenant {
            None => Named::None,
            Some(t) if t.len() > MAX_TENANT_LEN => Named::Invalid,
            Some(t) => {
                let mut bytes = [0; MAX_TENANT_LEN];
                bytes[..t.len()].copy_from_slice(t.as_bytes());
                // At most 64: fits in a u8.
                Named::Inline {
                    len: t.len() as u8,
                    bytes,
                }
            }
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Named::None => None,
            // Not a valid id whatever its text: `observe` labels it `other`.
            Named::Invalid => Some(""),
            Named::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).ok(),
        }
    }
}

impl RequestTenant {
    /// The tenant `named` by the request, bounded by `labels`.
    pub fn new(labels: TenantLabels, named: Option<&str>) -> Self {
        RequestTenant {
            inner: Arc::new(RequestTenantInner {
                labels,
                named: Named::new(named),
                refined: OnceLock::new(),
                label: OnceLock::new(),
            }),
        }
    }

    /// Replaces the tenant the request named (e.g. with the authenticated clinic claim) unless
    /// the label was already resolved or refined. Returns whether it took effect.
    pub fn refine(&self, tenant: &str) -> bool {
        self.inner.label.get().is_none() && self.inner.refined.set(Box::from(tenant)).is_ok()
    }

    /// The bounded label (resolved and counted once per request).
    pub fn label(&self) -> SharedString {
        self.inner
            .label
            .get_or_init(|| {
                let tenant = match self.inner.refined.get() {
                    Some(refined) => Some(&**refined),
                    None => self.inner.named.as_str(),
                };
                self.inner.labels.observe(tenant)
            })
            .clone()
    }
}

/// A counter family labelled by a request's bounded tenant and one of a fixed set of results
/// (`hit` / `miss`, `allowed` / `limited`): the tenant counters of the cache and rate-limit
/// layers. Handles are cached per (tenant label, result) and recorder, so an increment is a
/// read-locked map lookup by the label's address, not a registry search.
#[derive(Debug)]
pub struct TenantCounters {
    name: &'static str,
    results: &'static [&'static str],
    /// (recorder, label address, result) → (the label, kept alive so its address is not reused,
    /// the handle). Entries of a recorder no longer installed stay (a few per test recorder).
    handles: ReadMostly<(usize, usize, usize), (SharedString, Counter)>,
}

impl TenantCounters {
    /// Counters named `name` with labels `tenant` and `result` (one of `results`).
    pub fn new(name: &'static str, results: &'static [&'static str]) -> Self {
        TenantCounters {
            name,
            results,
            handles: ReadMostly::default(),
        }
    }

    /// Adds one to (`tenant`'s label, `results[result]`); out-of-range results are ignored.
    pub fn increment(&self, tenant: &RequestTenant, result: usize) {
        let Some(result_label) = self.results.get(result) else {
            return;
        };
        let label = tenant.label();
        let entry = (
            crate::handles::current_recorder(),
            label.as_ptr() as usize,
            result,
        );
        let name = self.name;
        self.handles.with(
            entry,
            || {
                let counter = metrics::counter!(name, crate::names::TENANT_LABEL => label.clone(),
                    "result" => *result_label);
                (label.clone(), counter)
            },
            |(_, counter)| counter.increment(1),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_tenants_are_tracked_and_the_rest_fold_into_other() {
        let labels = TenantLabels::new(5);
        // 10 000 tenants seen once each, interleaved with 5 busy tenants.
        for i in 0..10_000 {
            let _ = labels.observe(Some(&format!("flood-{i}")));
            let _ = labels.observe(Some(&format!("busy-{}", i % 5)));
        }
        let tracked: Vec<String> = labels.tracked().into_iter().map(|(t, _)| t).collect();
        let mut expected: Vec<String> = (0..5).map(|i| format!("busy-{i}")).collect();
        let mut got = tracked.clone();
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
        assert_eq!(labels.observe(Some("busy-3")).as_ref(), "busy-3");
        assert_eq!(labels.observe(Some("flood-77")).as_ref(), OTHER_TENANT);
        let sketch = labels.inner.sketch.read().unwrap();
        assert!(sketch.counts.len() <= 64, "the sketch is bounded");
    }

    #[test]
    fn invalid_and_missing_tenants_get_fixed_labels() {
        let labels = TenantLabels::new(3);
        for bad in [
            "",
            "a b",
            "x".repeat(65).as_str(),
            "é",
            "other",
            "none",
            "{x}",
        ] {
            assert_eq!(labels.observe(Some(bad)).as_ref(), OTHER_TENANT, "{bad:?}");
        }
        assert_eq!(labels.observe(None).as_ref(), NO_TENANT);
        assert!(labels.tracked().is_empty());
    }

    #[test]
    fn a_request_tenant_is_counted_once_and_can_be_refined_before() {
        let labels = TenantLabels::new(3);
        let labels = labels.min_requests(1);
        let request = RequestTenant::new(labels.clone(), Some("clinic-9"));
        assert!(request.refine("clinic-7"));
        assert_eq!(request.label().as_ref(), "clinic-7");
        assert_eq!(request.label().as_ref(), "clinic-7");
        assert!(!request.refine("clinic-8"), "resolved labels do not change");
        assert_eq!(labels.tracked(), [("clinic-7".to_owned(), 1)]);
    }

    #[test]
    fn one_off_tenants_never_get_a_label() {
        let labels = TenantLabels::new(3);
        for i in 0..1000 {
            assert_eq!(
                labels.observe(Some(&format!("once-{i}"))).as_ref(),
                OTHER_TENANT
            );
        }
        let mut last = SharedString::const_str("");
        for _ in 0..12 {
            last = labels.observe(Some("steady"));
        }
        assert_eq!(
            last.as_ref(),
            "steady",
            "a steady tenant is labelled after 10 requests"
        );
        assert_eq!(labels.tracked().len(), 1);
    }
}
