//! "What is due": plain functions over (jobs, state, now). No clock, no I/O, no sleeping.
//!
//! A job's state is one *cursor*: every slot (scheduled send time) at or before it has been
//! handled — sent, failed for good, or skipped. The scheduler advances the cursor only after a
//! run is finished, so a restart in the middle of a run finds the slot still due (the archive
//! then keeps tenants already sent from being sent twice). A job seen for the first time gets
//! the cursor "now": a new job does not send its whole past.
//!
//! Slots are computed in the job's time zone with jiff: 08:00 Europe/Berlin is 07:00 UTC in
//! winter and 06:00 UTC in summer; a wall time skipped by the spring change moves forward by
//! the gap, a repeated one in autumn takes the first occurrence.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::config::{DeliveryConfig, JobConfig, MissedRuns, RuleDay, SendRule};

/// A run the scheduler should handle now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The job.
    pub job: String,
    /// The slot this run belongs to.
    pub slot: Timestamp,
    /// Whether to send (false: the slot is only recorded as skipped).
    pub send: bool,
    /// Sent more than `late-after` after its slot (e.g. caught up after downtime).
    pub late: bool,
    /// Older slots missed while down, recorded as skipped.
    pub skipped: Vec<Timestamp>,
}

fn zone(job: &JobConfig) -> TimeZone {
    // The name was checked at config load; UTC only if tzdata vanished since.
    TimeZone::get(&job.time_zone.0).unwrap_or(TimeZone::UTC)
}

fn rule_matches(rule: &SendRule, d: Date) -> bool {
    match rule.day {
        RuleDay::Daily => true,
        RuleDay::Weekly(w) => d.weekday() == w,
        RuleDay::Monthly(n) => d.day() == n.min(d.days_in_month()),
    }
}

/// The first slot of `job` strictly after `after`, or `None` if none within ~13 months.
pub fn next_slot(job: &JobConfig, after: Timestamp) -> Option<Timestamp> {
    let tz = zone(job);
    let mut day = after.to_zoned(tz.clone()).date().checked_sub(1.day()).ok()?;
    if let Some(start) = job.start {
        day = day.max(start);
    }
    for _ in 0..400 {
        let mut best: Option<Timestamp> = None;
        for rule in job.send.0.iter().filter(|r| rule_matches(r, day)) {
            let Ok(z) = day.to_datetime(rule.time).to_zoned(tz.clone()) else { continue };
            let t = z.timestamp();
            if t > after && best.is_none_or(|b| t < b) {
                best = Some(t);
            }
        }
        if best.is_some() {
            return best;
        }
        day = day.tomorrow().ok()?;
    }
    None
}

/// What is due at `now`, given each job's cursor (Unix ms; a job without one has nothing due
/// — the caller first stores "now" as its cursor, see [`initial_cursor`]).
pub fn due(jobs: &[JobConfig], cursors: &HashMap<String, i64>, now: Timestamp, cfg: &DeliveryConfig) -> Vec<Due> {
    let mut out = Vec::new();
    for job in jobs.iter().filter(|j| j.enabled) {
        let Some(cursor) = cursors.get(&job.name.0).and_then(|ms| Timestamp::from_millisecond(*ms).ok()) else { continue };
        let mut slots = Vec::new();
        let mut t = cursor;
        while let Some(next) = next_slot(job, t) {
            if next > now {
                break;
            }
            slots.push(next);
            t = next;
            if slots.len() > 10_000 {
                break; // a cursor years back: the rest is skipped anyway
            }
        }
        let Some(latest) = slots.pop() else { continue };
        let late = now.as_millisecond() - latest.as_millisecond() > cfg.late_after.as_ms();
        let send = !(late && cfg.missed == MissedRuns::Skip);
        out.push(Due { job: job.name.0.clone(), slot: latest, send, late, skipped: slots });
    }
    out
}

/// The cursor of a job seen for the first time: now, or the start of its start date if later
/// (which is the same for [`due`]: nothing before either is sent).
pub fn initial_cursor(now: Timestamp) -> i64 {
    now.as_millisecond()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A run's period as the tests compare it.
    struct Covered {
        start: Timestamp,
        end: Timestamp,
        label: String,
    }

    /// The period job `job` reports on when sent at `slot` (see [`crate::period::Period::ending_at`]).
    fn period_of(job: &JobConfig, slot: Timestamp) -> Covered {
        let p = crate::period::Period::ending_at(job.window(), job.week_start.0, slot, &job.time_zone.0).unwrap();
        let at = |ms| Timestamp::from_millisecond(ms).unwrap();
        Covered { start: at(p.start_ms), end: at(p.end_ms), label: p.label() }
    }

    fn job(extra: &str) -> JobConfig {
        let src = format!("name = \"j\"\ntenants = [\"acme\"]\nto = \"ops@example.org\"\n{extra}");
        toml::from_str(&src).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Drives [`due`] with a simulated clock in `step` increments, advancing the cursor like
    /// the scheduler does, and returns the slots sent.
    fn simulate(job: &JobConfig, from: &str, to: &str, step: jiff::Span) -> Vec<Timestamp> {
        let cfg = DeliveryConfig::default();
        let mut now = ts(from);
        let mut cursors = HashMap::from([(job.name.0.clone(), initial_cursor(now))]);
        let mut sent = Vec::new();
        while now < ts(to) {
            for d in due(std::slice::from_ref(job), &cursors, now, &cfg) {
                assert!(d.send && !d.late && d.skipped.is_empty(), "{d:?}");
                sent.push(d.slot);
                cursors.insert(d.job, d.slot.as_millisecond());
            }
            now = now.checked_add(step).unwrap();
        }
        sent
    }

    #[test]
    fn weekly_monday_0800_berlin_stays_at_0800_across_both_dst_changes() {
        let j = job("period = \"week\"\nsend = [\"mon 08:00\"]\ntime-zone = \"Europe/Berlin\"\n");
        let sent = simulate(&j, "2026-03-16T00:00:00Z", "2026-04-07T00:00:00Z", 10.minutes());
        // 08:00 CET = 07:00Z before 29 March, 08:00 CEST = 06:00Z after.
        assert_eq!(
            sent,
            vec![ts("2026-03-16T07:00:00Z"), ts("2026-03-23T07:00:00Z"), ts("2026-03-30T06:00:00Z"), ts("2026-04-06T06:00:00Z")]
        );
        let sent = simulate(&j, "2026-10-18T00:00:00Z", "2026-11-03T00:00:00Z", 1.hour());
        assert_eq!(sent, vec![ts("2026-10-19T06:00:00Z"), ts("2026-10-26T07:00:00Z"), ts("2026-11-02T07:00:00Z")]);
        for s in &sent {
            let z = s.to_zoned(TimeZone::get("Europe/Berlin").unwrap());
            assert_eq!((z.weekday(), z.hour(), z.minute()), (jiff::civil::Weekday::Monday, 8, 0));
        }
        // The week sent on 30 March is the ISO week before it, Monday to Monday 00:00 local,
        // one hour short across the spring change.
        let p = period_of(&j, ts("2026-03-30T06:00:00Z"));
        assert_eq!((p.start, p.end), (ts("2026-03-22T23:00:00Z"), ts("2026-03-29T22:00:00Z")));
        assert_eq!(p.label, "2026-w13");
    }

    #[test]
    fn monthly_day_31_falls_on_month_ends_and_the_period_is_the_calendar_month() {
        let j = job("period = \"month\"\nsend = [\"day 31 08:00\"]\ntime-zone = \"Europe/Berlin\"\n");
        let sent = simulate(&j, "2026-01-15T00:00:00Z", "2026-05-15T00:00:00Z", 1.hour());
        assert_eq!(
            sent,
            vec![ts("2026-01-31T07:00:00Z"), ts("2026-02-28T07:00:00Z"), ts("2026-03-31T06:00:00Z"), ts("2026-04-30T06:00:00Z")]
        );
        let j1 = job("period = \"month\"\nsend = [\"day 1 00:30\"]\n");
        let sent = simulate(&j1, "2027-12-30T00:00:00Z", "2028-03-02T00:00:00Z", 10.minutes());
        assert_eq!(sent, vec![ts("2028-01-01T00:30:00Z"), ts("2028-02-01T00:30:00Z"), ts("2028-03-01T00:30:00Z")]);
        let p = period_of(&j1, ts("2028-03-01T00:30:00Z"));
        assert_eq!((p.start, p.end), (ts("2028-02-01T00:00:00Z"), ts("2028-03-01T00:00:00Z")), "February of a leap year");
        assert_eq!(p.label, "2028-02");
        // Sent on the 31st, the report still covers the month before.
        let p = period_of(&j, ts("2026-03-31T06:00:00Z"));
        assert_eq!((p.start, p.end, p.label.as_str()), (ts("2026-01-31T23:00:00Z"), ts("2026-02-28T23:00:00Z"), "2026-02"));
    }

    #[test]
    fn several_rules_and_a_start_date() {
        let j = job("period = \"3d\"\nsend = [\"mon 08:00\", \"thu 17:30\"]\nstart = \"2026-06-04\"\n");
        let sent = simulate(&j, "2026-05-25T00:00:00Z", "2026-06-12T00:00:00Z", 15.minutes());
        assert_eq!(sent, vec![ts("2026-06-04T17:30:00Z"), ts("2026-06-08T08:00:00Z"), ts("2026-06-11T17:30:00Z")]);
    }

    #[test]
    fn a_daily_report_covers_the_previous_local_day_across_both_dst_changes() {
        let j = job("period = \"day\"\nsend = [\"daily 08:00\"]\ntime-zone = \"Europe/Berlin\"\n");
        let cases = [
            // sent (UTC)            start (UTC)             end (UTC)               label         hours
            ("2026-03-29T06:00:00Z", "2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z", "2026-03-28", 24),
            ("2026-03-30T06:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-29", 23),
            ("2026-10-26T07:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-25", 25),
        ];
        for (sent, start, end, label, hours) in cases {
            let p = period_of(&j, ts(sent));
            assert_eq!((p.start, p.end, p.label.as_str()), (ts(start), ts(end), label), "{sent}");
            assert_eq!((p.end.as_second() - p.start.as_second()) / 3600, hours);
        }
        // At midnight exactly, the day that just ended.
        let midnight = job("period = \"day\"\nsend = [\"daily 00:00\"]\n");
        assert_eq!(period_of(&midnight, ts("2026-12-06T00:00:00Z")).label, "2026-12-05");
    }

    #[test]
    fn weeks_start_on_monday_or_the_configured_day_and_rolling_windows_name_their_end() {
        let iso = job("period = \"week\"\nsend = [\"mon 06:00\"]\n");
        let p = period_of(&iso, ts("2027-01-04T06:00:00Z"));
        assert_eq!((p.start, p.end, p.label.as_str()), (ts("2026-12-28T00:00:00Z"), ts("2027-01-04T00:00:00Z"), "2026-w53"));
        let sunday = job("period = \"week\"\nweek-start = \"sun\"\nsend = [\"wed 06:00\"]\n");
        let p = period_of(&sunday, ts("2026-04-01T06:00:00Z"));
        assert_eq!((p.start, p.end, p.label.as_str()), (ts("2026-03-22T00:00:00Z"), ts("2026-03-29T00:00:00Z"), "2026-03-22-week"));
        // Two send rules on one day with days = 1: two windows, two names.
        let rolling = job("days = 1\nsend = [\"daily 12:36\", \"daily 12:44\"]\ntime-zone = \"Europe/Berlin\"\n");
        let a = period_of(&rolling, ts("2026-12-06T11:36:00Z"));
        let b = period_of(&rolling, ts("2026-12-06T11:44:00Z"));
        assert_eq!((a.label.as_str(), b.label.as_str()), ("20261205T1236-20261206T1236", "20261205T1244-20261206T1244"));
        assert_eq!(a.start, ts("2026-12-05T11:36:00Z"));
        let hours = job("hours = 12\nsend = [\"daily 12:00\"]\n");
        let p = period_of(&hours, ts("2026-12-06T12:00:00Z"));
        assert_eq!((p.start, p.label.as_str()), (ts("2026-12-06T00:00:00Z"), "20261206T0000-20261206T1200"));
    }

    #[test]
    fn exactly_one_of_period_days_and_hours() {
        let ok = job("days = 7\nsend = [\"mon 08:00\"]\n");
        assert!(super::super::config::validate(std::slice::from_ref(&ok)).is_ok());
        for bad in ["send = [\"mon 08:00\"]\n", "period = \"week\"\ndays = 7\nsend = [\"mon 08:00\"]\n"] {
            let err = super::super::config::validate(&[job(bad)]).unwrap_err();
            assert!(err.contains("exactly one of period"), "{err}");
        }
        assert!(
            toml::from_str::<JobConfig>("name = \"j\"\ntenants = [\"a\"]\nto = \"a@b.example\"\ndays = 0\nsend = [\"mon 08:00\"]\n")
                .is_err()
        );
    }

    #[test]
    fn a_time_skipped_by_dst_moves_forward() {
        let j = job("period = \"day\"\nsend = [\"daily 02:30\"]\ntime-zone = \"Europe/Berlin\"\n");
        // 29 March 2026 02:30 does not exist in Berlin: sent at 03:30 CEST = 01:30Z.
        assert_eq!(next_slot(&j, ts("2026-03-28T12:00:00Z")), Some(ts("2026-03-29T01:30:00Z")));
    }

    #[test]
    fn downtime_sends_the_latest_missed_run_once_marked_late() {
        let j = job("period = \"week\"\nsend = [\"mon 08:00\"]\n");
        let cursors = HashMap::from([("j".to_owned(), ts("2026-03-01T00:00:00Z").as_millisecond())]);
        let now = ts("2026-03-18T12:00:00Z");
        let d = due(std::slice::from_ref(&j), &cursors, now, &DeliveryConfig::default());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].slot, ts("2026-03-16T08:00:00Z"));
        assert!(d[0].send && d[0].late);
        assert_eq!(d[0].skipped, vec![ts("2026-03-02T08:00:00Z"), ts("2026-03-09T08:00:00Z")]);
        let skip = DeliveryConfig { missed: MissedRuns::Skip, ..DeliveryConfig::default() };
        let d = due(std::slice::from_ref(&j), &cursors, now, &skip);
        assert!(!d[0].send, "with missed = \"skip\" nothing is sent");
        // On time (within late-after) is never late, whatever the policy.
        let d = due(std::slice::from_ref(&j), &cursors, ts("2026-03-02T08:01:00Z"), &skip);
        assert!(d[0].send && !d[0].late);
    }

    #[test]
    fn a_new_or_disabled_job_sends_nothing() {
        let j = job("period = \"day\"\nsend = [\"daily 08:00\"]\n");
        assert!(due(std::slice::from_ref(&j), &HashMap::new(), ts("2026-03-18T12:00:00Z"), &DeliveryConfig::default()).is_empty());
        let off = job("period = \"day\"\nsend = [\"daily 08:00\"]\nenabled = false\n");
        let cursors = HashMap::from([("j".to_owned(), 0)]);
        assert!(due(&[off], &cursors, ts("2026-03-18T12:00:00Z"), &DeliveryConfig::default()).is_empty());
    }
}
