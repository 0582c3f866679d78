//! [`SagaRecord`]: what is persisted of a saga.

use serde::{Deserialize, Serialize};

/// Where a saga is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaStatus {
    /// Running its steps forward.
    Running,
    /// A step failed for good: running the compensations of the completed steps, newest first.
    Compensating,
    /// Every step done.
    Completed,
    /// Every completed step compensated.
    Compensated,
    /// A compensation failed for good: needs a person (the record says which step and why).
    Failed,
}

impl SagaStatus {
    /// Whether the saga is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SagaStatus::Completed | SagaStatus::Compensated | SagaStatus::Failed
        )
    }
}

/// The persisted state of one saga.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaRecord {
    /// The saga definition's name.
    pub saga: String,
    /// This saga's id (unique per definition; starting an id twice runs it once).
    pub id: String,
    /// Where it is.
    pub status: SagaStatus,
    /// Running: the next step to run; compensating: the number of steps still to compensate.
    pub step: usize,
    /// The application's state (JSON), as the last step left it.
    pub state: serde_json::Value,
    /// Bumped by every write; writes compare it (compare-and-set).
    pub version: u64,
    /// The instance holding the lease.
    pub owner: String,
    /// The lease's end, in milliseconds of the store's clock (0 when final).
    pub lease_until_ms: u64,
    /// Why the saga is compensating or failed.
    pub error: Option<String>,
    /// Each step as it happened: `"<step>: done"`, `"<step>: failed: ..."`, `"<step>: compensated"`.
    pub history: Vec<String>,
}
