//! Plumbing shared by the criterion benches: the runtime they run on and a load spread over
//! concurrent tasks.

use std::future::Future;
use std::time::{Duration, Instant};

/// A multi-threaded tokio runtime with `worker_threads` workers, timers and I/O enabled.
///
/// # Panics
/// When the runtime cannot be built (no threads available).
pub fn runtime(worker_threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// What [`spread_over_tasks`] measured.
#[derive(Debug, Default)]
pub struct Spread {
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Each operation's latency, when asked for (reading the clock twice per operation).
    pub latencies: Vec<Duration>,
}

/// Runs `op(i)` for `i` in `0..iters` (rounded up to a multiple of `tasks`), spread over
/// `tasks` concurrent tasks, and times the whole run; with `record_latencies` also each call.
///
/// # Panics
/// When an operation panics.
pub async fn spread_over_tasks<F, Fut>(
    tasks: u64,
    iters: u64,
    record_latencies: bool,
    op: F,
) -> Spread
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_task = iters.div_ceil(tasks);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for i in 0..per_task {
                    if record_latencies {
                        let at = Instant::now();
                        op(t * per_task + i).await;
                        latencies.push(at.elapsed());
                    } else {
                        op(t * per_task + i).await;
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.expect("benchmark task"));
    }
    Spread {
        elapsed: started.elapsed(),
        latencies,
    }
}
