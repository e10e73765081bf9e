//! `inventory`: what the device is and runs — host name, model and firmware (from the config,
//! else from DMI: `/sys/class/dmi/id/product_name` and `bios_version`),
//! OS name and version, kernel, agent version, uptime.
//!
//! One [`Inventory`] record goes into the first batch, then again whenever anything but the
//! uptime changes, and at least every [`RESEND_EVERY_MS`] so the collector's view never goes
//! stale (and a collector that lost its state learns it again).

use ampel_protocol::{Inventory, Record};
use serde::Deserialize;
use sysinfo::System;

use super::{BuildContext, FailureLog, Source, SourceConfig, SourceError};

/// The inventory is sent at least this often even when nothing changed (one hour).
pub const RESEND_EVERY_MS: i64 = 3_600_000;

/// `[sources.inventory]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InventoryConfig {
    /// Whether the source runs (default: true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Appliance model (default: empty, meaning DMI `product_name` if the machine has one).
    #[serde(default)]
    pub model: String,
    /// Firmware version (default: empty, meaning DMI `bios_version` if the machine has one).
    #[serde(default)]
    pub firmware: String,
}

fn yes() -> bool {
    true
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig { enabled: true, model: String::new(), firmware: String::new() }
    }
}

impl SourceConfig for InventoryConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(InventorySource::new(self.model.clone(), self.firmware.clone())))
    }
}

/// The running source.
pub struct InventorySource {
    model: String,
    firmware: String,
    last_sent: Option<Inventory>,
    failures: FailureLog,
}

impl InventorySource {
    /// A source reporting `model` and `firmware` alongside what the OS tells.
    pub fn new(model: String, firmware: String) -> InventorySource {
        let model = if model.is_empty() { dmi("product_name") } else { model };
        let firmware = if firmware.is_empty() { dmi("bios_version") } else { firmware };
        InventorySource { model, firmware, last_sent: None, failures: FailureLog::default() }
    }

    fn read(&mut self, ts: i64) -> Inventory {
        let f = &mut self.failures;
        let hostname = f.check("inventory", "host name", System::host_name()).unwrap_or_default();
        let name = f.check("inventory", "OS name", System::name()).unwrap_or_default();
        let version = f.check("inventory", "OS version", System::os_version()).unwrap_or_default();
        let kernel = f.check("inventory", "kernel version", System::kernel_version()).unwrap_or_default();
        let uptime_s = f.check("inventory", "uptime", System::uptime()).unwrap_or_default();
        let os = match (name.is_empty(), version.is_empty()) {
            (false, false) => format!("{name} {version}"),
            (false, true) => name,
            _ => version,
        };
        Inventory {
            ts,
            hostname,
            model: self.model.clone(),
            firmware: self.firmware.clone(),
            os,
            kernel,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s,
        }
    }
}

/// A DMI field (`/sys/class/dmi/id/<name>`), trimmed; empty when absent (VMs, ARM boards) or
/// a placeholder the vendor left in.
pub fn dmi(name: &str) -> String {
    let v = std::fs::read_to_string(std::path::Path::new("/sys/class/dmi/id").join(name)).unwrap_or_default();
    let v = v.trim();
    if ["To be filled by O.E.M.", "Default string", "System Product Name", "None"].contains(&v) {
        return String::new();
    }
    v.chars().take(128).collect()
}

/// Whether `current` must be sent, given what was sent last.
///
/// Uptime and timestamp always differ and do not count as a change. A clock that went backwards
/// also makes it due: we cannot tell how long ago the last one really was.
pub fn due(last: Option<&Inventory>, current: &Inventory) -> bool {
    let Some(last) = last else { return true };
    let same = Inventory { ts: current.ts, uptime_s: current.uptime_s, ..last.clone() } == *current;
    let age = current.ts.saturating_sub(last.ts);
    !same || !(0..RESEND_EVERY_MS).contains(&age)
}

impl Source for InventorySource {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn gather(&mut self, ts: i64) -> Result<Vec<Record>, SourceError> {
        let current = self.read(ts);
        if !due(self.last_sent.as_ref(), &current) {
            return Ok(Vec::new());
        }
        self.last_sent = Some(current.clone());
        Ok(vec![Record::Inventory(current)])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_batch_has_the_inventory_then_only_hourly() {
        let mut s = InventorySource::new("FW-500".into(), "7.2".into());
        let t0 = 1_700_000_000_000;
        let first = s.gather(t0).unwrap();
        let [Record::Inventory(inv)] = first.as_slice() else { panic!("expected one inventory record: {first:?}") };
        assert_eq!((inv.model.as_str(), inv.firmware.as_str()), ("FW-500", "7.2"));
        assert_eq!(inv.agent_version, env!("CARGO_PKG_VERSION"));
        assert!(!inv.hostname.is_empty() && !inv.kernel.is_empty());
        assert_eq!(inv.ts, t0);

        assert!(s.gather(t0 + 1_000).unwrap().is_empty());
        assert!(s.gather(t0 + RESEND_EVERY_MS - 1).unwrap().is_empty());
        assert_eq!(s.gather(t0 + RESEND_EVERY_MS).unwrap().len(), 1);
        assert!(s.gather(t0 + RESEND_EVERY_MS + 1_000).unwrap().is_empty());
    }

    fn inv(ts: i64, firmware: &str, uptime_s: u64) -> Inventory {
        Inventory {
            ts,
            hostname: "fw1".into(),
            model: "m".into(),
            firmware: firmware.into(),
            os: "Debian GNU/Linux 12".into(),
            kernel: "6.1".into(),
            agent_version: "0.1.0".into(),
            uptime_s,
        }
    }

    #[test]
    fn a_change_is_sent_at_once_but_uptime_is_not_a_change() {
        let last = inv(0, "7.2", 100);
        assert!(!due(Some(&last), &inv(1_000, "7.2", 101)));
        assert!(due(Some(&last), &inv(1_000, "7.3", 101)));
        assert!(due(None, &last));
        // Clock stepped back: send again rather than stay silent for an unknown time.
        assert!(due(Some(&last), &inv(-1, "7.2", 101)));
    }
}
