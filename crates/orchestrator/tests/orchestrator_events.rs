//! `patient.updated` events: a patient changed through one instance is announced on the
//! `patients` topic, and every instance (each its own consumer group) applies it to its cache.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use nilecare_test_support::{RedisServer, eventually};
use support::{Client, orchestrator, settings, two_instances};

const UPDATE: &str = r#"{"given_name":"Omar","family_name":"Farouk","birth_date":"1972-11-02"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_change_reaches_every_instance_on_redis() {
    let server = RedisServer::start();
    let (a, b) = two_instances(settings(Some(server.url()))).await;
    let (to_a, to_b) = (Client::new(a.addr), Client::new(b.addr));
    // B caches the patient in clinic-7's view.
    let view = [("x-clinic-id", "clinic-7")];
    to_b.send("GET", "/api/v1/patients/2", &view, "").await;
    assert_eq!(
        to_b.send("GET", "/api/v1/patients/2", &view, "")
            .await
            .header("cache-status"),
        Some("nilecare; hit")
    );
    let clinician = to_a.bearer("dr-omar", &["clinician"], None).await;
    let put = to_a
        .send(
            "PUT",
            "/api/v1/patients/2",
            &[
                ("authorization", clinician.as_str()),
                ("x-clinic-id", "clinic-7"),
            ],
            UPDATE,
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    // Both instances got the event and applied it.
    let applied = eventually(Duration::from_secs(10), || async {
        a.state.events_applied.load(Ordering::SeqCst) >= 1
            && b.state.events_applied.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(
        applied,
        "a: {}, b: {}",
        a.state.events_applied.load(Ordering::SeqCst),
        b.state.events_applied.load(Ordering::SeqCst)
    );
    assert_ne!(
        to_b.send("GET", "/api/v1/patients/2", &view, "")
            .await
            .header("cache-status"),
        Some("nilecare; hit"),
        "B answers the changed patient fresh"
    );
    // Each instance removes its own group when it stops for good.
    let groups = || match server.command(&["XINFO", "GROUPS", "nilecare:msg:{patients}"]) {
        nilecare_test_support::Reply::Array(Some(groups)) => groups.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(groups(), 2);
    b.shutdown().await;
    assert_eq!(groups(), 1);
    a.shutdown().await;
    assert_eq!(groups(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_an_instance_applies_its_own_events() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let clinician = client.bearer("dr-omar", &["clinician"], None).await;
    let put = client
        .send(
            "PUT",
            "/api/v1/patients/2",
            &[("authorization", clinician.as_str())],
            UPDATE,
        )
        .await;
    assert_eq!(put.status, 200);
    let deleted = client
        .send(
            "DELETE",
            "/api/v1/patients/3",
            &[("authorization", clinician.as_str())],
            "",
        )
        .await;
    assert_eq!(deleted.status, 204);
    let applied = eventually(Duration::from_secs(10), || async {
        app.state.events_applied.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(
        applied,
        "{}",
        app.state.events_applied.load(Ordering::SeqCst)
    );
    app.shutdown().await;
}

/// The dead-letter streams over HTTP: an event no instance can apply ends as a dead letter;
/// an operator lists it, replays it (it fails again: a new dead letter of the same message)
/// and purges it; other callers are refused and bad path parts are named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_replay_and_purge_dead_letters() {
    use nilecare::messaging::Message;
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let bad = Message::new("patient.updated", &serde_json::json!({"id": "seven"}))
        .unwrap()
        .with_id("bad-event-1")
        .unwrap();
    app.state
        .events
        .publish(nilecare_orchestrator::events::TOPIC, &bad)
        .await
        .unwrap();
    let base = format!(
        "/api/v1/admin/messaging/patients/{}/dead-letters",
        nilecare_orchestrator::events::group(&app.state.instance)
    );
    let operator = client.bearer("ops-1", &["operator"], None).await;
    let clinician = client.bearer("dr-omar", &["clinician"], None).await;
    let list = || async {
        let r = client
            .send("GET", &base, &[("authorization", operator.as_str())], "")
            .await;
        assert_eq!(r.status, 200);
        r.json()["dead_letters"].as_array().unwrap().clone()
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            list().await.len() == 1
        })
        .await
    );
    let first = list().await[0].clone();
    assert_eq!(first["message"]["id"], "bad-event-1");
    assert_eq!(first["error"], "a patient event without an id");
    assert_eq!(first["message"]["payload"]["id"], "seven");

    assert_eq!(client.send("GET", &base, &[], "").await.status, 401);
    let forbidden = client
        .send("GET", &base, &[("authorization", clinician.as_str())], "")
        .await;
    assert_eq!(forbidden.status, 403);
    let bad_topic = client
        .send(
            "GET",
            "/api/v1/admin/messaging/pat%7Bx%7D/g/dead-letters",
            &[("authorization", operator.as_str())],
            "",
        )
        .await;
    assert_eq!(bad_topic.status, 400);
    assert!(bad_topic.text().contains("topic"), "{}", bad_topic.text());
    let bad_entry = client
        .send(
            "DELETE",
            &format!("{base}/not-an-id"),
            &[("authorization", operator.as_str())],
            "",
        )
        .await;
    assert_eq!(bad_entry.status, 400);
    assert!(bad_entry.text().contains("entry"), "{}", bad_entry.text());

    let entry = first["entry"].as_str().unwrap();
    let replayed = client
        .send(
            "POST",
            &format!("{base}/{entry}/replay"),
            &[("authorization", operator.as_str())],
            "",
        )
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.text());
    // Handled again, refused again: a new dead letter of the same message.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let dead = list().await;
            dead.len() == 1 && dead[0]["entry"] != first["entry"]
        })
        .await
    );
    let second = list().await[0].clone();
    assert_eq!(second["message"]["id"], "bad-event-1");
    let path = format!("{base}/{}", second["entry"].as_str().unwrap());
    let purged = client
        .send("DELETE", &path, &[("authorization", operator.as_str())], "")
        .await;
    assert_eq!(purged.status, 204);
    assert!(list().await.is_empty());
    let again = client
        .send("DELETE", &path, &[("authorization", operator.as_str())], "")
        .await;
    assert_eq!(again.status, 404);
    app.shutdown().await;
}
