//! Loading through the cache from request handlers: `?` turns a `LoadError` into the
//! error-handler's `ApiError` (a loader's own `ApiError` keeps its status), and the loader runs in
//! the span of the caller that started the load, so its log lines carry the request's context.
//! Its own binary: it installs the global subscriber.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use nilecare_cache::{AnyStore, Cache, MemoryStore};
use nilecare_error_handler::ApiError;
use tracing::Instrument;

fn cache() -> Cache {
    Cache::builder()
        .name("handlers")
        .build(AnyStore::from(MemoryStore::with_max_entries(100).unwrap()))
        .unwrap()
}

/// A handler body: `?` on the load.
async fn patient_name(cache: &Cache, id: u32) -> Result<String, ApiError> {
    let name: String = cache
        .get_or_set_with(
            &format!("patient:{id}"),
            Some(Duration::from_secs(60)),
            move || async move {
                match id {
                    1 => Ok("Amina".to_owned()),
                    404 => Err(ApiError::not_found(format!("patient {id}"))),
                    _ => Err(ApiError::upstream_unavailable("patients")),
                }
            },
        )
        .await?;
    Ok(name)
}

#[derive(Debug, thiserror::Error)]
#[error("database timed out (secret connection string)")]
struct DbError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_errors_convert_to_api_errors_and_loaders_keep_the_caller_span() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry()).unwrap();
    let cache = cache();

    assert_eq!(patient_name(&cache, 1).await.unwrap(), "Amina");
    let not_found = patient_name(&cache, 404).await.unwrap_err();
    assert_eq!(
        not_found.status(),
        404,
        "the loader's own ApiError keeps its code"
    );
    assert_eq!(patient_name(&cache, 7).await.unwrap_err().status(), 503);

    // Any other loader error: a 500 whose body does not show the cause.
    let other: Result<String, ApiError> = async {
        let v: String = cache
            .get_or_set_with("db", None, || async { Err::<String, _>(DbError) })
            .await?;
        Ok(v)
    }
    .await;
    let response = other.unwrap_err().into_response();
    assert_eq!(response.status(), 500);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&body).contains("secret"),
        "{body:?}"
    );

    // The loader runs in the span of the caller that started it.
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let record = seen.clone();
    let request = tracing::info_span!("request", request_id = "req-load-1");
    let _: String = cache
        .get_or_set_with("spanned", None, move || async move {
            let name = tracing::Span::current()
                .metadata()
                .map(|m| m.name().to_owned());
            *record.lock().unwrap() = name;
            Ok::<_, DbError>("v".to_owned())
        })
        .instrument(request)
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().as_deref(), Some("request"));
}
