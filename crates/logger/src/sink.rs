//! [`Sink`]: where the formatting layer writes its lines.

use std::io::{self, Write};

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::background::BackgroundWriter;

/// The background writer (standard output, files), or a caller's own `MakeWriter`.
///
/// An enum rather than a `BoxMakeWriter` around both: a boxed `MakeWriter` boxes the writer it
/// makes, an allocation per line, and the background writer's line is then a borrow, not a
/// clone of its `Arc`.
pub(crate) enum Sink {
    Background(BackgroundWriter),
    Custom(BoxMakeWriter),
}

/// The writer of one line.
pub(crate) enum LineWriter<'a> {
    Background(&'a BackgroundWriter),
    Custom(Box<dyn Write + 'a>),
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LineWriter::Background(w) => w.write(buf),
            LineWriter::Custom(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            LineWriter::Background(w) => w.write_all(buf),
            LineWriter::Custom(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LineWriter::Background(w) => w.flush(),
            LineWriter::Custom(w) => w.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        match self {
            Sink::Background(w) => LineWriter::Background(w),
            Sink::Custom(m) => LineWriter::Custom(m.make_writer()),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        match self {
            Sink::Background(w) => LineWriter::Background(w),
            Sink::Custom(m) => LineWriter::Custom(m.make_writer_for(meta)),
        }
    }
}
