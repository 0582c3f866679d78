//! The demo downstream services (patients, appointments, billing): real axum servers on free
//! ports with a simulated latency, an error-injection switch, and a record of the trace
//! context each request carried. They register themselves in the service registry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nilecare::service_discovery::{AnyRegistry, Registration, Registry, ServiceInstance};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// A stored patient.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
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

/// A patient as clients send it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct NewPatient {
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Birth date (YYYY-MM-DD).
    pub birth_date: String,
}

/// One running demo service.
#[derive(Clone, Debug)]
pub struct DemoService {
    /// Its service name.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// While set, every request answers 503.
    pub failing: Arc<AtomicBool>,
    /// Requests received.
    pub hits: Arc<AtomicU64>,
    /// The `traceparent` of the last request.
    pub last_traceparent: Arc<Mutex<Option<String>>>,
}

impl DemoService {
    /// Turns error injection on or off.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }
}

/// The demo services and their registrations (dropped: the registrations expire).
pub struct Demo {
    /// The services.
    pub services: Vec<DemoService>,
    registrations: Vec<Registration<AnyRegistry>>,
}

impl Demo {
    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&DemoService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Removes every registration now.
    pub async fn deregister(self) {
        for registration in self.registrations {
            if let Err(error) = registration.deregister().await {
                tracing::warn!(%error, "deregistering a demo service failed");
            }
        }
    }
}

#[derive(Clone)]
struct Shared {
    service: DemoService,
    latency: Duration,
    patients: Arc<Mutex<BTreeMap<u64, Patient>>>,
    appointments: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Billing accounts: id → patient.
    accounts: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// Starts patients, appointments and billing on free ports and registers them.
pub async fn spawn(registry: &AnyRegistry, latency: Duration) -> std::io::Result<Demo> {
    let mut services = Vec::new();
    let mut registrations = Vec::new();
    for name in ["patients", "appointments", "billing"] {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let service = DemoService {
            name,
            addr,
            failing: Arc::default(),
            hits: Arc::default(),
            last_traceparent: Arc::default(),
        };
        let shared = Shared {
            service: service.clone(),
            latency,
            patients: Arc::new(Mutex::new(seed_patients())),
            appointments: Arc::new(Mutex::new(seed_appointments())),
            accounts: Arc::default(),
        };
        let app = match name {
            "patients" => Router::new()
                .route("/patients", get(list_patients).post(create_patient))
                .route(
                    "/patients/{id}",
                    get(get_patient).put(update_patient).delete(delete_patient),
                ),
            "appointments" => {
                Router::new().route("/appointments", get(appointments).post(create_appointment))
            }
            _ => Router::new()
                .route("/invoices", get(invoices))
                .route("/accounts", get(list_accounts).post(open_account))
                .route("/accounts/{id}", axum::routing::delete(close_account)),
        }
        .route("/health", get(health))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            simulate,
        ))
        .with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let instance = ServiceInstance::new(
            name,
            format!("{name}-{}", addr.port()),
            format!("http://{addr}"),
        )
        .map_err(std::io::Error::other)?
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_zone("local");
        registrations.push(
            registry
                .register(instance)
                .await
                .map_err(std::io::Error::other)?,
        );
        services.push(service);
    }
    Ok(Demo {
        services,
        registrations,
    })
}

fn seed_patients() -> BTreeMap<u64, Patient> {
    [
        (1, "Amina", "Hassan", "1985-03-14"),
        (2, "Omar", "Farouk", "1972-11-02"),
        (3, "Nadia", "Mansour", "1990-07-21"),
    ]
    .into_iter()
    .map(|(id, given, family, birth)| {
        (
            id,
            Patient {
                id,
                given_name: given.to_owned(),
                family_name: family.to_owned(),
                birth_date: birth.to_owned(),
            },
        )
    })
    .collect()
}

/// Counts the request, records its trace context, waits the simulated latency, and answers
/// 503 while failing.
async fn simulate(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let service = &shared.service;
    service.hits.fetch_add(1, Ordering::Relaxed);
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    *service
        .last_traceparent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = traceparent;
    if request.uri().path() != "/health" {
        tokio::time::sleep(shared.latency).await;
    }
    if service.failing.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "injected failure").into_response();
    }
    next.run(request).await
}

async fn health() -> &'static str {
    "ok"
}

fn patients(shared: &Shared) -> std::sync::MutexGuard<'_, BTreeMap<u64, Patient>> {
    shared
        .patients
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn list_patients(State(shared): State<Shared>) -> Json<Vec<Patient>> {
    Json(patients(&shared).values().cloned().collect())
}

async fn get_patient(State(shared): State<Shared>, Path(id): Path<u64>) -> Response {
    match patients(&shared).get(&id) {
        Some(p) => Json(p.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn create_patient(State(shared): State<Shared>, Json(new): Json<NewPatient>) -> Response {
    let mut all = patients(&shared);
    let id = all.keys().next_back().map_or(1, |last| last + 1);
    let patient = Patient {
        id,
        given_name: new.given_name,
        family_name: new.family_name,
        birth_date: new.birth_date,
    };
    all.insert(id, patient.clone());
    (StatusCode::CREATED, Json(patient)).into_response()
}

async fn update_patient(
    State(shared): State<Shared>,
    Path(id): Path<u64>,
    Json(new): Json<NewPatient>,
) -> Response {
    let mut all = patients(&shared);
    match all.get_mut(&id) {
        Some(p) => {
            p.given_name = new.given_name;
            p.family_name = new.family_name;
            p.birth_date = new.birth_date;
            Json(p.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_patient(State(shared): State<Shared>, Path(id): Path<u64>) -> StatusCode {
    match patients(&shared).remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

/// `?patient_id=1,2,3`: only those patients' rows (one call for many patients: the GraphQL
/// gateway's batches).
#[derive(Debug, Deserialize)]
struct ByPatient {
    patient_id: Option<String>,
}

impl ByPatient {
    fn wanted(&self) -> Option<Vec<u64>> {
        self.patient_id.as_deref().map(|ids| {
            ids.split(',')
                .filter_map(|id| id.trim().parse().ok())
                .collect()
        })
    }
}

fn seed_appointments() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({"id": 101, "patient_id": 1, "at": "2026-11-23T09:00:00Z", "with": "Dr. Selim"}),
        serde_json::json!({"id": 102, "patient_id": 3, "at": "2026-11-23T10:30:00Z", "with": "Dr. Karim"}),
    ]
}

fn filtered(rows: &[serde_json::Value], query: &ByPatient) -> Vec<serde_json::Value> {
    let wanted = query.wanted();
    rows.iter()
        .filter(|row| {
            wanted.as_ref().is_none_or(|ids| {
                row["patient_id"]
                    .as_u64()
                    .is_some_and(|id| ids.contains(&id))
            })
        })
        .cloned()
        .collect()
}

async fn appointments(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<ByPatient>,
) -> Json<serde_json::Value> {
    let clinic = headers
        .get("x-clinic-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("main")
        .to_owned();
    let rows = shared
        .appointments
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut rows = filtered(&rows, &query);
    for row in &mut rows {
        row["clinic"] = serde_json::Value::String(clinic.clone());
    }
    Json(serde_json::Value::Array(rows))
}

/// A new appointment as the gateway sends it.
#[derive(Debug, Deserialize)]
struct NewAppointment {
    patient_id: u64,
    at: String,
    with: String,
}

async fn create_appointment(
    State(shared): State<Shared>,
    Json(new): Json<NewAppointment>,
) -> Response {
    let mut rows = shared
        .appointments
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let id = rows
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .max()
        .unwrap_or(100)
        + 1;
    let row =
        serde_json::json!({"id": id, "patient_id": new.patient_id, "at": new.at, "with": new.with});
    rows.push(row.clone());
    (StatusCode::CREATED, Json(row)).into_response()
}

/// A billing account to open (the registration saga's second step).
#[derive(Debug, Deserialize)]
struct NewAccount {
    patient_id: u64,
}

/// `POST /accounts`: one account per patient (opening it again returns the same account, as an
/// idempotent service would).
async fn open_account(State(shared): State<Shared>, Json(new): Json<NewAccount>) -> Response {
    let mut accounts = shared
        .accounts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let id = format!("ACC-{}", new.patient_id);
    accounts.insert(id.clone(), new.patient_id);
    (
        StatusCode::CREATED,
        Json(serde_json::json!({"id": id, "patient_id": new.patient_id})),
    )
        .into_response()
}

/// `GET /accounts`: the open accounts.
async fn list_accounts(State(shared): State<Shared>) -> Json<serde_json::Value> {
    let accounts = shared
        .accounts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Json(serde_json::Value::Array(
        accounts
            .iter()
            .map(|(id, patient)| serde_json::json!({"id": id, "patient_id": patient}))
            .collect(),
    ))
}

/// `DELETE /accounts/{id}` (the saga's compensation); closing a closed account is a success.
async fn close_account(State(shared): State<Shared>, Path(id): Path<String>) -> StatusCode {
    shared
        .accounts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&id);
    StatusCode::NO_CONTENT
}

async fn invoices(Query(query): Query<ByPatient>) -> Json<serde_json::Value> {
    let rows = [
        serde_json::json!({"id": "INV-2026-0001", "patient_id": 1, "amount": "120.00", "currency": "EGP", "status": "paid"}),
        serde_json::json!({"id": "INV-2026-0002", "patient_id": 2, "amount": "75.50", "currency": "EGP", "status": "open"}),
    ];
    Json(serde_json::Value::Array(filtered(&rows, &query)))
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("services", &self.services.len())
            .finish_non_exhaustive()
    }
}
