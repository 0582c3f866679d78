//! nilecare-redis in one page: connect, ping, a Lua script, tenant-safe keys, pattern delete.
//!
//! ```text
//! cargo run --example redis                                   # starts a throwaway redis-server
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis  # or uses yours
//! ```

use std::time::Duration;

use nilecare::redis::fred::prelude::*;
use nilecare::redis::{KeyPrefix, RedisConfig, Script, connect, delete_matching, ping, scan_keys};

const RECORD_VISIT: &str = r"
    local total = redis.call('INCR', KEYS[1])
    redis.call('SADD', KEYS[2], ARGV[1])
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
    return {total, redis.call('SCARD', KEYS[2])}";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Without REDIS_URL, run against a private redis-server on a free port.
    let _server;
    let url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            _server = nilecare_test_support::RedisServer::start();
            _server.url()
        }
    };

    let config = RedisConfig::from_url(&url)?.with_command_timeout(Duration::from_millis(500));
    println!("config:   {config:?}");
    let pool = connect(&config).await?;
    println!("ping:     {:?}", ping(&pool).await?);

    // Keys for one clinic share a hash tag, so the two-key script also runs on Redis Cluster.
    let visits = KeyPrefix::default().segment("example");
    let clinic = visits.tagged("clinic:7");
    let script = Script::new(RECORD_VISIT);
    for patient in ["p-1", "p-2", "p-1"] {
        let (total, unique): (i64, i64) = script
            .run(
                &pool,
                vec![clinic.key("visits"), clinic.key("patients")],
                vec![patient, "60000"],
            )
            .await?;
        println!(
            "visit by {patient}: total={total} unique={unique}  (EVALSHA {})",
            &script.sha1()[..8]
        );
    }

    // A tenant name with glob characters cannot widen a pattern.
    let _: () = pool
        .set(visits.segment("a*").key("x"), 1, None, None, false)
        .await?;
    let _: () = pool
        .set(visits.segment("abc").key("x"), 1, None, None, false)
        .await?;
    let pattern = visits.segment("a*").pattern_all();
    println!(
        "pattern:  {pattern} matches {:?}",
        scan_keys(&pool, &pattern).await?
    );

    let removed = delete_matching(&pool, &visits.pattern_all()).await?;
    println!("cleanup:  removed {removed} keys under {visits}");
    Ok(())
}
