//! [`Permit`] and [`OwnedPermit`]: permission to run one call, reporting its outcome (or
//! "ignored" when dropped unreported).

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use crate::breaker::{Inner, Outcome};
use crate::call::CallPermit;

/// What a permit was admitted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Closed or metrics-only: recorded in the window.
    Counted,
    /// Half-open probe: decides the next state.
    Probe,
    /// Disabled: nothing recorded.
    Free,
}

/// What a permit carries: how it was admitted, and when.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub(crate) kind: Kind,
    pub(crate) generation: u64,
    pub(crate) started: u64,
    pub(crate) done: bool,
}

impl Ticket {
    pub(crate) fn finish(&mut self, breaker: &Inner, outcome: Outcome) {
        if self.done {
            return;
        }
        // One clock reading both times the call and dates it in a time-based window.
        let ended = (breaker.times_calls && self.started != 0).then(|| breaker.clock.raw());
        let elapsed = ended
            .map(|ended| Duration::from_nanos(breaker.clock.delta_as_nanos(self.started, ended)));
        self.done = true;
        breaker.finish(self.kind, self.generation, outcome, elapsed, ended);
    }

    fn finish_with(&mut self, breaker: &Inner, outcome: Outcome, elapsed: Option<Duration>) {
        if self.done {
            return;
        }
        self.done = true;
        breaker.finish(self.kind, self.generation, outcome, elapsed, None);
    }
}

/// Permission to run one call; report its outcome with [`success`](Permit::success),
/// [`failure`](Permit::failure) or [`record`](Permit::record). Dropped without a report (the
/// call was cancelled), it counts as ignored and a half-open probe slot is returned.
#[must_use = "report the outcome with success(), failure() or record(); dropping counts as ignored"]
pub struct Permit<'a> {
    pub(crate) breaker: &'a Inner,
    pub(crate) ticket: Ticket,
}

impl std::fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &&*self.breaker.name)
            .field("kind", &self.ticket.kind)
            .finish()
    }
}

impl Permit<'_> {
    /// The call succeeded.
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// The call finished with `outcome`.
    pub fn record(mut self, outcome: Outcome) {
        self.ticket.finish(self.breaker, outcome);
    }

    /// The call finished with `outcome` after `elapsed`, measured by the caller (instead of
    /// the breaker's own clock since the permit was issued): slow when `elapsed` is at least
    /// the slow-call duration.
    pub fn record_elapsed(mut self, outcome: Outcome, elapsed: Duration) {
        self.ticket
            .finish_with(self.breaker, outcome, Some(elapsed));
    }

    /// Moves the ticket out, leaving this permit inert.
    pub(crate) fn take(mut self) -> Ticket {
        let ticket = Ticket {
            done: self.ticket.done,
            ..self.ticket
        };
        self.ticket.done = true;
        ticket
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.ticket.finish(self.breaker, Outcome::Ignored);
    }
}

/// A [`Permit`] that owns a reference to its breaker (from
/// [`CircuitBreaker::try_acquire_owned`](crate::CircuitBreaker::try_acquire_owned)).
#[must_use = "report the outcome with success(), failure() or record(); dropping counts as ignored"]
pub struct OwnedPermit {
    pub(crate) breaker: Arc<Inner>,
    pub(crate) ticket: Ticket,
}

impl std::fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("breaker", &&*self.breaker.name)
            .field("kind", &self.ticket.kind)
            .finish()
    }
}

impl OwnedPermit {
    /// The call succeeded.
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// The call finished with `outcome`.
    pub fn record(mut self, outcome: Outcome) {
        self.ticket.finish(&self.breaker, outcome);
    }

    /// The call finished with `outcome` after `elapsed` (see [`Permit::record_elapsed`]).
    pub fn record_elapsed(mut self, outcome: Outcome, elapsed: Duration) {
        self.ticket
            .finish_with(&self.breaker, outcome, Some(elapsed));
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.ticket.finish(&self.breaker, Outcome::Ignored);
    }
}

/// Records at once (the local breaker never waits); the returned future is ready.
impl CallPermit for Permit<'_> {
    fn report(self, outcome: Outcome) -> impl Future<Output = ()> + Send {
        self.record(outcome);
        std::future::ready(())
    }

    fn report_elapsed(
        self,
        outcome: Outcome,
        elapsed: Duration,
    ) -> impl Future<Output = ()> + Send {
        self.record_elapsed(outcome, elapsed);
        std::future::ready(())
    }
}
