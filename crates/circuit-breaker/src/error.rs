//! Errors: configuration problems, and what a call through a breaker can return.

use std::fmt;
use std::time::Duration;

use crate::state::State;

/// A configuration value was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `field` names the setting.
    #[error("invalid circuit-breaker configuration `{field}`: {message}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A manual transition the state machine does not allow (e.g. CLOSED to HALF_OPEN).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker '{name}' cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The breaker's name.
    pub name: String,
    /// Its state.
    pub from: State,
    /// The state asked for.
    pub to: State,
}

/// The breaker did not let the call through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The breaker's name.
    pub name: String,
    /// Its state when it rejected (open, half-open with no permit left, forced open).
    pub state: State,
    /// When a call may be admitted again, if known (`None` when forced open).
    pub retry_after: Option<Duration>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker {} is {}", self.name, self.state)?;
        if let Some(r) = self.retry_after {
            write!(f, "; retry after {r:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// The outcome of [`Breaker::call`](crate::Breaker::call) when it is not `Ok`:
/// rejected by the breaker, timed out, or the call's own error.
#[derive(Debug, thiserror::Error)]
pub enum BreakerError<E> {
    /// The breaker rejected the call without running it.
    #[error(transparent)]
    Rejected(Rejected),
    /// The call ran longer than the breaker's `call_timeout` (counted as a failure).
    #[error("call timed out after {0:?}")]
    Timeout(Duration),
    /// The call's own error.
    #[error("{0}")]
    Inner(E),
}

impl<E> BreakerError<E> {
    /// `true` when the breaker rejected the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, BreakerError::Rejected(_))
    }

    /// The call's own error, if that is what happened.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            _ => None,
        }
    }
}
