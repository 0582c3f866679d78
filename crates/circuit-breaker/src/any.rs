//! [`AnyBreaker`]: a breaker whose state is local or shared through Redis, chosen at run time.

use std::time::Duration;

use crate::breaker::{CircuitBreaker, Outcome};
use crate::call::{Breaker, CallPermit};
use crate::config::BreakerConfig;
use crate::error::Rejected;
use crate::permit::Permit;
use crate::state::State;

/// A local [`CircuitBreaker`] or, with feature `redis`, a `SharedBreaker`, picked at run time
/// (e.g. shared when `REDIS_URL` is set), usable through one type.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use nilecare_circuit_breaker::{AnyBreaker, Breaker, BreakerConfig, CircuitBreaker, State};
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
    Shared(crate::redis::SharedBreaker),
}

impl From<CircuitBreaker> for AnyBreaker {
    fn from(breaker: CircuitBreaker) -> Self {
        AnyBreaker::Local(breaker)
    }
}

#[cfg(feature = "redis")]
impl From<crate::redis::SharedBreaker> for AnyBreaker {
    fn from(breaker: crate::redis::SharedBreaker) -> Self {
        AnyBreaker::Shared(breaker)
    }
}

impl AnyBreaker {
    /// The local breaker (for a shared one, the breaker deciding while Redis is away).
    pub fn local(&self) -> &CircuitBreaker {
        match self {
            AnyBreaker::Local(b) => b,
            #[cfg(feature = "redis")]
            AnyBreaker::Shared(b) => b.local(),
        }
    }
}

macro_rules! dispatch_permit {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            AnyAdmitted::Local($p) => $e,
            #[cfg(feature = "redis")]
            AnyAdmitted::Shared($p) => $e,
        }
    };
}

macro_rules! dispatch {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            AnyBreaker::Local($b) => $e,
            #[cfg(feature = "redis")]
            AnyBreaker::Shared($b) => $e,
        }
    };
}

impl Breaker for AnyBreaker {
    type Permit<'a> = AnyPermit<'a>;

    fn name(&self) -> &str {
        dispatch!(self, b => Breaker::name(b))
    }

    fn config(&self) -> &BreakerConfig {
        dispatch!(self, b => Breaker::config(b))
    }

    /// The local state, or the shared one as last learned.
    fn state(&self) -> State {
        dispatch!(self, b => Breaker::state(b))
    }

    async fn acquire(&self) -> Result<AnyPermit<'_>, Rejected> {
        Ok(AnyPermit(match self {
            AnyBreaker::Local(b) => AnyAdmitted::Local(b.try_acquire()?),
            #[cfg(feature = "redis")]
            AnyBreaker::Shared(b) => AnyAdmitted::Shared(b.acquire().await?),
        }))
    }
}

/// The permit of an [`AnyBreaker`].
#[must_use = "report the outcome with CallPermit::report; dropping counts as ignored"]
#[derive(Debug)]
pub struct AnyPermit<'a>(AnyAdmitted<'a>);

#[derive(Debug)]
enum AnyAdmitted<'a> {
    Local(Permit<'a>),
    #[cfg(feature = "redis")]
    Shared(crate::redis::SharedPermit<'a>),
}

impl CallPermit for AnyPermit<'_> {
    async fn report(self, outcome: Outcome) {
        dispatch_permit!(self.0, p => p.report(outcome).await)
    }

    async fn report_elapsed(self, outcome: Outcome, elapsed: Duration) {
        dispatch_permit!(self.0, p => p.report_elapsed(outcome, elapsed).await)
    }
}
