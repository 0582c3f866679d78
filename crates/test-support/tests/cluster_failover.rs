//! The replicated cluster harness: a killed primary's replica is promoted and serves the data
//! written before the kill.

use std::time::Duration;

use nilecare_test_support::{RedisCluster, Reply};

#[test]
fn a_killed_primary_is_replaced_by_its_replica_with_the_data() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    assert_eq!(cluster.nodes().len(), 6);
    let slot = cluster.nodes()[0]
        .command(&["CLUSTER", "KEYSLOT", "patients:1"])
        .as_integer()
        .expect("CLUSTER KEYSLOT") as u16;
    let primary = cluster.node_index_for_slot(slot);
    assert!(primary < 3, "a primary serves the slot first");
    let owner = &cluster.nodes()[primary];
    assert_eq!(
        owner.command(&["SET", "patients:1", "amina"]),
        Reply::Status("OK".into())
    );
    // Replication is asynchronous: wait until the replica has the write.
    assert_eq!(owner.command(&["WAIT", "1", "5000"]), Reply::Integer(1));

    // Before any failover, range i is served by primary i.
    let took = cluster.fail_over(primary);
    assert!(took < Duration::from_secs(30), "failover took {took:?}");

    let promoted = cluster.node_index_for_slot(slot);
    assert!(
        promoted >= 3,
        "the slot moved to the replica, got node {promoted}"
    );
    let node = &cluster.nodes()[promoted];
    assert_eq!(
        node.command(&["GET", "patients:1"]),
        Reply::Bulk(Some(b"amina".to_vec()))
    );
    // The promoted node accepts writes for the slot (no MOVED).
    assert_eq!(
        node.command(&["SET", "patients:1", "amina-2"]),
        Reply::Status("OK".into())
    );
}
