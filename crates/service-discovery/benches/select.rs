//! `Balancer::select` over 100 instances for each strategy, alone and contended by 2 threads.
//!
//! `cargo bench -p nilecare-service-discovery --bench select`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_service_discovery::{Balancer, ServiceInstance, Strategy};

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

const STRATEGIES: [(&str, Strategy); 4] = [
    ("round_robin", Strategy::RoundRobin),
    ("weighted_round_robin", Strategy::WeightedRoundRobin),
    ("random", Strategy::Random),
    ("least_connections_p2c", Strategy::LeastConnections),
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

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = select
}
criterion_main!(benches);
