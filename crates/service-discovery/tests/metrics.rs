//! The resolver's metrics reach the installed recorder: selections, ejections, instances by
//! status and health probes by result. (Its own binary: it installs the global recorder.)

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use nilecare_service_discovery::metrics as names;
use nilecare_service_discovery::{
    Health, HealthCheck, MemoryRegistry, OutlierDetection, Registry, Resolver, ServiceInstance,
};
use nilecare_test_support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolver_reports_selections_ejections_instances_and_probes() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();
    names::describe();

    // Nothing listens on this port: every probe fails.
    let closed = nilecare_test_support::http::closed_port();
    let registry = MemoryRegistry::default();
    let mut registrations = Vec::new();
    for (id, address) in [
        ("a", "grpc://a.invalid:443".to_owned()), // grpc: not probed over HTTP
        ("b", "grpc://b.invalid:443".to_owned()),
        ("probed", format!("http://{closed}")),
    ] {
        registrations.push(
            registry
                .register(ServiceInstance::new("billing", id, address).unwrap())
                .await
                .unwrap(),
        );
    }
    let resolver = Resolver::builder(registry)
        .outlier_detection(
            OutlierDetection::default()
                .consecutive_failures(2)
                .unwrap()
                .max_ejection_percent(50)
                .unwrap(),
        )
        .health_check(
            HealthCheck::http("/health")
                .unwrap()
                .interval(Duration::from_millis(30))
                .unwrap()
                .thresholds(1, 1)
                .unwrap(),
        )
        .build()
        .unwrap();
    let service = resolver.service("billing").await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health("probed") == Some(Health::Unhealthy)
        })
        .await
    );
    let mut selected = 0;
    while service.health("a") != Some(Health::Ejected) {
        let guard = service.select().unwrap();
        selected += 1;
        if guard.id() == "a" {
            guard.failure();
        }
        if selected % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(selected < 10_000, "a was never ejected");
    }

    let snapshot = snapshotter.snapshot().into_vec();
    let value = |name: &str, labels: &[(&str, &str)]| {
        snapshot.iter().find_map(|(key, _, _, value)| {
            let k = key.key();
            let matches = k.name() == name
                && labels
                    .iter()
                    .all(|(l, v)| k.labels().any(|lab| lab.key() == *l && lab.value() == *v));
            matches.then_some(value)
        })
    };
    assert_eq!(
        value(names::SELECTIONS_TOTAL, &[("service", "billing")]),
        Some(&DebugValue::Counter(selected))
    );
    assert_eq!(
        value(names::EJECTIONS_TOTAL, &[("service", "billing")]),
        Some(&DebugValue::Counter(1))
    );
    assert!(matches!(
        value(names::HEALTH_CHECKS_TOTAL, &[("service", "billing"), ("result", "failure")]),
        Some(DebugValue::Counter(n)) if *n >= 1
    ));
    let gauge = |status: &str| match value(
        names::INSTANCES,
        &[("service", "billing"), ("status", status)],
    ) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        other => panic!("no {status} gauge: {other:?}"),
    };
    assert_eq!(
        (
            gauge("up"),
            gauge("down"),
            gauge("ejected"),
            gauge("draining")
        ),
        (1.0, 1.0, 1.0, 0.0)
    );
}
