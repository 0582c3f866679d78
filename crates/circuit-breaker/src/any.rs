//! [`AnyBreaker`]: a breaker whose state is local or shared through Redis, chosen at run time.

use std::future::Future;

use crate::breaker::{CircuitBreaker, Outcome};
use crate::error::BreakerError;
use crate::state::State;

/// A local [`CircuitBreaker`] or, with feature `redis`, a `SharedBreaker`, picked at run time
/// (e.g. shared when `REDIS_URL` is set), usable through one type.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use nilecare_circuit_breaker::{AnyBreaker, BreakerConfig, CircuitBreaker, State};
/// let breaker: AnyBreaker = CircuitBreaker::new("billing", BreakerConfig::default())?.into();
/// let answer = breaker.call(async { Ok::<_, std::io::Error>(42) }).await?;
/// assert_eq!((answer, breaker.state()), (42, State::Closed));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyBreaker {
    /// State in this process.
    Local(CircuitBreaker),
    /// State shared by every instance on one Redis.
    #[cfg(feature = "redis")]
    Shared(crate::shared::SharedBreaker),
}

impl From<CircuitBreaker> for AnyBreaker {
    fn from(breaker: CircuitBreaker) -> Self {
        AnyBreaker::Local(breaker)
    }
}

#[cfg(feature = "redis")]
impl From<crate::shared::SharedBreaker> for AnyBreaker {
    fn from(breaker: crate::shared::SharedBreaker) -> Self {
        AnyBreaker::Shared(breaker)
    }
}

impl AnyBreaker {
    /// The state: the local one, or the shared one as last learned.
    pub fn state(&self) -> State {
        match self {
            AnyBreaker::Local(b) => b.state(),
            #[cfg(feature = "redis")]
            AnyBreaker::Shared(b) => b.shared_state(),
        }
    }

    /// The local breaker (for a shared one, the breaker deciding while Redis is away).
    pub fn local(&self) -> &CircuitBreaker {
        match self {
            AnyBreaker::Local(b) => b,
            #[cfg(feature = "redis")]
            AnyBreaker::Shared(b) => b.local(),
        }
    }

    /// Runs `call` if admitted; `Err` counts as a failure.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, BreakerError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_classified(call, Outcome::of).await
    }

    /// Like [`call`](Self::call) with your own classification of the result.
    pub async fn call_classified<T, E, F>(
        &self,
        call: F,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, BreakerError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        match self {
            AnyBreaker::Local(b) => b.call_classified(call, classify).await,
            #[cfg(feature = "redis")]
            AnyBreaker::Shared(b) => b.call_classified(call, classify).await,
        }
    }
}
