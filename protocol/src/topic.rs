//! MQTT topic names: `ampel/v1/<tenant>/<device-id>/up`.
//!
//! The broker lets a device publish only where the device level equals its certificate CN; the
//! collector checks the tenant level against its registry.

use crate::identity::{DeviceId, IdError, TenantId};

/// Prefix of every Ampel topic.
pub const PREFIX: &str = "ampel/v1";

/// Filter that matches every device's uplink, for the collector's subscription.
pub const ALL_UPLINKS: &str = "ampel/v1/+/+/up";

/// The uplink topic of one device.
pub fn uplink(tenant: &TenantId, device: &DeviceId) -> String {
    format!("{PREFIX}/{tenant}/{device}/up")
}

/// Filter for every device of one tenant, for collectors that own a subset of tenants.
pub fn tenant_uplinks(tenant: &TenantId) -> String {
    format!("{PREFIX}/{tenant}/+/up")
}

/// Why a topic is not an Ampel uplink.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    /// Wrong number of levels or wrong fixed levels.
    #[error("topic {0:?} is not of the form ampel/v1/<tenant>/<device>/up")]
    Shape(String),
    /// The tenant or device level is not a valid id.
    #[error("topic {topic:?}: {source}")]
    Id {
        /// The topic.
        topic: String,
        /// What is wrong with the id.
        source: IdError,
    },
}

/// Reads tenant and device from an uplink topic.
pub fn parse_uplink(topic: &str) -> Result<(TenantId, DeviceId), TopicError> {
    let parts: Vec<&str> = topic.split('/').collect();
    let [a, v, tenant, device, up] = parts.as_slice() else {
        return Err(TopicError::Shape(topic.to_owned()));
    };
    if format!("{a}/{v}") != PREFIX || *up != "up" {
        return Err(TopicError::Shape(topic.to_owned()));
    }
    let id_err = |source| TopicError::Id { topic: topic.to_owned(), source };
    Ok((TenantId::new(tenant).map_err(id_err)?, DeviceId::new(device).map_err(id_err)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uplink_round_trips() {
        let t = TenantId::new("acme").unwrap();
        let d = DeviceId::new("fw-01").unwrap();
        let topic = uplink(&t, &d);
        assert_eq!(topic, "ampel/v1/acme/fw-01/up");
        assert_eq!(parse_uplink(&topic).unwrap(), (t, d));
    }

    #[test]
    fn foreign_topics_are_refused() {
        for bad in ["ampel/v1/acme/up", "ampel/v2/acme/fw/up", "ampel/v1/acme/fw/down", "ampel/v1/ac me/fw/up", "ampel/v1/acme/fw/up/x"] {
            assert!(parse_uplink(bad).is_err(), "{bad}");
        }
    }
}
