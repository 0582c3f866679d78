//! [`Logger`] builder: identity, filter, format, writer; `init` or `build`.

use std::io::IsTerminal;
use std::path::PathBuf;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::background::{BackgroundWorker, BackgroundWriter};
use crate::error::{Error, Result};
use crate::filter::LogFilter;
use crate::json::{Identity, JsonLayer};
use crate::redact::{REDACTED, Redactor};
use crate::sink::Sink;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One flat JSON object per line (for log pipelines).
    Json,
    /// Human-readable lines (for terminals).
    Pretty,
}

/// How log files roll over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// A new file every hour.
    Hourly,
    /// A new file every day.
    Daily,
    /// One file forever.
    Never,
}

/// Where lines go.
pub enum Writer {
    /// Standard output, through a background thread.
    Stdout,
    /// Files `directory/prefix.YYYY-MM-DD[-HH]`, through a background thread.
    File {
        /// Directory (created if missing).
        directory: PathBuf,
        /// File name prefix.
        prefix: String,
        /// Roll-over.
        rotation: Rotation,
    },
    /// Any `MakeWriter`, written synchronously (tests, custom sinks).
    Custom(BoxMakeWriter),
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Writer::Stdout => f.write_str("Stdout"),
            Writer::File {
                directory,
                prefix,
                rotation,
            } => f
                .debug_struct("File")
                .field("directory", directory)
                .field("prefix", prefix)
                .field("rotation", rotation)
                .finish(),
            Writer::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Keeps the background writer alive; dropping it writes every pending line and stops the
/// writing thread. Hold it in `main`.
#[must_use = "dropping the guard stops the background writer; keep it until the end of main"]
#[derive(Debug)]
pub struct LoggerGuard {
    worker: Option<BackgroundWorker>,
}

impl LoggerGuard {
    /// Lines dropped so far because the sink fell more than 4 MiB behind (a request never
    /// waits for a slow sink); always 0 for [`Writer::Custom`], which is written synchronously.
    pub fn dropped_lines(&self) -> u64 {
        self.worker
            .as_ref()
            .map_or(0, BackgroundWorker::dropped_lines)
    }
}

/// Logging setup for a service.
///
/// ```no_run
/// let _guard = nilecare_logger::Logger::builder()
///     .service("orchestrator")
///     .version(env!("CARGO_PKG_VERSION"))
///     .environment("production")
///     .filter("info,nilecare=debug")       // RUST_LOG syntax; RUST_LOG wins when set
///     .init()?;                             // an error (not a panic) when a subscriber exists
/// tracing::info!(patient_id = 123, password = "hunter2", "patient loaded"); // password: [REDACTED]
/// # Ok::<(), nilecare_logger::Error>(())
/// ```
pub struct Logger {
    extra: Option<ExtraLayer>,
    identity: Identity,
    filter: String,
    format: Option<Format>,
    writer: Writer,
    sensitive: Vec<String>,
    use_rust_log: bool,
    log_panics: bool,
}

/// A layer added under the logger's own (e.g. nilecare-tracing's OpenTelemetry layer).
pub type ExtraLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("identity", &self.identity)
            .field("filter", &self.filter)
            .field("format", &self.format)
            .field("writer", &self.writer)
            .field("extra_layer", &self.extra.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Logger {
    fn default() -> Self {
        Logger {
            extra: None,
            identity: Identity::default(),
            filter: "info".into(),
            format: None,
            writer: Writer::Stdout,
            sensitive: Vec::new(),
            use_rust_log: true,
            log_panics: false,
        }
    }
}

impl Logger {
    /// A builder with the defaults: filter `info` (or `RUST_LOG`), JSON unless stdout is a
    /// terminal, standard output.
    pub fn builder() -> Logger {
        Logger::default()
    }

    /// `service` on every JSON line.
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.identity.service = Some(name.into());
        self
    }

    /// `version` on every JSON line.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.identity.version = Some(version.into());
        self
    }

    /// `environment` on every JSON line.
    #[must_use]
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.identity.environment = Some(environment.into());
        self
    }

    /// The level filter in `RUST_LOG` syntax (`info,nilecare=debug,hyper=warn`); checked by
    /// `init`/`build`. `RUST_LOG`, when set, takes precedence unless [`ignore_rust_log`](Self::ignore_rust_log).
    #[must_use]
    pub fn filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = directives.into();
        self
    }

    /// Do not read `RUST_LOG`.
    #[must_use]
    pub fn ignore_rust_log(mut self) -> Self {
        self.use_rust_log = false;
        self
    }

    /// The format (default: pretty when stdout is a terminal, JSON otherwise).
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Where lines go (default: standard output through a background thread).
    #[must_use]
    pub fn writer(mut self, writer: Writer) -> Self {
        self.writer = writer;
        self
    }

    /// Adds a layer directly on the registry, beside the logger's output: pass
    /// `nilecare_tracing::TracingGuard::layer()` so spans are exported and log lines carry
    /// trace ids. The logger's filter applies to its own output only (a per-layer filter), so
    /// the added layer sees every span and event its own filter admits, at any log level.
    #[must_use]
    pub fn with_layer(mut self, layer: ExtraLayer) -> Self {
        self.extra = Some(layer);
        self
    }

    /// More sensitive field-name fragments (added to [`DEFAULT_SENSITIVE`](crate::DEFAULT_SENSITIVE)).
    #[must_use]
    pub fn redact<I, S>(mut self, fragments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sensitive.extend(fragments.into_iter().map(Into::into));
        self
    }

    fn env_filter(&self) -> Result<LogFilter> {
        let directives = match std::env::var("RUST_LOG") {
            Ok(v) if self.use_rust_log && !v.trim().is_empty() => v,
            _ => self.filter.clone(),
        };
        let env = EnvFilter::try_new(&directives).map_err(|e| Error::InvalidConfig {
            field: "filter",
            message: format!("{e} (in {directives:?})"),
        })?;
        Ok(LogFilter::new(env, &directives))
    }

    /// Builds the subscriber without installing it (tests: `tracing::dispatcher::with_default`).
    pub fn build(self) -> Result<(tracing::Dispatch, LoggerGuard)> {
        let filter = self.env_filter()?;
        let format = self.format.unwrap_or(if std::io::stdout().is_terminal() {
            Format::Pretty
        } else {
            Format::Json
        });
        let (writer, worker) = match self.writer {
            Writer::Stdout => {
                let (w, g) = BackgroundWriter::spawn(Box::new(std::io::stdout()), "log-stdout")
                    .map_err(|e| Error::WriterThread(e.to_string()))?;
                (Sink::Background(w), Some(g))
            }
            Writer::File {
                directory,
                prefix,
                rotation,
            } => {
                std::fs::create_dir_all(&directory)
                    .map_err(|e| Error::File(format!("{}: {e}", directory.display())))?;
                let rotation = match rotation {
                    Rotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
                    Rotation::Daily => tracing_appender::rolling::Rotation::DAILY,
                    Rotation::Never => tracing_appender::rolling::Rotation::NEVER,
                };
                let appender = tracing_appender::rolling::RollingFileAppender::builder()
                    .rotation(rotation)
                    .filename_prefix(prefix)
                    .build(&directory)
                    .map_err(|e| Error::File(format!("{}: {e}", directory.display())))?;
                let (w, g) = BackgroundWriter::spawn(Box::new(appender), "log-file")
                    .map_err(|e| Error::WriterThread(e.to_string()))?;
                (Sink::Background(w), Some(g))
            }
            Writer::Custom(w) => (Sink::Custom(w), None),
        };
        let redactor = Redactor::new(&self.sensitive);
        let dispatch = match format {
            Format::Json => tracing::Dispatch::new(
                tracing_subscriber::registry()
                    .with(self.extra)
                    .with(JsonLayer::new(writer, redactor, self.identity).with_filter(filter)),
            ),
            Format::Pretty => {
                let redacting = tracing_subscriber::fmt::format::debug_fn(
                    move |w: &mut tracing_subscriber::fmt::format::Writer<'_>,
                          field: &tracing::field::Field,
                          value: &dyn std::fmt::Debug| {
                        if field.name() == "message" {
                            write!(w, "{value:?}")
                        } else if redactor.is_sensitive(field.name()) {
                            write!(w, "{}={REDACTED}", field.name())
                        } else {
                            write!(w, "{}={value:?}", field.name())
                        }
                    },
                )
                .delimited(" ");
                tracing::Dispatch::new(
                    tracing_subscriber::registry().with(self.extra).with(
                        tracing_subscriber::fmt::layer()
                            .with_writer(writer)
                            .fmt_fields(redacting)
                            .with_filter(filter),
                    ),
                )
            }
        };
        Ok((dispatch, LoggerGuard { worker }))
    }

    /// With [`init`](Self::init): replace Rust's panic message on stderr (plain text, with a
    /// backtrace when `RUST_BACKTRACE` is set) by one log line at ERROR (target
    /// `nilecare::panic`, fields `panic_message`, `panic_location`, `panic_backtrace` when
    /// captured) in the configured format, inside the current span (so a request's panic carries
    /// its `request_id` and trace). A panic caught by nilecare-error-handler's
    /// `catch_panic_layer` is then logged once, by this line. Default off.
    #[must_use]
    pub fn log_panics(mut self, on: bool) -> Self {
        self.log_panics = on;
        self
    }

    /// Builds and installs the subscriber globally; [`Error::AlreadyInitialized`] when one exists.
    pub fn init(self) -> Result<LoggerGuard> {
        let log_panics = self.log_panics;
        let (dispatch, guard) = self.build()?;
        tracing::dispatcher::set_global_default(dispatch).map_err(|_| Error::AlreadyInitialized)?;
        if log_panics {
            std::panic::set_hook(Box::new(log_panic));
        }
        Ok(guard)
    }
}

/// The panic hook of [`Logger::log_panics`]: one ERROR line instead of the plain-text message.
fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let backtrace = std::backtrace::Backtrace::capture();
    let captured = backtrace.status() == std::backtrace::BacktraceStatus::Captured;
    tracing::error!(
        target: "nilecare::panic",
        panic_message = message,
        panic_location = %location,
        panic_backtrace = captured.then_some(tracing::field::display(&backtrace)),
        "panicked"
    );
    #[cfg(feature = "axum")]
    nilecare_error_handler::panic_logged_by_hook();
}
