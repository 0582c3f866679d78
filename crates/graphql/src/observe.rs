//! [`Observability`]: one OpenTelemetry server span and one set of metrics per GraphQL
//! operation, following the GraphQL semantic conventions.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerResult, Variables};
use tracing::Instrument;
use tracing::field::Empty;

use crate::metrics::{OPERATION_DURATION_SECONDS, OPERATIONS_TOTAL};
use crate::operation::{Operation, OperationLabels, SelectedOperation};
use crate::problem::error_code;

/// An async-graphql extension that gives every operation a server span and metrics.
///
/// **Span** (`graphql`, kind `SERVER`, a child of the HTTP server span when there is one), per
/// the OpenTelemetry GraphQL semantic conventions: named by `graphql.operation.type` (`query`,
/// `mutation`; `GraphQL Operation` when the document does not parse), or `{type} {name}` with
/// [`name_spans_by_operation`](Self::name_spans_by_operation); attributes
/// `graphql.operation.type`, `graphql.operation.name`, and `graphql.document` only with
/// [`record_document`](Self::record_document) (variables are never recorded). A failed
/// operation sets `error.type` (the first error's `extensions.code`, else `GRAPHQL_ERROR`) and
/// the span status to error.
///
/// **Metrics** ([`crate::metrics`]): `nilecare_graphql_operations_total{operation, type,
/// result}` and `nilecare_graphql_operation_duration_seconds{operation, type}`, where
/// `operation` is bounded by [`OperationLabels`].
///
/// Register it first, so its span covers the other extensions.
#[derive(Debug, Clone, Default)]
pub struct Observability {
    labels: OperationLabels,
    descriptive_names: bool,
    record_document: bool,
}

impl Observability {
    /// Spans and metrics, operation names bounded by `labels`.
    pub fn new(labels: OperationLabels) -> Self {
        Observability {
            labels,
            descriptive_names: false,
            record_document: false,
        }
    }

    /// Name spans `{type} {name}` (`query Patients`) instead of `{type}`. Operation names come
    /// from clients: the conventions advise against it by default because of their cardinality.
    #[must_use]
    pub fn name_spans_by_operation(mut self, on: bool) -> Self {
        self.descriptive_names = on;
        self
    }

    /// Record the executed document in `graphql.document` (variables shown as `$name`, their
    /// values never recorded; literals in the document are).
    #[must_use]
    pub fn record_document(mut self, on: bool) -> Self {
        self.record_document = on;
        self
    }

    /// The bounded operation labels.
    pub fn labels(&self) -> &OperationLabels {
        &self.labels
    }
}

impl ExtensionFactory for Observability {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Observed {
            config: self.clone(),
            state: Mutex::new(State::default()),
        })
    }
}

#[derive(Default)]
struct State {
    span: Option<tracing::Span>,
    requested: Option<String>,
    operation: Option<Operation>,
}

/// One request's instance of the extension.
struct Observed {
    config: Observability,
    state: Mutex<State>,
}

impl Observed {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How an operation ended, for the `result` label.
fn result_of(response: &Response) -> &'static str {
    if response.errors.is_empty() {
        "ok"
    } else if is_request_error(response) {
        "rejected"
    } else {
        "error"
    }
}

/// Whether the response is a request error: refused before execution (no data, and no error
/// raised by a field, which would carry a path).
pub(crate) fn is_request_error(response: &Response) -> bool {
    !response.errors.is_empty()
        && matches!(response.data, async_graphql::Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}

#[async_trait::async_trait]
impl Extension for Observed {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let span = tracing::info_span!(
            "graphql",
            otel.name = "GraphQL Operation",
            otel.kind = "server",
            otel.status_code = Empty,
            graphql.operation.type = Empty,
            graphql.operation.name = Empty,
            graphql.document = Empty,
            error.type = Empty,
        );
        self.state().span = Some(span.clone());
        let started = Instant::now();
        let response = next.run(ctx).instrument(span.clone()).await;
        let operation = self.state().operation.take();
        let label = self
            .config
            .labels
            .observe(operation.as_ref().and_then(|o| o.name.as_deref()));
        let kind = operation.as_ref().map_or("unknown", |o| o.kind.as_str());
        let result = result_of(&response);
        metrics::counter!(OPERATIONS_TOTAL, "operation" => label.clone(), "type" => kind, "result" => result)
            .increment(1);
        metrics::histogram!(OPERATION_DURATION_SECONDS, "operation" => label, "type" => kind)
            .record(started.elapsed().as_secs_f64());
        if let Some(first) = response.errors.first() {
            span.record("error.type", error_code(first).unwrap_or("GRAPHQL_ERROR"));
            span.record("otel.status_code", "ERROR");
        }
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.state().requested = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let mut state = self.state();
        let operation = Operation::select(&document, state.requested.as_deref());
        if let (Some(span), Some(op)) = (&state.span, &operation) {
            let kind = op.kind.as_str();
            span.record("graphql.operation.type", kind);
            match (&op.name, self.config.descriptive_names) {
                (Some(name), true) => span.record("otel.name", format!("{kind} {name}")),
                _ => span.record("otel.name", kind),
            };
            if let Some(name) = &op.name {
                span.record("graphql.operation.name", name.as_str());
            }
            if self.config.record_document {
                span.record(
                    "graphql.document",
                    ctx.stringify_execute_doc(&document, &Variables::default()),
                );
            }
        }
        if let (Some(slot), Some(op)) = (ctx.data_opt::<SelectedOperation>(), &operation) {
            slot.set(op.clone());
        }
        state.operation = operation;
        Ok(document)
    }
}
