//! Patient registration as a saga across the demo services: all three steps on success; the
//! earlier steps compensated (patient deleted, account closed) when booking fails; one
//! registration per `Idempotency-Key`; on Redis, a registration started on one instance is
//! visible from another.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use serde_json::{Value, json};
use support::{Client, orchestrator, settings, two_instances};

fn body(name: &str) -> String {
    json!({"given_name": name, "family_name": "Saga", "birth_date": "1990-01-01",
           "at": "2026-12-24T09:00:00Z", "with": "Dr. Mona"})
    .to_string()
}

/// The billing demo service's open accounts.
async fn accounts(app: &nilecare_orchestrator::Running) -> Vec<Value> {
    let billing = app.demo.as_ref().unwrap().service("billing").unwrap().addr;
    nilecare_test_support::http::get(billing, "/accounts")
        .await
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_creates_the_patient_the_account_and_the_appointment() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let clinician = client.bearer("dr-1", &["clinician"], None).await;
    let auth = [("authorization", clinician.as_str())];
    let created = client
        .send("POST", "/api/v1/registrations", &auth, &body("Yara"))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let shown = created.json();
    assert_eq!(shown["status"], "completed");
    let patient = shown["registration"]["patient_id"].as_u64().unwrap();
    assert_eq!(
        shown["registration"]["account_id"],
        format!("ACC-{patient}")
    );
    assert!(shown["registration"]["appointment_id"].as_u64().is_some());
    let id = shown["id"].as_str().unwrap().to_owned();
    let got = client.get(&format!("/api/v1/registrations/{id}")).await;
    assert_eq!(got.json()["status"], "completed");
    assert!(
        accounts(&app)
            .await
            .iter()
            .any(|a| a["patient_id"] == patient)
    );
    // Without the clinician role: refused before anything runs.
    let anonymous = client
        .send("POST", "/api/v1/registrations", &[], &body("Nobody"))
        .await;
    assert_eq!(anonymous.status, 401);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_booking_deletes_the_patient_and_closes_the_account() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let clinician = client.bearer("dr-1", &["clinician"], None).await;
    let auth = [("authorization", clinician.as_str())];
    let failing = client
        .send("POST", "/demo/appointments/failure?on=true", &[], "")
        .await;
    assert!(failing.status < 300, "{}", failing.text());
    let undone = client
        .send("POST", "/api/v1/registrations", &auth, &body("Hany"))
        .await;
    assert_eq!(undone.status, 503, "{}", undone.text());
    let problem = undone.json();
    let shown = &problem["registration"];
    assert_eq!(shown["status"], "compensated", "{problem}");
    let history: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(history[0], "create-patient: done");
    assert_eq!(history[1], "open-account: done");
    assert!(
        history[2].starts_with("book-appointment: failed"),
        "{history:?}"
    );
    assert_eq!(
        &history[3..],
        ["open-account: compensated", "create-patient: compensated"]
    );
    // The effects are gone: the account closed, the patient deleted.
    let patient_gone = shown["registration"]["patient_id"].is_null();
    assert!(patient_gone, "{shown}");
    assert!(
        accounts(&app).await.is_empty(),
        "{:?}",
        accounts(&app).await
    );
    let id = shown["id"].as_str().unwrap();
    let got = client.get(&format!("/api/v1/registrations/{id}")).await;
    assert_eq!(got.json()["status"], "compensated");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_makes_a_retried_request_the_same_registration() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let clinician = client.bearer("dr-1", &["clinician"], None).await;
    let headers = [
        ("authorization", clinician.as_str()),
        ("idempotency-key", "front-desk-7"),
    ];
    let demo = app.demo.as_ref().unwrap();
    let patient_writes = || {
        demo.service("patients")
            .unwrap()
            .hits
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let first = client
        .send("POST", "/api/v1/registrations", &headers, &body("Rana"))
        .await;
    assert_eq!(first.status, 201);
    let after_first = patient_writes();
    let second = client
        .send("POST", "/api/v1/registrations", &headers, &body("Rana"))
        .await;
    assert_eq!(second.status, 201);
    assert_eq!(second.json()["id"], "front-desk-7");
    assert_eq!(second.json()["registration"], first.json()["registration"]);
    assert_eq!(patient_writes(), after_first, "nothing ran again");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_registration_is_visible_from_every_instance() {
    let server = nilecare_test_support::RedisServer::start();
    let (a, b) = two_instances(settings(Some(server.url()))).await;
    let (to_a, to_b) = (Client::new(a.addr), Client::new(b.addr));
    let clinician = to_a.bearer("dr-1", &["clinician"], None).await;
    let created = to_a
        .send(
            "POST",
            "/api/v1/registrations",
            &[("authorization", clinician.as_str())],
            &body("Lina"),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let seen = to_b.get(&format!("/api/v1/registrations/{id}")).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json()["registration"], created.json()["registration"]);
    b.shutdown().await;
    a.shutdown().await;
}
