//! Capturing log output in tests: a `MakeWriter` that appends to a shared buffer, and a
//! thread-scoped default subscriber that stays reliable while other tests run in parallel.

use std::io::Write;
use std::sync::{Arc, Mutex, Once, PoisonError};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::{Interest, Subscriber};
use tracing::{Dispatch, Event, Metadata, span};

use tracing_subscriber::fmt::MakeWriter;

/// An in-memory log sink: give clones to a subscriber, read the text afterwards.
#[derive(Clone, Debug, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// A new, empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far, as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// Every line parsed as JSON.
    ///
    /// # Panics
    /// On a line that is not JSON (the panic shows it).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Makes `dispatch` the current thread's default subscriber until the guard drops, in a way
/// that holds in a test binary whose other tests run at the same time on other threads.
///
/// `tracing::dispatcher::set_default` alone does not: while only one dispatcher is
/// registered, a callsite first reached on another thread (with no subscriber there) caches
/// the interest `never`, and this thread then loses the event. Before setting the scoped
/// default this installs, once per process, a global subscriber that enables nothing but
/// answers `sometimes` for every callsite, so every event is checked against the subscriber of
/// the thread that emits it. A global subscriber the test installed itself stays in place.
pub fn set_thread_default(dispatch: impl Into<Dispatch>) -> tracing::dispatcher::DefaultGuard {
    install_quiet_global();
    tracing::dispatcher::set_default(&dispatch.into())
}

/// Runs `f` with `dispatch` as the current thread's default subscriber (see
/// [`set_thread_default`] for why this differs from `tracing::dispatcher::with_default`).
pub fn with_thread_default<T>(dispatch: impl Into<Dispatch>, f: impl FnOnce() -> T) -> T {
    let _guard = set_thread_default(dispatch);
    f()
}

fn install_quiet_global() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // Fails only when the test installed its own global subscriber: that one then decides.
        let _ = tracing::dispatcher::set_global_default(Dispatch::new(Quiet));
    });
}

/// Enables nothing, but never lets a callsite cache `never`: threads without a subscriber of
/// their own stay silent and threads with one see all their events.
struct Quiet;

impl Subscriber for Quiet {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::OFF)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}
