//! Helpers shared by the log-reading sources: timestamps and what a parser counted.
//!
//! Timestamps are parsed by hand rather than with a date crate: the formats are few and fixed
//! (ISO 8601 with an offset, BSD syslog, ClamAV's `ctime`), and every KiB of code is resident.

use std::collections::BTreeMap;

use ampel_protocol::Record;
use serde::Serialize;

/// What a parser made of its input: the `--summary` of `ampel-agent parse`, and the counters a
/// running source logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Lines read (blank ones included).
    pub lines: u64,
    /// Records produced, by kind (`alert`, `metric`, `traffic`, `license`).
    pub records: BTreeMap<&'static str, u64>,
    /// EVE only: lines per `event_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<BTreeMap<String, u64>>,
    /// Lines that could not be parsed (not JSON, blank where JSON is due, missing fields, bad
    /// timestamp, overlong). A line whose only defect is its timestamp still yields its record,
    /// stamped with the time it was read.
    pub malformed: u64,
}

impl Counts {
    /// Counts `records` by kind.
    pub fn add_records(&mut self, records: &[Record]) {
        for r in records {
            *self.records.entry(r.kind()).or_default() += 1;
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of a Unix ms timestamp (UTC).
pub fn date_of(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{m:02}-{d:02}", yoe + era * 400 + i64::from(m <= 2))
}

/// Year of a Unix ms timestamp (UTC).
pub fn year_of(ms: i64) -> i64 {
    let days = ms.div_euclid(86_400_000);
    // Inverse of days_from_civil, year only.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

fn num(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &c| acc.checked_mul(10)?.checked_add(u32::from(c - b'0')))
}

fn ms_of(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + i64::from(h)) * 60 + i64::from(mi)) * 60_000 + i64::from(s) * 1_000)
}

/// `2021-10-05T09:15:41.557937+0000`, `...+02:00`, `...Z`, or with a space instead of `T`, or
/// without offset (then UTC), to Unix ms.
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let y = i64::from(num(&b[0..4])?);
    let base = ms_of(y, num(&b[5..7])?, num(&b[8..10])?, num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?)?;
    let mut rest = &b[19..];
    let mut frac_ms = 0i64;
    if let Some(r) = rest.strip_prefix(b".") {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let digits = &r[..n.min(3)];
        let mut v = i64::from(num(digits)?);
        for _ in digits.len()..3 {
            v *= 10;
        }
        frac_ms = v;
        rest = &r[n..];
    }
    let offset_min: i64 = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, tail @ ..] => {
            let m = match tail {
                [b':', a, b] | [a, b] => num(&[*a, *b])?,
                [] => 0,
                _ => return None,
            };
            let h = num(&[*h1, *h2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let v = i64::from(h * 60 + m);
            if *sign == b'-' { -v } else { v }
        }
        _ => return None,
    };
    Some(base + frac_ms - offset_min * 60_000)
}

const MONTHS: [&[u8; 3]; 12] = [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

fn month(b: &[u8]) -> Option<u32> {
    MONTHS.iter().position(|m| m.as_slice() == b).and_then(|i| u32::try_from(i + 1).ok())
}

/// `Feb 23 04:55:57` (BSD syslog, no year, local time taken as UTC) at the start of `line`: the
/// Unix ms and the rest of the line. The year is `now`'s, or the previous one when that would put
/// the time more than a day in the future (a December line read in January).
pub fn parse_bsd_syslog(line: &str, now_ms: i64) -> Option<(i64, &str)> {
    let b = line.as_bytes();
    if b.len() < 16 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' || b[15] != b' ' {
        return None;
    }
    let mo = month(&b[0..3])?;
    let day = if b[4] == b' ' { num(&b[5..6])? } else { num(&b[4..6])? };
    let (h, mi, s) = (num(&b[7..9])?, num(&b[10..12])?, num(&b[13..15])?);
    let year = year_of(now_ms);
    let mut ts = ms_of(year, mo, day, h, mi, s)?;
    if ts > now_ms + 86_400_000 {
        ts = ms_of(year - 1, mo, day, h, mi, s)?;
    }
    Some((ts, line.get(16..)?))
}

/// A syslog line's timestamp: RFC 3339 (`2024-08-26T01:33:38.572449+00:00 host ...`), BSD
/// (`May 11 04:02:36 host ...`) or `2022-06-29 15:33:46 ...` (Exim): Unix ms and the rest.
pub fn parse_syslog_ts(line: &str, now_ms: i64) -> Option<(i64, &str)> {
    if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        // "YYYY-MM-DD HH:MM:SS rest" (Exim) or "YYYY-MM-DDTHH:MM:SS...offset rest".
        if line.as_bytes().get(10) == Some(&b' ') {
            let ts = parse_iso(line.get(..19)?)?;
            return Some((ts, line.get(20..).unwrap_or("")));
        }
        let (first, rest) = line.split_once(' ')?;
        return Some((parse_iso(first)?, rest));
    }
    parse_bsd_syslog(line, now_ms)
}

/// `Sun Nov 22 03:02:01 2026` (C `ctime`, as clamd and freshclam log) to Unix ms.
pub fn parse_ctime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[3] != b' ' || b[7] != b' ' || b[10] != b' ' || b[13] != b':' || b[16] != b':' || b[19] != b' ' {
        return None;
    }
    let mo = month(&b[4..7])?;
    let day = if b[8] == b' ' { num(&b[9..10])? } else { num(&b[8..10])? };
    let y = i64::from(num(&b[20..24])?);
    ms_of(y, mo, day, num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps_with_every_offset_style() {
        assert_eq!(parse_iso("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso("2021-10-05T09:15:41.557937+0000"), Some(1_633_425_341_557));
        assert_eq!(parse_iso("2021-10-05T11:15:41.557937+02:00"), Some(1_633_425_341_557));
        assert_eq!(parse_iso("2022-02-08T11:33:00.175195-0500"), Some(1_644_337_980_175));
        assert_eq!(parse_iso("2026-11-22 02:36:54"), Some(1_795_315_014_000));
        for bad in ["", "2021-13-05T09:15:41Z", "2021-10-05T09:15", "2021-10-05T09:15:41.+0000", "yesterday", "2021-10-05T09:15:41+99"] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn syslog_and_ctime() {
        let now = parse_iso("2026-01-02T00:00:00Z").unwrap();
        let (ts, rest) = parse_syslog_ts("Dec 31 23:00:00 host x", now).unwrap();
        assert_eq!(ts, parse_iso("2025-12-31T23:00:00Z").unwrap());
        assert_eq!(rest, "host x");
        let (ts, rest) = parse_syslog_ts("May  1 04:02:36 h y", now).unwrap();
        assert_eq!((ts, rest), (parse_iso("2025-05-01T04:02:36Z").unwrap(), "h y"), "a May line read in January is last year's");
        let (ts, rest) = parse_syslog_ts("2024-08-26T01:33:38.572449+00:00 machine z", now).unwrap();
        assert_eq!((ts, rest), (parse_iso("2024-08-26T01:33:38.572Z").unwrap(), "machine z"));
        assert_eq!(parse_syslog_ts("2022-06-29 15:33:46 H=x", now).unwrap().1, "H=x");
        assert_eq!(parse_ctime("Sun Nov 22 03:02:01 2026"), parse_iso("2026-11-22T03:02:01Z"));
        assert_eq!(parse_syslog_ts("Xyz 31 23:00:00 host x", now), None);
        assert_eq!(year_of(now), 2026);
    }
}
