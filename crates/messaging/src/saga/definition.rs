//! [`Saga`]: the definition of a saga: named steps, each an action and an optional
//! compensation over a typed state, with a timeout and retries.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::message::check_name;

/// A step's failure (any error; `"text".into()` works).
pub type StepError = Box<dyn std::error::Error + Send + Sync>;

type StepFuture<S> = Pin<Box<dyn Future<Output = std::result::Result<S, StepError>> + Send>>;
pub(crate) type StepFn<S> = Arc<dyn Fn(S, StepContext) -> StepFuture<S> + Send + Sync>;

/// What a step is told besides the state.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The saga's id.
    pub saga_id: String,
    /// The step's name.
    pub step: String,
    /// `<saga id>:<step>` (`:compensate` appended for a compensation): pass it to the service
    /// the step calls, so a repeated call is recognised.
    pub idempotency_key: String,
    /// 1 for the first try of this step by this run.
    pub attempt: u32,
}

pub(crate) struct Step<S> {
    pub(crate) name: String,
    pub(crate) action: StepFn<S>,
    pub(crate) compensation: Option<StepFn<S>>,
    pub(crate) timeout: Duration,
    pub(crate) attempts: u32,
}

/// A saga definition over the state type `S` (serde: it is persisted after every step).
pub struct Saga<S> {
    pub(crate) name: String,
    pub(crate) steps: Vec<Step<S>>,
}

impl<S> std::fmt::Debug for Saga<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saga")
            .field("name", &self.name)
            .field(
                "steps",
                &self
                    .steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Builds a [`Saga`].
pub struct SagaBuilder<S> {
    name: String,
    steps: Vec<Step<S>>,
}

impl<S> std::fmt::Debug for SagaBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn boxed<S, F, Fut>(f: F) -> StepFn<S>
where
    F: Fn(S, StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<S, StepError>> + Send + 'static,
{
    Arc::new(move |state, ctx| Box::pin(f(state, ctx)))
}

impl<S> Saga<S>
where
    S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A saga named `name` (1-128 characters of `A-Z a-z 0-9 . _ -`).
    pub fn builder(name: &str) -> SagaBuilder<S> {
        SagaBuilder {
            name: name.to_owned(),
            steps: Vec::new(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The longest a step may take, all its tries and the pauses between them included: the
    /// runner's lease must be longer.
    pub(crate) fn longest_step(&self) -> Duration {
        self.steps
            .iter()
            .map(|s| {
                let pauses =
                    50 * u64::from(s.attempts) * u64::from(s.attempts.saturating_sub(1)) / 2;
                s.timeout * s.attempts + Duration::from_millis(pauses)
            })
            .max()
            .unwrap_or_default()
    }
}

impl<S> SagaBuilder<S>
where
    S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A step: `action` moves the state forward; `compensation` undoes it if a later step fails
    /// for good. Both get the state and a [`StepContext`] and return the new state. Defaults:
    /// 10 s timeout, 3 tries.
    #[must_use]
    pub fn step<A, AF, C, CF>(mut self, name: &str, action: A, compensation: C) -> Self
    where
        A: Fn(S, StepContext) -> AF + Send + Sync + 'static,
        AF: Future<Output = std::result::Result<S, StepError>> + Send + 'static,
        C: Fn(S, StepContext) -> CF + Send + Sync + 'static,
        CF: Future<Output = std::result::Result<S, StepError>> + Send + 'static,
    {
        self.steps.push(Step {
            name: name.to_owned(),
            action: boxed(action),
            compensation: Some(boxed(compensation)),
            timeout: Duration::from_secs(10),
            attempts: 3,
        });
        self
    }

    /// A step with nothing to undo (a read, or the last step).
    #[must_use]
    pub fn step_without_compensation<A, AF>(mut self, name: &str, action: A) -> Self
    where
        A: Fn(S, StepContext) -> AF + Send + Sync + 'static,
        AF: Future<Output = std::result::Result<S, StepError>> + Send + 'static,
    {
        self.steps.push(Step {
            name: name.to_owned(),
            action: boxed(action),
            compensation: None,
            timeout: Duration::from_secs(10),
            attempts: 3,
        });
        self
    }

    /// The last added step's timeout per try and number of tries (at least 1).
    #[must_use]
    pub fn limits(mut self, timeout: Duration, tries: u32) -> Self {
        if let Some(step) = self.steps.last_mut() {
            step.timeout = timeout;
            step.attempts = tries.max(1);
        }
        self
    }

    /// The saga.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `saga` (bad name, no step) or `step` (bad or repeated name).
    pub fn build(self) -> Result<Saga<S>> {
        check_name("saga", &self.name)?;
        if self.steps.is_empty() {
            return Err(Error::Invalid {
                field: "saga",
                message: format!("{} has no step", self.name),
            });
        }
        for (i, step) in self.steps.iter().enumerate() {
            check_name("step", &step.name)?;
            if self.steps[..i].iter().any(|s| s.name == step.name) {
                return Err(Error::Invalid {
                    field: "step",
                    message: format!("{} appears twice in {}", step.name, self.name),
                });
            }
        }
        Ok(Saga {
            name: self.name,
            steps: self.steps,
        })
    }
}
