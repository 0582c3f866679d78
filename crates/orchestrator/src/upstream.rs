//! Calling the downstream services by name: discovery + balancing + retries (the
//! service-discovery client), one circuit breaker per service, trace context propagated.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use nilecare::circuit_breaker::{AnyBreaker, Breaker, BreakerError, Outcome};
use nilecare::error_handler::ApiError;
use nilecare::service_discovery::{AnyRegistry, ServiceClient};

/// The downstream calls of the orchestrator.
pub struct Upstream {
    client: ServiceClient<AnyRegistry>,
    breakers: Arc<HashMap<&'static str, AnyBreaker>>,
}

impl Upstream {
    /// Calls through `client`, guarded by `breakers`.
    pub fn new(
        client: ServiceClient<AnyRegistry>,
        breakers: Arc<HashMap<&'static str, AnyBreaker>>,
    ) -> Self {
        Upstream { client, breakers }
    }

    /// The breakers by service.
    pub fn breakers(&self) -> &HashMap<&'static str, AnyBreaker> {
        &self.breakers
    }

    /// Sends `request` to `service`. A 5xx or an unreachable service counts against the
    /// service's breaker and becomes 503 problem+json; an open breaker answers at once with
    /// `Retry-After`.
    pub async fn call(
        &self,
        service: &'static str,
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, ApiError> {
        let Some(breaker) = self.breakers.get(service) else {
            return Err(ApiError::internal(format!("no breaker for {service}")));
        };
        let classify = |r: &Result<Response<Bytes>, _>| match r {
            Ok(response) if response.status().is_server_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        };
        match breaker
            .call_classified(self.client.request(service, request), classify)
            .await
        {
            Ok(response) if response.status().is_server_error() => {
                Err(ApiError::upstream_unavailable(service)
                    .with_detail(format!("{service} answered {}", response.status())))
            }
            Ok(response) => Ok(response),
            Err(BreakerError::Rejected(rejected)) => {
                let error = ApiError::upstream_unavailable(service)
                    .with_detail(format!("{service} is failing; its circuit breaker is open"));
                Err(match rejected.retry_after {
                    Some(after) => error.with_retry_after(after),
                    None => error,
                })
            }
            Err(BreakerError::Timeout(after)) => Err(ApiError::timeout(format!(
                "{service} did not answer within {after:?}"
            ))),
            Err(BreakerError::Inner(error)) => {
                Err(ApiError::upstream_unavailable(service).with_source(error))
            }
        }
    }
}

/// Whether a downstream answer is a plain 404.
pub fn is_not_found(response: &Response<Bytes>) -> bool {
    response.status() == StatusCode::NOT_FOUND
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("breakers", &self.breakers.len())
            .finish_non_exhaustive()
    }
}
