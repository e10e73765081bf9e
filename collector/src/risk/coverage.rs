//! Coverage: how much of a period a device's samples cover, and where the gaps are.
//!
//! Works on absolute times (Unix ms), so a calendar day of 23 or 25 hours across a DST change
//! is judged on its real length: the hour that does not exist is never a gap, and the extra
//! hour is expected to hold samples like any other.

/// A stretch without samples, `[start, end)` in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Last sample before the gap (or the window start).
    pub start_ms: i64,
    /// First sample after the gap (or the window end).
    pub end_ms: i64,
    /// Time the gap misses: its length less the interval the earlier sample covers (all of
    /// it when there is no sample at all). The gaps' missing times add up to
    /// [`Coverage::missing_ms`].
    pub missing_ms: i64,
}

/// What [`coverage`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Share of the window covered, 0.0..=1.0.
    pub share: f64,
    /// Time not covered, ms.
    pub missing_ms: i64,
    /// The gaps, in time order.
    pub gaps: Vec<Gap>,
}

/// Coverage of `[start_ms, end_ms)` by samples at `times` (any order, duplicates allowed) that
/// are expected every `interval_ms`.
///
/// Each sample covers the interval after it. A stretch between two samples (or between the
/// window edge and the nearest sample) longer than twice the interval is a gap; the time it
/// misses is its length minus one interval (the interval the earlier sample covers). An empty
/// window counts as fully covered; no samples at all is one gap over the whole window.
pub fn coverage(times: &[i64], start_ms: i64, end_ms: i64, interval_ms: i64) -> Coverage {
    let mut ts: Vec<i64> = times.iter().copied().filter(|t| (start_ms..end_ms).contains(t)).collect();
    ts.sort_unstable();
    let mut scan = CoverageScan::new(start_ms, end_ms, interval_ms);
    for t in ts {
        scan.push(t);
    }
    scan.finish()
}

/// [`coverage`] over sample times that stream past in time order, e.g. read from the store a
/// day at a time: only the last sample and the gaps are kept.
#[derive(Debug, Clone)]
pub struct CoverageScan {
    start_ms: i64,
    end_ms: i64,
    interval_ms: i64,
    /// The last sample pushed, or the window start before the first.
    prev_ms: i64,
    seen: bool,
    missing_ms: i64,
    gaps: Vec<Gap>,
}

impl CoverageScan {
    /// A scan of `[start_ms, end_ms)` for samples expected every `interval_ms`.
    pub fn new(start_ms: i64, end_ms: i64, interval_ms: i64) -> CoverageScan {
        CoverageScan { start_ms, end_ms, interval_ms, prev_ms: start_ms, seen: false, missing_ms: 0, gaps: Vec::new() }
    }

    /// The window start; coverage is judged from here.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    fn judged(&self) -> bool {
        self.end_ms.saturating_sub(self.start_ms) > 0 && self.interval_ms > 0
    }

    fn stretch(&mut self, from: i64, to: i64) {
        let stretch = to - from;
        if stretch > 2 * self.interval_ms {
            let missing_ms = stretch - self.interval_ms;
            self.missing_ms += missing_ms;
            self.gaps.push(Gap { start_ms: from, end_ms: to, missing_ms });
        }
    }

    /// One sample time, not earlier than the one before; repeats and times outside the
    /// window are ignored.
    pub fn push(&mut self, t: i64) {
        if !self.judged() || !(self.start_ms..self.end_ms).contains(&t) || (self.seen && t == self.prev_ms) {
            return;
        }
        self.stretch(self.prev_ms, t);
        self.prev_ms = t;
        self.seen = true;
    }

    /// The coverage of the samples pushed.
    pub fn finish(mut self) -> Coverage {
        let len = self.end_ms.saturating_sub(self.start_ms);
        if !self.judged() {
            return Coverage { share: 1.0, missing_ms: 0, gaps: Vec::new() };
        }
        if !self.seen {
            return Coverage {
                share: 0.0,
                missing_ms: len,
                gaps: vec![Gap { start_ms: self.start_ms, end_ms: self.end_ms, missing_ms: len }],
            };
        }
        self.stretch(self.prev_ms, self.end_ms);
        let missing = self.missing_ms.min(len);
        Coverage { share: 1.0 - missing as f64 / len as f64, missing_ms: missing, gaps: self.gaps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn regular_samples_cover_everything() {
        let ts: Vec<i64> = (0..60).map(|i| i * MIN).collect();
        let c = coverage(&ts, 0, 60 * MIN, MIN);
        assert_eq!((c.share, c.missing_ms, c.gaps.len()), (1.0, 0, 0));
    }

    #[test]
    fn jitter_up_to_twice_the_interval_is_no_gap_but_more_is() {
        let ts = [0, 2 * MIN, 4 * MIN];
        assert!(coverage(&ts, 0, 5 * MIN, MIN).gaps.is_empty());
        let ts = [0, 2 * MIN + 1, 4 * MIN];
        let c = coverage(&ts, 0, 5 * MIN, MIN);
        assert_eq!(c.gaps, vec![Gap { start_ms: 0, end_ms: 2 * MIN + 1, missing_ms: MIN + 1 }]);
        assert_eq!(c.missing_ms, MIN + 1);
    }

    #[test]
    fn a_missing_hour_is_reported_with_its_edges() {
        let mut ts: Vec<i64> = (0..240).map(|i| i * MIN).collect();
        ts.retain(|t| !(60 * MIN..120 * MIN).contains(t));
        let c = coverage(&ts, 0, 240 * MIN, MIN);
        assert_eq!(c.gaps, vec![Gap { start_ms: 59 * MIN, end_ms: 120 * MIN, missing_ms: 60 * MIN }]);
        assert_eq!(c.missing_ms, 60 * MIN);
        assert!((c.share - 0.75).abs() < 1e-12);
    }

    #[test]
    fn leading_and_trailing_silence_count() {
        let ts: Vec<i64> = (30..60).map(|i| i * MIN).collect();
        let c = coverage(&ts, 0, 90 * MIN, MIN);
        assert_eq!(c.gaps.len(), 2);
        assert_eq!(c.missing_ms, 29 * MIN + 30 * MIN);
        let none = coverage(&[], 0, 90 * MIN, MIN);
        assert_eq!((none.share, none.gaps.len()), (0.0, 1));
        // Samples outside the window do not count.
        assert_eq!(coverage(&[-5, 100 * MIN], 0, 90 * MIN, MIN).share, 0.0);
    }

    #[test]
    fn a_scan_in_pieces_finds_what_the_whole_finds() {
        let mut ts: Vec<i64> = (0..24 * 60).map(|i| i * MIN + (i % 3) * 7_000).collect();
        ts.retain(|t| !(100 * MIN..200 * MIN).contains(t) && !(700 * MIN..703 * MIN).contains(t));
        let whole = coverage(&ts, 5 * MIN, 24 * 60 * MIN, MIN);
        let mut scan = CoverageScan::new(5 * MIN, 24 * 60 * MIN, MIN);
        for chunk in ts.chunks(97) {
            // A sample repeated across chunks (two series at one time) counts once.
            chunk.iter().chain(chunk.last()).for_each(|&t| scan.push(t));
        }
        assert_eq!(scan.finish(), whole);
        assert_eq!(whole.gaps.len(), 2);
        assert_eq!(CoverageScan::new(0, 0, MIN).finish().share, 1.0);
    }
}
