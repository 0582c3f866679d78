//! Events between orchestrator instances (nilecare-messaging): a patient changed through one
//! instance is announced as `patient.updated` on the `patients` topic, and every instance
//! (each its own consumer group, so each gets every event) drops its cached answers about
//! that patient. On Redis the events cross instances; in memory they stay in the process.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nilecare::messaging::{
    AnyBroker, Broker, Consumer, ConsumerHandle, MemoryBroker, Message, Outcome, Publisher,
    RedisBroker, StartAt, headers,
};

use super::AppState;

/// The topic of patient events.
pub const TOPIC: &str = "patients";
/// The type of the event sent when a patient changed or was deleted.
pub const PATIENT_UPDATED: &str = "patient.updated";

/// The service's broker: Redis Streams when the service has Redis, else in process.
pub fn broker(redis: Option<&nilecare::redis::fred::clients::Pool>) -> AnyBroker {
    match redis {
        Some(pool) => AnyBroker::Redis(RedisBroker::new(pool.clone())),
        None => AnyBroker::Memory(MemoryBroker::new()),
    }
}

/// Announces that patient `id` changed (in `tenant`'s view, when the request had one). A
/// failure is logged, not returned: the change itself succeeded, and cached answers expire
/// with their TTL.
pub async fn patient_updated(events: &Publisher<AnyBroker>, id: u64, tenant: Option<&str>) {
    let message =
        Message::new(PATIENT_UPDATED, &serde_json::json!({"id": id})).and_then(|m| match tenant {
            Some(t) => m.with_header(headers::TENANT, t),
            None => Ok(m),
        });
    let sent = match message {
        Ok(message) => events.publish(TOPIC, &message).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(error) = sent {
        tracing::warn!(%error, patient = id, "announcing a patient change failed");
    }
}

/// The consumer group of instance `instance`.
pub fn group(instance: &str) -> String {
    format!("cache-{instance}")
}

/// Stops this instance's consumer and removes its group: the instance will never read again,
/// and a group left behind would keep collecting messages on Redis.
pub async fn stop(state: &AppState, instance: &str, consumer: ConsumerHandle) {
    consumer.shutdown().await;
    if let Err(error) = state
        .events
        .broker()
        .delete_group(TOPIC, &group(instance))
        .await
    {
        tracing::warn!(%error, "removing this instance's event group failed");
    }
}

/// Starts this instance's consumer of patient events (group `cache-<instance>`, from now on):
/// each event drops the tags `patient:<id>` and `patients` from the cache view of its tenant.
///
/// # Errors
/// When the consumer group cannot be created (Redis down at startup).
pub async fn start(
    state: Arc<AppState>,
    instance: &str,
) -> Result<ConsumerHandle, nilecare::messaging::Error> {
    Consumer::builder(state.events.broker().clone(), TOPIC, &group(instance))
        .start_at(StartAt::Now)
        .poll(Duration::from_millis(500))
        .run(move |message: Message| {
            let state = state.clone();
            async move {
                let Ok(event) = message.payload::<serde_json::Value>() else {
                    return Outcome::Reject("not a patient event".into());
                };
                let Some(id) = event["id"].as_u64() else {
                    return Outcome::Reject("a patient event without an id".into());
                };
                let view = match message.header(headers::TENANT) {
                    Some(tenant) => match state.cache.for_tenant(tenant) {
                        Ok(view) => view,
                        Err(e) => return Outcome::Reject(e.to_string()),
                    },
                    None => state.cache.clone(),
                };
                for tag in [format!("patient:{id}"), "patients".to_owned()] {
                    if let Err(error) = view.invalidate_tag(&tag).await {
                        return Outcome::retry(error);
                    }
                }
                state.events_applied.fetch_add(1, Ordering::Relaxed);
                Outcome::Ack
            }
        })
        .await
}
