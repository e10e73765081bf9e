//! Every word about findings, per language: the evidence a finding's [`Facts`] give and the
//! recommendation its [`Advice`] words. Beside [`super::strings`] (the report's fixed texts),
//! this is the only place that holds wording about findings.
//!
//! [`evidence`] and [`recommendation`] are the one way to put a finding into words; the PDF,
//! the report mails, `risk show` and the scenario files call them. Each language is one module
//! with an exhaustive `match` over the facts and the advice, so a rule or variant without a
//! text in a language does not compile.
//!
//! English evidence keeps the wording (ISO dates, plain numbers) that scenario files match
//! with `evidence-contains`; German uses German dates (`05.12.2026`) and numbers (`1.234,5`).
//!
//! [`Facts`]: crate::risk::Facts
//! [`Advice`]: crate::risk::Advice

mod de;
mod en;

use jiff::tz::TimeZone;

use super::strings::{Lang, Strings};
use crate::risk::{Finding, SignatureCount};

/// What was observed, with the numbers and the window, in `lang`; times in `tz`.
pub fn evidence(f: &Finding, lang: Lang, tz: &TimeZone) -> String {
    let fmt = Fmt { lang, tz };
    match lang {
        Lang::En => en::evidence(f, &fmt),
        Lang::De => de::evidence(f, &fmt),
    }
}

/// What to do about it, in `lang`: the wording of the finding's [`Finding::advice`].
pub fn recommendation(f: &Finding, lang: Lang) -> String {
    let subject = f.subject.as_deref().unwrap_or("?");
    match lang {
        Lang::En => en::advice(f.advice(), subject),
        Lang::De => de::advice(f.advice(), subject),
    }
}

/// The mark of a device first seen inside the report's period: `new since 2026-12-05 18:33` /
/// `neu seit 05.12.2026 18:33`.
pub fn new_since(first_seen_ms: i64, lang: Lang, tz: &TimeZone) -> String {
    let fmt = Fmt { lang, tz };
    match lang {
        Lang::En => format!("new since {}", fmt.time(first_seen_ms)),
        Lang::De => format!("neu seit {}", fmt.time(first_seen_ms)),
    }
}

/// A moment as findings give it, for pages that show times beside them: `2026-03-29 14:05` /
/// `29.03.2026 14:05`, in `tz`.
pub fn time(ms: i64, lang: Lang, tz: &TimeZone) -> String {
    Fmt { lang, tz }.time(ms)
}

/// A calendar day as findings write dates: `2026-03-29` / `29.03.2026`.
pub fn day(d: jiff::civil::Date, lang: Lang) -> String {
    match lang {
        Lang::En => d.to_string(),
        Lang::De => Strings::get(Lang::De).date(d),
    }
}

/// Dates, numbers and durations in one language and zone.
struct Fmt<'a> {
    lang: Lang,
    tz: &'a TimeZone,
}

/// The units a duration is said in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
}

/// A duration as a count of its largest sensible unit, rounded down: days from two days on,
/// hours from two hours, minutes from two minutes, else seconds. Every language says the
/// same count.
fn duration_parts(ms: i64) -> (i64, Unit) {
    let s = ms.max(0) / 1000;
    match s {
        s if s >= 2 * 86_400 => (s / 86_400, Unit::Day),
        s if s >= 2 * 3600 => (s / 3600, Unit::Hour),
        s if s >= 120 => (s / 60, Unit::Minute),
        s => (s, Unit::Second),
    }
}

impl Fmt<'_> {
    fn strftime(&self, pattern: &str, ms: i64) -> String {
        jiff::Timestamp::from_millisecond(ms)
            .ok()
            .and_then(|t| jiff::fmt::strtime::format(pattern, &t.to_zoned(self.tz.clone())).ok())
            .unwrap_or_else(|| format!("{ms} ms"))
    }

    /// `2026-03-29` / `29.03.2026`.
    fn date(&self, ms: i64) -> String {
        match self.lang {
            Lang::En => self.strftime("%Y-%m-%d", ms),
            Lang::De => self.strftime("%d.%m.%Y", ms),
        }
    }

    /// `2026-03-29 14:05` / `29.03.2026 14:05`.
    fn time(&self, ms: i64) -> String {
        match self.lang {
            Lang::En => self.strftime("%Y-%m-%d %H:%M", ms),
            Lang::De => self.strftime("%d.%m.%Y %H:%M", ms),
        }
    }

    /// ` (Europe/Berlin)`: which clock the times are on.
    fn zone(&self) -> String {
        self.tz.iana_name().map(|n| format!(" ({n})")).unwrap_or_default()
    }

    /// A number with `decimals` decimals: `1234.5` in English (as scenario files match it),
    /// `1.234,5` in German.
    fn num(&self, v: f64, decimals: usize) -> String {
        match self.lang {
            Lang::En => format!("{v:.decimals$}"),
            Lang::De => Strings::get(Lang::De).num(v, decimals),
        }
    }

    /// A count: `1440` / `1.440`.
    fn int(&self, n: u64) -> String {
        match self.lang {
            Lang::En => n.to_string(),
            Lang::De => Strings::get(Lang::De).int(n),
        }
    }

    /// A duration in words, see [`duration_parts`]: `1 second`, `26 hours` / `1 Sekunde`,
    /// `26 Stunden`, `3 Tage`.
    fn duration(&self, ms: i64) -> String {
        self.duration_in(ms, false)
    }

    /// A duration after a preposition that takes the dative in German (`in`, `vor`, `seit`,
    /// `nach`): `in 3 Tagen`. English has no such case.
    fn duration_dative(&self, ms: i64) -> String {
        self.duration_in(ms, true)
    }

    fn duration_in(&self, ms: i64, dative: bool) -> String {
        let (n, unit) = duration_parts(ms);
        let one = n == 1;
        let word = match (self.lang, unit) {
            (Lang::En, Unit::Second) => {
                if one {
                    "second"
                } else {
                    "seconds"
                }
            }
            (Lang::En, Unit::Minute) => {
                if one {
                    "minute"
                } else {
                    "minutes"
                }
            }
            (Lang::En, Unit::Hour) => {
                if one {
                    "hour"
                } else {
                    "hours"
                }
            }
            (Lang::En, Unit::Day) => {
                if one {
                    "day"
                } else {
                    "days"
                }
            }
            (Lang::De, Unit::Second) => {
                if one {
                    "Sekunde"
                } else {
                    "Sekunden"
                }
            }
            (Lang::De, Unit::Minute) => {
                if one {
                    "Minute"
                } else {
                    "Minuten"
                }
            }
            (Lang::De, Unit::Hour) => {
                if one {
                    "Stunde"
                } else {
                    "Stunden"
                }
            }
            (Lang::De, Unit::Day) => match (one, dative) {
                (true, _) => "Tag",
                (false, true) => "Tagen",
                (false, false) => "Tage",
            },
        };
        format!("{} {word}", self.int(n.unsigned_abs()))
    }

    /// `ET EXPLOIT x (3), ET SCAN y (1)`.
    fn signatures(&self, top: &[SignatureCount]) -> String {
        top.iter().map(|s| format!("{} ({})", s.name, self.int(s.count))).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
pub(crate) mod tests;
