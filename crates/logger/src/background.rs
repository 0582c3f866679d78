//! The background writer: log lines are appended to an in-memory batch under a short lock, and
//! one thread writes whole batches to the sink (standard output, a rolling file).
//!
//! Per line the request path pays one uncontended lock and a copy: no allocation, no channel
//! message, no system call and, while lines keep coming, no wake-up of the writing thread. The
//! thread writes what has gathered, then lingers a moment before it sleeps, so under load it
//! writes one batch per [`LINGER`] with one system call instead of one per line. A line written
//! while the thread sleeps wakes it at once, so a quiet service still logs without delay.
//!
//! The batch is bounded ([`MAX_PENDING_BYTES`]): when the sink cannot keep up, further lines
//! are dropped and counted (the request never blocks on a slow sink), and the count is
//! reported by [`LoggerGuard::dropped_lines`](crate::LoggerGuard::dropped_lines).

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writing thread waits for more lines after a batch before it sleeps.
pub(crate) const LINGER: Duration = Duration::from_millis(1);

/// The most bytes waiting to be written; lines beyond it are dropped and counted.
pub(crate) const MAX_PENDING_BYTES: usize = 4 << 20;

/// A batch larger than this is not kept for reuse (a burst must not pin its memory).
const KEPT_CAPACITY: usize = 256 << 10;

struct State {
    pending: Vec<u8>,
    /// The writing thread sleeps until a line arrives (it is not lingering or writing).
    sleeping: bool,
    closed: bool,
    dropped: u64,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` handed to the formatting layer: each write is one whole line.
#[derive(Clone)]
pub(crate) struct BackgroundWriter {
    shared: Arc<Shared>,
}

impl BackgroundWriter {
    /// Starts the writing thread over `sink`.
    pub(crate) fn spawn(
        sink: Box<dyn Write + Send>,
        thread_name: &str,
    ) -> io::Result<(Self, BackgroundWorker)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::new(),
                sleeping: false,
                closed: false,
                dropped: 0,
            }),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn({
                let shared = shared.clone();
                move || write_batches(&shared, sink)
            })?;
        Ok((
            BackgroundWriter {
                shared: shared.clone(),
            },
            BackgroundWorker {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

/// Written through a shared reference: the formatting layer borrows the writer for a line
/// instead of cloning its `Arc` (a reference count every worker thread would write per line).
impl Write for &BackgroundWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        if state.closed {
            return Ok(line.len());
        }
        if state.pending.len() + line.len() > MAX_PENDING_BYTES {
            state.dropped += 1;
            return Ok(line.len());
        }
        state.pending.extend_from_slice(line);
        let wake = std::mem::take(&mut state.sleeping);
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BackgroundWriter {
    type Writer = &'a BackgroundWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// The writing thread's loop: take the batch, write it, linger, sleep until a line arrives.
fn write_batches(shared: &Shared, mut sink: Box<dyn Write + Send>) {
    let mut batch = Vec::new();
    loop {
        {
            let mut state = shared.lock();
            if state.pending.is_empty() && !state.closed {
                // Linger: lines arriving now do not wake this thread, they wait for it.
                state = shared
                    .wake
                    .wait_timeout(state, LINGER)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            while state.pending.is_empty() && !state.closed {
                state.sleeping = true;
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.sleeping = false;
            if state.pending.is_empty() {
                break; // closed, and everything written
            }
            std::mem::swap(&mut batch, &mut state.pending);
        }
        // A sink that fails (a closed pipe, a full disk) loses this batch, never the service.
        let _ = sink.write_all(&batch).and_then(|()| sink.flush());
        batch.clear();
        if batch.capacity() > KEPT_CAPACITY {
            batch = Vec::new();
        }
    }
    let _ = sink.flush();
}

/// Owns the writing thread: dropping it writes every pending line, then stops the thread.
pub(crate) struct BackgroundWorker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundWorker {
    /// Lines dropped so far because the sink fell behind by [`MAX_PENDING_BYTES`].
    pub(crate) fn dropped_lines(&self) -> u64 {
        self.shared.lock().dropped
    }
}

impl std::fmt::Debug for BackgroundWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundWorker")
            .field("dropped_lines", &self.dropped_lines())
            .finish_non_exhaustive()
    }
}

impl Drop for BackgroundWorker {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn line(thread: usize, i: usize) -> String {
        format!(
            "{{\"thread\":{thread},\"i\":{i},\"pad\":\"{}\"}}\n",
            "x".repeat(i % 97)
        )
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_order_per_thread() {
        let (mut reader, pipe) = std::io::pipe().unwrap();
        let (writer, worker) = BackgroundWriter::spawn(Box::new(pipe), "log-test").unwrap();
        let received = std::thread::spawn(move || {
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            text
        });
        let producers: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        (&writer).write_all(line(t, i).as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        drop(writer);
        assert_eq!(worker.dropped_lines(), 0);
        drop(worker); // writes what is pending, closes the pipe
        let text = received.join().unwrap();
        let mut next = [0usize; 4];
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let t = usize::try_from(v["thread"].as_u64().unwrap()).unwrap();
            assert_eq!(
                v["i"].as_u64().unwrap() as usize,
                next[t],
                "thread {t} out of order"
            );
            assert_eq!(format!("{l}\n"), line(t, next[t]));
            next[t] += 1;
        }
        assert_eq!(next, [2_000; 4]);
    }

    #[test]
    fn a_line_written_while_the_thread_sleeps_is_written_without_waiting_for_more() {
        let (reader, pipe) = std::io::pipe().unwrap();
        let (writer, _worker) = BackgroundWriter::spawn(Box::new(pipe), "log-test").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufRead::lines(std::io::BufReader::new(reader)) {
                let _ = tx.send(l.unwrap());
            }
        });
        for text in ["first", "again"] {
            // Past the linger the writing thread sleeps; this one line must wake it.
            std::thread::sleep(LINGER * 20);
            (&writer).write_all(format!("{text}\n").as_bytes()).unwrap();
            let got = rx.recv_timeout(Duration::from_secs(10));
            assert_eq!(got.as_deref(), Ok(text), "a lone line was not written");
        }
    }

    #[test]
    fn a_stalled_sink_drops_and_counts_lines_instead_of_blocking_the_caller() {
        // Nobody reads the pipe yet: once its kernel buffer is full the writing thread blocks.
        let (mut reader, pipe) = std::io::pipe().unwrap();
        let (writer, worker) = BackgroundWriter::spawn(Box::new(pipe), "log-test").unwrap();
        let one = line(0, 50);
        let total = 2 * MAX_PENDING_BYTES / one.len();
        for _ in 0..total {
            (&writer).write_all(one.as_bytes()).unwrap(); // returns: never waits for the sink
        }
        let dropped = worker.dropped_lines();
        assert!(dropped > 0, "a stalled sink must shed lines");
        let received = std::thread::spawn(move || {
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            text
        });
        drop(writer);
        drop(worker);
        let text = received.join().unwrap();
        // What was accepted arrives whole; what was dropped is exactly what was counted.
        assert!(text.lines().all(|l| format!("{l}\n") == one));
        assert_eq!(text.lines().count() as u64 + dropped, total as u64);
    }
}
