//! Operating the dead-letter streams over HTTP (role `operator`; never cached): list a
//! group's dead letters, hand one to its group again, or purge it.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/admin/messaging/{topic}/{group}/dead-letters?limit=N` | 200, JSON list, oldest first (default 100, at most 1 000) |
//! | `POST /api/v1/admin/messaging/{topic}/{group}/dead-letters/{entry}/replay` | 200 `{"replayed": "<new entry>"}`: delivered to that group only |
//! | `DELETE /api/v1/admin/messaging/{topic}/{group}/dead-letters/{entry}` | 204, or 404 when there is no such dead letter |

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nilecare::error_handler::ApiError;
use nilecare::messaging::{Broker, DeadLetter, Error, check_name, replay_dead_letter};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;

/// The role these routes need.
pub const ROLE: &str = "operator";
/// The most dead letters one listing returns.
const MAX_LIMIT: usize = 1_000;

/// `?limit=`.
#[derive(Debug, Deserialize)]
pub struct Listing {
    limit: Option<usize>,
}

fn problem(error: Error) -> ApiError {
    match error {
        Error::Invalid { field, message } => {
            ApiError::bad_request(format!("invalid {field}")).field(field, message)
        }
        other => ApiError::upstream_unavailable("the message broker").with_source(other),
    }
}

/// Checks what the path names before it reaches the broker: topic and group names, and an
/// entry id (`<milliseconds>-<sequence>`).
fn check(topic: &str, group: &str, entry: Option<&str>) -> Result<(), ApiError> {
    check_name("topic", topic).map_err(problem)?;
    check_name("group", group).map_err(problem)?;
    if let Some(entry) = entry {
        let valid = entry.len() <= 41
            && entry.split_once('-').is_some_and(|(ms, seq)| {
                [ms, seq]
                    .iter()
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            });
        if !valid {
            return Err(ApiError::bad_request("invalid entry")
                .field("entry", "must be an entry id <ms>-<seq>"));
        }
    }
    Ok(())
}

fn as_json(dead: &DeadLetter) -> Value {
    json!({
        "entry": dead.entry,
        "original": dead.original,
        "error": dead.error,
        "attempts": dead.attempts,
        "message": dead.message.as_ref().map(|m| json!({
            "id": m.id(),
            "type": m.kind(),
            "published_at_ms": m.published_at_ms(),
            "headers": m.headers(),
            "payload": serde_json::from_slice::<Value>(m.payload_bytes()).unwrap_or(Value::Null),
        })),
    })
}

/// `GET .../dead-letters`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Path((topic, group)): Path<(String, String)>,
    Query(listing): Query<Listing>,
) -> Result<Response, ApiError> {
    check(&topic, &group, None)?;
    let limit = listing.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            ApiError::bad_request("invalid limit").field("limit", format!("must be 1-{MAX_LIMIT}"))
        );
    }
    let dead = state
        .events
        .broker()
        .dead_letters(&topic, &group, limit)
        .await
        .map_err(problem)?;
    let body: Vec<Value> = dead.iter().map(as_json).collect();
    Ok(Json(json!({"topic": topic, "group": group, "dead_letters": body})).into_response())
}

/// `POST .../dead-letters/{entry}/replay`.
pub async fn replay(
    State(state): State<Arc<AppState>>,
    Path((topic, group, entry)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    check(&topic, &group, Some(&entry))?;
    match replay_dead_letter(state.events.broker(), &topic, &group, &entry).await {
        Ok(replayed) => {
            tracing::info!(%topic, %group, %entry, %replayed, "dead letter replayed");
            Ok(Json(json!({"replayed": replayed})).into_response())
        }
        Err(Error::Invalid { field: "entry", .. }) => Err(ApiError::not_found(format!(
            "dead letter {entry} of {topic}/{group}"
        ))),
        Err(e) => Err(problem(e)),
    }
}

/// `DELETE .../dead-letters/{entry}`.
pub async fn purge(
    State(state): State<Arc<AppState>>,
    Path((topic, group, entry)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    check(&topic, &group, Some(&entry))?;
    let removed = state
        .events
        .broker()
        .remove_dead_letter(&topic, &group, &entry)
        .await
        .map_err(problem)?;
    if removed {
        tracing::info!(%topic, %group, %entry, "dead letter purged");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!(
            "dead letter {entry} of {topic}/{group}"
        )))
    }
}
