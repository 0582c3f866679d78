//! [`SagaRunner`]: drives sagas forward, compensates on failure, takes over abandoned ones.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::message::check_name;
use crate::saga::definition::{Saga, StepContext, StepFn};
use crate::saga::record::{SagaRecord, SagaStatus};
use crate::saga::store::SagaStore;

/// Runs sagas of any definition on a [`SagaStore`], as one instance (`owner`).
#[derive(Debug, Clone)]
pub struct SagaRunner<St> {
    store: St,
    owner: String,
    lease: Duration,
}

/// Why a run stopped before the saga's end.
fn lost(id: &str) -> Error {
    Error::Invalid {
        field: "saga",
        message: format!("saga {id} is run by another instance now"),
    }
}

impl<St: SagaStore> SagaRunner<St> {
    /// A runner named `owner` (unique per instance), with a 60 s lease (the default step, 10 s × 3
    /// tries, fits in it).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `owner`.
    pub fn new(store: St, owner: &str) -> Result<Self> {
        check_name("owner", owner)?;
        Ok(SagaRunner {
            store,
            owner: owner.to_owned(),
            lease: Duration::from_secs(60),
        })
    }

    /// How long a saga stays with this runner without a write before another instance may
    /// take it over (default 60 s). Must exceed every step's timeout × tries.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The saga's record.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the store fails.
    pub async fn status(&self, saga: &str, id: &str) -> Result<Option<SagaRecord>> {
        self.store.load(saga, id).await
    }

    /// Starts saga `id` of `saga` with `state` and runs it to its end; returns the final
    /// record. Starting an id that exists runs nothing and returns its record as it is.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `id` or `lease` (shorter than a step's time budget);
    /// [`Error::Unavailable`] when the store fails (the saga is then resumed by
    /// [`recover`](Self::recover) once its lease ran out).
    pub async fn start<S>(&self, saga: &Saga<S>, id: &str, state: S) -> Result<SagaRecord>
    where
        S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        check_name("id", id)?;
        self.check_lease(saga)?;
        let record = SagaRecord {
            saga: saga.name.clone(),
            id: id.to_owned(),
            status: SagaStatus::Running,
            step: 0,
            state: serde_json::to_value(&state).map_err(|e| Error::Invalid {
                field: "state",
                message: format!("not serializable: {e}"),
            })?,
            version: 0,
            owner: self.owner.clone(),
            lease_until_ms: 0,
            error: None,
            history: Vec::new(),
        };
        match self.store.compare_and_set(&record, 0, self.lease).await? {
            Some(created) => {
                crate::metrics::saga(&saga.name, "started");
                self.drive(saga, created).await
            }
            None => self
                .store
                .load(&saga.name, id)
                .await?
                .ok_or_else(|| lost(id)),
        }
    }

    /// Takes over the sagas of `saga` whose runner stopped writing for a lease (it died), and
    /// runs each to its end: forward, or its compensations if it was compensating. Returns the
    /// records this runner finished; a saga another instance took first is skipped.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the store fails.
    pub async fn recover<S>(&self, saga: &Saga<S>) -> Result<Vec<SagaRecord>>
    where
        S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.check_lease(saga)?;
        let mut finished = Vec::new();
        for id in self.store.expired(&saga.name, 100).await? {
            let Some(record) = self.store.load(&saga.name, &id).await? else {
                continue;
            };
            if record.status.is_final() {
                continue;
            }
            let expected = record.version;
            let mut mine = record;
            mine.owner.clone_from(&self.owner);
            mine.history.push(format!("taken over by {}", self.owner));
            // Only one instance wins the take-over (compare-and-set on the version).
            let Some(taken) = self
                .store
                .compare_and_set(&mine, expected, self.lease)
                .await?
            else {
                continue;
            };
            match self.drive(saga, taken).await {
                Ok(done) => finished.push(done),
                Err(error) => {
                    tracing::warn!(%error, saga = %saga.name, %id, "a recovered saga stopped")
                }
            }
        }
        Ok(finished)
    }

    fn check_lease<S>(&self, saga: &Saga<S>) -> Result<()>
    where
        S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let budget = saga.longest_step();
        if self.lease <= budget {
            return Err(Error::Invalid {
                field: "lease",
                message: format!(
                    "{:?} must exceed the longest step's timeout × tries ({budget:?}) of {}",
                    self.lease, saga.name
                ),
            });
        }
        Ok(())
    }

    /// Writes `record` (it was read at `record.version`), keeping the lease unless final.
    async fn save(&self, record: SagaRecord) -> Result<SagaRecord> {
        let lease = if record.status.is_final() {
            Duration::ZERO
        } else {
            self.lease
        };
        let id = record.id.clone();
        let saved = self
            .store
            .compare_and_set(&record, record.version, lease)
            .await?
            .ok_or_else(|| lost(&id))?;
        match saved.status {
            SagaStatus::Completed => crate::metrics::saga(&saved.saga, "completed"),
            SagaStatus::Compensated => crate::metrics::saga(&saved.saga, "compensated"),
            SagaStatus::Failed => crate::metrics::saga(&saved.saga, "failed"),
            _ => {}
        }
        Ok(saved)
    }

    async fn drive<S>(&self, saga: &Saga<S>, mut record: SagaRecord) -> Result<SagaRecord>
    where
        S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        loop {
            let state: S =
                serde_json::from_value(record.state.clone()).map_err(|e| Error::Decode {
                    id: record.id.clone(),
                    reason: format!("saga state: {e}"),
                })?;
            match record.status {
                SagaStatus::Running if record.step < saga.steps.len() => {
                    let step = &saga.steps[record.step];
                    // Renew the lease: it covers this step's whole time budget.
                    record = self.save(record).await?;
                    match run(step, &step.action, state, &record.id, "").await {
                        Ok(next) => {
                            record.state =
                                serde_json::to_value(&next).map_err(|e| Error::Invalid {
                                    field: "state",
                                    message: format!("not serializable: {e}"),
                                })?;
                            record.history.push(format!("{}: done", step.name));
                            record.step += 1;
                        }
                        Err(error) => {
                            record
                                .history
                                .push(format!("{}: failed: {error}", step.name));
                            record.error = Some(format!("{}: {error}", step.name));
                            record.status = SagaStatus::Compensating;
                        }
                    }
                    record = self.save(record).await?;
                }
                SagaStatus::Running => {
                    record.status = SagaStatus::Completed;
                    return self.save(record).await;
                }
                SagaStatus::Compensating if record.step > 0 => {
                    let step = &saga.steps[record.step - 1];
                    record = self.save(record).await?;
                    match &step.compensation {
                        None => {
                            record
                                .history
                                .push(format!("{}: nothing to compensate", step.name));
                            record.step -= 1;
                        }
                        Some(compensation) => {
                            match run(step, compensation, state, &record.id, ":compensate").await {
                                Ok(next) => {
                                    record.state =
                                        serde_json::to_value(&next).unwrap_or(record.state);
                                    record.history.push(format!("{}: compensated", step.name));
                                    record.step -= 1;
                                }
                                Err(error) => {
                                    record.history.push(format!(
                                        "{}: compensation failed: {error}",
                                        step.name
                                    ));
                                    record.error =
                                        Some(format!("compensating {}: {error}", step.name));
                                    record.status = SagaStatus::Failed;
                                    return self.save(record).await;
                                }
                            }
                        }
                    }
                    record = self.save(record).await?;
                }
                SagaStatus::Compensating => {
                    record.status = SagaStatus::Compensated;
                    return self.save(record).await;
                }
                _ => return Ok(record),
            }
        }
    }
}

/// One step (or compensation): up to its tries, each bounded by its timeout; a panic is a
/// failed try.
async fn run<S>(
    step: &crate::saga::definition::Step<S>,
    f: &StepFn<S>,
    state: S,
    saga_id: &str,
    suffix: &str,
) -> std::result::Result<S, String>
where
    S: Clone + Send + 'static,
{
    use futures_util::FutureExt as _;
    let mut last = String::new();
    for attempt in 1..=step.attempts {
        let ctx = StepContext {
            saga_id: saga_id.to_owned(),
            step: step.name.clone(),
            idempotency_key: format!("{saga_id}:{}{suffix}", step.name),
            attempt,
        };
        let call = std::panic::AssertUnwindSafe(f(state.clone(), ctx)).catch_unwind();
        match tokio::time::timeout(step.timeout, call).await {
            Ok(Ok(Ok(next))) => return Ok(next),
            Ok(Ok(Err(error))) => last = error.to_string(),
            Ok(Err(_)) => last = "the step panicked".to_owned(),
            Err(_) => last = format!("timed out after {:?}", step.timeout),
        }
        if attempt < step.attempts {
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        }
    }
    Err(last)
}
