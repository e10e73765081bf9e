//! Times in the report's time zone: dates, timestamps and chart ticks.
//!
//! Every function takes Unix milliseconds as stored and never fails: a time jiff cannot
//! represent is shown as the "none" placeholder rather than aborting the report.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

use super::strings::Strings;

const DAY_MS: i64 = 86_400_000;

/// `z` formatted with `fmt`; empty if jiff cannot (a `Display` error inside `format!` would
/// panic, so the fallible formatter is used).
fn strtime(fmt: &str, z: &Zoned) -> String {
    jiff::fmt::strtime::format(fmt, z).unwrap_or_default()
}
const HOUR_MS: i64 = 3_600_000;

/// The zone a report is shown in.
pub(crate) struct ReportZone {
    tz: TimeZone,
    /// Set when the requested zone was unknown and UTC is used instead.
    pub(crate) fallback: bool,
}

impl ReportZone {
    /// Looks `name` up in the time zone database; unknown names fall back to UTC.
    pub(crate) fn new(name: &str) -> ReportZone {
        match TimeZone::get(name) {
            Ok(tz) => ReportZone { tz, fallback: false },
            Err(_) => ReportZone { tz: TimeZone::UTC, fallback: true },
        }
    }

    /// The zone itself.
    pub(crate) fn tz(&self) -> &TimeZone {
        &self.tz
    }

    fn zoned(&self, ms: i64) -> Option<Zoned> {
        Timestamp::from_millisecond(ms).ok().map(|t| t.to_zoned(self.tz.clone()))
    }

    /// The local date at `ms`.
    pub(crate) fn date(&self, ms: i64) -> Option<Date> {
        self.zoned(ms).map(|z| z.date())
    }

    /// A date such as `3 Jun 2024`, or the placeholder.
    pub(crate) fn fmt_date(&self, s: &Strings, ms: i64) -> String {
        self.date(ms).map(|d| s.date(d)).unwrap_or_else(|| s.none.to_owned())
    }

    /// A date and time such as `3 Jun 2024 14:05 CEST`, or the placeholder.
    pub(crate) fn fmt_datetime(&self, s: &Strings, ms: i64) -> String {
        match self.zoned(ms) {
            Some(z) => format!("{} {}", s.date(z.date()), strtime("%H:%M %Z", &z)),
            None => s.none.to_owned(),
        }
    }

    /// A date and time without the zone, such as `3 Jun 2024 14:05`, for tables: the zone is
    /// stated on the cover.
    pub(crate) fn fmt_datetime_short(&self, s: &Strings, ms: i64) -> String {
        match self.zoned(ms) {
            Some(z) => format!("{} {}", s.date(z.date()), strtime("%H:%M", &z)),
            None => s.none.to_owned(),
        }
    }

    /// The period as `first day – last day`; the end is exclusive, so a period ending at
    /// midnight ends on the day before.
    pub(crate) fn fmt_period(&self, s: &Strings, start_ms: i64, end_ms: i64) -> String {
        let last = if end_ms > start_ms { end_ms - 1 } else { start_ms };
        let (a, b) = (self.fmt_date(s, start_ms), self.fmt_date(s, last));
        if a == b { a } else { format!("{a} \u{2013} {b}") }
    }

    /// Chart ticks in `[start_ms, end_ms)`: local midnights (every n-th day so that there are at
    /// most about eight), local hours for periods under two days, whole seconds or minutes for
    /// periods under two hours. At most 16 ticks however long the period.
    pub(crate) fn ticks(&self, s: &Strings, start_ms: i64, end_ms: i64) -> Vec<(i64, String)> {
        let span = end_ms.saturating_sub(start_ms);
        if span <= 0 {
            return Vec::new();
        }
        let mut ticks = Vec::new();
        if span < 2 * HOUR_MS {
            // Short periods (a demo, a test run): whole seconds or minutes, at most about eight.
            const STEPS_S: [i64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800];
            let step_ms = STEPS_S.iter().map(|s| s * 1000).find(|step| span / step <= 8).unwrap_or(HOUR_MS);
            let fmt = if step_ms < 60_000 { "%H:%M:%S" } else { "%H:%M" };
            let mut ms = start_ms.div_euclid(step_ms) * step_ms;
            if ms < start_ms {
                ms += step_ms;
            }
            while ms < end_ms && ticks.len() < 16 {
                if let Some(z) = self.zoned(ms) {
                    ticks.push((ms, strtime(fmt, &z)));
                }
                ms += step_ms;
            }
            return ticks;
        }
        if span < 2 * DAY_MS {
            let step_h: i64 = match span / HOUR_MS {
                0..=6 => 1,
                7..=12 => 2,
                13..=24 => 3,
                _ => 6,
            };
            let Some(start) = self.zoned(start_ms) else {
                return ticks;
            };
            // First whole local hour divisible by the step, at or after the start.
            let Ok(mut t) = start.start_of_day() else {
                return ticks;
            };
            let Ok(step) = Span::new().try_hours(step_h) else {
                return ticks;
            };
            // 2 days plus the part of the first day before the start, in the smallest step.
            for _ in 0..80 {
                let ms = t.timestamp().as_millisecond();
                if ms >= end_ms {
                    break;
                }
                if ms >= start_ms {
                    ticks.push((ms, strtime("%H:%M", &t)));
                }
                match t.checked_add(step) {
                    Ok(next) => t = next,
                    Err(_) => break,
                }
            }
            return ticks;
        }
        let days = span / DAY_MS;
        let step = (days + 7) / 8; // ceil(days / 8), at least 1 since days >= 2
        let Some(mut d) = self.date(start_ms) else {
            return ticks;
        };
        let Ok(step) = Span::new().try_days(step) else {
            return ticks;
        };
        for _ in 0..17 {
            let Ok(z) = d.to_zoned(self.tz.clone()) else {
                break;
            };
            let ms = z.timestamp().as_millisecond();
            if ms >= end_ms {
                break;
            }
            if ms >= start_ms {
                ticks.push((ms, s.short_date(d)));
            }
            match d.checked_add(step) {
                Ok(next) => d = next,
                Err(_) => break,
            }
        }
        ticks
    }
}
