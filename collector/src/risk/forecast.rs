//! Trend forecasts: an ordinary least-squares line through a series, and when it crosses a
//! level. Used to turn a disk yellow days before it is full.

/// A fitted line `value = intercept + slope × (t − origin)`, `t` in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Time the line is anchored at (the first sample), Unix ms; keeps the numbers small.
    pub origin_ms: i64,
    /// Value at `origin_ms`.
    pub intercept: f64,
    /// Change per day.
    pub slope_per_day: f64,
}

const DAY_MS: f64 = 86_400_000.0;

impl Trend {
    /// Value of the line at `t_ms`.
    pub fn at(&self, t_ms: i64) -> f64 {
        self.intercept + self.slope_per_day * ((t_ms - self.origin_ms) as f64 / DAY_MS)
    }

    /// When the line reaches `level`, Unix ms; `None` when it never does going forward (flat
    /// or falling).
    pub fn reaches(&self, level: f64) -> Option<i64> {
        if self.slope_per_day <= 0.0 || !self.slope_per_day.is_finite() {
            return None;
        }
        let days = (level - self.intercept) / self.slope_per_day;
        let ms = days * DAY_MS + self.origin_ms as f64;
        // Saturate instead of wrapping for absurd trends.
        Some(if ms >= i64::MAX as f64 {
            i64::MAX
        } else if ms <= i64::MIN as f64 {
            i64::MIN
        } else {
            ms as i64
        })
    }
}

/// Least-squares fit of `points` (time-ordered or not). `None` with fewer than two distinct
/// times.
pub fn fit(points: &[(i64, f64)]) -> Option<Trend> {
    let origin = points.iter().map(|p| p.0).min()?;
    let mut f = Fit::new(origin);
    for &(t, y) in points {
        f.first_pass(t, y);
    }
    for &(t, y) in points {
        f.second_pass(t, y);
    }
    f.trend()
}

/// [`fit`] for points that stream past, e.g. read from the store a day at a time: the same
/// points go through [`Fit::first_pass`] and then, in the same order, through
/// [`Fit::second_pass`]. The arithmetic is [`fit`]'s, operation for operation, so both give
/// bit-identical trends; a one-pass formula (sums of squares) would not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    origin_ms: i64,
    first: u64,
    second: u64,
    sum_x: f64,
    sum_y: f64,
    sxx: f64,
    sxy: f64,
}

impl Fit {
    /// A fit anchored at `origin_ms`: the earliest point's time.
    pub fn new(origin_ms: i64) -> Fit {
        // Sums start at -0.0, as `Iterator::sum` of floats does.
        Fit { origin_ms, first: 0, second: 0, sum_x: -0.0, sum_y: -0.0, sxx: 0.0, sxy: 0.0 }
    }

    fn x(&self, t_ms: i64) -> f64 {
        (t_ms - self.origin_ms) as f64 / DAY_MS
    }

    /// First pass: one point, for the means.
    pub fn first_pass(&mut self, t_ms: i64, y: f64) {
        self.first += 1;
        self.sum_x += self.x(t_ms);
        self.sum_y += y;
    }

    fn means(&self) -> (f64, f64) {
        let n = self.first as f64;
        (self.sum_x / n, self.sum_y / n)
    }

    /// Second pass: the same point again, for the spread around the means.
    pub fn second_pass(&mut self, t_ms: i64, y: f64) {
        let (mean_x, mean_y) = self.means();
        let x = self.x(t_ms);
        self.second += 1;
        self.sxx += (x - mean_x) * (x - mean_x);
        self.sxy += (x - mean_x) * (y - mean_y);
    }

    /// Points seen by the first and by the second pass; they differ when the data changed
    /// between the passes.
    pub fn passes(&self) -> (u64, u64) {
        (self.first, self.second)
    }

    /// The fitted line; `None` with fewer than two distinct times, or when the two passes did
    /// not see the same number of points.
    pub fn trend(&self) -> Option<Trend> {
        if self.first == 0 || self.first != self.second || self.sxx <= 0.0 {
            return None;
        }
        let (mean_x, mean_y) = self.means();
        let slope = self.sxy / self.sxx;
        Some(Trend { origin_ms: self.origin_ms, intercept: mean_y - slope * mean_x, slope_per_day: slope })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn an_exact_line_is_recovered() {
        // 50 % growing 2 points a day, sampled hourly for 3 days.
        let pts: Vec<(i64, f64)> = (0..72).map(|h| (1_000 * DAY + h * 3_600_000, 50.0 + 2.0 * h as f64 / 24.0)).collect();
        let t = fit(&pts).unwrap();
        assert!((t.slope_per_day - 2.0).abs() < 1e-9, "{t:?}");
        assert!((t.intercept - 50.0).abs() < 1e-9);
        // Full (100 %) 25 days after the first sample.
        assert_eq!(t.reaches(100.0), Some(1_025 * DAY));
        assert!((t.at(1_010 * DAY) - 70.0).abs() < 1e-9);
    }

    #[test]
    fn noise_averages_out() {
        // +1/day with ±0.5 alternating noise: the slope stays close to 1.
        let pts: Vec<(i64, f64)> = (0..200).map(|i| (i * DAY / 10, 10.0 + i as f64 / 10.0 + if i % 2 == 0 { 0.5 } else { -0.5 })).collect();
        let t = fit(&pts).unwrap();
        assert!((t.slope_per_day - 1.0).abs() < 0.01, "{t:?}");
    }

    #[test]
    fn flat_falling_and_degenerate_series_never_fill() {
        assert_eq!(fit(&[(0, 50.0), (DAY, 50.0)]).unwrap().reaches(100.0), None);
        assert_eq!(fit(&[(0, 60.0), (DAY, 50.0)]).unwrap().reaches(100.0), None);
        assert!(fit(&[(5, 50.0), (5, 60.0)]).is_none());
        assert!(fit(&[]).is_none());
        assert!(fit(&[(0, 1.0)]).is_none());
    }

    #[test]
    fn streamed_in_pieces_the_fit_is_bit_identical() {
        let pts: Vec<(i64, f64)> = (0..5_000).map(|i| (1_000 * DAY + i * 61_000, 50.0 + (i % 7) as f64 * 0.1 + i as f64 * 1e-4)).collect();
        let mut f = Fit::new(pts[0].0);
        for chunk in pts.chunks(333) {
            chunk.iter().for_each(|&(t, y)| f.first_pass(t, y));
        }
        for chunk in pts.chunks(1_000) {
            chunk.iter().for_each(|&(t, y)| f.second_pass(t, y));
        }
        assert_eq!(f.trend(), fit(&pts));
        assert!(f.trend().is_some());
        // A second pass that saw another number of points gives no trend rather than a wrong one.
        let mut g = Fit::new(0);
        g.first_pass(0, 1.0);
        g.first_pass(DAY, 2.0);
        g.second_pass(0, 1.0);
        assert_eq!((g.passes(), g.trend()), ((2, 1), None));
    }
}
