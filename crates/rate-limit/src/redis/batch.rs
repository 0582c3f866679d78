//! Coalescing concurrent checks into one script call.
//!
//! Each `EVALSHA` costs Redis a fixed amount of work (command dispatch, the Lua call, `TIME`)
//! that dwarfs the few `GET`/`SET`s of one check. Under load many checks wait at once; the
//! [`Batcher`] sends them together: at most `max_in_flight` script calls run at a time, and each
//! takes every check queued meanwhile (up to `max_batch`). A lone check is sent at once, so a
//! quiet service sees no added latency; a busy one sees fewer, larger script calls. After each
//! call a flush task yields once before it takes the queue again, so the callers that call
//! answered (and that check again at once) are in the next call together. The script
//! evaluates the checks one after the other with one server time, so every decision is the one a
//! separate call would have given.
//!
//! On Redis Cluster a script may only touch one hash slot, so a batch is split per slot.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nilecare_redis::Script;
use nilecare_redis::fred::clients::Pool;
use nilecare_redis::fred::error::ErrorKind;
use nilecare_redis::fred::interfaces::ClientLike;
use tokio::sync::oneshot;

use super::args::{PolicyArgs, ScriptArgs};
use super::keys::CheckKeys;
use super::{REPLY_PER_ENTRY, redis_error};
use crate::error::{Error, Result};

/// The raw script reply of one check.
pub(super) type Reply = [i64; REPLY_PER_ENTRY];

/// One check waiting for a script call.
pub(super) struct Entry {
    pub(super) keys: CheckKeys,
    pub(super) policy: PolicyArgs,
    pub(super) cost: u64,
    pub(super) mode: u64,
    pub(super) slot: u16,
    pub(super) reply: oneshot::Sender<Result<Reply>>,
}

/// Queue of checks and the script calls draining it.
pub(super) struct Batcher {
    pool: Pool,
    script: Script,
    timeout: Duration,
    max_batch: usize,
    max_in_flight: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: Vec<Entry>,
    /// Flush tasks running (each runs one script call at a time).
    flushing: usize,
}

impl Batcher {
    pub(super) fn new(
        pool: Pool,
        script: Script,
        timeout: Duration,
        max_batch: usize,
        max_in_flight: usize,
    ) -> Self {
        Batcher {
            pool,
            script,
            timeout,
            max_batch,
            max_in_flight,
            state: Mutex::new(State::default()),
        }
    }

    /// Queues `entry`; the reply arrives on its channel. Starts a flush task when fewer than
    /// `max_in_flight` run, so a check never waits behind a full queue without a call in flight.
    pub(super) fn submit(self: &Arc<Self>, entry: Entry) {
        let start = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.queue.push(entry);
            let start = state.flushing < self.max_in_flight;
            if start {
                state.flushing += 1;
            }
            start
        };
        if start {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.flush().await });
        }
    }

    /// Sends queued checks until the queue is empty.
    async fn flush(&self) {
        let mut running = Running {
            batcher: self,
            retired: false,
        };
        while let Some(mut batch) = self.take(&mut running) {
            // A caller that gave up (timeout, dropped future) needs no answer.
            batch.retain(|e| !e.reply.is_closed());
            if batch.is_empty() {
                continue;
            }
            if self.pool.is_clustered() {
                let mut by_slot: Vec<Vec<Entry>> = Vec::new();
                for entry in batch {
                    match by_slot.iter_mut().find(|g| g[0].slot == entry.slot) {
                        Some(group) => group.push(entry),
                        None => by_slot.push(vec![entry]),
                    }
                }
                futures_util::future::join_all(by_slot.into_iter().map(|g| self.send(g))).await;
            } else {
                self.send(batch).await;
            }
            // The callers just answered were woken on this thread and most check again at
            // once: let them queue first, so that the next call carries all of them. Taking the
            // queue right away finds it empty (or holding only the caller a scheduler ran
            // first), and the next call then goes out with one check while the others wait
            // for it: alternating calls of one and of the rest, half the checks per call.
            tokio::task::yield_now().await;
        }
    }

    /// Takes up to `max_batch` queued checks, oldest first. On an empty queue the flush task
    /// retires (`None`) under the same lock a submitter checks, so a check queued at that
    /// moment either is taken here or sees a free slot and starts a new task: none is stranded.
    fn take(&self, running: &mut Running<'_>) -> Option<Vec<Entry>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.queue.is_empty() {
            state.flushing = state.flushing.saturating_sub(1);
            running.retired = true;
            return None;
        }
        if state.queue.len() <= self.max_batch {
            return Some(std::mem::take(&mut state.queue));
        }
        Some(state.queue.drain(..self.max_batch).collect())
    }

    /// One script call for `batch` (one slot), each check its own group.
    async fn send(&self, batch: Vec<Entry>) {
        let mut keys = Vec::with_capacity(batch.len() * 3);
        let mut args = ScriptArgs::default();
        let mut replies = Vec::with_capacity(batch.len());
        for entry in batch {
            entry.keys.push_into(&mut keys);
            args.group(std::iter::once((entry.policy, entry.cost, entry.mode)));
            replies.push(entry.reply);
        }
        let args = args.into_argv();
        let result = tokio::time::timeout(self.timeout, self.script.run(&self.pool, keys, args))
            .await
            .map_err(|_| timeout_error(self.timeout))
            .and_then(|r: std::result::Result<Vec<i64>, _>| r.map_err(Error::from));
        match result {
            Ok(values) if values.len() == replies.len() * REPLY_PER_ENTRY => {
                for (reply, chunk) in replies
                    .into_iter()
                    .zip(values.chunks_exact(REPLY_PER_ENTRY))
                {
                    let mut r = [0; REPLY_PER_ENTRY];
                    r.copy_from_slice(chunk);
                    let _ = reply.send(Ok(r));
                }
            }
            Ok(values) => {
                let message = format!(
                    "script returned {} values for {} checks",
                    values.len(),
                    replies.len()
                );
                for reply in replies {
                    let _ = reply.send(Err(redis_error(ErrorKind::Protocol, message.clone())));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(copy_error(&e)));
                }
            }
        }
    }
}

/// A running flush task: counted down when it retires, or when it is dropped mid-call (its
/// runtime shutting down) or panics.
struct Running<'a> {
    batcher: &'a Batcher,
    retired: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.retired {
            let mut state = self
                .batcher
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.flushing = state.flushing.saturating_sub(1);
        }
    }
}

pub(super) fn timeout_error(timeout: Duration) -> Error {
    redis_error(
        ErrorKind::Timeout,
        format!("rate-limit call took longer than {timeout:?}"),
    )
}

/// The same failure for every check of a failed batch (errors are not `Clone`).
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Redis(nilecare_redis::Error::Redis(r)) => {
            redis_error(r.kind().clone(), r.details().to_owned())
        }
        other => redis_error(ErrorKind::Unknown, other.to_string()),
    }
}
