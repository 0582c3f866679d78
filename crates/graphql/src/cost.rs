//! [`CostLimit`]: rate limiting by query complexity. A query that touches 300 fields spends 300
//! units of the caller's budget, a one-field query spends 1, so a client cannot stay under a
//! request-count limit while asking for the whole graph each time.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{ServerError, ValidationResult};
use nilecare_rate_limit::{Policy, RateLimiter};

use crate::metrics::{COST_CHECKS_TOTAL, count};

/// Who a request's complexity is charged to: put it in the request's data
/// (`request.data(CostKey::new(...))`), e.g. the token's subject or the client IP. Requests
/// without one share the key `anonymous`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostKey(pub String);

impl CostKey {
    /// The key `key` (any length: the limiter digests long keys).
    pub fn new(key: impl Into<String>) -> Self {
        CostKey(key.into())
    }
}

/// An async-graphql extension that charges each operation's complexity (as computed by
/// async-graphql's validation: by default one per field, lists counted once, more with
/// `#[graphql(complexity = ...)]`) to a nilecare-rate-limit policy, per [`CostKey`].
///
/// - Checked after validation, before execution: an invalid document costs nothing, a refused
///   one executes nothing.
/// - Over budget: the operation is refused with a GraphQL error whose `extensions.code` is
///   `RATE_LIMITED` and `extensions.retryAfter` the seconds to wait; the HTTP layer
///   ([`crate::http`]) answers it with status 429 and `Retry-After`.
/// - Limiter unavailable (Redis down, without a `ResilientLimiter` fallback): **fails open**:
///   the operation runs, a warning is logged and `unavailable` counted.
///
/// ```
/// use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
/// use nilecare_graphql::CostLimit;
/// use nilecare_rate_limit::{MemoryLimiter, Policy, Quota};
///
/// struct Query;
/// #[Object]
/// impl Query {
///     async fn answer(&self) -> u32 { 42 }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // 10 000 fields a minute per caller.
/// let policy = Policy::new("graphql", Quota::per_minute(10_000)?)?;
/// let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
///     .extension(CostLimit::new(MemoryLimiter::new(), policy))
///     .finish();
/// # let _ = schema;
/// # Ok(())
/// # }
/// ```
pub struct CostLimit<L> {
    limiter: Arc<L>,
    policy: Arc<Policy>,
}

impl<L> std::fmt::Debug for CostLimit<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CostLimit")
            .field("policy", &self.policy.name())
            .finish_non_exhaustive()
    }
}

impl<L> Clone for CostLimit<L> {
    fn clone(&self) -> Self {
        CostLimit {
            limiter: self.limiter.clone(),
            policy: self.policy.clone(),
        }
    }
}

impl<L: RateLimiter> CostLimit<L> {
    /// Charges complexity to `policy` on `limiter` (memory, Redis, resilient or `AnyLimiter`).
    pub fn new(limiter: L, policy: Policy) -> Self {
        CostLimit {
            limiter: Arc::new(limiter),
            policy: Arc::new(policy),
        }
    }
}

impl<L: RateLimiter> ExtensionFactory for CostLimit<L> {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

/// The error of an operation over budget.
fn limited(retry_after: Option<std::time::Duration>) -> ServerError {
    let mut error = ServerError::new("The query complexity budget is spent; retry later.", None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "RATE_LIMITED");
    if let Some(after) = retry_after {
        // Whole seconds, rounded up (as `Retry-After`).
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        extensions.set("retryAfter", secs);
    }
    error.extensions = Some(extensions);
    error
}

#[async_trait::async_trait]
impl<L: RateLimiter> Extension for CostLimit<L> {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let key = ctx
            .data_opt::<CostKey>()
            .map_or("anonymous", |k| k.0.as_str());
        let cost = u32::try_from(result.complexity.max(1)).unwrap_or(u32::MAX);
        match self.limiter.check(&self.policy, key, cost).await {
            Ok(decision) if decision.allowed => {
                count(COST_CHECKS_TOTAL, "allowed");
                Ok(result)
            }
            Ok(decision) => {
                count(COST_CHECKS_TOTAL, "limited");
                Err(vec![limited(decision.retry_after)])
            }
            Err(error) => {
                count(COST_CHECKS_TOTAL, "unavailable");
                tracing::warn!(%error, policy = self.policy.name(), "complexity budget unavailable; the operation runs unchecked");
                Ok(result)
            }
        }
    }
}
