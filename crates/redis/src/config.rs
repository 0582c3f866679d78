//! Connection settings: [`RedisConfig`], parsed from a URL, plus pool size and timeouts (the
//! reconnect policy is in `reconnect.rs`).

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::reconnect::ReconnectPolicy;

/// Shown in place of a password wherever a URL is rendered.
const REDACTED: &str = "***";

/// How the deployment is laid out; decided by the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Topology {
    /// One server (`redis://`, `rediss://`).
    Standalone,
    /// Redis Cluster (`redis-cluster://` or `redis+cluster://`, more seed nodes as `?node=host:port`).
    Cluster,
    /// A primary found through Sentinel (`redis-sentinel://` or `redis+sentinel://`, with
    /// `?sentinelServiceName=`).
    Sentinel,
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::Standalone => "standalone",
            Topology::Cluster => "cluster",
            Topology::Sentinel => "sentinel",
        })
    }
}

/// Everything needed to connect to a Redis deployment.
///
/// Built from a URL, then adjusted with the `with_*` methods. Values are checked by
/// [`validate`](RedisConfig::validate), which [`connect`](crate::connect) calls; every error names
/// the field. `Debug` and `Display` never show the password.
///
/// ```
/// use std::time::Duration;
/// use nilecare_redis::{RedisConfig, Topology};
///
/// let config = RedisConfig::from_url("redis://:s3cret@127.0.0.1:6380/2")?
///     .with_pool_size(8)
///     .with_command_timeout(Duration::from_millis(250));
/// assert_eq!(config.topology(), Topology::Standalone);
/// assert!(!format!("{config:?}").contains("s3cret"));
/// assert_eq!(config.to_string(), "redis://:***@127.0.0.1:6380/2");
/// # Ok::<(), nilecare_redis::Error>(())
/// ```
///
/// Accepted schemes: `redis`, `rediss` (TLS, feature `tls`), `redis-cluster` / `redis+cluster`,
/// `redis-sentinel` / `redis+sentinel`, their `rediss` forms, and the `valkey` spellings. Cluster
/// and sentinel URLs list further nodes as `?node=host:port&node=host:port`.
#[derive(Clone)]
pub struct RedisConfig {
    fred: fred::types::config::Config,
    redacted_url: String,
    topology: Topology,
    pool_size: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    reconnect: ReconnectPolicy,
    tls: bool,
}

impl RedisConfig {
    /// Default number of connections in the pool.
    pub const DEFAULT_POOL_SIZE: usize = 4;
    /// Default time allowed for the first connection (TCP, TLS and handshake).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default time after which a command fails instead of waiting for a reply.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

    /// Parses a Redis URL. The error names the problem (unknown scheme, missing host, bad port,
    /// bad database, TLS without the `tls` feature) and never repeats the password.
    pub fn from_url(url: &str) -> Result<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(Error::config("url", "is empty"));
        }
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::config("url", format!("not a valid URL: {e}")))?;
        let (normalized_scheme, topology, tls) = classify_scheme(parsed.scheme())?;
        if tls && !cfg!(feature = "tls") {
            return Err(Error::config(
                "url",
                format!(
                    "scheme `{}` needs TLS: enable the `tls` feature of nilecare-redis",
                    parsed.scheme()
                ),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Error::config("url", "has no host"));
        }
        if topology == Topology::Sentinel
            && !parsed
                .query_pairs()
                .any(|(k, v)| k == "sentinelServiceName" && !v.is_empty())
        {
            return Err(Error::config(
                "url",
                "sentinel URLs need `?sentinelServiceName=<primary name>`",
            ));
        }
        // fred spells the topology with `-`; accept `+` too (the common URL convention).
        let rest = &url[parsed.scheme().len()..];
        let normalized = format!("{normalized_scheme}{rest}");
        let fred = fred::types::config::Config::from_url(&normalized)
            .map_err(|e| Error::config("url", e.details().to_owned()))?;
        Ok(RedisConfig {
            fred,
            redacted_url: redact_url(&parsed),
            topology,
            pool_size: Self::DEFAULT_POOL_SIZE,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            command_timeout: Self::DEFAULT_COMMAND_TIMEOUT,
            reconnect: ReconnectPolicy::default(),
            tls,
        })
    }

    /// Number of connections in the pool (1..=256). Commands are spread round-robin over them.
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Time allowed for establishing a connection (TCP + TLS + `HELLO`/`AUTH`).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time after which any command fails with a timeout error instead of waiting, e.g. when the
    /// server is overloaded or paused. Every backend's fail-open/fail-closed path starts here.
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How lost connections are re-established.
    #[must_use]
    pub fn with_reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// `true` (default): [`connect`](crate::connect) fails when the first connection cannot be
    /// made. `false`: `connect` returns at once and the pool keeps trying in the background with
    /// the reconnect policy; commands issued meanwhile fail after the command timeout. Use `false`
    /// for services that must start while Redis is down.
    #[must_use]
    pub fn with_fail_fast(mut self, fail_fast: bool) -> Self {
        self.fred.fail_fast = fail_fast;
        self
    }

    /// Trust only the certificate authorities in `pem` (one or more PEM `CERTIFICATE` blocks)
    /// for a `rediss://` URL, instead of the system's roots: a private CA, or a self-signed
    /// server certificate. Errors name `tls_ca`.
    ///
    /// ```no_run
    /// # fn demo(pem: &[u8]) -> nilecare_redis::Result<()> {
    /// let config = nilecare_redis::RedisConfig::from_url("rediss://app:secret@redis.internal:6380")?
    ///     .with_tls_ca_pem(pem)?;
    /// # let _ = config; Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_tls_ca_pem(mut self, pem: &[u8]) -> Result<Self> {
        if !self.tls {
            return Err(Error::config(
                "tls_ca",
                format!(
                    "a CA was given but the URL {} is not TLS: use rediss://",
                    self.redacted_url
                ),
            ));
        }
        let client = nilecare_tls::client_config(Some(pem))
            .map_err(|e| Error::config("tls_ca", e.to_string()))?;
        self.fred.tls = Some(fred::types::config::TlsConnector::from((*client).clone()).into());
        Ok(self)
    }

    /// [`with_tls_ca_pem`](Self::with_tls_ca_pem) from a file (e.g. `REDIS_TLS_CA_FILE`); the
    /// error names `tls_ca` and the path.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_tls_ca_file(self, path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| Error::config("tls_ca", format!("cannot read {}: {e}", path.display())))?;
        self.with_tls_ca_pem(&pem)
    }

    /// Whether the URL asks for TLS (`rediss://`).
    pub fn uses_tls(&self) -> bool {
        self.tls
    }

    /// Use RESP3 (needed for server-assisted client-side caching). Default RESP2.
    #[must_use]
    pub fn with_resp3(mut self, resp3: bool) -> Self {
        self.fred.version = if resp3 {
            fred::types::RespVersion::RESP3
        } else {
            fred::types::RespVersion::RESP2
        };
        self
    }

    /// Checks every setting; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=256).contains(&self.pool_size) {
            return Err(Error::config(
                "pool_size",
                format!("must be between 1 and 256, got {}", self.pool_size),
            ));
        }
        check_timeout("connect_timeout", self.connect_timeout)?;
        check_timeout("command_timeout", self.command_timeout)?;
        self.reconnect.validate()
    }

    /// The layout named by the URL scheme.
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// The URL with its password (and any `sentinelPassword`) replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// Pool size.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// Connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Command timeout.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Reconnect policy.
    pub fn reconnect(&self) -> ReconnectPolicy {
        self.reconnect
    }

    /// Whether the first connection must succeed (see [`with_fail_fast`](Self::with_fail_fast)).
    pub fn fail_fast(&self) -> bool {
        self.fred.fail_fast
    }

    /// The underlying fred configuration (holds the password: do not log it).
    pub fn fred_config(&self) -> &fred::types::config::Config {
        &self.fred
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url)
            .field("topology", &self.topology)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect", &self.reconnect)
            .field("fail_fast", &self.fred.fail_fast)
            .finish()
    }
}

impl fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url)
    }
}

impl std::str::FromStr for RedisConfig {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        RedisConfig::from_url(s)
    }
}

fn check_timeout(field: &'static str, value: Duration) -> Result<()> {
    if value.is_zero() {
        return Err(Error::config(field, "must be greater than zero"));
    }
    if value > Duration::from_secs(3600) {
        return Err(Error::config(
            field,
            format!("must be at most 1h, got {value:?}"),
        ));
    }
    Ok(())
}

/// Maps a URL scheme to (fred's spelling, topology, tls).
fn classify_scheme(scheme: &str) -> Result<(String, Topology, bool)> {
    let (base, topology) = if let Some(base) = scheme
        .strip_suffix("-cluster")
        .or_else(|| scheme.strip_suffix("+cluster"))
    {
        (base, Topology::Cluster)
    } else if let Some(base) = scheme
        .strip_suffix("-sentinel")
        .or_else(|| scheme.strip_suffix("+sentinel"))
    {
        (base, Topology::Sentinel)
    } else {
        (scheme, Topology::Standalone)
    };
    let tls = match base {
        "redis" | "valkey" => false,
        "rediss" | "valkeys" => true,
        _ => {
            return Err(Error::config(
                "url",
                format!(
                    "unsupported scheme `{scheme}`: expected redis, rediss, redis-cluster, \
                     redis+cluster, redis-sentinel or redis+sentinel"
                ),
            ));
        }
    };
    let normalized = match topology {
        Topology::Standalone => base.to_owned(),
        Topology::Cluster => format!("{base}-cluster"),
        Topology::Sentinel => format!("{base}-sentinel"),
    };
    Ok((normalized, topology, tls))
}

fn redact_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: the URL has a host (checked before).
        let _ = shown.set_password(Some(REDACTED));
    }
    if shown
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("sentinelPassword"))
    {
        let pairs: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("sentinelPassword") {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        match RedisConfig::from_url(url) {
            Ok(c) => panic!("{url} parsed to {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn standalone_url_with_database() {
        let c = RedisConfig::from_url("redis://user:pw@cache.internal:6390/3").unwrap();
        assert_eq!(c.topology(), Topology::Standalone);
        assert_eq!(c.fred_config().database, Some(3));
        assert_eq!(c.fred_config().username.as_deref(), Some("user"));
        assert_eq!(c.fred_config().password.as_deref(), Some("pw"));
        assert_eq!(c.redacted_url(), "redis://user:***@cache.internal:6390/3");
    }

    #[test]
    fn cluster_url_accepts_plus_and_dash_and_node_list() {
        for scheme in ["redis-cluster", "redis+cluster"] {
            let c = RedisConfig::from_url(&format!(
                "{scheme}://10.0.0.1:7000?node=10.0.0.2:7001&node=10.0.0.3:7002"
            ))
            .unwrap();
            assert_eq!(c.topology(), Topology::Cluster);
            match &c.fred_config().server {
                fred::types::config::ServerConfig::Clustered { hosts, .. } => {
                    assert_eq!(hosts.len(), 3)
                }
                other => panic!("expected clustered config, got {other:?}"),
            }
        }
    }

    #[test]
    fn sentinel_url_needs_service_name_and_redacts_both_passwords() {
        let c = RedisConfig::from_url(
            "redis+sentinel://:primarypw@10.0.0.1:26379/0?sentinelServiceName=mymaster&sentinelPassword=sentpw&node=10.0.0.2:26379",
        )
        .unwrap();
        assert_eq!(c.topology(), Topology::Sentinel);
        let shown = format!("{c:?} {c}");
        assert!(!shown.contains("primarypw"), "{shown}");
        assert!(!shown.contains("sentpw"), "{shown}");
        assert!(err("redis-sentinel://10.0.0.1:26379").contains("sentinelServiceName"));
    }

    #[test]
    fn bad_urls_name_the_problem() {
        assert!(err("").contains("`url`: is empty"));
        assert!(err("not a url").contains("not a valid URL"));
        assert!(err("http://localhost:6379").contains("unsupported scheme `http`"));
        assert!(err("redis://localhost:99999").contains("not a valid URL"));
        assert!(err("redis://localhost:6379/notadb").contains("url"));
        assert!(err("redis-cluster://a:1?node=b").contains("host:port"));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_without_feature_is_an_error_not_a_silent_plaintext_connection() {
        assert!(err("rediss://localhost:6380").contains("`tls` feature"));
    }

    #[test]
    fn password_never_in_debug_display_or_errors() {
        let secret = "Pa55-w0rd-never-shown";
        let c = RedisConfig::from_url(&format!("redis://admin:{secret}@localhost:6379"))
            .unwrap()
            .with_pool_size(0);
        assert!(!format!("{c:?}").contains(secret));
        assert!(!c.to_string().contains(secret));
        let e = c.validate().unwrap_err().to_string();
        assert!(!e.contains(secret));
        let e = err(&format!("redis://admin:{secret}@localhost:6379/x"));
        assert!(!e.contains(secret), "{e}");
        let e = err(&format!("ftp://admin:{secret}@localhost:6379"));
        assert!(!e.contains(secret), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let base = RedisConfig::from_url("redis://localhost").unwrap();
        let cases = [
            (base.clone().with_pool_size(0), "pool_size"),
            (base.clone().with_pool_size(10_000), "pool_size"),
            (
                base.clone().with_connect_timeout(Duration::ZERO),
                "connect_timeout",
            ),
            (
                base.clone().with_command_timeout(Duration::ZERO),
                "command_timeout",
            ),
            (
                base.clone().with_reconnect(ReconnectPolicy::exponential(
                    Duration::from_secs(2),
                    Duration::from_secs(1),
                )),
                "reconnect.max_delay",
            ),
            (
                base.clone().with_reconnect(ReconnectPolicy::exponential(
                    Duration::ZERO,
                    Duration::from_secs(1),
                )),
                "reconnect.min_delay",
            ),
        ];
        for (config, field) in cases {
            let e = config.validate().unwrap_err();
            assert!(
                matches!(&e, Error::InvalidConfig { field: f, .. } if *f == field),
                "expected {field}, got {e}"
            );
        }
        base.validate().unwrap();
    }

    #[test]
    fn reconnect_policy_maps_to_fred_exponential() {
        let p = ReconnectPolicy::exponential(Duration::from_millis(10), Duration::from_millis(500))
            .with_max_attempts(7);
        match p.to_fred() {
            Some(fred::types::config::ReconnectPolicy::Exponential {
                min_delay,
                max_delay,
                max_attempts,
                base,
                ..
            }) => {
                assert_eq!((min_delay, max_delay, max_attempts, base), (10, 500, 7, 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(ReconnectPolicy::never().to_fred().is_none());
    }
}
