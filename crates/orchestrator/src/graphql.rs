//! The GraphQL gateway (`POST /graphql`, `GET /graphql` for queries; GraphiQL in development):
//! patients with their appointments and invoices, fetched from the demo services through the
//! same `Upstream` as the REST routes (discovery, retries, breakers, trace context). Lists of
//! patients load their appointments and invoices with one downstream call each per request
//! (DataLoader batching), not one per patient. Mutations need the `clinician` role of the
//! caller's token (nilecare-auth's `Claims`, put in the request by the API's auth layer).
//! Depth, complexity and document size are limited; introspection is off in production. Errors
//! carry `extensions.code`, the problem+json code of the REST routes.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::http::GraphiQLSource;
use async_graphql::{
    ComplexObject, Context, EmptySubscription, ErrorExtensions, InputObject, Object, Schema,
    SimpleObject,
};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use http::HeaderMap;
use nilecare::auth::Claims;
use nilecare::error_handler::ApiError;
use serde::Deserialize;

use super::AppState;
use super::routes::forward;

/// The deepest query accepted (patients → appointments is 3).
pub const MAX_DEPTH: usize = 8;
/// The most complex query accepted (one per field, lists multiplied by nothing: a flat budget).
pub const MAX_COMPLEXITY: usize = 500;
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

/// An `ApiError` as a GraphQL error with the same code as problem+json.
fn graphql_error(error: ApiError) -> async_graphql::Error {
    let code = error.code().to_string();
    async_graphql::Error::new(error.detail().to_owned()).extend_with(|_, e| e.set("code", code))
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
        if look_ahead.field("appointments").exists() {
            let grouped = downstream
                .by_patient("appointments", "/appointments", &ids)
                .await?;
            ctx.data::<Appointments>()?.feed_many(grouped).await;
        }
        if look_ahead.field("invoices").exists() {
            let grouped = downstream.by_patient("billing", "/invoices", &ids).await?;
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

/// The schema with its limits; introspection only in development.
pub fn schema(development: bool) -> GatewaySchema {
    let builder = Schema::build(Query, Mutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(32);
    if development {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
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

/// Whether the document holds a mutation (an unparsable one is left to the executor). The
/// parsed document stays in the request, and the executor uses it instead of parsing again.
fn is_mutation(request: &mut async_graphql::Request) -> bool {
    request
        .parsed_query()
        .map(|doc| {
            doc.operations
                .iter()
                .any(|(_, op)| op.node.ty == async_graphql::parser::types::OperationType::Mutation)
        })
        .unwrap_or(false)
}

/// The cache key of a query: a digest of the document, operation name and variables.
fn cache_key(request: &async_graphql::Request) -> String {
    use sha2::Digest as _;
    let mut digest = sha2::Sha256::new();
    digest.update(request.query.as_bytes());
    digest.update([0]);
    digest.update(request.operation_name.as_deref().unwrap_or("").as_bytes());
    digest.update([0]);
    digest.update(serde_json::to_vec(&request.variables).unwrap_or_default());
    format!("graphql:{:x}", digest.finalize())
}

/// One GraphQL request end to end: queries answered from (and stored in) the response cache in
/// the caller's clinic view, like the REST reads (`Cache-Status` says which); successful
/// mutations drop the cached answers of that view.
pub async fn serve(
    state: Arc<AppState>,
    schema: &GatewaySchema,
    headers: HeaderMap,
    claims: Option<Claims>,
    mut request: async_graphql::Request,
    ttl: std::time::Duration,
) -> Response {
    let tenant = headers
        .get("x-clinic-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let view = match &tenant {
        Some(t) => state.cache.for_tenant(t).ok(),
        None => Some(state.cache.clone()),
    };
    let mutation = is_mutation(&mut request);
    let key = (!mutation).then(|| cache_key(&request));
    if let (Some(view), Some(key)) = (&view, &key) {
        if let Some(body) = view.get::<String>(key).await {
            return json_response(body, "nilecare; hit");
        }
    }
    let response = execute(state, schema, headers, claims, request).await;
    let ok = response.errors.is_empty();
    let body = serde_json::to_string(&response).unwrap_or_default();
    let mut status = "nilecare; fwd=miss";
    if let Some(view) = &view {
        if mutation && ok {
            for tag in READ_TAGS {
                let _ = view.invalidate_tag(tag).await;
            }
        } else if let (Some(key), true) = (&key, ok) {
            if view
                .set_with_tags(key, &body, Some(ttl), &READ_TAGS)
                .await
                .is_ok()
            {
                status = "nilecare; fwd=miss; stored";
            }
        }
    }
    json_response(body, status)
}

fn json_response(body: String, cache_status: &'static str) -> Response {
    (
        [
            (http::header::CONTENT_TYPE, "application/json"),
            (http::HeaderName::from_static("cache-status"), cache_status),
        ],
        body,
    )
        .into_response()
}

/// The GraphiQL page (development only).
pub async fn graphiql() -> Response {
    Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response()
}

/// The GraphQL request of `POST` (a JSON body, read by axum's size-limited `Bytes`) or `GET`
/// (the query string; queries only: a mutation over GET is 405).
///
/// # Errors
/// 400 problem+json naming `body` or `query` when it is not a GraphQL request.
pub fn parse_request(
    method: &http::Method,
    query: Option<&str>,
    body: &[u8],
) -> Result<async_graphql::Request, ApiError> {
    if method == http::Method::GET {
        let mut request =
            async_graphql::http::parse_query_string(query.unwrap_or("")).map_err(|e| {
                ApiError::bad_request("not a GraphQL request").field("query", e.to_string())
            })?;
        // GET is for queries: a mutation must not be triggered by a link or a prefetch.
        if is_mutation(&mut request) {
            return Err(ApiError::new(
                nilecare::error_handler::ErrorCode::METHOD_NOT_ALLOWED,
                "Mutations need POST.",
            ));
        }
        return Ok(request);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("not a GraphQL request").field("body", e.to_string()))
}
