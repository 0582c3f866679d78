//! Which operation a request runs ([`Operation`]: its name and kind) and the bounded set of
//! operation names that get a metrics label of their own ([`OperationLabels`]).

use std::sync::{Arc, OnceLock};

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use metrics::SharedString;
use nilecare_metrics::TenantLabels;

/// The kind of a GraphQL operation (`graphql.operation.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OperationKind {
    /// A query.
    Query,
    /// A mutation.
    Mutation,
    /// A subscription.
    Subscription,
}

impl OperationKind {
    /// `query`, `mutation` or `subscription`, the OpenTelemetry values.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Query => "query",
            OperationKind::Mutation => "mutation",
            OperationKind::Subscription => "subscription",
        }
    }
}

impl From<OperationType> for OperationKind {
    fn from(ty: OperationType) -> Self {
        match ty {
            OperationType::Query => OperationKind::Query,
            OperationType::Mutation => OperationKind::Mutation,
            OperationType::Subscription => OperationKind::Subscription,
        }
    }
}

/// The operation a request executes: the one named by `operationName`, or the document's only
/// operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Its name, when the document names it.
    pub name: Option<String>,
    /// Query, mutation or subscription.
    pub kind: OperationKind,
}

impl Operation {
    /// The operation of `document` that a request with `operation_name` runs; `None` when the
    /// name matches nothing, or when no name is given and the document has several operations
    /// (the executor answers those with an error).
    ///
    /// ```
    /// use nilecare_graphql::{Operation, OperationKind};
    ///
    /// let doc = async_graphql::parser::parse_query(
    ///     "query Patients { patients { id } } mutation Book { book }",
    /// ).unwrap();
    /// let op = Operation::select(&doc, Some("Book")).unwrap();
    /// assert_eq!(op.kind, OperationKind::Mutation);
    /// assert_eq!(op.name.as_deref(), Some("Book"));
    /// assert!(Operation::select(&doc, None).is_none()); // ambiguous
    /// ```
    pub fn select(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<Self> {
        let mut operations = document.operations.iter();
        let (name, definition) = match operation_name {
            Some(wanted) => {
                operations.find(|(name, _)| name.is_some_and(|n| n.as_str() == wanted))?
            }
            None => {
                let only = operations.next()?;
                if operations.next().is_some() {
                    return None;
                }
                only
            }
        };
        Some(Operation {
            name: name.map(|n| n.to_string()),
            kind: definition.node.ty.into(),
        })
    }
}

/// Put in a request's data to learn, once it has run, which operation it executed (filled by
/// [`Observability`](crate::Observability) when the document parses). Needed when the document
/// was not in the request itself (a persisted query sent by hash): a response cache must not
/// store a mutation's answer, and must invalidate after one.
///
/// ```
/// # tokio_test_block_on(async {
/// use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
/// use nilecare_graphql::{Observability, OperationKind, SelectedOperation};
///
/// struct Query;
/// #[Object]
/// impl Query { async fn hello(&self) -> &str { "world" } }
///
/// let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
///     .extension(Observability::default())
///     .finish();
/// let selected = SelectedOperation::default();
/// schema.execute(async_graphql::Request::new("query Hi { hello }").data(selected.clone())).await;
/// assert_eq!(selected.get().map(|op| op.kind), Some(OperationKind::Query));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SelectedOperation(Arc<OnceLock<Operation>>);

impl SelectedOperation {
    /// The operation the request ran, once known.
    pub fn get(&self) -> Option<&Operation> {
        self.0.get()
    }

    pub(crate) fn set(&self, operation: Operation) {
        let _ = self.0.set(operation);
    }
}

/// The operation names that get a metrics label of their own: at most `max` of them, chosen by
/// traffic (nilecare-metrics' heavy-hitters bound, the same as its tenant labels); anonymous
/// operations, names longer than 64 bytes and the less busy names share `other`. Operation
/// names are chosen by clients, so without a bound each made-up name would mint series.
///
/// Cheap to clone; share one per service.
#[derive(Debug, Clone)]
pub struct OperationLabels {
    labels: TenantLabels,
}

/// The label of operations without a name of their own.
pub const OTHER_OPERATION: &str = "other";

impl Default for OperationLabels {
    fn default() -> Self {
        Self::new(50)
    }
}

impl OperationLabels {
    /// At most `max` operation names with their own label (at least 1); a name gets one after
    /// 10 operations (see [`min_operations`](Self::min_operations)).
    pub fn new(max: usize) -> Self {
        OperationLabels {
            labels: TenantLabels::new(max),
        }
    }

    /// Operations a name must have run before it gets a label of its own (default 10, at
    /// least 1): one-off names never do.
    #[must_use]
    pub fn min_operations(self, operations: u64) -> Self {
        OperationLabels {
            labels: self.labels.min_requests(operations),
        }
    }

    /// Counts one operation and returns its label: its name when tracked, else `other`.
    pub fn observe(&self, name: Option<&str>) -> SharedString {
        // The tenant bound's "no tenant" label is `none`; an anonymous operation is `other`.
        self.labels.observe(Some(name.unwrap_or(OTHER_OPERATION)))
    }

    /// The names with their own label now, with their estimated operation counts.
    pub fn tracked(&self) -> Vec<(String, u64)> {
        self.labels.tracked()
    }
}
