//! OTLP over gRPC to a real tonic receiver.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nilecare_test_support::eventually;
use nilecare_tracing::{Protocol, TracingConfig, init};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<String>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut names = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                names.extend(scope.spans.into_iter().map(|s| s.name));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_grpc_collector() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let receiver = Receiver::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .serve(([127, 0, 0, 1], port).into());
    tokio::spawn(server);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let guard = init(
        &TracingConfig::new("grpc-test")
            .protocol(Protocol::Grpc)
            .endpoint(format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer());
    tracing::subscriber::with_default(subscriber, || {
        let _s = tracing::info_span!("sent over grpc").entered();
    });
    guard.flush();
    let got = eventually(Duration::from_secs(10), || async {
        receiver
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|n| n == "sent over grpc")
    })
    .await;
    assert!(got, "received: {:?}", receiver.0.lock().unwrap());
    drop(guard);

    // Outside a runtime, gRPC export is refused with a clear error instead of panicking later.
    let outside = std::thread::spawn(|| {
        init(
            &TracingConfig::new("x")
                .protocol(Protocol::Grpc)
                .endpoint("http://127.0.0.1:1"),
        )
        .unwrap_err()
    })
    .join()
    .unwrap();
    assert!(outside.to_string().contains("Tokio runtime"), "{outside}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_grpc_collector_over_tls() {
    let ca = nilecare_test_support::TestCa::new("grpc test CA");
    let cert = ca.issue(&["127.0.0.1", "localhost"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let receiver = Receiver::default();
    let tls = tonic::transport::ServerTlsConfig::new().identity(
        tonic::transport::Identity::from_pem(&cert.cert_pem, &cert.key_pem),
    );
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .serve(([127, 0, 0, 1], port).into());
    tokio::spawn(server);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let guard = init(
        &TracingConfig::new("grpc-tls-test")
            .protocol(Protocol::Grpc)
            .endpoint(format!("https://localhost:{port}"))
            .ca_certificate_pem(ca.pem()),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer());
    tracing::subscriber::with_default(subscriber, || {
        let _s = tracing::info_span!("sent over grpc tls").entered();
    });
    guard.flush();
    let arrived = eventually(Duration::from_secs(10), || async {
        receiver
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|n| n == "sent over grpc tls")
    })
    .await;
    assert!(arrived, "{:?}", receiver.0.lock().unwrap());
}
