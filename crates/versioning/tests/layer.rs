//! The layer in front of a real router: the precedence table in every combination of path,
//! `X-API-Version` and `Accept`; transforms both ways; deprecation headers; untouched streams,
//! errors and non-API paths.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::Request;
use nilecare_versioning::{ApiVersion, VersioningLayer};
use serde_json::{Value, json};
use tower::{Service, ServiceBuilder, ServiceExt};

async fn echo(version: ApiVersion, request: Request<Body>) -> Json<Value> {
    Json(json!({"path": request.uri().path(), "version": version.0,
                "name": {"given": "Amina", "family": "Hassan"}}))
}

async fn create(Json(body): Json<Value>) -> Json<Value> {
    // The newest (v2) request shape only.
    Json(
        json!({"received_given": body["name"]["given"], "received_family": body["name"]["family"]}),
    )
}

fn app() -> impl Service<
    Request<Body>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    let router = Router::new()
        .route("/api/v1/patients/{id}", get(echo))
        .route("/api/v2/patients/{id}", get(echo))
        .route("/api/v1/patients", post(create))
        .route("/api/v2/patients", post(create))
        .route("/api/v1/stream", get(stream))
        .route("/api/v2/stream", get(stream))
        .route("/health", get(|| async { "ok" }));
    let versioning = VersioningLayer::builder()
        .supported([1, 2])
        .default_version(1)
        .deprecated(
            1,
            UNIX_EPOCH + Duration::from_secs(1_767_225_600),
            Some(UNIX_EPOCH + Duration::from_secs(1_798_761_600)),
            Some("https://docs.nilecare.example/v2"),
        )
        .response_transform(2, "/patients/{id}", |mut v2| {
            let name = v2["name"].take();
            v2["given_name"] = name["given"].clone();
            v2["family_name"] = name["family"].clone();
            v2.as_object_mut().unwrap().remove("name");
            v2
        })
        .response_transform(2, "/stream", |_| json!("must never run on a stream"))
        .request_transform(
            1,
            "/patients",
            |v1| json!({"name": {"given": v1["given_name"], "family": v1["family_name"]}}),
        )
        .build()
        .unwrap();
    ServiceBuilder::new().layer(versioning).service(router)
}

async fn stream() -> axum::response::Response {
    // Two chunks, no length: a stream, which transforms must leave alone.
    let chunks = futures_util::stream::iter([
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"[1,")),
        Ok(bytes::Bytes::from_static(b"2]")),
    ]);
    axum::response::Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap()
}

async fn send(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = app()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, value)
}

/// The platform's precedence, written out: what each combination must give (`Err(field)`: a 400
/// naming that field).
fn expected(path: &str, header: Option<&str>, accept: Option<&str>) -> Result<u16, &'static str> {
    let supported = |v: u16| (1..=2).contains(&v);
    if let Some(v) = path
        .strip_prefix("/api/v")
        .and_then(|r| r.split('/').next())
    {
        let v: u16 = v.parse().unwrap();
        return if supported(v) { Ok(v) } else { Err("path") };
    }
    if let Some(h) = header {
        return match h.trim_start_matches('v').parse::<u16>() {
            Ok(v) if supported(v) => Ok(v),
            _ => Err("X-API-Version"),
        };
    }
    if let Some(a) = accept {
        if let Some(v) = a
            .strip_prefix("application/vnd.nilecare.v")
            .and_then(|r| r.strip_suffix("+json"))
        {
            let v: u16 = v.parse().unwrap();
            return if supported(v) { Ok(v) } else { Err("Accept") };
        }
    }
    Ok(1)
}

#[tokio::test]
async fn the_precedence_table_in_every_combination() {
    let paths = [
        "/api/v1/patients/7",
        "/api/v2/patients/7",
        "/api/v9/patients/7",
        "/api/patients/7",
    ];
    let headers = [None, Some("1"), Some("v2"), Some("9"), Some("two")];
    let accepts = [
        None,
        Some("application/json"),
        Some("application/vnd.nilecare.v1+json"),
        Some("application/vnd.nilecare.v2+json"),
        Some("application/vnd.nilecare.v9+json"),
    ];
    let mut cases = 0;
    for path in paths {
        for header in headers {
            for accept in accepts {
                let mut h = Vec::new();
                if let Some(v) = header {
                    h.push(("x-api-version", v));
                }
                if let Some(a) = accept {
                    h.push(("accept", a));
                }
                let (status, response_headers, body) = send("GET", path, &h, "").await;
                let case = format!("{path} x-api-version={header:?} accept={accept:?}");
                match expected(path, header, accept) {
                    Ok(version) => {
                        assert_eq!(status, 200, "{case}: {body}");
                        assert_eq!(
                            response_headers["x-api-version"],
                            format!("v{version}").as_str(),
                            "{case}"
                        );
                        // The handler saw the version, under the versioned path.
                        assert_eq!(body["version"], version, "{case}");
                        assert_eq!(
                            body["path"],
                            format!("/api/v{version}/patients/7"),
                            "{case}"
                        );
                        // v1 got the v1 shape through the transform; v2 the handler's own.
                        if version == 1 {
                            assert_eq!(body["given_name"], "Amina", "{case}: {body}");
                        } else {
                            assert_eq!(body["name"]["given"], "Amina", "{case}: {body}");
                        }
                    }
                    Err(field) => {
                        assert_eq!(status, 400, "{case}: {body}");
                        assert_eq!(
                            response_headers["content-type"], "application/problem+json",
                            "{case}"
                        );
                        assert_eq!(body["errors"][0]["field"], field, "{case}: {body}");
                    }
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4 * 5 * 5);
}

#[tokio::test]
async fn a_deprecated_version_announces_its_sunset_and_migration() {
    let (_, headers, _) = send("GET", "/api/v1/patients/7", &[], "").await;
    assert_eq!(headers["deprecation"], "@1767225600");
    assert_eq!(headers["sunset"], "Fri, 01 Jan 2027 00:00:00 GMT");
    let link = headers["link"].to_str().unwrap();
    assert!(
        link.contains("<https://docs.nilecare.example/v2>; rel=\"deprecation\""),
        "{link}"
    );
    assert!(link.contains("rel=\"sunset\""), "{link}");
    let (_, headers, _) = send("GET", "/api/v2/patients/7", &[], "").await;
    assert!(headers.get("deprecation").is_none());
    assert!(headers.get("sunset").is_none());
}

#[tokio::test]
async fn old_request_bodies_reach_the_handler_in_the_newest_shape() {
    let v1 = r#"{"given_name":"Laila","family_name":"Adel"}"#;
    let (status, _, body) = send("POST", "/api/v1/patients", &[], v1).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"received_given": "Laila", "received_family": "Adel"})
    );
    // Unversioned with a v1 header: the same.
    let (_, _, body) = send("POST", "/api/patients", &[("x-api-version", "1")], v1).await;
    assert_eq!(body["received_given"], "Laila");
    // A v2 client sends the v2 shape, untouched.
    let v2 = r#"{"name":{"given":"Omar","family":"Nabil"}}"#;
    let (_, _, body) = send("POST", "/api/v2/patients", &[], v2).await;
    assert_eq!(body["received_given"], "Omar");
}

#[tokio::test]
async fn streams_errors_and_other_paths_pass_through_untouched() {
    let (status, headers, body) = send("GET", "/api/v1/stream", &[], "").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([1, 2]), "the stream was not transformed");
    assert_eq!(headers["x-api-version"], "v1");
    // A 404 of an unknown route under the prefix keeps its own body.
    let (status, _, _) = send("GET", "/api/v1/nowhere", &[], "").await;
    assert_eq!(status, 404);
    let (status, headers, body) = send("GET", "/health", &[("x-api-version", "9")], "").await;
    assert_eq!((status, body), (200, Value::String("ok".into())));
    assert!(headers.get("x-api-version").is_none());
}

#[test]
fn bad_configuration_names_the_field() {
    let cases: Vec<(nilecare_versioning::VersioningBuilder, &str)> = vec![
        (VersioningLayer::builder(), "supported"),
        (VersioningLayer::builder().supported([0, 1]), "supported"),
        (VersioningLayer::builder().supported(1..=9), "supported"),
        (
            VersioningLayer::builder()
                .supported([1, 2])
                .default_version(3),
            "default_version",
        ),
        (
            VersioningLayer::builder().supported([1, 2]).prefix("api/"),
            "prefix",
        ),
        (
            VersioningLayer::builder()
                .supported([1, 2])
                .vendor("nile care"),
            "vendor",
        ),
        (
            VersioningLayer::builder()
                .supported([1, 2])
                .response_transform(1, "/x", |v| v),
            "response_transform",
        ),
        (
            VersioningLayer::builder()
                .supported([1, 2])
                .request_transform(2, "/x", |v| v),
            "request_transform",
        ),
        (
            VersioningLayer::builder()
                .supported([1, 2])
                .response_transform(2, "x", |v| v),
            "response_transform",
        ),
    ];
    for (builder, field) in cases {
        match builder.build() {
            Err(nilecare_versioning::Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!(
                "{field}: expected a config error, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}
