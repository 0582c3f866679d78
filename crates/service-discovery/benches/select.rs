//! `Balancer::select` over 100 instances for each strategy, alone and contended by 2 threads;
//! the same pick through a `Resolver` (its local copy of a watched service); and, as the
//! baseline, `tower::balance::p2c::Balance` over 100 services with a pending-requests load
//! (poll_ready picks, call dispatches; the response future is dropped like our guard).
//!
//! `cargo bench -p nilecare-service-discovery --bench select`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use std::convert::Infallible;
use std::task::Context;

use nilecare_service_discovery::{
    Balancer, MemoryRegistry, Registration, Registry, ResolvedService, Resolver, ServiceInstance,
    Strategy,
};
use tower::Service;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PendingRequests};

fn balancer(strategy: Strategy) -> Balancer {
    let instances = (0..100).map(|i| {
        ServiceInstance::new(
            "patients",
            format!("p-{i}"),
            format!("http://10.0.0.{i}:8080"),
        )
        .expect("instance")
        .with_weight(1 + i % 5)
        .expect("weight")
    });
    Balancer::new(strategy, instances)
}

const STRATEGIES: [(&str, Strategy); 5] = [
    ("round_robin", Strategy::RoundRobin),
    ("weighted_round_robin", Strategy::WeightedRoundRobin),
    ("random", Strategy::Random),
    ("least_connections_p2c", Strategy::LeastConnections),
    ("peak_ewma_p2c", Strategy::PeakEwma),
];

fn select(c: &mut Criterion) {
    let mut group = c.benchmark_group("select_100_instances");
    for (name, strategy) in STRATEGIES {
        let b = balancer(strategy);
        group.bench_function(name, |bench| bench.iter(|| b.select()));
    }
    group.finish();

    let mut group = c.benchmark_group("select_100_instances_2_threads");
    for (name, strategy) in STRATEGIES {
        let b = Arc::new(balancer(strategy));
        group.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                let started = Instant::now();
                let other = {
                    let b = b.clone();
                    std::thread::spawn(move || {
                        for _ in 0..iters {
                            std::hint::black_box(b.select());
                        }
                    })
                };
                for _ in 0..iters {
                    std::hint::black_box(b.select());
                }
                other.join().expect("thread");
                // time per pick of one thread while the other picks too
                started.elapsed().max(Duration::from_nanos(1))
            })
        });
    }
    group.finish();
}

/// A resolver following a memory registry with 100 registered instances; the registrations and
/// the resolver are returned so they live as long as the measurement.
type Resolved = (
    Vec<Registration<MemoryRegistry>>,
    Resolver<MemoryRegistry>,
    ResolvedService,
);

fn resolved(runtime: &tokio::runtime::Runtime, strategy: Strategy) -> Resolved {
    runtime.block_on(async {
        let registry = MemoryRegistry::default();
        let mut registrations = Vec::new();
        for i in 0..100 {
            let instance = ServiceInstance::new(
                "patients",
                format!("p-{i}"),
                format!("http://10.0.0.{i}:8080"),
            )
            .expect("constant, valid instance");
            registrations.push(registry.register(instance).await.expect("memory registry"));
        }
        let resolver = Resolver::builder(registry)
            .strategy(strategy)
            .build()
            .expect("default settings");
        let service = resolver.service("patients").await.expect("memory registry");
        (registrations, resolver, service)
    })
}

fn resolver_and_tower(c: &mut Criterion) {
    let runtime = nilecare_test_support::bench::runtime(1);
    let mut group = c.benchmark_group("select_100_instances_resolver");
    for (name, strategy) in [
        ("round_robin", Strategy::RoundRobin),
        ("least_connections_p2c", Strategy::LeastConnections),
    ] {
        let (_registrations, _resolver, service) = resolved(&runtime, strategy);
        group.bench_function(name, |bench| bench.iter(|| service.select()));
    }
    group.finish();

    let mut group = c.benchmark_group("select_100_instances_baseline");
    let services: Vec<_> = (0..100)
        .map(|_| {
            PendingRequests::new(
                tower::service_fn(|()| std::future::ready(Ok::<_, Infallible>(()))),
                CompleteOnResponse::default(),
            )
        })
        .collect();
    let mut balance = Balance::new(ServiceList::new(services));
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    group.bench_function("tower_p2c_pending_requests", |bench| {
        bench.iter(|| {
            assert!(balance.poll_ready(&mut cx).is_ready());
            balance.call(())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = select, resolver_and_tower
}
criterion_main!(benches);
