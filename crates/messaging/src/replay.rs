//! [`replay_dead_letter`]: gives a dead letter another chance, for its group only.

use crate::error::{Error, Result};
use crate::message::headers;
use crate::store::Broker;

/// Publishes dead letter `entry` of `group` on `topic` again, marked for `group` alone (the
/// topic's other groups ack it without handling it), and removes it from the dead letters.
/// Use it once the cause is fixed (a deployed bug fix, a restored dependency). Returns the new
/// entry id.
///
/// # Errors
/// [`Error::Invalid`] naming `entry` when there is no such dead letter, or it could not be read
/// (nothing to replay: inspect it with [`Broker::dead_letters`]);
/// [`Error::Unavailable`] when the broker fails (the dead letter is then kept).
pub async fn replay_dead_letter<B: Broker>(
    broker: &B,
    topic: &str,
    group: &str,
    entry: &str,
) -> Result<String> {
    let dead = broker
        .dead_letters(topic, group, 10_000)
        .await?
        .into_iter()
        .find(|d| d.entry == entry)
        .ok_or_else(|| Error::Invalid {
            field: "entry",
            message: format!("no dead letter {entry} in {topic}/{group}"),
        })?;
    let message = dead.message.ok_or_else(|| Error::Invalid {
        field: "entry",
        message: format!("dead letter {entry} could not be read: {}", dead.error),
    })?;
    let replayed = message.with_header(headers::REPLAY_FOR, group)?;
    let id = broker.publish(topic, &replayed).await?;
    broker.remove_dead_letter(topic, group, entry).await?;
    Ok(id)
}
