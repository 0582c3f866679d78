//! Rate-limit keys of any length and content.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nilecare_rate_limit::{MAX_KEY_LEN, MemoryLimiter, Policy, Quota, stored_key};
use std::sync::LazyLock;

static LIMITER: LazyLock<(MemoryLimiter, Policy)> = LazyLock::new(|| {
    (MemoryLimiter::new(), Policy::new("fuzz", Quota::per_second(1_000_000).unwrap()).unwrap())
});

fuzz_target!(|data: &[u8]| {
    let key = String::from_utf8_lossy(data);
    match stored_key(&key) {
        Ok(stored) => assert!(stored.len() <= MAX_KEY_LEN),
        Err(_) => assert!(key.is_empty()),
    }
    let (limiter, policy) = &*LIMITER;
    let _ = limiter.check_now(policy, &key, 1);
});
