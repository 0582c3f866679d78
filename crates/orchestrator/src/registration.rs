//! Patient registration as a saga across the demo services (nilecare-messaging): create the
//! patient → open a billing account → book the first appointment. When a step fails for good
//! (try `POST /demo/appointments/failure?on=true`), the account is closed and the patient
//! deleted again, newest first. The saga is persisted after every step (in memory, or on Redis
//! shared by every instance), and an instance takes over the registrations a dead instance left
//! mid-way (`recover`, every few seconds).
//!
//! `POST /api/{v}/registrations` (role `clinician`; an `Idempotency-Key` header makes a retried
//! request the same registration) answers 201 with the registration when it completed, 503
//! problem+json with it when it was compensated; `GET /api/{v}/registrations/{id}` shows it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use nilecare::error_handler::{ApiError, ErrorCode};
use nilecare::messaging::saga::{
    AnySagaStore, MemorySagaStore, RedisSagaStore, Saga, SagaRecord, SagaRunner, SagaStatus,
    StepContext, StepError,
};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::routes::forward;

/// The saga's name.
pub const SAGA: &str = "patient-registration";

/// What a registration asks for and what its steps produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Birth date (YYYY-MM-DD).
    pub birth_date: String,
    /// The first appointment's time (RFC 3339).
    pub at: String,
    /// With whom.
    pub with: String,
    /// Set by the first step.
    #[serde(default)]
    pub patient_id: Option<u64>,
    /// Set by the second step.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Set by the last step.
    #[serde(default)]
    pub appointment_id: Option<u64>,
}

static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A name for this instance, `orchestrator-<pid>-<n>`: unique even for several instances in
/// one process.
pub fn instance_name() -> String {
    let n = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("orchestrator-{}-{n}", std::process::id())
}

/// The runner of instance `instance`, on Redis when the service has it.
///
/// # Errors
/// [`nilecare::messaging::Error::Invalid`] when `instance` is not a valid name.
pub fn runner(
    redis: Option<&nilecare::redis::fred::clients::Pool>,
    instance: &str,
) -> Result<SagaRunner<AnySagaStore>, nilecare::messaging::Error> {
    let store = match redis {
        Some(pool) => AnySagaStore::Redis(RedisSagaStore::new(pool.clone())),
        None => AnySagaStore::Memory(MemorySagaStore::new()),
    };
    // A step takes at most 2 s × 2 tries; the lease covers it with room to spare.
    Ok(SagaRunner::new(store, instance)?.lease(Duration::from_secs(10)))
}

/// Calls `service` and reads its JSON answer; a non-success status is the step's failure.
async fn call(
    state: &AppState,
    service: &'static str,
    method: Method,
    path: String,
    ctx: &StepContext,
    body: serde_json::Value,
) -> Result<serde_json::Value, StepError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "idempotency-key",
        http::HeaderValue::from_str(&ctx.idempotency_key)?,
    );
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(serde_json::to_vec(&body)?)
    };
    let response = forward(state, service, method, path, &headers, body)
        .await
        .map_err(|e| format!("{service}: {}", e.detail()))?;
    if !response.status().is_success() {
        return Err(format!("{service} answered {}", response.status()).into());
    }
    if response.body().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_slice(response.body())?)
}

/// The saga, its steps calling the demo services through `state`'s upstream client.
pub fn saga(state: &Arc<AppState>) -> Saga<Registration> {
    let (s1, s2, s3, s4, s5) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
    );
    let limits = (Duration::from_secs(2), 2);
    Saga::builder(SAGA)
        .step(
            "create-patient",
            move |mut r: Registration, ctx| {
                let state = s1.clone();
                async move {
                    let body = serde_json::json!({"given_name": r.given_name, "family_name": r.family_name, "birth_date": r.birth_date});
                    let created = call(&state, "patients", Method::POST, "/patients".into(), &ctx, body).await?;
                    r.patient_id = created["id"].as_u64();
                    Ok(r)
                }
            },
            move |mut r: Registration, ctx| {
                let state = s2.clone();
                async move {
                    if let Some(id) = r.patient_id {
                        call(&state, "patients", Method::DELETE, format!("/patients/{id}"), &ctx, serde_json::Value::Null).await?;
                    }
                    r.patient_id = None;
                    Ok(r)
                }
            },
        )
        .limits(limits.0, limits.1)
        .step(
            "open-account",
            move |mut r: Registration, ctx| {
                let state = s3.clone();
                async move {
                    let body = serde_json::json!({"patient_id": r.patient_id});
                    let opened = call(&state, "billing", Method::POST, "/accounts".into(), &ctx, body).await?;
                    r.account_id = opened["id"].as_str().map(str::to_owned);
                    Ok(r)
                }
            },
            move |mut r: Registration, ctx| {
                let state = s4.clone();
                async move {
                    if let Some(id) = &r.account_id {
                        call(&state, "billing", Method::DELETE, format!("/accounts/{id}"), &ctx, serde_json::Value::Null).await?;
                    }
                    r.account_id = None;
                    Ok(r)
                }
            },
        )
        .limits(limits.0, limits.1)
        .step_without_compensation("book-appointment", move |mut r: Registration, ctx| {
            let state = s5.clone();
            async move {
                let body = serde_json::json!({"patient_id": r.patient_id, "at": r.at, "with": r.with});
                let booked = call(&state, "appointments", Method::POST, "/appointments".into(), &ctx, body).await?;
                r.appointment_id = booked["id"].as_u64();
                Ok(r)
            }
        })
        .limits(limits.0, limits.1)
        .build()
        .expect("a valid saga definition")
}

/// A new registration's request body.
#[derive(Debug, Deserialize)]
pub struct NewRegistration {
    given_name: String,
    family_name: String,
    birth_date: String,
    at: String,
    with: String,
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The registration as answered: the saga record, its state as the registration.
fn shown(record: &SagaRecord) -> serde_json::Value {
    serde_json::json!({
        "id": record.id,
        "status": record.status,
        "registration": record.state,
        "error": record.error,
        "history": record.history,
    })
}

/// `POST /api/{v}/registrations`
pub async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    nilecare::error_handler::Json(new): nilecare::error_handler::Json<NewRegistration>,
) -> Result<Response, ApiError> {
    let id = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(key) => key.to_owned(),
        None => format!(
            "reg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
    };
    for (field, value) in [
        ("given_name", &new.given_name),
        ("family_name", &new.family_name),
    ] {
        if value.trim().is_empty() {
            return Err(ApiError::validation().field(field, "must not be empty"));
        }
    }
    let registration = Registration {
        given_name: new.given_name,
        family_name: new.family_name,
        birth_date: new.birth_date,
        at: new.at,
        with: new.with,
        patient_id: None,
        account_id: None,
        appointment_id: None,
    };
    let record = state
        .registrations
        .start(&saga(&state), &id, registration)
        .await
        .map_err(|e| match e {
            nilecare::messaging::Error::Invalid {
                field: "id",
                message,
            } => ApiError::bad_request("invalid Idempotency-Key").field("idempotency-key", message),
            other => ApiError::upstream_unavailable("the registration store").with_source(other),
        })?;
    match record.status {
        SagaStatus::Completed => {
            Ok((StatusCode::CREATED, axum::Json(shown(&record))).into_response())
        }
        _ => Err(ApiError::new(
            ErrorCode::UPSTREAM_UNAVAILABLE,
            format!(
                "The registration was undone: {}",
                record.error.as_deref().unwrap_or("a step failed")
            ),
        )
        .with_extension("registration", shown(&record))),
    }
}

/// `GET /api/{v}/registrations/{id}`
pub async fn registration(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.registrations.status(SAGA, &id).await {
        Ok(Some(record)) => Ok(axum::Json(shown(&record)).into_response()),
        Ok(None) => Err(ApiError::not_found(format!("registration {id}"))),
        Err(e) => Err(ApiError::upstream_unavailable("the registration store").with_source(e)),
    }
}

/// Every few seconds, finishes the registrations whose instance died mid-way.
pub fn spawn_recovery(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let saga = saga(&state);
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if let Err(error) = state.registrations.recover(&saga).await {
                tracing::warn!(%error, "recovering registrations failed");
            }
        }
    })
}
