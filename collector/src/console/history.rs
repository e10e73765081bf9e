//! "What changed when" on the device page: the device's licence and inventory reports over a
//! period, reduced to the reports that changed something, field by field. Plain functions
//! over the reports the store keeps ([`Store::device_history`](crate::store::Store::device_history)).

use ampel_protocol::{Inventory, License};

use super::words::Words;

/// One field that changed in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldChange {
    /// The field, as the page names it.
    pub field: &'static str,
    /// Its value before; `None` for the first report the store has.
    pub before: Option<String>,
    /// Its value from this report on.
    pub after: String,
}

/// A report that changed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Changed {
    /// When the device read it, Unix ms.
    pub at_ms: i64,
    /// What changed.
    pub fields: Vec<FieldChange>,
}

/// A licence's fields as the page shows them, in the words of `w`; `time` writes an instant
/// (expiries).
fn license_fields(l: &License, w: &Words, time: &dyn Fn(i64) -> String) -> Vec<(&'static str, String)> {
    let features: Vec<String> = l
        .features
        .iter()
        .map(|f| match f.expires {
            Some(at) => (w.feature_until)(&f.name, &time(at)),
            None => f.name.clone(),
        })
        .collect();
    let [licensed, expiry, product, model, serial, feature_names, unreadable] = w.licence_fields;
    vec![
        (licensed, if l.licensed { w.yes } else { w.no }.to_owned()),
        (expiry, l.expires.map_or_else(|| w.none.to_owned(), time)),
        (product, l.product.clone()),
        (model, l.model.clone()),
        (serial, l.serial.clone()),
        (feature_names, features.join(", ")),
        (unreadable, l.unknown_reason.clone().unwrap_or_default()),
    ]
}

/// An inventory's fields as the page shows them in the words of `w` (not the uptime, which
/// changes every time).
fn inventory_fields(i: &Inventory, w: &Words) -> Vec<(&'static str, String)> {
    let [hostname, model, firmware, os, kernel, agent] = w.inventory_fields;
    vec![
        (hostname, i.hostname.clone()),
        (model, i.model.clone()),
        (firmware, i.firmware.clone()),
        (os, i.os.clone()),
        (kernel, i.kernel.clone()),
        (agent, i.agent_version.clone()),
    ]
}

/// The reports at or after `from_ms` that changed a field against the report before them.
/// The first report has no report before it: when it lies in the period, it is listed with
/// its non-empty fields as first reported.
fn changes<T>(reports: &[T], from_ms: i64, ts: impl Fn(&T) -> i64, fields: impl Fn(&T) -> Vec<(&'static str, String)>) -> Vec<Changed> {
    let mut out = Vec::new();
    let mut previous: Option<Vec<(&'static str, String)>> = None;
    for r in reports {
        let now = fields(r);
        if ts(r) >= from_ms {
            let changed: Vec<FieldChange> = match &previous {
                None => now
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(f, v)| FieldChange { field: f, before: None, after: v.clone() })
                    .collect(),
                Some(before) => now
                    .iter()
                    .zip(before)
                    .filter(|((_, a), (_, b))| a != b)
                    .map(|((f, a), (_, b))| FieldChange { field: f, before: Some(b.clone()), after: a.clone() })
                    .collect(),
            };
            if !changed.is_empty() {
                out.push(Changed { at_ms: ts(r), fields: changed });
            }
        }
        previous = Some(now);
    }
    out
}

/// The licence reports (time-ordered, the one in force at `from_ms` first) that changed
/// something in the period.
pub(super) fn license_changes(reports: &[License], from_ms: i64, w: &Words, time: &dyn Fn(i64) -> String) -> Vec<Changed> {
    changes(reports, from_ms, |l| l.ts, |l| license_fields(l, w, time))
}

/// The inventory reports that changed something in the period, likewise.
pub(super) fn inventory_changes(reports: &[Inventory], from_ms: i64, w: &Words) -> Vec<Changed> {
    changes(reports, from_ms, |i| i.ts, |i| inventory_fields(i, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Lang;

    fn en() -> &'static Words {
        Words::get(Lang::En)
    }

    fn license(ts: i64, licensed: bool, expires: Option<i64>) -> License {
        License {
            ts,
            product: "UTM".into(),
            model: "RC100".into(),
            serial: "S1".into(),
            licensed,
            expires,
            features: Vec::new(),
            unknown_reason: None,
        }
    }

    fn time(ms: i64) -> String {
        format!("t{ms}")
    }

    #[test]
    fn only_reports_that_change_something_are_listed_with_before_and_after() {
        // In force before the period, repeated unchanged, then renewed, then lapsing.
        let reports = [
            license(5, true, Some(100)),
            license(10, true, Some(100)),
            license(20, true, Some(100)),
            license(30, true, Some(500)),
            license(40, false, Some(500)),
        ];
        let got = license_changes(&reports, 10, en(), &time);
        let expiry = FieldChange { field: "Licence expiry", before: Some("t100".into()), after: "t500".into() };
        let lapse = FieldChange { field: "Licensed", before: Some("yes".into()), after: "no".into() };
        assert_eq!(got, vec![Changed { at_ms: 30, fields: vec![expiry] }, Changed { at_ms: 40, fields: vec![lapse] }]);
        // A change before the period is not one of the period's.
        assert!(license_changes(&reports[..4], 31, en(), &time).is_empty());
    }

    #[test]
    fn the_first_report_in_the_period_is_listed_as_first_reported() {
        let inv = |ts: i64, agent: &str| Inventory {
            ts,
            hostname: "fw".into(),
            model: String::new(),
            firmware: "14.1".into(),
            os: String::new(),
            kernel: String::new(),
            agent_version: agent.into(),
            uptime_s: ts as u64,
        };
        let got = inventory_changes(&[inv(50, "0.1.0"), inv(60, "0.1.0"), inv(70, "0.2.0")], 0, en());
        let first: Vec<(&str, Option<String>, String)> =
            got[0].fields.iter().map(|f| (f.field, f.before.clone(), f.after.clone())).collect();
        assert_eq!(
            first,
            vec![("Host name", None, "fw".into()), ("Firmware", None, "14.1".into()), ("Agent version", None, "0.1.0".into())]
        );
        assert_eq!((got.len(), got[1].at_ms, got[1].fields[0].field), (2, 70, "Agent version"));
    }
}
