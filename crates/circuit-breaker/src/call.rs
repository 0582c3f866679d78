//! [`Breaker`]: what the local, the shared and the run-time-chosen breaker have in common, and
//! the one call path (`call`, `call_classified`, `call_with_fallback`) they all use.

use std::future::Future;
use std::time::Duration;

use crate::breaker::Outcome;
use crate::config::BreakerConfig;
use crate::error::{BreakerError, Rejected};
use crate::state::State;

/// A circuit breaker: admits calls ([`acquire`](Breaker::acquire)) and learns from their
/// outcomes ([`CallPermit::report`]). Implemented by [`CircuitBreaker`](crate::CircuitBreaker)
/// (state in this process), `SharedBreaker` (state shared through Redis, feature `redis`) and
/// [`AnyBreaker`](crate::AnyBreaker) (one of them, chosen at run time); `call` and its
/// variants are written once, here, for all of them.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use nilecare_circuit_breaker::{Breaker, BreakerConfig, CircuitBreaker, Outcome};
///
/// let billing = CircuitBreaker::new("billing", BreakerConfig::default())?;
/// let total = billing.call(async { Ok::<_, std::io::Error>(42) }).await?;
/// // A 404 says nothing about the dependency's health: not counted.
/// let missing = billing
///     .call_classified(async { Err::<u32, _>("404") }, |_| Outcome::Ignored)
///     .await;
/// assert_eq!(total, 42);
/// assert!(missing.is_err());
/// # Ok(()) }
/// ```
pub trait Breaker: Send + Sync {
    /// Permission to run one call, reporting its outcome.
    type Permit<'a>: CallPermit
    where
        Self: 'a;

    /// The breaker's name (a metrics label).
    fn name(&self) -> &str;

    /// The configuration.
    fn config(&self) -> &BreakerConfig;

    /// The state calls are decided by (for a shared breaker: the shared state as last learned).
    fn state(&self) -> State;

    /// Asks to run one call: `Ok(permit)`, run it and report through the permit (dropped
    /// unreported, it counts as ignored and returns a half-open probe slot); `Err`, rejected.
    fn acquire(&self) -> impl Future<Output = Result<Self::Permit<'_>, Rejected>> + Send;

    /// Runs `call` if admitted; `Err` results count as failures, `Ok` as successes (slow when
    /// they took at least the slow-call duration). Applies the call timeout if configured (a
    /// timeout counts as a failure).
    fn call<T, E, F>(&self, call: F) -> impl Future<Output = Result<T, BreakerError<E>>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_classified(call, Outcome::of)
    }

    /// Like [`call`](Self::call) with your own classification of the result (e.g. a 404 from a
    /// dependency is not its failure: [`Outcome::Ignored`]).
    fn call_classified<T, E, F>(
        &self,
        call: F,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> impl Future<Output = Result<T, BreakerError<E>>>
    where
        F: Future<Output = Result<T, E>>,
    {
        async move {
            let permit = self.acquire().await.map_err(BreakerError::Rejected)?;
            let result = match self.config().call_timeout {
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(result) => result,
                    Err(_) => {
                        permit.report(Outcome::Failure).await;
                        return Err(BreakerError::Timeout(limit));
                    }
                },
                None => call.await,
            };
            permit.report(classify(&result)).await;
            result.map_err(BreakerError::Inner)
        }
    }

    /// Like [`call`](Self::call), answering with `fallback` when the call is rejected, times out
    /// or fails.
    fn call_with_fallback<T, E, F, G, Fut>(
        &self,
        call: F,
        fallback: G,
    ) -> impl Future<Output = Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        G: FnOnce(BreakerError<E>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        async move {
            match self.call(call).await {
                Ok(value) => Ok(value),
                Err(e) => fallback(e).await,
            }
        }
    }
}

/// The permit of a [`Breaker`]: reports how the admitted call ended.
pub trait CallPermit: Send {
    /// The call ended with `outcome`; it took the time since the permit was issued.
    fn report(self, outcome: Outcome) -> impl Future<Output = ()> + Send;

    /// The call ended with `outcome` after `elapsed`, measured by the caller.
    fn report_elapsed(self, outcome: Outcome, elapsed: Duration)
    -> impl Future<Output = ()> + Send;
}
