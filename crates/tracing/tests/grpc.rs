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

/// A tonic OTLP receiver on a free port (over TLS when `tls` is given); returns its port.
async fn start_receiver(tls: Option<tonic::transport::ServerTlsConfig>) -> (u16, Receiver) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let receiver = Receiver::default();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).unwrap();
    }
    let server = builder
        .add_service(TraceServiceServer::new(receiver.clone()))
        .serve(([127, 0, 0, 1], port).into());
    tokio::spawn(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    (port, receiver)
}

/// Exports one span named `name` with `config` and waits until `receiver` has it.
async fn export_and_receive(config: TracingConfig, receiver: &Receiver, name: &'static str) {
    let guard = init(&config).unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer());
    nilecare_test_support::logs::with_thread_default(subscriber, || {
        let _s = tracing::info_span!("probe", otel.name = name).entered();
    });
    guard.flush();
    let got = eventually(Duration::from_secs(10), || async {
        receiver.0.lock().unwrap().iter().any(|n| n == name)
    })
    .await;
    assert!(got, "received: {:?}", receiver.0.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_grpc_collector() {
    let (port, receiver) = start_receiver(None).await;
    export_and_receive(
        TracingConfig::new("grpc-test")
            .protocol(Protocol::Grpc)
            .endpoint(format!("http://127.0.0.1:{port}")),
        &receiver,
        "sent over grpc",
    )
    .await;

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
    let identity = tonic::transport::Identity::from_pem(&cert.cert_pem, &cert.key_pem);
    let (port, receiver) = start_receiver(Some(
        tonic::transport::ServerTlsConfig::new().identity(identity),
    ))
    .await;
    export_and_receive(
        TracingConfig::new("grpc-tls-test")
            .protocol(Protocol::Grpc)
            .endpoint(format!("https://localhost:{port}"))
            .ca_certificate_pem(ca.pem()),
        &receiver,
        "sent over grpc tls",
    )
    .await;
}
