//! A reporting period: the one type for what a report covers, whoever asks — the scheduler,
//! `report preview|send`, `risk show`, the demo, the benchmark.
//!
//! A period carries its time zone: the zone decides where its calendar days, weeks and months
//! begin, which local days its per-day buckets are, which period comes before it and how it is
//! named. Calendar periods (`day`, `week`, `month`) run from local midnight to local midnight,
//! so a day across a DST change lasts 23 or 25 hours. Rolling windows and custom ranges are
//! named by their bounds.
//!
//! Names are said the way people say them, in the reader's language ([`Period::name`]:
//! "5 Dec 2026" / "05.12.2026", "week 49, 2026" / "KW 49/2026", "November 2026"); file names
//! and archive labels use a stable ASCII form ([`Period::label`]: `2026-12-05`, `2026-w49`,
//! `2026-11`, `20261205T1236-20261206T1236`), distinct for every two different periods.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use crate::report::Lang;
use crate::report::strings::Strings;
use crate::risk::rules::Window;
use crate::schedule::config::ReportPeriod;

/// What kind of period it is, which decides its name and the period before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A calendar day.
    Day(Date),
    /// A calendar week, by its first day (a Monday: an ISO week).
    Week(Date),
    /// A calendar month, by its first day.
    Month(Date),
    /// A rolling window or a custom range, named by its bounds.
    Range,
}

/// A reporting period: `[start_ms, end_ms)` in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// Start, Unix ms (inclusive).
    pub start_ms: i64,
    /// End, Unix ms (exclusive).
    pub end_ms: i64,
    /// Calendar unit or range.
    pub kind: Kind,
    zone_name: String,
    zone: TimeZone,
}

/// A period that cannot be understood or computed.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    /// Not one of the accepted forms.
    #[error(
        "period {0:?} is not understood; write last-<duration> (last-24h, last-7d), day, week, month (the last complete one), \
         a date (2026-03-29), ISO week (2026-W13), month (2026-03) or a range of dates (2026-03-01..2026-03-15)"
    )]
    Syntax(String),
    /// A `last-<duration>` period with a bad or zero duration.
    #[error("period {period:?}: {reason}")]
    Duration {
        /// The period asked for.
        period: String,
        /// What is wrong with the duration.
        reason: String,
    },
    /// A range that ends before it starts.
    #[error("period {0:?} ends before it starts")]
    Empty(String),
    /// The time zone is unknown.
    #[error("time zone {zone:?}")]
    Zone {
        /// The zone asked for.
        zone: String,
        /// What jiff said.
        source: jiff::Error,
    },
    /// A date or time out of range.
    #[error("period {period:?} is out of range")]
    Range {
        /// The period asked for.
        period: String,
        /// What jiff said.
        source: jiff::Error,
    },
}

fn zone(name: &str) -> Result<TimeZone, PeriodError> {
    TimeZone::get(name).map_err(|source| PeriodError::Zone { zone: name.to_owned(), source })
}

/// The first day of the calendar unit after the one `kind` starts; `None` for a range.
fn next_first(kind: Kind) -> Option<Result<Date, jiff::Error>> {
    match kind {
        Kind::Day(d) => Some(d.tomorrow()),
        Kind::Week(d) => Some(d.checked_add(1.week())),
        Kind::Month(d) => Some(d.checked_add(1.month())),
        Kind::Range => None,
    }
}

/// The first day of the calendar unit before the one `kind` starts; `None` for a range.
fn previous_first(kind: Kind) -> Option<Result<Date, jiff::Error>> {
    match kind {
        Kind::Day(d) => Some(d.yesterday()),
        Kind::Week(d) => Some(d.checked_sub(1.week())),
        Kind::Month(d) => Some(d.checked_sub(1.month())),
        Kind::Range => None,
    }
}

fn with_first(kind: Kind, first: Date) -> Kind {
    match kind {
        Kind::Day(_) => Kind::Day(first),
        Kind::Week(_) => Kind::Week(first),
        Kind::Month(_) => Kind::Month(first),
        Kind::Range => Kind::Range,
    }
}

fn first_of(kind: Kind) -> Option<Date> {
    match kind {
        Kind::Day(d) | Kind::Week(d) | Kind::Month(d) => Some(d),
        Kind::Range => None,
    }
}

impl Period {
    /// The calendar unit `kind` in time zone `zone_name`, local midnight to local midnight
    /// (`Kind::Range` is no calendar unit: see [`Period::range`]).
    pub fn calendar(kind: Kind, zone_name: &str) -> Result<Period, PeriodError> {
        let tz = zone(zone_name)?;
        let (Some(first), Some(next)) = (first_of(kind), next_first(kind)) else {
            return Err(PeriodError::Syntax(format!("{kind:?}")));
        };
        let range = |source| PeriodError::Range { period: format!("{kind:?}"), source };
        let at = |d: Date| d.to_zoned(tz.clone()).map(|z| z.timestamp().as_millisecond());
        let start_ms = at(first).map_err(range)?;
        let end_ms = at(next.map_err(range)?).map_err(range)?;
        Ok(Period { start_ms, end_ms, kind, zone_name: zone_name.to_owned(), zone: tz })
    }

    /// The range `[start_ms, end_ms)` in time zone `zone_name`, named by its bounds.
    pub fn range(start_ms: i64, end_ms: i64, zone_name: &str) -> Result<Period, PeriodError> {
        if end_ms < start_ms {
            return Err(PeriodError::Empty(format!("{start_ms}..{end_ms}")));
        }
        Ok(Period { start_ms, end_ms, kind: Kind::Range, zone_name: zone_name.to_owned(), zone: zone(zone_name)? })
    }

    /// What a report job covers when sent at `end`: for `day`, `week` and `month` the last
    /// complete calendar unit before it (weeks from `week_start`), for `days`/`hours` the
    /// rolling window ending at it (calendar days, so 23 or 25 hours across DST).
    pub fn ending_at(what: ReportPeriod, week_start: Weekday, end: Timestamp, zone_name: &str) -> Result<Period, PeriodError> {
        let tz = zone(zone_name)?;
        let at: Zoned = end.to_zoned(tz);
        let range = |source| PeriodError::Range { period: what.name(), source };
        let today = at.date();
        let kind = match what {
            ReportPeriod::Day => Kind::Day(today.yesterday().map_err(range)?),
            ReportPeriod::Week => {
                let this = today.checked_sub(i64::from(today.weekday().since(week_start)).days()).map_err(range)?;
                Kind::Week(this.checked_sub(1.week()).map_err(range)?)
            }
            ReportPeriod::Month => Kind::Month(today.first_of_month().checked_sub(1.month()).map_err(range)?),
            ReportPeriod::Days(n) | ReportPeriod::Hours(n) => {
                let span = if matches!(what, ReportPeriod::Days(_)) { i64::from(n).days() } else { i64::from(n).hours() };
                let start = at.checked_sub(span).map_err(range)?;
                return Period::range(start.timestamp().as_millisecond(), end.as_millisecond(), zone_name);
            }
        };
        Period::calendar(kind, zone_name)
    }

    /// Parses a period asked for on the command line, in time zone `zone_name`:
    /// `last-<duration>` ending at `now_ms`; `day`, `week`, `month` for the last complete one
    /// before `now_ms`; a date (`2026-03-29`), ISO week (`2026-W13`), month (`2026-03`), or a
    /// range of dates `2026-03-01..2026-03-15` (both days included).
    pub fn parse(s: &str, now_ms: i64, zone_name: &str) -> Result<Period, PeriodError> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("last-") {
            let d: crate::config::Duration = rest.parse().map_err(|reason| PeriodError::Duration { period: s.to_owned(), reason })?;
            if d.as_ms() <= 0 {
                return Err(PeriodError::Duration { period: s.to_owned(), reason: "the duration is zero".into() });
            }
            return Period::range(now_ms.saturating_sub(d.as_ms()), now_ms, zone_name);
        }
        let range = |source| PeriodError::Range { period: s.to_owned(), source };
        let unit = match s {
            "day" => Some(ReportPeriod::Day),
            "week" => Some(ReportPeriod::Week),
            "month" => Some(ReportPeriod::Month),
            _ => None,
        };
        if let Some(unit) = unit {
            let now = Timestamp::from_millisecond(now_ms).map_err(range)?;
            return Period::ending_at(unit, Weekday::Monday, now, zone_name);
        }
        if let Some((a, b)) = s.split_once("..") {
            let (a, b): (Date, Date) = match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => return Err(PeriodError::Syntax(s.to_owned())),
            };
            if b < a {
                return Err(PeriodError::Empty(s.to_owned()));
            }
            let tz = zone(zone_name)?;
            let at = |d: Date| d.to_zoned(tz.clone()).map(|z| z.timestamp().as_millisecond()).map_err(range);
            return Period::range(at(a)?, at(b.tomorrow().map_err(range)?)?, zone_name);
        }
        let kind = parse_calendar(s).ok_or_else(|| PeriodError::Syntax(s.to_owned()))?;
        Period::calendar(kind, zone_name)
    }

    /// The period an archive record describes: its bounds and label, in `zone_name`. A label
    /// naming the calendar unit of exactly these bounds (as this release and the previous one
    /// wrote them: `2026-03-29`, `2026-W13`, `2026-w13`, `2026-03`) makes it that unit;
    /// anything else is a range.
    pub fn of_record(start_ms: i64, end_ms: i64, label: &str, zone_name: &str) -> Result<Period, PeriodError> {
        let calendar = parse_calendar(label).and_then(|kind| Period::calendar(kind, zone_name).ok());
        if let Some(p) = calendar.filter(|p| (p.start_ms, p.end_ms) == (start_ms, end_ms)) {
            return Ok(p);
        }
        Period::range(start_ms, end_ms, zone_name)
    }

    /// The IANA name of the period's time zone.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// The period before this one, for "change since last period": the previous calendar
    /// unit (so the day before a 23-hour DST day has 24 hours), else the same length before.
    pub fn previous(&self) -> Period {
        let calendar = previous_first(self.kind)
            .and_then(Result::ok)
            .and_then(|first| Period::calendar(with_first(self.kind, first), &self.zone_name).ok());
        calendar.unwrap_or_else(|| {
            let len = self.end_ms.saturating_sub(self.start_ms);
            Period { start_ms: self.start_ms.saturating_sub(len), end_ms: self.start_ms, kind: Kind::Range, ..self.clone() }
        })
    }

    /// The rules' view of the period.
    pub fn window(&self) -> Window {
        Window { start_ms: self.start_ms, end_ms: self.end_ms, tz: self.zone.clone() }
    }

    /// The starts of the period's local days (the first one at the period's start), at most
    /// 400: the per-day buckets of the report.
    pub fn days(&self) -> Vec<i64> {
        let mut out = Vec::new();
        let Ok(start) = Timestamp::from_millisecond(self.start_ms) else { return out };
        let mut day = start.to_zoned(self.zone.clone()).date();
        for _ in 0..400 {
            let Ok(z) = day.to_zoned(self.zone.clone()) else { break };
            let ms = z.timestamp().as_millisecond();
            if ms >= self.end_ms {
                break;
            }
            out.push(ms.max(self.start_ms));
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
        out
    }

    /// The instant `ms` in the period's zone; `None` out of jiff's range.
    pub fn local(&self, ms: i64) -> Option<Zoned> {
        Timestamp::from_millisecond(ms).ok().map(|t| t.to_zoned(self.zone.clone()))
    }

    /// The period as people name it, in `lang`: "5 Dec 2026" / "05.12.2026", "week 49, 2026"
    /// / "KW 49/2026", "November 2026", or the dates (and times, unless both bounds are
    /// local midnights) of a range.
    pub fn name(&self, lang: Lang) -> String {
        let s = Strings::get(lang);
        match self.kind {
            Kind::Day(d) => s.date(d),
            Kind::Week(d) if d.weekday() == Weekday::Monday => {
                let w = d.iso_week_date();
                s.week_name(w.week(), w.year())
            }
            Kind::Week(d) => s.week_from(&s.date(d)),
            Kind::Month(d) => s.month_name(d),
            Kind::Range => self.range_name(s),
        }
    }

    fn range_name(&self, s: &Strings) -> String {
        let (Some(a), Some(b)) = (self.local(self.start_ms), self.local(self.end_ms)) else {
            return format!("{}..{}", self.start_ms, self.end_ms);
        };
        let midnight = |z: &Zoned| z.start_of_day().is_ok_and(|m| m.timestamp() == z.timestamp());
        if midnight(&a) && midnight(&b) {
            let last = b.date().yesterday().unwrap_or(b.date());
            if last <= a.date() {
                return s.date(a.date());
            }
            return format!("{} \u{2013} {}", s.date(a.date()), s.date(last));
        }
        let at = |z: &Zoned| format!("{} {:02}:{:02}", s.date(z.date()), z.hour(), z.minute());
        format!("{} \u{2013} {}", at(&a), at(&b))
    }

    /// A stable ASCII name for files and the archive: `2026-12-05`, `2026-w49` (ISO week),
    /// `2026-03-22-week` (a week from another first day), `2026-11`, or the local bounds of a
    /// range, `20261205T1236-20261206T1236`. Two different periods of one zone never share it.
    pub fn label(&self) -> String {
        match self.kind {
            Kind::Day(d) => d.to_string(),
            Kind::Week(d) if d.weekday() == Weekday::Monday => {
                let w = d.iso_week_date();
                format!("{:04}-w{:02}", w.year(), w.week())
            }
            Kind::Week(d) => format!("{d}-week"),
            Kind::Month(d) => format!("{:04}-{:02}", d.year(), d.month()),
            Kind::Range => {
                let at = |ms: i64| self.local(ms).map_or_else(|| ms.to_string(), |z| z.strftime("%Y%m%dT%H%M").to_string());
                format!("{}-{}", at(self.start_ms), at(self.end_ms))
            }
        }
    }
}

/// `2026-03-29`, `2026-W13` / `2026-w13`, `2026-03`, `2026-03-22-week`.
fn parse_calendar(s: &str) -> Option<Kind> {
    if let Some(first) = s.strip_suffix("-week") {
        return first.parse().ok().map(Kind::Week);
    }
    if let Some((y, w)) = s.split_once("-W").or_else(|| s.split_once("-w")) {
        let week = jiff::civil::ISOWeekDate::new(y.parse().ok()?, w.parse().ok()?, Weekday::Monday).ok()?;
        return Some(Kind::Week(week.date()));
    }
    if s.len() == 7 {
        let (y, m) = s.split_once('-')?;
        return Date::new(y.parse().ok()?, m.parse().ok()?, 1).ok().map(Kind::Month);
    }
    s.parse().ok().map(Kind::Day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(local: &str, zone: &str) -> i64 {
        local.parse::<jiff::civil::DateTime>().unwrap().to_zoned(TimeZone::get(zone).unwrap()).unwrap().timestamp().as_millisecond()
    }

    fn names(p: &Period) -> (String, String, String) {
        (p.name(Lang::En), p.name(Lang::De), p.label())
    }

    #[test]
    fn periods_are_named_as_people_name_them_in_both_languages() {
        let day = Period::parse("2026-12-05", 0, "America/New_York").unwrap();
        assert_eq!(names(&day), ("5 Dec 2026".into(), "05.12.2026".into(), "2026-12-05".into()));
        let week = Period::parse("2026-W49", 0, "Europe/Berlin").unwrap();
        assert_eq!(names(&week), ("week 49, 2026".into(), "KW 49/2026".into(), "2026-w49".into()));
        let month = Period::parse("2026-11", 0, "Europe/Berlin").unwrap();
        assert_eq!(names(&month), ("November 2026".into(), "November 2026".into(), "2026-11".into()));
        assert_eq!(Period::parse("2026-03", 0, "UTC").unwrap().name(Lang::De), "März 2026");
        let custom = Period::parse("2026-12-01..2026-12-05", 0, "Europe/Berlin").unwrap();
        assert_eq!(
            names(&custom),
            ("1 Dec 2026 – 5 Dec 2026".into(), "01.12.2026 – 05.12.2026".into(), "20261201T0000-20261206T0000".into())
        );
        assert_eq!(custom.end_ms - custom.start_ms, 5 * 86_400_000);
        let rolling = Period::parse("last-24h", ms("2026-12-06T12:36:00", "Europe/Berlin"), "Europe/Berlin").unwrap();
        assert_eq!(
            names(&rolling),
            (
                "5 Dec 2026 12:36 – 6 Dec 2026 12:36".into(),
                "05.12.2026 12:36 – 06.12.2026 12:36".into(),
                "20261205T1236-20261206T1236".into()
            )
        );
    }

    #[test]
    fn iso_weeks_across_the_year_end() {
        // 2026-12-31 (Thursday) is in week 53 of 2026; so is 2027-01-01; 2027-01-04 starts week 1.
        let at = |d: &str| Timestamp::from_millisecond(ms(d, "UTC")).unwrap();
        let monday = |d: &str| Period::ending_at(ReportPeriod::Week, Weekday::Monday, at(d), "UTC").unwrap();
        let w53 = monday("2027-01-04T06:00:00");
        assert_eq!(names(&w53), ("week 53, 2026".into(), "KW 53/2026".into(), "2026-w53".into()));
        assert_eq!((w53.start_ms, w53.end_ms), (ms("2026-12-28T00:00:00", "UTC"), ms("2027-01-04T00:00:00", "UTC")));
        for day in ["2026-12-31T12:00:00", "2027-01-01T12:00:00", "2027-01-03T23:59:00"] {
            assert!((w53.start_ms..w53.end_ms).contains(&ms(day, "UTC")), "{day} is in week 53 of 2026");
        }
        let w1 = monday("2027-01-11T06:00:00");
        assert_eq!(names(&w1), ("week 1, 2027".into(), "KW 1/2027".into(), "2027-w01".into()));
        assert_eq!(w1.previous(), w53);
        // A week from Sunday is named by its first day.
        let sunday = Period::ending_at(ReportPeriod::Week, Weekday::Sunday, at("2026-04-01T06:00:00"), "UTC").unwrap();
        assert_eq!(names(&sunday), ("week from 22 Mar 2026".into(), "Woche ab 22.03.2026".into(), "2026-03-22-week".into()));
    }

    #[test]
    fn calendar_periods_follow_dst_in_their_zone_and_so_does_the_previous_one() {
        const H: i64 = 3_600_000;
        let tz = "Europe/Berlin";
        let now = ms("2026-03-30T08:00:00", tz);
        let day = Period::parse("day", now, tz).unwrap();
        assert_eq!((day.label(), day.start_ms, day.end_ms - day.start_ms), ("2026-03-29".into(), ms("2026-03-29T00:00:00", tz), 23 * H));
        let prev = day.previous();
        assert_eq!((prev.label(), prev.end_ms, prev.end_ms - prev.start_ms), ("2026-03-28".into(), day.start_ms, 24 * H));
        assert_eq!(Period::parse("2026-10-25", now, tz).unwrap().end_ms - ms("2026-10-25T00:00:00", tz), 25 * H);
        let week = Period::parse("week", now, tz).unwrap();
        assert_eq!((week.label(), week.end_ms - week.start_ms), ("2026-w13".into(), 7 * 24 * H - H));
        assert_eq!(Period::parse("2026-W13", 0, tz).unwrap(), week);
        let month = Period::parse("month", now, tz).unwrap();
        assert_eq!((month.label(), month.start_ms), ("2026-02".into(), ms("2026-02-01T00:00:00", tz)));
        assert_eq!(Period::parse("2026-03", 0, tz).unwrap().previous(), month);
        let last = Period::parse("last-24h", now, tz).unwrap();
        assert_eq!((last.previous().end_ms, last.previous().kind), (last.start_ms, Kind::Range));
        // The same calendar day in another zone is another period.
        let ny = Period::parse("2026-03-29", 0, "America/New_York").unwrap();
        assert_eq!(ny.start_ms, ms("2026-03-29T00:00:00", "America/New_York"));
        assert!(matches!(Period::parse("fortnight", now, "UTC"), Err(PeriodError::Syntax(_))));
        assert!(matches!(Period::parse("last-0d", now, "UTC"), Err(PeriodError::Duration { .. })));
        assert!(matches!(Period::parse("2026-03-05..2026-03-01", now, "UTC"), Err(PeriodError::Empty(_))));
        assert!(matches!(Period::parse("day", now, "Mars/Olympus"), Err(PeriodError::Zone { .. })));
    }

    #[test]
    fn archive_labels_of_this_and_the_previous_release_name_their_period() {
        let tz = "Europe/Berlin";
        let week = Period::parse("2026-W13", 0, tz).unwrap();
        for label in ["2026-W13", "2026-w13"] {
            assert_eq!(Period::of_record(week.start_ms, week.end_ms, label, tz).unwrap(), week);
        }
        // A rolling window's old label (`1d-2026-12-06T1236`) names nothing: its dates do.
        let p = Period::of_record(ms("2026-12-05T12:36:00", tz), ms("2026-12-06T12:36:00", tz), "1d-2026-12-06T1236", tz).unwrap();
        assert_eq!((p.kind, p.label()), (Kind::Range, "20261205T1236-20261206T1236".to_owned()));
        // A label that disagrees with the bounds is not trusted.
        assert_eq!(Period::of_record(0, 1000, "2026-03-29", tz).unwrap().kind, Kind::Range);
    }

    #[test]
    fn local_days_follow_the_zone() {
        let p = Period::parse("2026-12-01..2026-12-03", 0, "America/New_York").unwrap();
        let days = p.days();
        assert_eq!(
            days,
            vec![
                ms("2026-12-01T00:00:00", "America/New_York"),
                ms("2026-12-02T00:00:00", "America/New_York"),
                ms("2026-12-03T00:00:00", "America/New_York")
            ]
        );
    }
}
