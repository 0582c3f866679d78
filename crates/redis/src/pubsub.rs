//! Pub/sub with connection events: [`listen`] to a channel and learn when messages may have been
//! missed (disconnect, lag), so a consumer such as an invalidation stream can react instead of
//! silently serving stale state; [`publish`] through a pool.

use std::time::Duration;

use bytes::Bytes;
use fred::clients::{Pool, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::RedisConfig;
use crate::connect::builder;
use crate::error::{Error, Result};

/// What happened on a listened-to channel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelEvent {
    /// A message was published.
    Message(Bytes),
    /// The connection was lost: messages published from now on are missed until
    /// [`Resubscribed`](ChannelEvent::Resubscribed).
    Disconnected,
    /// The connection is back and the subscription renewed. Messages published while it was
    /// down were missed.
    Resubscribed,
    /// The listener fell behind and this many messages were dropped.
    Lagged(u64),
}

/// A subscription to one channel; dropping it unsubscribes and closes the connection.
#[derive(Debug)]
pub struct ChannelListener {
    client: SubscriberClient,
    task: JoinHandle<()>,
}

impl Drop for ChannelListener {
    fn drop(&mut self) {
        self.task.abort();
        let client = self.client.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_millis(200), client.quit()).await;
            });
        }
    }
}

/// Subscribes to `channel` on its own connection (pub/sub needs one) and returns the listener
/// with the stream of [`ChannelEvent`]s. The connection follows the timeouts and reconnect
/// policy of `config`; after each reconnect the subscription is renewed and
/// [`ChannelEvent::Resubscribed`] sent.
///
/// ```no_run
/// # async fn demo() -> nilecare_redis::Result<()> {
/// use nilecare_redis::{ChannelEvent, RedisConfig, listen, publish, connect};
/// let config = RedisConfig::from_url("redis://127.0.0.1:6379")?;
/// let (_listener, mut events) = listen(&config, "cache:invalidate").await?;
/// publish(&connect(&config).await?, "cache:invalidate", "patients:1").await?;
/// while let Some(event) = events.recv().await {
///     if let ChannelEvent::Message(m) = event { println!("{m:?}"); break; }
/// }
/// # Ok(()) }
/// ```
pub async fn listen(
    config: &RedisConfig,
    channel: &str,
) -> Result<(ChannelListener, mpsc::UnboundedReceiver<ChannelEvent>)> {
    config.validate()?;
    let client = builder(config).build_subscriber_client()?;
    // Subscribe the receivers before connecting so no event is lost.
    let mut messages = client.message_rx();
    let mut errors = client.error_rx();
    let mut reconnects = client.reconnect_rx();
    let handle = client.connect();
    let budget = config.connect_timeout() + Duration::from_millis(250);
    let connected = tokio::time::timeout(
        budget,
        crate::connect::connected(client.wait_for_connect(), || client.is_connected()),
    )
    .await;
    let failure = match connected {
        Ok(Ok(())) => client.subscribe(channel).await.err().map(Error::Redis),
        Ok(Err(e)) => Some(Error::Redis(e)),
        Err(_) => Some(Error::ConnectTimeout {
            target: config.redacted_url().to_owned(),
            after: config.connect_timeout(),
        }),
    };
    if let Some(e) = failure {
        let _ = tokio::time::timeout(Duration::from_millis(200), client.quit()).await;
        handle.abort();
        return Err(e);
    }
    // The first connect also reports on the reconnect stream; drain it.
    while reconnects.try_recv().is_ok() {}

    let (tx, rx) = mpsc::unbounded_channel();
    let resubscriber = client.clone();
    let task = tokio::spawn(async move {
        let _connection = handle;
        loop {
            let event = tokio::select! {
                message = messages.recv() => match message {
                    Ok(m) => match m.value.into_bytes() {
                        Some(bytes) => ChannelEvent::Message(bytes),
                        None => continue,
                    },
                    Err(RecvError::Lagged(n)) => ChannelEvent::Lagged(n),
                    Err(RecvError::Closed) => break,
                },
                error = errors.recv() => match error {
                    Ok(_) | Err(RecvError::Lagged(_)) => ChannelEvent::Disconnected,
                    Err(RecvError::Closed) => break,
                },
                reconnect = reconnects.recv() => match reconnect {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        match resubscriber.resubscribe_all().await {
                            Ok(()) => ChannelEvent::Resubscribed,
                            Err(_) => ChannelEvent::Disconnected,
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Ok((ChannelListener { client, task }, rx))
}

/// Publishes `message` on `channel`; returns how many subscribers received it (on a cluster,
/// those connected to the node that took the message).
pub async fn publish(pool: &Pool, channel: &str, message: impl Into<Bytes>) -> Result<u64> {
    let receivers: i64 = pool
        .next()
        .publish(channel, message.into())
        .await
        .map_err(Error::Redis)?;
    Ok(receivers.max(0) as u64)
}
