//! [`RegistryConfig`]: how long a registration lives without a heartbeat, how often it beats,
//! how often watchers re-read the registry.

use std::time::Duration;

use crate::error::{Error, Result};

/// Timing of a registry. The defaults suit production (15 s TTL, heartbeat every 5 s, a full
/// re-read every 10 s); tests shorten them.
///
/// ```
/// use std::time::Duration;
/// use nilecare_service_discovery::RegistryConfig;
/// let config = RegistryConfig::default().with_ttl(Duration::from_secs(6))?;
/// assert_eq!(config.heartbeat_interval(), Duration::from_secs(2)); // a third of the TTL
/// # Ok::<(), nilecare_service_discovery::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    ttl: Duration,
    heartbeat_interval: Option<Duration>,
    resync_interval: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            ttl: Duration::from_secs(15),
            heartbeat_interval: None,
            resync_interval: Duration::from_secs(10),
        }
    }
}

impl RegistryConfig {
    /// How long an instance stays registered after its last heartbeat (a crashed instance
    /// disappears this long after it stopped). At least 100 ms.
    pub fn with_ttl(mut self, ttl: Duration) -> Result<Self> {
        if ttl < Duration::from_millis(100) {
            return Err(Error::InvalidConfig {
                field: "ttl",
                message: format!("must be at least 100ms, got {ttl:?}"),
            });
        }
        self.ttl = ttl;
        self.check_heartbeat()?;
        Ok(self)
    }

    /// How often a registration renews itself (default: a third of the TTL, so two beats may
    /// be lost before the instance expires). Must be shorter than the TTL.
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Result<Self> {
        self.heartbeat_interval = Some(interval);
        self.check_heartbeat()?;
        Ok(self)
    }

    /// How often a watcher re-reads a service in full even without a change notice, so a lost
    /// notice heals (default 10 s; Redis registry only, at least 10 ms).
    pub fn with_resync_interval(mut self, interval: Duration) -> Result<Self> {
        if interval < Duration::from_millis(10) {
            return Err(Error::InvalidConfig {
                field: "resync_interval",
                message: format!("must be at least 10ms, got {interval:?}"),
            });
        }
        self.resync_interval = interval;
        Ok(self)
    }

    fn check_heartbeat(&self) -> Result<()> {
        match self.heartbeat_interval {
            Some(h) if h.is_zero() || h >= self.ttl => Err(Error::InvalidConfig {
                field: "heartbeat_interval",
                message: format!(
                    "must be above zero and shorter than the ttl ({:?}), got {h:?}",
                    self.ttl
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval.unwrap_or(self.ttl / 3)
    }

    /// The resync interval.
    pub fn resync_interval(&self) -> Duration {
        self.resync_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_timings_name_the_field() {
        let field = |r: Result<RegistryConfig>| match r {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        };
        let c = RegistryConfig::default();
        assert_eq!(field(c.clone().with_ttl(Duration::from_millis(5))), "ttl");
        assert_eq!(
            field(c.clone().with_heartbeat_interval(Duration::from_secs(15))),
            "heartbeat_interval"
        );
        assert_eq!(
            field(c.clone().with_heartbeat_interval(Duration::ZERO)),
            "heartbeat_interval"
        );
        assert_eq!(
            field(c.with_resync_interval(Duration::ZERO)),
            "resync_interval"
        );
    }
}
