//! Sampling a request before its server span is built.
//!
//! Building an OpenTelemetry span through `tracing-opentelemetry` costs about 1.5 µs (its span
//! builder, the attributes, a lock and a clock read on every poll), and with a 1 % sampling
//! ratio 99 % of that work is thrown away. So [`ServerTraceLayer`](crate::ServerTraceLayer)
//! asks first: [`ExportFilter`], the filter of the layer [`TracingGuard::layer`] returns, holds
//! the provider's sampler, and decides each request the way the SDK would (same sampler, same
//! trace id, same parent). A sampled request gets the full server span, built by the SDK with
//! the trace id the decision was made on ([`PresetIdGenerator`]). A request that is not
//! sampled gets a span the exporter never sees, and an OpenTelemetry context of its own: the
//! trace id (the caller's, or a new one), a new span id and the caller's `tracestate`, flags
//! "not sampled", exactly the context the SDK gives a dropped span. That context is current
//! while the request runs, so log lines carry its ids, child spans inherit the "not sampled"
//! decision, and outgoing calls propagate it.
//!
//! [`TracingGuard::layer`]: crate::TracingGuard::layer

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, Sampler};
use tracing::Metadata;
use tracing::subscriber::Interest;
use tracing_subscriber::layer::{Context, Filter};

/// The target of the server span of a request that is not sampled: the exporter's layer never
/// sees it (other layers do: the logger reads its `request_id`).
pub(crate) const UNSAMPLED_TARGET: &str = "nilecare_tracing::unsampled";

thread_local! {
    /// The trace id the next root span built on this thread takes (set only around the start
    /// of a sampled server span).
    static PRESET_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The provider's id generator: random ids, except that a root span started inside
/// [`with_trace_id`] takes the trace id its sampling was decided on.
#[derive(Debug, Default)]
pub(crate) struct PresetIdGenerator(RandomIdGenerator);

impl IdGenerator for PresetIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        PRESET_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// Runs `start` (which starts one span) with `trace_id` as the trace id of a new root.
#[cfg(feature = "axum")]
pub(crate) fn with_trace_id<R>(trace_id: Option<TraceId>, start: impl FnOnce() -> R) -> R {
    PRESET_TRACE_ID.with(|preset| preset.set(trace_id));
    let started = start();
    PRESET_TRACE_ID.with(|preset| preset.set(None));
    started
}

/// What a request's server span will be.
#[cfg(feature = "axum")]
pub(crate) enum Plan {
    /// Sampled: build the full span; a new root takes this trace id.
    Sampled(Option<TraceId>),
    /// Not sampled: no exported span; this context is the request's.
    Unsampled(opentelemetry::Context),
}

/// Which spans and events the OpenTelemetry layer of [`TracingGuard::layer`] sees (spans at
/// INFO and above except unsampled server spans, WARN and ERROR events), and the sampler it
/// decides server spans with (found by [`ServerTraceLayer`] through the current dispatcher).
///
/// [`TracingGuard::layer`]: crate::TracingGuard::layer
/// [`ServerTraceLayer`]: crate::ServerTraceLayer
#[derive(Debug)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))] // the sampler serves the server layer
pub(crate) struct ExportFilter {
    sampler: Sampler,
    ids: RandomIdGenerator,
}

impl ExportFilter {
    pub(crate) fn new(sampler: Sampler) -> Self {
        ExportFilter {
            sampler,
            ids: RandomIdGenerator::default(),
        }
    }

    fn exported(meta: &Metadata<'_>) -> bool {
        let level = *meta.level();
        if meta.is_span() {
            level <= tracing::Level::INFO && meta.target() != UNSAMPLED_TARGET
        } else {
            level <= tracing::Level::WARN
        }
    }

    #[cfg(feature = "axum")]
    /// Decides a server span whose parent is `parent` (an empty context for a new trace), as
    /// the SDK would when starting it.
    pub(crate) fn plan(&self, parent: &opentelemetry::Context) -> Plan {
        use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt as _, TraceFlags};
        use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample as _};
        let parent_span = parent.span();
        let parent_sc = parent_span.span_context();
        let (trace_id, new_root) = if parent_sc.is_valid() {
            (parent_sc.trace_id(), None)
        } else {
            let id = self.ids.new_trace_id();
            (id, Some(id))
        };
        let result = self.sampler.should_sample(
            Some(parent),
            trace_id,
            "HTTP request",
            &SpanKind::Server,
            &[],
            &[],
        );
        match result.decision {
            SamplingDecision::Drop => {
                let own = SpanContext::new(
                    trace_id,
                    self.ids.new_span_id(),
                    TraceFlags::default(),
                    false,
                    result.trace_state,
                );
                Plan::Unsampled(parent.with_remote_span_context(own))
            }
            SamplingDecision::RecordOnly | SamplingDecision::RecordAndSample => {
                Plan::Sampled(new_root)
            }
        }
    }
}

/// The filter of the exporter's layer in the current dispatcher, if it is this crate's.
#[cfg(feature = "axum")]
pub(crate) fn plan(parent: &opentelemetry::Context) -> Option<Plan> {
    tracing::dispatcher::get_default(|dispatch| {
        dispatch
            .downcast_ref::<ExportFilter>()
            .map(|filter| filter.plan(parent))
    })
}

/// Whether `meta` is the span nilecare-logger's request-id layer makes when no server span of
/// this crate is current (with this exporter on, when no logger records the server span of a
/// request that is not sampled).
fn is_logger_request_span(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == "request" && meta.target() == "nilecare_logger::request_id"
}

/// Whether the current OpenTelemetry context is a request that is not sampled (the context
/// [`ServerTraceLayer`](crate::ServerTraceLayer) makes current while such a request runs).
fn in_unsampled_request() -> bool {
    opentelemetry::Context::map_current(|cx| {
        use opentelemetry::trace::TraceContextExt as _;
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid() && !sc.is_sampled()
    })
}

impl<S> Filter<S> for ExportFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        // The request-id layer's own span inside a request that is not sampled would only be
        // built to be dropped (its parent is never sampled). The span itself may still exist
        // (a per-layer filter's answer at run time only hides it from this layer), and a
        // logger may record it.
        Self::exported(meta) && !(is_logger_request_span(meta) && in_unsampled_request())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if !Self::exported(meta) {
            Interest::never()
        } else if is_logger_request_span(meta) {
            // Decided per span, by the request it is made in.
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }
}
