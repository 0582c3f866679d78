//! `tower::balance::p2c::Balance` on a watched service: traffic reaches instances as they
//! register and stops reaching them when they drain or leave.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use nilecare_service_discovery::{MemoryRegistry, Registry, ServiceInstance, Status};
use tower::balance::p2c::Balance;
use tower::load::Constant;
use tower::{Service, ServiceExt, service_fn};

fn instance(id: &str) -> ServiceInstance {
    ServiceInstance::new("patients", id, format!("http://{id}.local:80")).unwrap()
}

/// Which instances answered `n` calls.
async fn answered<S>(balance: &mut S, n: usize) -> HashSet<String>
where
    S: Service<(), Response = String>,
    S::Error: std::fmt::Debug,
{
    let mut ids = HashSet::new();
    for _ in 0..n {
        let reply = tokio::time::timeout(Duration::from_secs(2), async {
            balance.ready().await.unwrap().call(()).await.unwrap()
        })
        .await
        .expect("a ready instance");
        ids.insert(reply);
    }
    ids
}

fn set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_balance_follows_the_registry() {
    let registry = MemoryRegistry::default();
    let _a = registry.register(instance("a")).await.unwrap();
    let discover =
        registry
            .watch("patients")
            .await
            .unwrap()
            .into_discover(|i: &ServiceInstance| {
                let id = i.id().to_owned();
                Constant::new(
                    service_fn(move |()| {
                        let id = id.clone();
                        async move { Ok::<_, Infallible>(id) }
                    }),
                    0,
                )
            });
    let mut balance = Balance::new(discover);
    assert_eq!(answered(&mut balance, 10).await, set(&["a"]));

    let mut b = registry.register(instance("b")).await.unwrap();
    assert_eq!(answered(&mut balance, 64).await, set(&["a", "b"]));

    b.set_status(Status::Draining).await.unwrap();
    // The change is applied when the balancer next polls discovery (on ready).
    let _ = answered(&mut balance, 1).await;
    assert_eq!(answered(&mut balance, 32).await, set(&["a"]));

    b.set_status(Status::Up).await.unwrap();
    let _ = answered(&mut balance, 1).await;
    assert_eq!(answered(&mut balance, 64).await, set(&["a", "b"]));

    b.deregister().await.unwrap();
    let _ = answered(&mut balance, 1).await;
    assert_eq!(answered(&mut balance, 32).await, set(&["a"]));
}
