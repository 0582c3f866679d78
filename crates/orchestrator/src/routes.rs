//! The API handlers: each resolves its downstream service by name through
//! [`Upstream`](crate::upstream::Upstream) and answers JSON or problem+json.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::Request;
use nilecare::circuit_breaker::Breaker as _;
use nilecare::error_handler::{ApiError, Json};
use serde_json::{Value, json};

use super::AppState;
use super::downstream::{NewPatient, Patient};
use super::upstream::is_not_found;

/// Headers passed on to the downstream services.
const FORWARDED: [&str; 3] = ["x-clinic-id", "x-request-id", "idempotency-key"];

/// A downstream request for `path` with the forwarded headers of `headers`.
fn downstream_request(
    method: http::Method,
    path: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Request<Bytes> {
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = path.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    for name in FORWARDED {
        if let Some(value) = headers.get(name) {
            request.headers_mut().insert(name, value.clone());
        }
    }
    if !request.body().is_empty() {
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    request
}

fn json_body(response: &http::Response<Bytes>) -> Result<Value, ApiError> {
    serde_json::from_slice(response.body())
        .map_err(|e| ApiError::internal("a downstream service sent malformed JSON").with_source(e))
}

/// The newest (v2) shape: the name nested. v1 clients get the flat fields through the
/// versioning layer's transform (`versioning::layer`).
fn shape_patient(patient: Patient) -> Value {
    json!({
        "id": patient.id,
        "name": {"given": patient.given_name, "family": patient.family_name},
        "birthDate": patient.birth_date,
    })
}

fn parse_patient(response: &http::Response<Bytes>) -> Result<Patient, ApiError> {
    serde_json::from_slice(response.body()).map_err(|e| {
        ApiError::internal("a downstream service sent an unreadable patient").with_source(e)
    })
}

fn check_patient(new: &NewPatient) -> Result<(), ApiError> {
    let mut error = ApiError::validation();
    let mut bad = false;
    for (field, value) in [
        ("given_name", &new.given_name),
        ("family_name", &new.family_name),
    ] {
        if value.trim().is_empty() || value.len() > 100 {
            error = error.field(field, "must be 1 to 100 characters");
            bad = true;
        }
    }
    let date = new.birth_date.as_bytes();
    let date_ok = date.len() == 10
        && date[4] == b'-'
        && date[7] == b'-'
        && date
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !date_ok {
        error = error.field("birth_date", "must be a date as YYYY-MM-DD");
        bad = true;
    }
    if bad { Err(error) } else { Ok(()) }
}

/// Calls `service` with `method path`, forwarding the caller's headers.
pub(crate) async fn forward(
    state: &AppState,
    service: &'static str,
    method: http::Method,
    path: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<http::Response<Bytes>, ApiError> {
    state
        .upstream
        .call(service, downstream_request(method, path, headers, body))
        .await
}

/// Calls the patients service about patient `id`; its 404 becomes ours.
async fn patient_call(
    state: &AppState,
    method: http::Method,
    id: u64,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<http::Response<Bytes>, ApiError> {
    let response = forward(
        state,
        "patients",
        method,
        format!("/patients/{id}"),
        headers,
        body,
    )
    .await?;
    if is_not_found(&response) {
        return Err(ApiError::not_found(format!("patient {id}")));
    }
    Ok(response)
}

/// A checked patient as the downstream's JSON body.
fn patient_body(new: &NewPatient) -> Result<Bytes, ApiError> {
    check_patient(new)?;
    serde_json::to_vec(new)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal("encoding a patient").with_source(e))
}

/// `GET /api/{v}/patients`
pub async fn list_patients(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = match query {
        Some(q) => format!("/patients?{q}"),
        None => "/patients".to_owned(),
    };
    let response = forward(
        &state,
        "patients",
        http::Method::GET,
        path,
        &headers,
        Bytes::new(),
    )
    .await?;
    let patients: Vec<Patient> = serde_json::from_slice(response.body())
        .map_err(|e| ApiError::internal("unreadable patient list").with_source(e))?;
    let shaped: Vec<Value> = patients.into_iter().map(shape_patient).collect();
    Ok(axum::Json(shaped).into_response())
}

/// `GET /api/{v}/patients/{id}`
pub async fn get_patient(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let response = patient_call(&state, http::Method::GET, id, &headers, Bytes::new()).await?;
    Ok(axum::Json(shape_patient(parse_patient(&response)?)).into_response())
}

/// `POST /api/{v}/patients`
pub async fn create_patient(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(new): Json<NewPatient>,
) -> Result<Response, ApiError> {
    let body = patient_body(&new)?;
    let response = forward(
        &state,
        "patients",
        http::Method::POST,
        "/patients".to_owned(),
        &headers,
        body,
    )
    .await?;
    let patient = parse_patient(&response)?;
    Ok((StatusCode::CREATED, axum::Json(shape_patient(patient))).into_response())
}

/// `PUT /api/{v}/patients/{id}`
pub async fn update_patient(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Json(new): Json<NewPatient>,
) -> Result<Response, ApiError> {
    let body = patient_body(&new)?;
    let response = patient_call(&state, http::Method::PUT, id, &headers, body).await?;
    super::events::patient_updated(&state.events, id, tenant(&headers)).await;
    Ok(axum::Json(shape_patient(parse_patient(&response)?)).into_response())
}

/// `DELETE /api/{v}/patients/{id}`
pub async fn delete_patient(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    patient_call(&state, http::Method::DELETE, id, &headers, Bytes::new()).await?;
    super::events::patient_updated(&state.events, id, tenant(&headers)).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The request's clinic (`X-Clinic-Id`), its cache view.
fn tenant(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-clinic-id").and_then(|v| v.to_str().ok())
}

/// A JSON list read from `service` at `path` and passed through.
async fn pass_through(
    state: &AppState,
    service: &'static str,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let method = http::Method::GET;
    let response = forward(
        state,
        service,
        method,
        path.to_owned(),
        headers,
        Bytes::new(),
    )
    .await?;
    Ok(axum::Json(json_body(&response)?).into_response())
}

/// `GET /api/{v}/appointments`
pub async fn appointments(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pass_through(&state, "appointments", "/appointments", &headers).await
}

/// `GET /api/{v}/billing/invoices`
pub async fn invoices(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pass_through(&state, "billing", "/invoices", &headers).await
}

/// `GET /api/v1/hello`: a constant answer through the whole middleware stack (benchmarks).
pub async fn hello() -> &'static str {
    "hello"
}

/// `POST /demo/{service}/failure?on=true|false`: switches a demo service's error injection (it
/// then answers 503 to everything), to watch retries and the circuit breaker at work.
pub async fn demo_failure(
    State(state): State<Arc<AppState>>,
    Path(service): Path<String>,
    axum::extract::Query(switch): axum::extract::Query<FailureSwitch>,
) -> Result<axum::Json<Value>, ApiError> {
    let demo = state
        .demo
        .iter()
        .find(|d| d.name == service)
        .ok_or_else(|| ApiError::not_found(format!("demo service {service} in this process")))?;
    demo.set_failing(switch.on);
    Ok(axum::Json(
        json!({"service": demo.name, "failing": switch.on}),
    ))
}

/// The query of [`demo_failure`].
#[derive(Debug, serde::Deserialize)]
pub struct FailureSwitch {
    on: bool,
}

/// `GET /health`: the process is alive.
pub async fn health() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

/// `GET /ready`: Redis answers, the registry answers, and which breakers are open.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    use nilecare::service_discovery::Registry;
    let redis = match &state.redis {
        None => json!("disabled"),
        Some(pool) => match tokio::time::timeout(
            std::time::Duration::from_millis(500),
            nilecare::redis::ping(pool),
        )
        .await
        {
            Ok(Ok(latency)) => json!({"status": "ok", "latency_ms": latency.as_secs_f64() * 1e3}),
            Ok(Err(e)) => json!({"status": "error", "error": e.to_string()}),
            Err(_) => json!({"status": "error", "error": "timed out"}),
        },
    };
    let registry = match tokio::time::timeout(
        std::time::Duration::from_millis(500),
        state.registry.services(),
    )
    .await
    {
        Ok(Ok(services)) => json!({"status": "ok", "services": services}),
        Ok(Err(e)) => json!({"status": "error", "error": e.to_string()}),
        Err(_) => json!({"status": "error", "error": "timed out"}),
    };
    let breakers: serde_json::Map<String, Value> = state
        .upstream
        .breakers()
        .iter()
        .map(|(name, b)| {
            (
                (*name).to_owned(),
                json!(format!("{:?}", b.state()).to_lowercase()),
            )
        })
        .collect();
    // This instance's patient events: reported, not a readiness condition (a backlog drains).
    let messaging = {
        use nilecare::messaging::Broker;
        let group = super::events::group(&state.instance);
        match tokio::time::timeout(
            std::time::Duration::from_millis(500),
            state.events.broker().backlog(super::events::TOPIC, &group),
        )
        .await
        {
            Ok(Ok(b)) => json!({super::events::TOPIC: {
                "group": group, "pending": b.pending, "lag": b.lag, "dead_letters": b.dead_letters,
            }}),
            Ok(Err(e)) => json!({"status": "error", "error": e.to_string()}),
            Err(_) => json!({"status": "error", "error": "timed out"}),
        }
    };
    let healthy = |v: &Value| v == "disabled" || v["status"] == "ok";
    let ok = healthy(&redis) && healthy(&registry);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "checks": {"redis": redis, "registry": registry, "breakers": breakers, "messaging": messaging},
    });
    (status, axum::Json(body)).into_response()
}
