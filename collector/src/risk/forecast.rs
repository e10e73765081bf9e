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
    let n = points.len() as f64;
    let xs = || points.iter().map(|p| (p.0 - origin) as f64 / DAY_MS);
    let mean_x = xs().sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (x, (_, y)) in xs().zip(points) {
        sxx += (x - mean_x) * (x - mean_x);
        sxy += (x - mean_x) * (y - mean_y);
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some(Trend { origin_ms: origin, intercept: mean_y - slope * mean_x, slope_per_day: slope })
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
}
