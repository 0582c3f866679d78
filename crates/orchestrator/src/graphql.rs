//! The GraphQL gateway (`POST /graphql`, `GET /graphql` for queries; GraphiQL in development):
//! patients with their appointments and invoices, fetched from the demo services through the
//! same `Upstream` as the REST routes (discovery, retries, breakers, trace context). Lists of
//! patients load their appointments and invoices with one downstream call each per request
//! (DataLoader batching), not one per patient. Mutations need the `clinician` role of the
//! caller's token (nilecare-auth's `Claims`, put in the request by the API's auth layer).
//! Depth, complexity and document size are limited; introspection is off in production. Errors
//! carry `extensions.code`, the problem+json code of the REST routes.
//!
//! The reusable pieces come from nilecare-graphql: GraphQL over HTTP (media types, status
//! codes), a span and metrics per operation, complexity charged to the caller's budget on the
//! service's rate limiter, and automatic persisted queries stored in the service's cache.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::http::GraphiQLSource;
use async_graphql::{
    ComplexObject, Context, EmptySubscription, InputObject, Object, Schema, SimpleObject,
};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use http::HeaderMap;
use nilecare::auth::Claims;
use nilecare::error_handler::ApiError;
use nilecare::graphql::http::{GraphQLRequest, respond, respond_encoded};
use nilecare::graphql::{
    CostKey, CostLimit, Observability, OperationKind, OperationLabels, PersistedQueries,
    SelectedOperation, problem_error as graphql_error,
};
use nilecare::rate_limit::{Policy, Quota};
use serde::Deserialize;

use super::AppState;
use super::routes::forward;

/// The deepest query accepted (patients → appointments is 3).
pub const MAX_DEPTH: usize = 8;
/// The most complex query accepted: one per field, and a page of `patients` counts its fields
/// once per patient (`limit` times), so a full page of 100 with every field is refused.
pub const MAX_COMPLEXITY: usize = 1_000;
/// The largest query document (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// The most patients one `patients` query returns.
pub const MAX_PAGE: usize = 100;
/// How long a loader gathers keys before its one downstream call: the resolvers of a list run
/// concurrently, and this window lets them all join the batch.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);

/// The gateway's schema.
pub type GatewaySchema = Schema<Query, Mutation, EmptySubscription>;

/// A patient.
#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(complex)]
pub struct Patient {
    /// Identifier.
    pub id: u64,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Birth date (YYYY-MM-DD).
    pub birth_date: String,
}

/// An appointment.
#[derive(Debug, Clone, SimpleObject, Deserialize)]
pub struct Appointment {
    /// Identifier.
    pub id: u64,
    /// The patient.
    pub patient_id: u64,
    /// When (RFC 3339).
    pub at: String,
    /// With whom.
    pub with: String,
}

/// An invoice.
#[derive(Debug, Clone, SimpleObject, Deserialize)]
pub struct Invoice {
    /// Identifier.
    pub id: String,
    /// The patient.
    pub patient_id: u64,
    /// Amount, as a decimal string.
    pub amount: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// `paid` or `open`.
    pub status: String,
}

/// One request's view of the downstream services: the app state and the caller's headers
/// (tenant, request id) forwarded on every call.
struct Downstream {
    state: Arc<AppState>,
    headers: HeaderMap,
}

impl Downstream {
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        service: &'static str,
        path: String,
    ) -> Result<Option<T>, async_graphql::Error> {
        let response = forward(
            &self.state,
            service,
            http::Method::GET,
            path,
            &self.headers,
            Bytes::new(),
        )
        .await
        .map_err(graphql_error)?;
        if response.status() == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        serde_json::from_slice(response.body())
            .map(Some)
            .map_err(|e| {
                graphql_error(
                    ApiError::internal("a downstream service sent malformed JSON").with_source(e),
                )
            })
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        service: &'static str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<T, async_graphql::Error> {
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let response = forward(
            &self.state,
            service,
            http::Method::POST,
            path.to_owned(),
            &self.headers,
            body,
        )
        .await
        .map_err(graphql_error)?;
        serde_json::from_slice(response.body()).map_err(|e| {
            graphql_error(
                ApiError::internal("a downstream service sent malformed JSON").with_source(e),
            )
        })
    }

    /// Rows of `service` for these patients, grouped by patient: one call for all of them.
    async fn by_patient<T: serde::de::DeserializeOwned + HasPatient>(
        &self,
        service: &'static str,
        path: &str,
        patients: &[u64],
    ) -> Result<HashMap<u64, Vec<T>>, async_graphql::Error> {
        let ids: Vec<String> = patients.iter().map(u64::to_string).collect();
        let rows: Vec<T> = self
            .get_json(service, format!("{path}?patient_id={}", ids.join(",")))
            .await?
            .unwrap_or_default();
        let mut grouped: HashMap<u64, Vec<T>> =
            patients.iter().map(|id| (*id, Vec::new())).collect();
        for row in rows {
            grouped.entry(row.patient()).or_default().push(row);
        }
        Ok(grouped)
    }
}

trait HasPatient {
    fn patient(&self) -> u64;
}
impl HasPatient for Appointment {
    fn patient(&self) -> u64 {
        self.patient_id
    }
}
impl HasPatient for Invoice {
    fn patient(&self) -> u64 {
        self.patient_id
    }
}

/// The per-request loaders (with a cache, so a list can prime them).
type Appointments = DataLoader<AppointmentsByPatient, HashMapCache>;
type Invoices = DataLoader<InvoicesByPatient, HashMapCache>;

/// Batches the appointments of every patient a query touches into one downstream call.
struct AppointmentsByPatient(Arc<Downstream>);
/// Batches invoices the same way.
struct InvoicesByPatient(Arc<Downstream>);

impl Loader<u64> for AppointmentsByPatient {
    type Value = Vec<Appointment>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, Self::Value>, Self::Error> {
        self.0
            .by_patient("appointments", "/appointments", keys)
            .await
    }
}

impl Loader<u64> for InvoicesByPatient {
    type Value = Vec<Invoice>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, Self::Value>, Self::Error> {
        self.0.by_patient("billing", "/invoices", keys).await
    }
}

#[ComplexObject]
impl Patient {
    /// The patient's appointments (batched across the query).
    async fn appointments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Appointment>> {
        let loader = ctx.data::<Appointments>()?;
        Ok(loader.load_one(self.id).await?.unwrap_or_default())
    }

    /// The patient's invoices (batched across the query).
    async fn invoices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Invoice>> {
        let loader = ctx.data::<Invoices>()?;
        Ok(loader.load_one(self.id).await?.unwrap_or_default())
    }
}

/// Queries.
#[derive(Debug, Default)]
pub struct Query;

#[Object]
impl Query {
    /// One patient, or null.
    async fn patient(&self, ctx: &Context<'_>, id: u64) -> async_graphql::Result<Option<Patient>> {
        ctx.data::<Arc<Downstream>>()?
            .get_json("patients", format!("/patients/{id}"))
            .await
    }

    /// A page of patients (`limit` at most 100).
    #[graphql(complexity = "limit * child_complexity + 1")]
    async fn patients(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: usize,
        #[graphql(default = 0)] offset: usize,
    ) -> async_graphql::Result<Vec<Patient>> {
        if limit > MAX_PAGE {
            return Err(graphql_error(
                ApiError::validation().field("limit", format!("must be at most {MAX_PAGE}")),
            ));
        }
        let downstream = ctx.data::<Arc<Downstream>>()?;
        let all: Vec<Patient> = downstream
            .get_json("patients", "/patients".to_owned())
            .await?
            .unwrap_or_default();
        let page: Vec<Patient> = all.into_iter().skip(offset).take(limit).collect();
        // The page's ids are known here: when the query asks for appointments or invoices,
        // load them for the whole page in one call each and prime the loaders, so the
        // per-patient resolvers never call downstream (deterministic, unlike a batch window).
        let ids: Vec<u64> = page.iter().map(|p| p.id).collect();
        let look_ahead = ctx.look_ahead();
        let (want_appointments, want_invoices) = (
            look_ahead.field("appointments").exists(),
            look_ahead.field("invoices").exists(),
        );
        // Both services at once: the page costs the slowest call, not their sum.
        let (appointments, invoices) = futures_util::future::join(
            async {
                match want_appointments {
                    true => downstream
                        .by_patient::<Appointment>("appointments", "/appointments", &ids)
                        .await
                        .map(Some),
                    false => Ok(None),
                }
            },
            async {
                match want_invoices {
                    true => downstream
                        .by_patient::<Invoice>("billing", "/invoices", &ids)
                        .await
                        .map(Some),
                    false => Ok(None),
                }
            },
        )
        .await;
        if let Some(grouped) = appointments? {
            ctx.data::<Appointments>()?.feed_many(grouped).await;
        }
        if let Some(grouped) = invoices? {
            ctx.data::<Invoices>()?.feed_many(grouped).await;
        }
        Ok(page)
    }

    /// One appointment, or null.
    async fn appointment(
        &self,
        ctx: &Context<'_>,
        id: u64,
    ) -> async_graphql::Result<Option<Appointment>> {
        let all: Vec<Appointment> = ctx
            .data::<Arc<Downstream>>()?
            .get_json("appointments", "/appointments".to_owned())
            .await?
            .unwrap_or_default();
        Ok(all.into_iter().find(|a| a.id == id))
    }
}

/// A new patient.
#[derive(Debug, InputObject)]
pub struct NewPatientInput {
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Birth date (YYYY-MM-DD).
    pub birth_date: String,
}

/// A new appointment.
#[derive(Debug, InputObject)]
pub struct NewAppointmentInput {
    /// The patient.
    pub patient_id: u64,
    /// When (RFC 3339).
    pub at: String,
    /// With whom.
    pub with: String,
}

/// The same rule as the REST mutations: a token with the `clinician` role.
fn require_clinician(ctx: &Context<'_>) -> async_graphql::Result<()> {
    match ctx.data_opt::<Claims>() {
        None => Err(graphql_error(ApiError::unauthorized(
            "A bearer token is required.",
        ))),
        Some(claims) if !claims.has_role("clinician") => Err(graphql_error(ApiError::forbidden(
            "This operation needs the role clinician.",
        ))),
        Some(_) => Ok(()),
    }
}

/// Mutations.
#[derive(Debug, Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Registers a patient (role `clinician`).
    async fn create_patient(
        &self,
        ctx: &Context<'_>,
        input: NewPatientInput,
    ) -> async_graphql::Result<Patient> {
        require_clinician(ctx)?;
        let body = serde_json::json!({"given_name": input.given_name, "family_name": input.family_name,
                                      "birth_date": input.birth_date});
        ctx.data::<Arc<Downstream>>()?
            .post_json("patients", "/patients", body)
            .await
    }

    /// Books an appointment (role `clinician`).
    async fn create_appointment(
        &self,
        ctx: &Context<'_>,
        input: NewAppointmentInput,
    ) -> async_graphql::Result<Appointment> {
        require_clinician(ctx)?;
        let body =
            serde_json::json!({"patient_id": input.patient_id, "at": input.at, "with": input.with});
        ctx.data::<Arc<Downstream>>()?
            .post_json("appointments", "/appointments", body)
            .await
    }
}

/// The gateway's protection settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Complexity units (about one per field asked) each caller may spend per minute
    /// (`GRAPHQL_COMPLEXITY_PER_MINUTE`).
    pub complexity_per_minute: u32,
    /// Automatic persisted queries (`GRAPHQL_PERSISTED_QUERIES=automatic`), stored in the
    /// service's cache (shared on Redis).
    pub persisted_queries: bool,
    /// Operation names with a metrics label of their own.
    pub max_operations: usize,
}

/// The schema with its limits and nilecare-graphql's extensions (span and metrics per
/// operation, the complexity budget on the service's rate limiter, persisted queries);
/// introspection only in development.
///
/// # Errors
/// When the complexity budget is not a valid quota.
pub fn schema(
    development: bool,
    state: &AppState,
    options: &Options,
) -> Result<GatewaySchema, Box<dyn std::error::Error + Send + Sync>> {
    let budget = Policy::new(
        "graphql-complexity",
        Quota::per_minute(u64::from(options.complexity_per_minute))?,
    )?;
    let mut builder = Schema::build(Query, Mutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(32)
        .extension(Observability::new(OperationLabels::new(
            options.max_operations,
        )))
        .extension(CostLimit::new(state.limiter.clone(), budget));
    if options.persisted_queries {
        builder = builder.extension(PersistedQueries::automatic(state.cache.clone()));
    }
    if !development {
        builder = builder.disable_introspection();
    }
    Ok(builder.finish())
}

/// `POST /graphql` and `GET /graphql?query=...`: one execution with this request's downstream
/// view, loaders and claims.
async fn execute(
    state: Arc<AppState>,
    schema: &GatewaySchema,
    headers: HeaderMap,
    claims: Option<Claims>,
    request: async_graphql::Request,
) -> async_graphql::Response {
    let downstream = Arc::new(Downstream { state, headers });
    let mut request = request
        .data(
            Appointments::with_cache(
                AppointmentsByPatient(downstream.clone()),
                tokio::spawn,
                HashMapCache::default(),
            )
            .delay(BATCH_WINDOW),
        )
        .data(
            Invoices::with_cache(
                InvoicesByPatient(downstream.clone()),
                tokio::spawn,
                HashMapCache::default(),
            )
            .delay(BATCH_WINDOW),
        )
        .data(downstream);
    if let Some(claims) = claims {
        request = request.data(claims);
    }
    schema.execute(request).await
}

/// The cache tags of GraphQL answers: every answer reads patients (and may read appointments),
/// so the REST mutations' `patients` tag and the GraphQL mutations drop them.
const READ_TAGS: [&str; 2] = ["patients", "appointments"];

/// The cache key of a query: a digest of the document, operation name, variables and
/// extensions (a persisted query's hash).
fn cache_key(request: &async_graphql::Request) -> String {
    use sha2::Digest as _;
    let mut digest = sha2::Sha256::new();
    digest.update(request.query.as_bytes());
    digest.update([0]);
    digest.update(request.operation_name.as_deref().unwrap_or("").as_bytes());
    digest.update([0]);
    digest.update(serde_json::to_vec(&request.variables).unwrap_or_default());
    digest.update([0]);
    digest.update(serde_json::to_vec(&request.extensions).unwrap_or_default());
    format!("graphql:{:x}", digest.finalize())
}

/// Who a request's complexity is charged to: the token's subject, else the client's address.
fn cost_key(claims: Option<&Claims>, peer: Option<std::net::SocketAddr>) -> CostKey {
    match (claims.and_then(|c| c.subject.as_deref()), peer) {
        (Some(subject), _) => CostKey::new(format!("sub:{subject}")),
        (None, Some(peer)) => CostKey::new(format!("ip:{}", peer.ip())),
        (None, None) => CostKey::new("anonymous"),
    }
}

/// One GraphQL request end to end: queries answered from (and stored in) the response cache in
/// the caller's clinic view, like the REST reads (`Cache-Status` says which); successful
/// mutations drop the cached answers of that view.
pub async fn serve(
    state: Arc<AppState>,
    schema: &GatewaySchema,
    headers: HeaderMap,
    claims: Option<Claims>,
    peer: Option<std::net::SocketAddr>,
    parsed: GraphQLRequest,
    ttl: std::time::Duration,
) -> Response {
    let GraphQLRequest { request, format } = parsed;
    let tenant = headers
        .get("x-clinic-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let view = match &tenant {
        Some(t) => state.cache.for_tenant(t).ok(),
        None => Some(state.cache.clone()),
    };
    // Answers are stored only for queries (see below), keyed by the whole request: a hit is
    // the answer of this very query, so the lookup needs no parse of the document, and a
    // mutation (even one sent by hash) never finds an answer.
    let key = cache_key(&request);
    // `Cache-Control: no-cache` asks for a fresh answer (which is then stored), as on the REST
    // routes.
    let fresh = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
        });
    if let (Some(view), false) = (&view, fresh) {
        if let Some(body) = view.get::<String>(&key).await {
            let mut response = respond_encoded(format, body);
            response.headers_mut().insert(
                http::HeaderName::from_static("cache-status"),
                http::HeaderValue::from_static("nilecare; hit"),
            );
            return response;
        }
    }
    let selected = SelectedOperation::default();
    let request = request
        .data(cost_key(claims.as_ref(), peer))
        .data(selected.clone());
    let response = execute(state, schema, headers, claims, request).await;
    let ok = response.errors.is_empty();
    let mut status = "nilecare; fwd=miss";
    if let (Some(view), true) = (&view, ok) {
        match selected.get().map(|op| op.kind) {
            Some(OperationKind::Mutation) => {
                for tag in READ_TAGS {
                    let _ = view.invalidate_tag(tag).await;
                }
            }
            Some(OperationKind::Query) => {
                let body = serde_json::to_string(&response).unwrap_or_default();
                if view
                    .set_with_tags(&key, &body, Some(ttl), &READ_TAGS)
                    .await
                    .is_ok()
                {
                    status = "nilecare; fwd=miss; stored";
                }
            }
            _ => {}
        }
    }
    let mut answer = respond(format, &response);
    answer.headers_mut().insert(
        http::HeaderName::from_static("cache-status"),
        http::HeaderValue::from_static(status),
    );
    answer
}

/// The GraphiQL page (development only).
pub async fn graphiql() -> Response {
    Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response()
}
