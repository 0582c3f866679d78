//! One behavioural suite for every registry backend (memory, Redis, Redis Cluster): register,
//! list, services, TTL expiry of one crashed instance while its siblings keep beating, drain,
//! deregister, watch events seen by a second client, bad input. Then the Redis-only faults:
//! a restart that loses the data, unreadable entries.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use nilecare_redis::RedisConfig;
use nilecare_service_discovery::{
    AnyRegistry, Change, Error, MemoryRegistry, RedisRegistry, Registry, RegistryConfig,
    ServiceInstance, Status,
};
use nilecare_test_support::{RedisCluster, RedisServer, Reply, eventually};

const TTL: Duration = Duration::from_millis(1000);
const HEARTBEAT: Duration = Duration::from_millis(200);

/// The full re-read that repairs a missed notification: far longer than any wait below, so a
/// watcher that sees a change within the wait heard it as a notification.
const RESYNC: Duration = Duration::from_secs(60);

fn config() -> RegistryConfig {
    RegistryConfig::default()
        .with_ttl(TTL)
        .unwrap()
        .with_heartbeat_interval(HEARTBEAT)
        .unwrap()
        .with_resync_interval(RESYNC)
        .unwrap()
}

fn instance(service: &str, id: &str) -> ServiceInstance {
    ServiceInstance::new(service, id, format!("http://{id}.local:8080")).unwrap()
}

fn ids(instances: &[ServiceInstance]) -> Vec<&str> {
    instances.iter().map(ServiceInstance::id).collect()
}

/// The next change within 5 s.
async fn next_change(watch: &mut nilecare_service_discovery::Watch) -> Change {
    tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a change within 5 s")
        .expect("the registry is alive")
}

/// The cases, each run against two handles `a` and `b` on one backend (for Redis: separate
/// connection pools, as two processes would have).
mod cases {
    use super::*;

    pub(super) async fn registers_lists_and_names_services<R: Registry>(a: R, b: R) {
        let _p1 = a.register(instance("patients", "p-1")).await.unwrap();
        let mut p2 = b.register(instance("patients", "p-2")).await.unwrap();
        let _b1 = a.register(instance("billing", "b-1")).await.unwrap();
        p2.set_status(Status::Down).await.unwrap();
        for registry in [&a, &b] {
            assert_eq!(
                ids(&registry.instances("patients").await.unwrap()),
                ["p-1", "p-2"]
            );
            assert_eq!(
                ids(&registry.healthy_instances("patients").await.unwrap()),
                ["p-1"]
            );
            assert_eq!(registry.services().await.unwrap(), ["billing", "patients"]);
            assert!(registry.instances("nobody").await.unwrap().is_empty());
        }
        let stored = &b.instances("patients").await.unwrap()[1];
        assert_eq!(stored, p2.instance(), "the whole description round-trips");
    }

    pub(super) async fn a_crashed_instance_expires_alone<R: Registry>(a: R, b: R) {
        let crashed = a.register(instance("patients", "crashed")).await.unwrap();
        let _alive = a.register(instance("patients", "alive")).await.unwrap();
        let mut watch = b.watch("patients").await.unwrap();
        assert_eq!(ids(&watch.current()), ["alive", "crashed"]);
        drop(crashed); // heartbeats stop, as when the process dies
        assert_eq!(
            next_change(&mut watch).await,
            Change::Removed(instance("patients", "crashed"))
        );
        // Its sibling keeps beating well past the TTL.
        tokio::time::sleep(TTL * 2).await;
        assert_eq!(ids(&b.instances("patients").await.unwrap()), ["alive"]);
        assert_eq!(ids(&watch.current()), ["alive"]);
    }

    pub(super) async fn deregister_and_drain_are_seen_by_watchers<R: Registry>(a: R, b: R) {
        let mut watch = b.watch("appointments").await.unwrap();
        assert!(watch.current().is_empty());
        let one = a.register(instance("appointments", "a-1")).await.unwrap();
        let two = a.register(instance("appointments", "a-2")).await.unwrap();
        assert_eq!(
            next_change(&mut watch).await,
            Change::Added(instance("appointments", "a-1"))
        );
        assert_eq!(
            next_change(&mut watch).await,
            Change::Added(instance("appointments", "a-2"))
        );
        one.deregister().await.unwrap();
        assert_eq!(
            next_change(&mut watch).await,
            Change::Removed(instance("appointments", "a-1"))
        );
        let draining = tokio::spawn(two.drain(Duration::from_millis(300)));
        assert_eq!(
            next_change(&mut watch).await,
            Change::Updated(instance("appointments", "a-2").with_status(Status::Draining))
        );
        assert_eq!(
            a.healthy_instances("appointments").await.unwrap(),
            [],
            "a draining instance is not healthy"
        );
        assert!(matches!(
            next_change(&mut watch).await,
            Change::Removed(i) if i.id() == "a-2"
        ));
        draining.await.unwrap().unwrap();
        assert!(b.instances("appointments").await.unwrap().is_empty());
        assert!(!b.services().await.unwrap().contains(&"appointments".into()));
    }

    pub(super) async fn bad_input_is_an_error_naming_the_field<R: Registry>(a: R, _b: R) {
        for service in ["", "has space", "{tag}"] {
            assert!(
                matches!(
                    a.watch(service).await,
                    Err(Error::InvalidInstance {
                        field: "service",
                        ..
                    })
                ),
                "{service:?}"
            );
            assert!(
                matches!(
                    a.instances(service).await,
                    Err(Error::InvalidInstance {
                        field: "service",
                        ..
                    })
                ),
                "{service:?}"
            );
        }
        let forged: ServiceInstance = serde_json::from_str(
            r#"{"id":"x","service":"patients","address":"http://h:1","weight":0}"#,
        )
        .unwrap();
        assert!(matches!(
            a.register(forged).await,
            Err(Error::InvalidInstance {
                field: "weight",
                ..
            })
        ));
    }
}

macro_rules! behaviour_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn registers_lists_and_names_services() {
                let (_servers, a, b) = $make.await;
                cases::registers_lists_and_names_services(a, b).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_crashed_instance_expires_alone() {
                let (_servers, a, b) = $make.await;
                cases::a_crashed_instance_expires_alone(a, b).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn deregister_and_drain_are_seen_by_watchers() {
                let (_servers, a, b) = $make.await;
                cases::deregister_and_drain_are_seen_by_watchers(a, b).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bad_input_is_an_error_naming_the_field() {
                let (_servers, a, b) = $make.await;
                cases::bad_input_is_an_error_naming_the_field(a, b).await;
            }
        }
    };
}

async fn memory() -> ((), MemoryRegistry, MemoryRegistry) {
    let registry = MemoryRegistry::new(config());
    ((), registry.clone(), registry)
}

async fn redis_registry(url: &str) -> RedisRegistry {
    let redis = RedisConfig::from_url(url)
        .unwrap()
        .with_command_timeout(Duration::from_secs(2));
    RedisRegistry::connect(&redis, config()).await.unwrap()
}

async fn redis() -> (RedisServer, RedisRegistry, RedisRegistry) {
    let server = RedisServer::start();
    let a = redis_registry(&server.url()).await;
    let b = redis_registry(&server.url()).await;
    (server, a, b)
}

async fn cluster() -> (RedisCluster, RedisRegistry, RedisRegistry) {
    let cluster = RedisCluster::start(3);
    let a = redis_registry(&cluster.url()).await;
    let b = redis_registry(&cluster.url()).await;
    (cluster, a, b)
}

async fn any_redis() -> (RedisServer, AnyRegistry, AnyRegistry) {
    let (server, a, b) = redis().await;
    (server, a.into(), b.into())
}

behaviour_suite!(memory_registry, memory());
behaviour_suite!(any_registry_on_redis, any_redis());
behaviour_suite!(redis_registry, redis());
behaviour_suite!(cluster_registry, cluster());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_come_back_after_redis_restarts_empty() {
    let (mut server, a, b) = redis().await;
    let _one = a.register(instance("patients", "p-1")).await.unwrap();
    let _two = b.register(instance("patients", "p-2")).await.unwrap();
    let mut watch = b.watch("patients").await.unwrap();
    let seen = tokio::spawn(async move {
        let mut changes = Vec::new();
        while let Ok(Some(change)) = tokio::time::timeout(TTL * 2, watch.next()).await {
            changes.push(change);
        }
        (changes, watch.current())
    });
    server.restart(); // no persistence: every key is gone
    assert_eq!(
        server.command(&["DBSIZE"]).as_integer(),
        Some(0),
        "the restart lost the data"
    );
    let back = eventually(HEARTBEAT * 2 + Duration::from_millis(300), || async {
        a.instances("patients")
            .await
            .is_ok_and(|i| ids(&i) == ["p-1", "p-2"])
    })
    .await;
    assert!(back, "both re-registered within two heartbeat intervals");
    // The watcher never announced a mass departure while they came back.
    let (changes, current) = seen.await.unwrap();
    assert_eq!(changes, [], "no change announced across the restart");
    assert_eq!(ids(&current), ["p-1", "p-2"]);
    assert!(
        eventually(Duration::from_secs(3), || async {
            b.services().await.is_ok_and(|s| s == ["patients"])
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_entries_are_skipped_not_fatal() {
    let (server, a, _b) = redis().await;
    let _good = a.register(instance("patients", "good")).await.unwrap();
    let index = "nilecare:discovery:{patients}:index";
    for (id, body) in [
        ("garbage", "not json"),
        (
            "forged",
            r#"{"id":"forged","service":"patients","address":"ftp://h:1","weight":1}"#,
        ),
        (
            "elsewhere",
            r#"{"id":"elsewhere","service":"billing","address":"http://h:1","weight":1}"#,
        ),
    ] {
        let key = format!("nilecare:discovery:{{patients}}:i:{id}");
        server.command(&["SET", key.as_str(), body, "PX", "60000"]);
        server.command(&["ZADD", index, "99999999999999", id]);
    }
    assert_eq!(ids(&a.instances("patients").await.unwrap()), ["good"]);
    let watch = a.watch("patients").await.unwrap();
    assert_eq!(ids(&watch.current()), ["good"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_carries_a_ttl() {
    let (server, a, _b) = redis().await;
    let _one = a.register(instance("patients", "p-1")).await.unwrap();
    let Reply::Array(Some(scan)) = server.command(&["SCAN", "0", "COUNT", "1000"]) else {
        panic!("SCAN answers an array");
    };
    let Reply::Array(Some(keys)) = &scan[1] else {
        panic!("SCAN lists keys");
    };
    let keys: Vec<String> = keys.iter().map(|k| k.as_text().unwrap()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for key in keys {
        let pttl = server
            .command(&["PTTL", key.as_str()])
            .as_integer()
            .unwrap();
        assert!(pttl > 0 && pttl <= 1000, "{key}: {pttl}");
    }
}
