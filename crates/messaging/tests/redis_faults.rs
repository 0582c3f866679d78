//! Faults on the Redis broker: a server killed and restarted under load (with AOF, fsync
//! always) loses no acknowledged publish; a paused server cannot stall a publish past its
//! timeout and consumers resume after it; a consumer whose runtime dies mid-handler, and a
//! consumer process SIGKILLed mid-handler, lose nothing: another instance handles each
//! message, and with the processed set exactly once.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nilecare_messaging::{
    Begin, Broker, Consumer, Error, Message, Outcome, ProcessedSet, Publisher, StartAt,
};
use nilecare_test_support::RedisServer;
use support::{Seen, drained, messages, once_per_id, record_and_ack, redis_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_loses_no_acknowledged_publish() {
    let mut server = RedisServer::builder()
        .arg("--appendonly")
        .arg("yes")
        .arg("--appendfsync")
        .arg("always")
        .start();
    let broker = redis_broker(&server).await;
    broker
        .create_group("visits", "g", StartAt::Beginning)
        .await
        .unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let publish = |from: usize, to: usize| {
        let (acked, publisher) = (acknowledged.clone(), Publisher::new(broker.clone()));
        async move {
            for i in from..to {
                let m = Message::new("visit", &i)
                    .unwrap()
                    .with_id(&format!("v-{i}"))
                    .unwrap();
                if publisher.publish("visits", &m).await.is_ok() {
                    acked.lock().unwrap().push(m.id().to_owned());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    // Published with nobody consuming: only the server's persistence keeps them.
    publish(0, 300).await;
    tokio::task::block_in_place(|| server.restart());
    let (seen, consumer) = record_and_ack(
        Consumer::builder(broker.clone(), "visits", "g")
            .poll(Duration::from_millis(50))
            .visibility_timeout(Duration::from_millis(500)),
    )
    .await;
    // And a second restart while publishing and consuming.
    let load = tokio::spawn(publish(300, 600));
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| server.restart());
    load.await.unwrap();
    let want: HashSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    assert!(
        want.len() > 100,
        "publishing went on around the restart: {}",
        want.len()
    );
    let all = seen
        .until(|s| {
            let got: HashSet<String> = s.all().into_iter().map(|(id, _)| id).collect();
            want.is_subset(&got)
        })
        .await;
    consumer.shutdown().await;
    let got: HashSet<String> = seen.all().into_iter().map(|(id, _)| id).collect();
    let lost: Vec<&String> = want.difference(&got).collect();
    assert!(
        all && lost.is_empty(),
        "{} acknowledged publishes lost: {lost:?}",
        lost.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_cannot_stall_publishers_or_consumers() {
    let server = RedisServer::start();
    let broker = redis_broker(&server).await; // 1 s command timeout
    let (seen, consumer) = record_and_ack(
        Consumer::builder(broker.clone(), "labs", "g").poll(Duration::from_millis(50)),
    )
    .await;
    let publisher = Publisher::new(broker.clone());
    publisher
        .publish("labs", &messages("before", 1)[0])
        .await
        .unwrap();
    assert!(seen.until(|s| s.len() == 1).await);

    server.pause();
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        publisher.publish("labs", &messages("during", 1)[0]),
    )
    .await
    .expect("publish was stalled past its timeout by a paused server");
    assert!(matches!(outcome, Err(Error::Unavailable(_))), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.resume();

    // The consumer comes back on its own.
    let after = messages("after", 1);
    let published = nilecare_test_support::eventually(Duration::from_secs(10), || async {
        publisher.publish("labs", &after[0]).await.is_ok()
    })
    .await;
    assert!(published);
    assert!(
        seen.until(|s| s.all().iter().any(|(id, _)| id == "after-0"))
            .await,
        "{:?}",
        seen.all()
    );
    consumer.shutdown().await;
}

#[test]
fn a_consumer_that_dies_mid_handler_loses_nothing_and_effects_happen_once() {
    let server = RedisServer::start();
    let url = server.url();
    let effects = Seen::default();
    let processed_namespace = "billing";
    // Instance 1: handles half of each message (the effect is recorded, then it hangs before
    // finishing and acking), and its runtime is dropped: its connections close, nothing is
    // settled, as if the process was killed.
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let effects = effects.clone();
        let url = url.clone();
        runtime.block_on(async move {
            let server_url = url;
            let pool = nilecare_redis::connect(
                &nilecare_redis::RedisConfig::from_url(&server_url).unwrap(),
            )
            .await
            .unwrap();
            let broker = nilecare_messaging::RedisBroker::new(pool.clone());
            let processed = ProcessedSet::redis(pool, processed_namespace, Duration::from_secs(60))
                .lease(Duration::from_millis(300));
            let publisher = Publisher::new(broker.clone());
            for m in messages("inv", 20) {
                publisher.publish("invoices", &m).await.unwrap();
            }
            let started = Arc::new(tokio::sync::Semaphore::new(0));
            let s = started.clone();
            let _consumer = Consumer::builder(broker.clone(), "invoices", "billing")
                .concurrency(20)
                .poll(Duration::from_millis(20))
                .run(move |m: Message| {
                    let (processed, effects, s) = (processed.clone(), effects.clone(), s.clone());
                    async move {
                        if processed.begin(m.id()).await.unwrap() == Begin::New {
                            // Half the messages get their effect before the crash.
                            if m.payload::<usize>().unwrap() % 2 == 0 {
                                effects.record(&m);
                                processed.finish(m.id()).await.unwrap();
                            }
                        }
                        s.add_permits(1);
                        std::future::pending::<()>().await;
                        Outcome::Ack
                    }
                })
                .await
                .unwrap();
            // Every message is in a handler of this instance.
            let _ = started.acquire_many(20).await.unwrap();
        });
        runtime.shutdown_background(); // the "kill": tasks dropped, nothing settled
    }
    // Instance 2 takes the pending messages over after the visibility timeout.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = nilecare_redis::connect(&nilecare_redis::RedisConfig::from_url(&url).unwrap())
            .await
            .unwrap();
        let broker = nilecare_messaging::RedisBroker::new(pool.clone());
        assert_eq!(
            broker.backlog("invoices", "billing").await.unwrap().pending,
            20
        );
        let processed = ProcessedSet::redis(pool, processed_namespace, Duration::from_secs(60))
            .lease(Duration::from_millis(300));
        let handler = once_per_id(processed, effects.clone(), Duration::from_millis(100));
        let consumer = Consumer::builder(broker.clone(), "invoices", "billing")
            .visibility_timeout(Duration::from_millis(400))
            .poll(Duration::from_millis(20))
            .run(handler)
            .await
            .unwrap();
        assert!(
            drained(&broker, "invoices", "billing").await,
            "{:?}",
            broker.backlog("invoices", "billing").await
        );
        consumer.shutdown().await;
    });
    let counts = effects.counts();
    assert_eq!(
        counts.len(),
        20,
        "every message had its effect: {:?}",
        effects.all()
    );
    assert!(
        counts.values().all(|n| *n == 1),
        "and only once: {:?}",
        effects.all()
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_under_the_configured_prefix() {
    use nilecare_messaging::saga::{RedisSagaStore, Saga, SagaRunner};
    use nilecare_redis::KeyPrefix;
    let server = RedisServer::start();
    let pool =
        nilecare_redis::connect(&nilecare_redis::RedisConfig::from_url(&server.url()).unwrap())
            .await
            .unwrap();
    let root = KeyPrefix::new("clinicapp:").unwrap();
    let broker = nilecare_messaging::RedisBroker::with_prefix(pool.clone(), &root);
    let processed =
        ProcessedSet::redis(pool.clone(), "billing", Duration::from_secs(60)).with_prefix(&root);
    assert_eq!(processed.begin("m-1").await.unwrap(), Begin::New);
    Publisher::new(broker)
        .publish("labs", &messages("k", 1)[0])
        .await
        .unwrap();
    let saga = Saga::<u32>::builder("prefixed")
        .step_without_compensation("only", |n, _| async move { Ok(n) })
        .build()
        .unwrap();
    SagaRunner::new(RedisSagaStore::with_prefix(pool, &root), "a")
        .unwrap()
        .start(&saga, "s-1", 1)
        .await
        .unwrap();
    let exists =
        |key: &str| server.command(&["EXISTS", key]) == nilecare_test_support::Reply::Integer(1);
    assert!(exists("clinicapp:msg:{labs}"));
    assert!(exists("clinicapp:saga:{prefixed}:s-1"));
    assert!(exists("clinicapp:msg:done:billing:m-1"));
    assert!(!exists("nilecare:msg:{labs}"));
}

/// Set in the child process of [`a_consumer_process_killed_by_sigkill_loses_nothing`]: the
/// Redis URL it consumes from.
const WORKER_ENV: &str = "NILECARE_MESSAGING_TEST_WORKER";
/// What the worker prints once every message is inside one of its handlers.
const PARKED: &str = "NILECARE-WORKER-PARKED";

/// The handler both processes run: the effect (a count per message id in the Redis hash
/// `effects`) once per id through the processed set.
async fn apply_once(processed: &ProcessedSet, pool: &fred::clients::Pool, m: &Message) -> Outcome {
    use fred::interfaces::HashesInterface;
    match processed.begin(m.id()).await {
        Ok(Begin::New) => {
            let _: i64 = pool.hincrby("effects", m.id(), 1).await.unwrap();
            processed.finish(m.id()).await.unwrap();
            Outcome::Ack
        }
        Ok(Begin::Done) => Outcome::Ack,
        Ok(Begin::InProgress) | Err(_) => Outcome::Retry {
            error: "handled by another delivery".into(),
            after: Some(Duration::from_millis(100)),
        },
    }
}

/// The worker process: takes every message of `invoices` into a handler, gives half of them
/// their effect, then hangs until it is killed.
fn run_worker(url: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = nilecare_redis::connect(&nilecare_redis::RedisConfig::from_url(url).unwrap())
            .await
            .unwrap();
        let broker = nilecare_messaging::RedisBroker::new(pool.clone());
        let processed = ProcessedSet::redis(pool.clone(), "billing", Duration::from_secs(60))
            .lease(Duration::from_millis(300));
        let started = Arc::new(tokio::sync::Semaphore::new(0));
        let s = started.clone();
        let _consumer = Consumer::builder(broker, "invoices", "billing")
            .concurrency(20)
            .poll(Duration::from_millis(20))
            .run(move |m: Message| {
                let (processed, pool, s) = (processed.clone(), pool.clone(), s.clone());
                async move {
                    if m.payload::<usize>().unwrap() % 2 == 0 {
                        apply_once(&processed, &pool, &m).await;
                    } else {
                        // Taken, never finished: the lease runs out after the kill.
                        processed.begin(m.id()).await.unwrap();
                    }
                    s.add_permits(1);
                    std::future::pending::<Outcome>().await
                }
            })
            .await
            .unwrap();
        let _ = started.acquire_many(20).await.unwrap();
        println!("{PARKED}");
        std::future::pending::<()>().await;
    });
}

/// A real consumer process, SIGKILLed while every message is inside one of its handlers (half
/// with their effect done): nothing is lost, another consumer reclaims and handles them all,
/// and with the processed set each effect happens exactly once.
#[test]
fn a_consumer_process_killed_by_sigkill_loses_nothing() {
    use std::io::BufRead as _;
    use std::os::unix::process::ExitStatusExt as _;
    if let Ok(url) = std::env::var(WORKER_ENV) {
        run_worker(&url);
        return;
    }
    let server = RedisServer::start();
    let url = server.url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let broker = redis_broker(&server).await;
        let publisher = Publisher::new(broker.clone());
        for m in messages("inv", 20) {
            publisher.publish("invoices", &m).await.unwrap();
        }
    });
    // The same test binary, running only this test, as the worker.
    let mut worker = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_consumer_process_killed_by_sigkill_loses_nothing",
            "--nocapture",
        ])
        .env(WORKER_ENV, &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = worker.stdout.take().unwrap();
    let (parked, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(PARKED) {
                let _ = parked.send(());
            }
        }
    });
    lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the worker took every message into a handler");
    worker.kill().unwrap(); // SIGKILL: no destructor, no shutdown, connections cut
    let status = worker.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");

    runtime.block_on(async {
        use fred::interfaces::HashesInterface;
        let pool = nilecare_redis::connect(&nilecare_redis::RedisConfig::from_url(&url).unwrap())
            .await
            .unwrap();
        let broker = nilecare_messaging::RedisBroker::new(pool.clone());
        assert_eq!(
            broker.backlog("invoices", "billing").await.unwrap().pending,
            20,
            "the killed worker left every message pending"
        );
        let half: std::collections::HashMap<String, i64> = pool.hgetall("effects").await.unwrap();
        assert_eq!(half.len(), 10, "half had their effect before the kill");
        let processed = ProcessedSet::redis(pool.clone(), "billing", Duration::from_secs(60))
            .lease(Duration::from_millis(300));
        let consumer = Consumer::builder(broker.clone(), "invoices", "billing")
            .visibility_timeout(Duration::from_millis(400))
            .poll(Duration::from_millis(20))
            .run(move |m: Message| {
                let (processed, pool) = (processed.clone(), pool.clone());
                async move { apply_once(&processed, &pool, &m).await }
            })
            .await
            .unwrap();
        assert!(
            drained(&broker, "invoices", "billing").await,
            "{:?}",
            broker.backlog("invoices", "billing").await
        );
        consumer.shutdown().await;
    });
    let effects = server.command(&["HGETALL", "effects"]);
    let nilecare_test_support::Reply::Array(Some(flat)) = effects else {
        panic!("{effects:?}");
    };
    let counts: Vec<&nilecare_test_support::Reply> = flat.iter().skip(1).step_by(2).collect();
    assert_eq!(counts.len(), 20, "every message had its effect");
    assert!(
        counts
            .iter()
            .all(|n| **n == nilecare_test_support::Reply::Bulk(Some(b"1".to_vec()))),
        "and only once: {flat:?}"
    );
}
