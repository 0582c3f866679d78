//! [`ServiceInstance`]: one running copy of a service, and its [`Status`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest accepted service name or instance id, in bytes.
const MAX_NAME_LEN: usize = 128;

/// Whether an instance takes traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Serving: balancers pick it.
    #[default]
    Up,
    /// Finishing its in-flight work before leaving: balancers no longer pick it.
    Draining,
    /// Failing its health checks: balancers no longer pick it.
    Down,
}

/// One running copy of a service.
///
/// ```
/// use nilecare_service_discovery::{ServiceInstance, Status};
/// let i = ServiceInstance::new("patients", "patients-1", "http://10.0.0.7:8080")?
///     .with_weight(3)?
///     .with_zone("eu-west-1a")
///     .with_version("2.4.0")
///     .with_tag("primary")
///     .with_metadata("commit", "4f2a9c1");
/// assert_eq!((i.port(), i.status()), (8080, Status::Up));
/// # Ok::<(), nilecare_service_discovery::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    id: String,
    service: String,
    address: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    zone: Option<String>,
    weight: u32,
    #[serde(default)]
    status: Status,
}

fn check_name(field: &'static str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInstance {
            field,
            message: format!(
                "must be 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 - _ ., got {value:?}"
            ),
        })
    }
}

/// Checks a service name given on its own (to watch or resolve it).
pub(crate) fn check_service_name(service: &str) -> Result<()> {
    check_name("service", service)
}

fn check_weight(weight: u32) -> Result<()> {
    if (1..=10_000).contains(&weight) {
        Ok(())
    } else {
        Err(Error::InvalidInstance {
            field: "weight",
            message: format!("must be 1 to 10000, got {weight}"),
        })
    }
}

/// `scheme://host:port` with a scheme of http, https or grpc and a port in 1..=65535; returns
/// the port.
fn check_address(address: &str) -> Result<u16> {
    let bad = |why: &str| Error::InvalidInstance {
        field: "address",
        message: format!("{why} (expected scheme://host:port), got {address:?}"),
    };
    let (scheme, rest) = address.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if !matches!(scheme, "http" | "https" | "grpc") {
        return Err(bad("scheme must be http, https or grpc"));
    }
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let host_ok = !host.is_empty()
        && !host.contains(['/', '?', '#', '@', ' '])
        && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')));
    if !host_ok {
        return Err(bad("invalid host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad("port must be 1 to 65535")),
    }
}

impl ServiceInstance {
    /// An instance of `service` with the unique `id`, reachable at `address`
    /// (`http://host:port`, `https://...`, `grpc://...`), weight 1, status Up.
    pub fn new(
        service: impl Into<String>,
        id: impl Into<String>,
        address: impl Into<String>,
    ) -> Result<Self> {
        let (service, id, address) = (service.into(), id.into(), address.into());
        check_name("service", &service)?;
        check_name("id", &id)?;
        check_address(&address)?;
        Ok(ServiceInstance {
            id,
            service,
            address,
            metadata: BTreeMap::new(),
            tags: Vec::new(),
            version: None,
            zone: None,
            weight: 1,
            status: Status::Up,
        })
    }

    /// Checks an instance that did not come through [`new`](Self::new) (e.g. deserialized
    /// from a registry): the same rules, the same errors.
    pub fn validate(&self) -> Result<()> {
        check_name("service", &self.service)?;
        check_name("id", &self.id)?;
        check_address(&self.address)?;
        check_weight(self.weight)
    }

    /// Relative share of traffic for weighted balancing, 1..=10 000.
    pub fn with_weight(mut self, weight: u32) -> Result<Self> {
        check_weight(weight)?;
        self.weight = weight;
        Ok(self)
    }

    /// The availability zone (balancers prefer the caller's zone).
    #[must_use]
    pub fn with_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// The running version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the status.
    #[must_use]
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// The instance id (unique within its service).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// `scheme://host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The port of the address.
    pub fn port(&self) -> u16 {
        check_address(&self.address).unwrap_or(0)
    }

    /// Metadata entries.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Tags.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The version, if given.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The zone, if given.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// The weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether balancers may pick it.
    pub fn is_up(&self) -> bool {
        self.status == Status::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_names_the_field() {
        let field = |r: Result<ServiceInstance>| match r {
            Err(Error::InvalidInstance { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(
            field(ServiceInstance::new("", "a", "http://h:1")),
            "service"
        );
        assert_eq!(
            field(ServiceInstance::new("s p", "a", "http://h:1")),
            "service"
        );
        assert_eq!(field(ServiceInstance::new("s", "", "http://h:1")), "id");
        for address in [
            "h:1",
            "ftp://h:1",
            "http://h",
            "http://h:0",
            "http://h:70000",
            "http://:80",
            "http://a/b:80",
            "http://::1:80",
        ] {
            assert_eq!(
                field(ServiceInstance::new("s", "a", address)),
                "address",
                "{address}"
            );
        }
        let ok = ServiceInstance::new("s", "a", "http://[::1]:80").unwrap();
        assert_eq!(ok.port(), 80);
        assert_eq!(field(ok.clone().with_weight(0)), "weight");
        assert_eq!(field(ok.with_weight(10_001)), "weight");
    }

    #[test]
    fn instances_round_trip_as_json() {
        let i = ServiceInstance::new("patients", "p-1", "http://10.0.0.7:8080")
            .unwrap()
            .with_zone("a")
            .with_status(Status::Draining);
        let json = serde_json::to_string(&i).unwrap();
        assert!(json.contains("\"status\":\"draining\""), "{json}");
        assert_eq!(serde_json::from_str::<ServiceInstance>(&json).unwrap(), i);
        assert!(i.validate().is_ok());
        // serde bypasses the constructor: validate catches what it let through
        let forged: ServiceInstance = serde_json::from_str(
            r#"{"id":"p-1","service":"patients","address":"http://h:0","weight":1}"#,
        )
        .unwrap();
        assert!(matches!(
            forged.validate(),
            Err(Error::InvalidInstance {
                field: "address",
                ..
            })
        ));
    }
}
