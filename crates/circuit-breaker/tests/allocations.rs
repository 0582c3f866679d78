//! The closed path allocates nothing (counted by dhat's global allocator; alone in its binary).
//! dhat is a dev-dependency: its allocator counts blocks without `unsafe` in this workspace.

use std::time::Duration;

use nilecare_circuit_breaker::{BreakerConfig, CircuitBreaker, WindowType};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn a_closed_call_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    for config in [
        BreakerConfig::default(),
        BreakerConfig::default()
            .window(WindowType::TimeBased(10))
            .slow_calls(Duration::from_millis(100), 50.0),
    ] {
        let breaker = CircuitBreaker::new("dep", config).expect("valid config");
        // warm up: metric handles, window buckets
        for _ in 0..10 {
            breaker.try_acquire().expect("closed").success();
        }
        let before = dhat::HeapStats::get().total_blocks;
        for i in 0..100_000 {
            let permit = breaker.try_acquire().expect("closed");
            if i % 10 == 0 {
                permit.failure();
            } else {
                permit.success();
            }
        }
        let after = dhat::HeapStats::get().total_blocks;
        // dhat counts the whole process: a test harness thread may allocate a few blocks
        // meanwhile. One allocation per call would be 100 000.
        assert!(
            after - before < 16,
            "{} allocations in 100 000 closed calls",
            after - before
        );
    }
}
