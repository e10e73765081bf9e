//! The appendix's false positives: what the `[[suppress]]` entries took away, and the
//! entries that expired.

use super::super::elements::Gap;
use super::super::table::{Align, Cell};
use super::{Ctx, col};
use crate::assess::suppress::{FalsePositives, Suppressed};

pub(super) fn section(cx: &mut Ctx<'_>, fp: &Suppressed) {
    let s = cx.s;
    let t = &s.fp;
    if fp.applied.is_empty() && fp.expired.is_empty() && fp.ignored == 0 {
        return;
    }
    cx.body.keep(Gap(6.0));
    cx.h2(t.heading);
    match fp.mode {
        FalsePositives::Include => cx.line(t.included.replace("{n}", &s.int(fp.ignored as u64))),
        FalsePositives::Exclude | FalsePositives::Appendix if fp.applied.is_empty() => cx.line(t.none_matched.to_owned()),
        FalsePositives::Exclude => {
            cx.line(t.excluded.replace("{alerts}", &s.int(fp.alerts())).replace("{findings}", &s.int(fp.findings())))
        }
        FalsePositives::Appendix => applied(cx, fp),
    }
    for e in &fp.expired {
        let reason = cx.clean(&e.reason);
        let date = cx.zone.fmt_datetime(s, e.until_ms);
        cx.muted(t.expired.replace("{index}", &e.index.to_string()).replace("{reason}", &reason).replace("{date}", &date));
    }
}

fn applied(cx: &mut Ctx<'_>, fp: &Suppressed) {
    let s = cx.s;
    let t = &s.fp;
    cx.muted(t.intro.to_owned());
    let rows = fp
        .applied
        .iter()
        .map(|a| {
            let suppressed: Vec<String> = a.signatures.iter().map(|(sig, n)| format!("{} ({})", sig, s.int(*n))).collect();
            vec![
                Cell::Text(format!("#{}", a.index)),
                Cell::Text(cx.clean(&a.what)),
                Cell::Text(cx.clean(&a.reason)),
                Cell::Text(s.int(a.alerts)),
                Cell::Text(s.int(a.findings)),
                Cell::Text(cx.clean(&suppressed.join("; "))),
                Cell::Text(cx.clean(&a.devices.join(", "))),
            ]
        })
        .collect();
    cx.table(
        "",
        vec![
            col(t.col_entry, 0.9, Align::Left, 1),
            col(t.col_matches, 2.4, Align::Left, 4),
            col(t.col_reason, 2.4, Align::Left, 4),
            col(t.col_alerts, 1.1, Align::Right, 1),
            col(t.col_findings, 1.3, Align::Right, 1),
            col(t.col_suppressed, 2.4, Align::Left, 4),
            col(t.col_devices, 1.6, Align::Left, 3),
        ],
        rows,
    );
}
