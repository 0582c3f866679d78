//! Passive health checking: [`OutlierDetection`] settings.

use std::time::Duration;

use crate::error::{Error, Result};

/// Passive outlier detection, as Envoy does it: an instance whose calls fail
/// `consecutive_failures` times in a row (reported through
/// [`Guard::failure`](crate::Guard::failure)) is ejected for `base_ejection_time` × the number
/// of times it has been ejected, unless `max_ejection_percent` of the instances are already
/// ejected (checked before ejecting, so with any cap above 0 one instance can be ejected).
///
/// ```
/// use std::time::Duration;
/// use nilecare_service_discovery::OutlierDetection;
/// let outliers = OutlierDetection::default()
///     .consecutive_failures(3)?
///     .base_ejection_time(Duration::from_secs(10))?
///     .max_ejection_percent(50)?;
/// # Ok::<(), nilecare_service_discovery::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlierDetection {
    pub(crate) consecutive_failures: u32,
    pub(crate) base_ejection_time: Duration,
    pub(crate) max_ejection_percent: u32,
}

impl Default for OutlierDetection {
    /// 5 consecutive failures, 30 s base ejection, at most 10 % ejected (Envoy's defaults).
    fn default() -> Self {
        OutlierDetection {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
        }
    }
}

impl OutlierDetection {
    /// Failures in a row that eject an instance (at least 1).
    pub fn consecutive_failures(mut self, n: u32) -> Result<Self> {
        if n == 0 {
            return Err(Error::InvalidConfig {
                field: "outlier_detection.consecutive_failures",
                message: "must be at least 1".to_owned(),
            });
        }
        self.consecutive_failures = n;
        Ok(self)
    }

    /// The first ejection's length; the n-th lasts n times as long (above zero).
    pub fn base_ejection_time(mut self, time: Duration) -> Result<Self> {
        if time.is_zero() {
            return Err(Error::InvalidConfig {
                field: "outlier_detection.base_ejection_time",
                message: "must be above zero".to_owned(),
            });
        }
        self.base_ejection_time = time;
        Ok(self)
    }

    /// The most instances ejected at once, in percent (0 to 100).
    pub fn max_ejection_percent(mut self, percent: u32) -> Result<Self> {
        if percent > 100 {
            return Err(Error::InvalidConfig {
                field: "outlier_detection.max_ejection_percent",
                message: format!("must be 0 to 100, got {percent}"),
            });
        }
        self.max_ejection_percent = percent;
        Ok(self)
    }
}
