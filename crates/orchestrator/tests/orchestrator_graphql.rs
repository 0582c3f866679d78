//! The GraphQL gateway end to end: batching (50 patients with their appointments and invoices
//! in one downstream call per service), depth/complexity/size limits rejected before any
//! downstream call, the mutations' role rule with problem codes, introspection only in
//! development.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use support::{Client, orchestrator, settings};

async fn graphql(client: &Client, query: &str, auth: Option<&str>) -> (u16, Value) {
    let body = json!({"query": query}).to_string();
    let headers: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
    let r = client.send("POST", "/graphql", &headers, &body).await;
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_patients_with_appointments_and_invoices_cost_one_call_per_service() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let clinician = client.bearer("dr-1", &["clinician"], None).await;
    for i in 0..47 {
        let (status, body) = graphql(
            &client,
            &format!(
                r#"mutation {{ createPatient(input: {{givenName: "P{i}", familyName: "F", birthDate: "2000-01-01"}}) {{ id }} }}"#
            ),
            Some(&clinician),
        )
        .await;
        assert_eq!(status, 200);
        assert!(body["errors"].is_null(), "{body}");
    }
    let demo = app.demo.as_ref().unwrap();
    let hits = |name: &str| demo.service(name).unwrap().hits.load(Ordering::SeqCst);
    let before = (hits("patients"), hits("appointments"), hits("billing"));
    let (status, body) = graphql(
        &client,
        "{ patients(limit: 50) { id givenName appointments { id at } invoices { id status } } }",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    let patients = body["data"]["patients"].as_array().unwrap();
    assert_eq!(patients.len(), 50);
    let amina = &patients[0];
    assert_eq!(amina["givenName"], "Amina");
    assert_eq!(amina["appointments"][0]["id"], 101);
    assert_eq!(amina["invoices"][0]["id"], "INV-2026-0001");
    let after = (hits("patients"), hits("appointments"), hits("billing"));
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1, 1, 1),
        "one downstream call per service for 50 patients, not 51"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusive_queries_are_refused_before_any_downstream_call() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let demo = app.demo.as_ref().unwrap();
    let hits = || {
        demo.service("patients")
            .unwrap()
            .hits
            .load(Ordering::SeqCst)
    };
    let before = hits();
    // Too deep (introspection allows nesting, the schema itself does not).
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } }";
    let (_, body) = graphql(&client, deep, None).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{body}"
    );
    // Too complex: a full page of 100 patients with every field counts each field 100 times.
    let (status, body) = graphql(
        &client,
        "{ patients(limit: 100) { id givenName familyName birthDate appointments { id at with patientId } invoices { id amount status currency patientId } } }",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("complex"),
        "{body}"
    );
    // Too large: a 20 KiB document.
    let padding = " ".repeat(20 * 1024);
    let (status, _) = graphql(
        &client,
        &format!("{{ patient(id: 1) {{ id }} }}{padding}"),
        None,
    )
    .await;
    assert_eq!(status, 413);
    // A page too large is a validation error with the REST code.
    let (_, body) = graphql(&client, "{ patients(limit: 101) { id } }", None).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
        "{body}"
    );
    assert_eq!(
        hits(),
        before,
        "no abusive query reached a downstream service"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_need_the_clinician_role() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let mutation = r#"mutation { createAppointment(input: {patientId: 2, at: "2026-12-24T09:00:00Z", with: "Dr. Mona"}) { id patientId } }"#;
    let (_, body) = graphql(&client, mutation, None).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHORIZED",
        "{body}"
    );
    let nurse = client.bearer("n-1", &["nurse"], None).await;
    let (_, body) = graphql(&client, mutation, Some(&nurse)).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let clinician = client.bearer("dr-1", &["clinician"], None).await;
    let (_, body) = graphql(&client, mutation, Some(&clinician)).await;
    assert!(body["errors"].is_null(), "{body}");
    let id = body["data"]["createAppointment"]["id"].as_u64().unwrap();
    // The new appointment is visible through the patient and by id.
    let (_, body) = graphql(
        &client,
        &format!(
            "{{ appointment(id: {id}) {{ with }} patient(id: 2) {{ appointments {{ id }} }} }}"
        ),
        None,
    )
    .await;
    assert_eq!(body["data"]["appointment"]["with"], "Dr. Mona", "{body}");
    assert!(
        body["data"]["patient"]["appointments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id)
    );
    // A forged token is refused by the auth layer before GraphQL runs.
    let forged = format!("{}x", &clinician[..clinician.len() - 1]);
    let (status, _) = graphql(&client, "{ patient(id: 1) { id } }", Some(&forged)).await;
    assert_eq!(status, 401);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_graphiql_only_in_development() {
    let dev = orchestrator(settings(None)).await;
    let client = Client::new(dev.addr);
    let (_, body) = graphql(&client, "{ __schema { queryType { name } } }", None).await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );
    assert_eq!(client.get("/graphiql").await.status, 200);
    let mut production = settings(None);
    production.environment = "production".to_owned();
    let prod = orchestrator(production).await;
    let client = Client::new(prod.addr);
    let (_, body) = graphql(&client, "{ __schema { queryType { name } } }", None).await;
    assert!(
        body["data"]["__schema"].is_null(),
        "introspection answered: {body}"
    );
    assert_eq!(client.get("/graphiql").await.status, 404);
    // Queries work without a token, and by GET too.
    let r = client
        .get("/graphql?query=%7B%20patient(id%3A%201)%20%7B%20givenName%20%7D%20%7D")
        .await;
    assert_eq!(
        r.json()["data"]["patient"]["givenName"],
        "Amina",
        "{}",
        r.text()
    );
    prod.shutdown().await;
    dev.shutdown().await;
}

/// Queries are cached per clinic like the REST reads; a REST mutation of a patient and a
/// GraphQL mutation both drop the cached answers of that clinic's view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_cached_per_clinic_and_mutations_invalidate() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let demo = app.demo.as_ref().unwrap();
    let hits = || {
        demo.service("patients")
            .unwrap()
            .hits
            .load(Ordering::SeqCst)
    };
    let query = json!({"query": "{ patient(id: 1) { givenName familyName } }"}).to_string();
    let ask = |clinic: &'static str| {
        let query = query.clone();
        async move {
            client
                .send("POST", "/graphql", &[("x-clinic-id", clinic)], &query)
                .await
        }
    };
    let first = ask("clinic-7").await;
    assert_eq!(
        first.header("cache-status"),
        Some("nilecare; fwd=miss; stored")
    );
    let before = hits();
    let second = ask("clinic-7").await;
    assert_eq!(second.header("cache-status"), Some("nilecare; hit"));
    assert_eq!(second.body, first.body);
    assert_eq!(hits(), before, "answered from the cache");
    // `Cache-Control: no-cache` asks for a fresh answer, as on the REST routes.
    let fresh = client
        .send(
            "POST",
            "/graphql",
            &[("x-clinic-id", "clinic-7"), ("cache-control", "no-cache")],
            &query,
        )
        .await;
    assert_eq!(
        fresh.header("cache-status"),
        Some("nilecare; fwd=miss; stored")
    );
    assert_eq!(hits(), before + 1, "fetched from the patients service");
    // Another clinic has its own view.
    assert_eq!(
        ask("clinic-9").await.header("cache-status"),
        Some("nilecare; fwd=miss; stored")
    );

    // A REST update of the patient in clinic-7's view drops the GraphQL answer (tag `patients`).
    let clinician = client.bearer("dr-1", &["clinician"], None).await;
    let put = client
        .send(
            "PUT",
            "/api/v1/patients/1",
            &[("authorization", &clinician), ("x-clinic-id", "clinic-7")],
            r#"{"given_name":"Amina","family_name":"Salah","birth_date":"1985-03-14"}"#,
        )
        .await;
    assert_eq!(put.status, 200);
    let after_put = ask("clinic-7").await;
    assert_eq!(
        after_put.header("cache-status"),
        Some("nilecare; fwd=miss; stored")
    );
    assert_eq!(after_put.json()["data"]["patient"]["familyName"], "Salah");

    // A GraphQL mutation in the view drops it too.
    let mutation = json!({"query": r#"mutation { createPatient(input: {givenName: "Z", familyName: "Y", birthDate: "2001-01-01"}) { id } }"#}).to_string();
    let created = client
        .send(
            "POST",
            "/graphql",
            &[("authorization", &clinician), ("x-clinic-id", "clinic-7")],
            &mutation,
        )
        .await;
    assert!(created.json()["errors"].is_null(), "{}", created.text());
    assert_eq!(
        ask("clinic-7").await.header("cache-status"),
        Some("nilecare; fwd=miss; stored")
    );
    app.shutdown().await;
}

/// `POST /graphql` with a JSON body.
async fn post(client: &Client, headers: &[(&str, &str)], body: Value) -> support::Reply {
    client
        .send("POST", "/graphql", headers, &body.to_string())
        .await
}

/// `{"extensions": {"persistedQuery": ...}}` for `document`.
fn by_hash(document: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": nilecare::graphql::query_hash(document)}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_are_counted_by_name_on_the_metrics_endpoint() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    // Twelve executions (different variables, so none is answered from the cache): the name
    // gets its own label after ten.
    for id in 1..=12 {
        let reply = post(
            &client,
            &[],
            json!({
                "query": "query GatewayMetricsPatient($id: Int!) { patient(id: $id) { id } }",
                "variables": {"id": id},
            }),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    post(
        &client,
        &[],
        json!({"query": "query GatewayMetricsInvalid { nosuchfield }"}),
    )
    .await;
    let metrics = client.get("/metrics").await.text();
    let has = |needle: &[&str]| {
        metrics.lines().any(|l| {
            l.starts_with("nilecare_graphql_operations_total")
                && needle.iter().all(|n| l.contains(n))
        })
    };
    assert!(
        has(&[
            r#"operation="GatewayMetricsPatient""#,
            r#"type="query""#,
            r#"result="ok""#
        ]),
        "the busy operation has its own label:\n{metrics}"
    );
    assert!(
        has(&[r#"operation="other""#, r#"result="rejected""#]),
        "the one-off invalid operation is counted under other:\n{metrics}"
    );
    assert!(
        !metrics.contains("GatewayMetricsInvalid"),
        "a one-off name mints no series"
    );
    assert!(
        metrics.contains("nilecare_graphql_operation_duration_seconds"),
        "the duration histogram is exported"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complexity_budget_answers_429_with_retry_after() {
    let mut config = settings(None);
    // 1 000 units a minute: a 50-patient page with every field costs 651 (13 per patient).
    config.graphql_complexity_per_minute = 1_000;
    let app = orchestrator(config).await;
    let client = Client::new(app.addr);
    let demo = app.demo.as_ref().unwrap();
    let hits = || {
        demo.service("patients")
            .unwrap()
            .hits
            .load(Ordering::SeqCst)
    };
    let small = json!({"query": "{ patient(id: 1) { id givenName } }"}).to_string();
    assert_eq!(
        client.send("POST", "/graphql", &[], &small).await.status,
        200
    );
    let big = json!({"query": "{ patients(limit: 50) { id givenName familyName birthDate appointments { id at with } invoices { id amount status currency } } }"}).to_string();
    let first = client.send("POST", "/graphql", &[], &big).await;
    assert_eq!(first.status, 200, "{}", first.text());
    // The same page again (another clinic's view, so not from the cache): over the budget.
    let before = hits();
    let refused = client
        .send("POST", "/graphql", &[("x-clinic-id", "clinic-2")], &big)
        .await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    assert_eq!(
        refused.json()["errors"][0]["extensions"]["code"],
        "RATE_LIMITED"
    );
    assert_eq!(hits(), before, "refused before any downstream call");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_queries_run_by_hash_and_a_mutation_by_hash_is_never_cached() {
    let app = orchestrator(settings(None)).await;
    let client = Client::new(app.addr);
    let query = "{ patient(id: 2) { id familyName } }";
    let unknown = post(&client, &[], json!({"extensions": by_hash(query)})).await;
    assert_eq!(
        unknown.json()["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    let registered = post(
        &client,
        &[],
        json!({"query": query, "extensions": by_hash(query)}),
    )
    .await;
    assert!(
        registered.json()["errors"].is_null(),
        "{}",
        registered.text()
    );
    let hashed = post(&client, &[], json!({"extensions": by_hash(query)})).await;
    assert_eq!(hashed.json()["data"]["patient"]["id"], 2);

    // A mutation registered, then sent by hash twice: it runs both times (never served from
    // the cache), and it invalidates the clinic's cached reads.
    let clinician = client.bearer("dr-2", &["clinician"], None).await;
    let mutation = r#"mutation { createPatient(input: {givenName: "H", familyName: "Ash", birthDate: "1999-09-09"}) { id } }"#;
    let auth = [("authorization", clinician.as_str())];
    let first = post(
        &client,
        &auth,
        json!({"query": mutation, "extensions": by_hash(mutation)}),
    )
    .await;
    let first_id = first.json()["data"]["createPatient"]["id"]
        .as_u64()
        .unwrap();
    let cached_read = post(&client, &[], json!({"extensions": by_hash(query)})).await;
    assert_eq!(
        cached_read.header("cache-status"),
        Some("nilecare; fwd=miss; stored")
    );
    for round in 1..=2 {
        let again = post(&client, &auth, json!({"extensions": by_hash(mutation)})).await;
        assert_ne!(
            again.header("cache-status"),
            Some("nilecare; hit"),
            "round {round}"
        );
        let id = again.json()["data"]["createPatient"]["id"]
            .as_u64()
            .unwrap();
        assert_eq!(id, first_id + round, "the mutation ran again");
    }
    let after = post(&client, &[], json!({"extensions": by_hash(query)})).await;
    assert_ne!(
        after.header("cache-status"),
        Some("nilecare; hit"),
        "the mutation invalidated it"
    );
    app.shutdown().await;
}
