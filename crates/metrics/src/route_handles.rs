//! The RED layer's metric handles per (route, method) and status, looked up in the recorder
//! once instead of on every request.
//!
//! Registering a labelled metric builds its key (a label vector) and searches the recorder's
//! registry; the layer did that three times per request. Routes and methods are bounded (route
//! templates, `unmatched`, ten method labels) and so are statuses, so the handles are kept,
//! together with the address of the recorder that issued them: with any other recorder (a
//! test-local one, or one installed later) the cache starts over.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{Gauge, Histogram, SharedString};

use crate::handles::current_recorder;
use crate::names::{HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION_SECONDS};
use crate::read_mostly::ReadMostly;

/// The method labels, in the order of their slots.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "_OTHER",
];

/// Handles of every (route, method) seen, for one recorder.
#[derive(Debug, Default)]
pub(crate) struct HandleCache {
    inner: RwLock<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    recorder: usize,
    routes: HashMap<Box<str>, [Option<Arc<RouteHandles>>; METHODS.len()]>,
}

/// The handles of one (route, method).
#[derive(Debug)]
pub(crate) struct RouteHandles {
    method: &'static str,
    route: SharedString,
    /// `http_server_active_requests{method, route}`.
    pub(crate) active: Gauge,
    /// Per status key: the duration histogram (its `_count` counts the requests).
    statuses: ReadMostly<u16, Histogram>,
    /// Per (status key, tenant label's address), when the layer labels tenants: tracked labels
    /// are shared (`Arc`) and `other`/`none` static, so the address identifies the label
    /// without hashing its text. The label is kept with its histogram, so its address cannot
    /// be reused by another label while the entry exists.
    tenants: ReadMostly<(u16, usize), (SharedString, Histogram)>,
}

impl HandleCache {
    /// The handles of (`route`, `METHODS[method]`), registered on first use.
    pub(crate) fn route(&self, route: &str, method: usize) -> Arc<RouteHandles> {
        let method = method.min(METHODS.len() - 1);
        let recorder = current_recorder();
        {
            let cached = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            if cached.recorder == recorder {
                if let Some(Some(handles)) = cached.routes.get(route).map(|m| &m[method]) {
                    return Arc::clone(handles);
                }
            }
        }
        let mut cached = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if cached.recorder != recorder {
            cached.routes.clear();
            cached.recorder = recorder;
        }
        let slots = cached.routes.entry(Box::from(route)).or_default();
        Arc::clone(slots[method].get_or_insert_with(|| {
            let route = SharedString::from_owned(route.to_owned());
            let method = METHODS[method];
            Arc::new(RouteHandles {
                active: metrics::gauge!(HTTP_SERVER_ACTIVE_REQUESTS, "method" => method, "route" => route.clone()),
                method,
                route,
                statuses: ReadMostly::default(),
                tenants: ReadMostly::default(),
            })
        }))
    }
}

impl RouteHandles {
    /// Records one request's duration under the status keyed `key` (the status
    /// label, `label()`, is only built when the status is new for this route).
    pub(crate) fn record(&self, key: u16, label: impl FnOnce() -> SharedString, seconds: f64) {
        self.statuses.with(
            key,
            || self.duration_histogram(label(), None),
            |histogram| histogram.record(seconds),
        );
    }

    /// Like [`record`](Self::record), with the request's bounded `tenant` label.
    pub(crate) fn record_tenant(
        &self,
        key: u16,
        label: impl FnOnce() -> SharedString,
        tenant: SharedString,
        seconds: f64,
    ) {
        let entry = (key, tenant.as_ptr() as usize);
        self.tenants.with(
            entry,
            || {
                (
                    tenant.clone(),
                    self.duration_histogram(label(), Some(&tenant)),
                )
            },
            |(_, histogram)| histogram.record(seconds),
        );
    }

    /// The duration histogram of this route and method with `status` (and `tenant`): built once
    /// per new status or tenant, so its label list may allocate.
    fn duration_histogram(&self, status: SharedString, tenant: Option<&SharedString>) -> Histogram {
        let mut labels = vec![
            ("method", SharedString::const_str(self.method)),
            ("route", self.route.clone()),
            ("status", status),
        ];
        labels.extend(tenant.map(|t| (crate::names::TENANT_LABEL, t.clone())));
        metrics::histogram!(HTTP_SERVER_REQUEST_DURATION_SECONDS, labels.as_slice())
    }
}
