//! The logger's per-layer filter: [`EnvFilter`], with its span bookkeeping skipped when no
//! directive can match a span.
//!
//! `EnvFilter` takes a read lock on its span table on every span entry, exit and close, even
//! when its directives name only targets and levels (then the table is always empty). Under a
//! multi-threaded runtime every poll of an instrumented future enters and exits its spans, and
//! that lock's counter moves between cores on each one. Directives with a span name or field
//! values (`target[span{field=value}]=level`) are the only ones that need the table; they
//! always contain `[`, so without one the span calls are skipped.

use tracing::span;
use tracing::{Metadata, subscriber::Interest};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};

/// [`EnvFilter`] that forwards span entries, exits, closes and records only when its
/// directives can match on spans.
pub(crate) struct LogFilter {
    env: EnvFilter,
    tracks_spans: bool,
}

impl LogFilter {
    /// `env` parsed from `directives`.
    pub(crate) fn new(env: EnvFilter, directives: &str) -> Self {
        LogFilter {
            env,
            tracks_spans: directives.contains('['),
        }
    }
}

impl<S> Filter<S> for LogFilter
where
    EnvFilter: Filter<S>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        Filter::enabled(&self.env, meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        Filter::callsite_enabled(&self.env, meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Filter::max_level_hint(&self.env)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.tracks_spans {
            Filter::on_new_span(&self.env, attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.tracks_spans {
            Filter::on_record(&self.env, id, values, ctx);
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.tracks_spans {
            Filter::on_enter(&self.env, id, ctx);
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.tracks_spans {
            Filter::on_exit(&self.env, id, ctx);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if self.tracks_spans {
            Filter::on_close(&self.env, id, ctx);
        }
    }
}
