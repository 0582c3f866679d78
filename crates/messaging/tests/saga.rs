//! Sagas on both stores: steps in order with a typed state, compensation in reverse on a
//! failure, one run per id, a saga abandoned by a dead instance finished by another, and two
//! instances racing to take it over running each step once.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nilecare_messaging::Error;
#[cfg(feature = "redis")]
use nilecare_messaging::saga::RedisSagaStore;
use nilecare_messaging::saga::{
    MemorySagaStore, Saga, SagaRunner, SagaStatus, SagaStore, StepContext,
};
#[cfg(feature = "redis")]
use nilecare_test_support::RedisServer;

/// The state of a patient registration.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Registration {
    patient: Option<u64>,
    account: Option<String>,
    appointment: Option<u64>,
}

/// What the "services" did, in order, with the idempotency keys they were given.
#[derive(Clone, Default)]
struct Effects(Arc<Mutex<Vec<String>>>);

impl Effects {
    fn push(&self, what: &str, ctx: &StepContext) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{what} [{}]", ctx.idempotency_key));
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn count(&self, prefix: &str) -> usize {
        self.all().iter().filter(|e| e.starts_with(prefix)).count()
    }
}

/// Registration: create patient → open account → book appointment (which fails when `fail`,
/// and blocks forever once when `hang` is set, as if its instance died mid-step).
fn registration(effects: &Effects, fail: bool, hang: Arc<AtomicBool>) -> Saga<Registration> {
    let (e1, e2, e3, e4, e5) = (
        effects.clone(),
        effects.clone(),
        effects.clone(),
        effects.clone(),
        effects.clone(),
    );
    Saga::builder("registration")
        .step(
            "create-patient",
            move |mut s: Registration, ctx| {
                let e = e1.clone();
                async move {
                    e.push("create-patient", &ctx);
                    s.patient = Some(42);
                    Ok(s)
                }
            },
            move |mut s: Registration, ctx| {
                let e = e2.clone();
                async move {
                    e.push("delete-patient", &ctx);
                    s.patient = None;
                    Ok(s)
                }
            },
        )
        .limits(Duration::from_millis(200), 2)
        .step(
            "open-account",
            move |mut s: Registration, ctx| {
                let e = e3.clone();
                async move {
                    e.push("open-account", &ctx);
                    s.account = Some(format!("ACC-{}", s.patient.unwrap()));
                    Ok(s)
                }
            },
            move |mut s: Registration, ctx| {
                let e = e4.clone();
                async move {
                    e.push("close-account", &ctx);
                    s.account = None;
                    Ok(s)
                }
            },
        )
        .limits(Duration::from_millis(200), 2)
        .step_without_compensation("book-appointment", move |mut s: Registration, ctx| {
            let (e, hang) = (e5.clone(), hang.clone());
            async move {
                if hang.swap(false, Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                if fail {
                    e.push("book-appointment failed", &ctx);
                    return Err("no free slot".into());
                }
                e.push("book-appointment", &ctx);
                s.appointment = Some(7);
                Ok(s)
            }
        })
        .limits(Duration::from_millis(200), 3)
        .build()
        .unwrap()
}

fn no_hang() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

async fn steps_run_in_order_with_the_state<St: SagaStore + Clone>(store: St) {
    let effects = Effects::default();
    let saga = registration(&effects, false, no_hang());
    let runner = SagaRunner::new(store.clone(), "instance-a")
        .unwrap()
        .lease(Duration::from_secs(2));
    let done = runner
        .start(&saga, "reg-1", Registration::default())
        .await
        .unwrap();
    assert_eq!(done.status, SagaStatus::Completed);
    let state: Registration = serde_json::from_value(done.state.clone()).unwrap();
    assert_eq!(
        state,
        Registration {
            patient: Some(42),
            account: Some("ACC-42".into()),
            appointment: Some(7)
        }
    );
    assert_eq!(
        effects.all(),
        [
            "create-patient [reg-1:create-patient]",
            "open-account [reg-1:open-account]",
            "book-appointment [reg-1:book-appointment]"
        ]
    );
    // The record is queryable and final; starting the id again runs nothing.
    let stored = runner
        .status("registration", "reg-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, SagaStatus::Completed);
    assert_eq!(stored.lease_until_ms, 0);
    let again = runner
        .start(&saga, "reg-1", Registration::default())
        .await
        .unwrap();
    assert_eq!(again.status, SagaStatus::Completed);
    assert_eq!(effects.all().len(), 3, "nothing ran twice");
}

async fn a_failed_step_compensates_in_reverse<St: SagaStore + Clone>(store: St) {
    let effects = Effects::default();
    let saga = registration(&effects, true, no_hang());
    let runner = SagaRunner::new(store, "instance-a")
        .unwrap()
        .lease(Duration::from_secs(2));
    let done = runner
        .start(&saga, "reg-2", Registration::default())
        .await
        .unwrap();
    assert_eq!(done.status, SagaStatus::Compensated);
    assert_eq!(
        done.error.as_deref(),
        Some("book-appointment: no free slot")
    );
    assert_eq!(
        effects.all(),
        [
            "create-patient [reg-2:create-patient]",
            "open-account [reg-2:open-account]",
            "book-appointment failed [reg-2:book-appointment]",
            "book-appointment failed [reg-2:book-appointment]",
            "book-appointment failed [reg-2:book-appointment]",
            "close-account [reg-2:open-account:compensate]",
            "delete-patient [reg-2:create-patient:compensate]",
        ]
    );
    let state: Registration = serde_json::from_value(done.state).unwrap();
    assert_eq!(state, Registration::default(), "every effect undone");
}

/// Instance A dies in the middle of step 3; B takes the saga over once A's lease ran out.
async fn an_abandoned_saga_is_finished_by_another_instance<St: SagaStore + Clone>(store: St) {
    let effects = Effects::default();
    let hang = Arc::new(AtomicBool::new(true));
    let saga = Arc::new(registration(&effects, false, hang.clone()));
    let lease = Duration::from_millis(800);
    let a = SagaRunner::new(store.clone(), "instance-a")
        .unwrap()
        .lease(lease);
    let (s, a2) = (saga.clone(), a.clone());
    let dying = tokio::spawn(async move { a2.start(&s, "reg-3", Registration::default()).await });
    while hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    dying.abort(); // instance A is gone, mid-step
    let b = SagaRunner::new(store.clone(), "instance-b")
        .unwrap()
        .lease(lease);
    assert!(
        b.recover(&saga).await.unwrap().is_empty(),
        "A's lease still runs"
    );
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let finished = b.recover(&saga).await.unwrap();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].status, SagaStatus::Completed);
    assert_eq!(finished[0].owner, "instance-b");
    assert!(
        finished[0]
            .history
            .iter()
            .any(|h| h == "taken over by instance-b")
    );
    for step in ["create-patient", "open-account", "book-appointment"] {
        assert_eq!(effects.count(step), 1, "{step}: {:?}", effects.all());
    }
}

/// Two instances race to take over one abandoned saga: one wins, each step runs once.
async fn racing_instances_run_each_step_once<St: SagaStore + Clone>(store: St) {
    let effects = Effects::default();
    let hang = Arc::new(AtomicBool::new(true));
    let saga = Arc::new(registration(&effects, false, hang.clone()));
    let lease = Duration::from_millis(800);
    let a = SagaRunner::new(store.clone(), "instance-a")
        .unwrap()
        .lease(lease);
    let (s, a2) = (saga.clone(), a.clone());
    let dying = tokio::spawn(async move { a2.start(&s, "reg-4", Registration::default()).await });
    while hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    dying.abort();
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let b = SagaRunner::new(store.clone(), "instance-b")
        .unwrap()
        .lease(lease);
    let c = SagaRunner::new(store.clone(), "instance-c")
        .unwrap()
        .lease(lease);
    let (from_b, from_c) = tokio::join!(b.recover(&saga), c.recover(&saga));
    let finished: Vec<_> = from_b.unwrap().into_iter().chain(from_c.unwrap()).collect();
    assert_eq!(finished.len(), 1, "one instance took it: {finished:?}");
    assert_eq!(finished[0].status, SagaStatus::Completed);
    let counts: HashMap<&str, usize> = ["create-patient", "open-account", "book-appointment"]
        .into_iter()
        .map(|s| (s, effects.count(s)))
        .collect();
    assert!(counts.values().all(|n| *n == 1), "{:?}", effects.all());
}

#[test]
fn bad_definitions_and_settings_name_the_field() {
    let duplicate = Saga::<Registration>::builder("twice")
        .step_without_compensation("a", |s, _| async move { Ok(s) })
        .step_without_compensation("a", |s, _| async move { Ok(s) })
        .build();
    assert!(matches!(
        duplicate,
        Err(Error::Invalid { field: "step", .. })
    ));
    assert!(matches!(
        Saga::<Registration>::builder("empty").build(),
        Err(Error::Invalid { field: "saga", .. })
    ));
    assert!(matches!(
        SagaRunner::new(MemorySagaStore::new(), "bad owner"),
        Err(Error::Invalid { field: "owner", .. })
    ));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let saga = registration(&Effects::default(), false, no_hang());
    let short = SagaRunner::new(MemorySagaStore::new(), "a")
        .unwrap()
        .lease(Duration::from_millis(100));
    let refused = rt.block_on(short.start(&saga, "reg-5", Registration::default()));
    assert!(
        matches!(refused, Err(Error::Invalid { field: "lease", .. })),
        "{refused:?}"
    );
    let runner = SagaRunner::new(MemorySagaStore::new(), "a").unwrap();
    let refused = rt.block_on(runner.start(&saga, "{other}", Registration::default()));
    assert!(
        matches!(refused, Err(Error::Invalid { field: "id", .. })),
        "{refused:?}"
    );
}

macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(MemorySagaStore::new()).await;
                }
            )*
        }
        #[cfg(feature = "redis")]
        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let server = RedisServer::start();
                    let pool = nilecare_redis::connect(&nilecare_redis::RedisConfig::from_url(&server.url()).unwrap())
                        .await
                        .unwrap();
                    super::$scenario(RedisSagaStore::new(pool)).await;
                }
            )*
        }
    };
}

on_every_store!(
    steps_run_in_order_with_the_state,
    a_failed_step_compensates_in_reverse,
    an_abandoned_saga_is_finished_by_another_instance,
    racing_instances_run_each_step_once,
);
