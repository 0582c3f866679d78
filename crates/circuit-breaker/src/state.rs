//! [`State`] of a breaker.

use std::fmt;

/// The states of a breaker (resilience4j semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Calls pass; outcomes are recorded; too many failures or slow calls open the breaker.
    Closed = 0,
    /// Calls are rejected until the wait duration has passed, then the breaker half-opens.
    Open = 1,
    /// A limited number of probe calls pass; their outcome closes or re-opens the breaker.
    HalfOpen = 2,
    /// Calls pass and nothing is recorded.
    Disabled = 3,
    /// Every call is rejected until the state is changed by hand.
    ForcedOpen = 4,
    /// Calls pass and are recorded (metrics), but the breaker never opens.
    MetricsOnly = 5,
}

impl State {
    pub(crate) fn from_u8(v: u8) -> State {
        match v {
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::Disabled,
            4 => State::ForcedOpen,
            5 => State::MetricsOnly,
            _ => State::Closed,
        }
    }

    /// Every state.
    pub const ALL: [State; 6] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Disabled,
        State::ForcedOpen,
        State::MetricsOnly,
    ];

    /// Lower-case name (metrics, logs): `closed`, `open`, `half_open`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced_open",
            State::MetricsOnly => "metrics_only",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
