//! Health check: `PING` with its round-trip time.

use std::time::{Duration, Instant};

use fred::interfaces::ClientLike;

use crate::error::Result;

/// Sends `PING` and returns the round-trip time. Fails within the command timeout when the
/// server is down or unresponsive, which makes it the readiness probe of every Redis backend.
pub async fn ping<C: ClientLike>(client: &C) -> Result<Duration> {
    let started = Instant::now();
    let _: String = client.ping(None).await?;
    Ok(started.elapsed())
}
