//! A labelled histogram sample through the `metrics!` macro (a registry lookup per call) and
//! through [`CachedHistograms`] (a handle kept per recorder), with the Prometheus recorder
//! installed; the same for counters.
//!
//! `cargo bench -p nilecare-metrics --bench cached_handles`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics::SharedString;
use nilecare_metrics::{CachedCounters, CachedHistograms, Metrics};

fn cached_handles(c: &mut Criterion) {
    let _metrics = Metrics::builder()
        .service("bench")
        .process_metrics(false)
        .install()
        .expect("install recorder");
    let policy = SharedString::from_owned("api".to_owned());
    let labels = || {
        vec![
            ("policy", "api".to_owned()),
            ("backend", "redis".to_owned()),
        ]
    };
    let histograms = CachedHistograms::new("bench_duration_seconds", [labels()]);
    let counters = CachedCounters::new("bench_total", [labels()]);
    let mut group = c.benchmark_group("labelled_metric");
    group.bench_function("histogram_macro", |b| {
        b.iter(|| {
            metrics::histogram!("bench_duration_seconds", "policy" => policy.clone(), "backend" => "redis")
                .record(black_box(0.000_42));
        })
    });
    group.bench_function("cached_histogram", |b| {
        b.iter(|| histograms.record(0, black_box(0.000_42)))
    });
    group.bench_function("counter_macro", |b| {
        b.iter(|| {
            metrics::counter!("bench_total", "policy" => policy.clone(), "backend" => "redis")
                .increment(black_box(1));
        })
    });
    group.bench_function("cached_counter", |b| {
        b.iter(|| counters.increment(0, black_box(1)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = cached_handles
}
criterion_main!(benches);
