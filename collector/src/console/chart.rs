//! Line charts as inline SVG: presentation attributes only (the CSP allows no inline style),
//! a `<title>` and `aria-label` saying what the chart shows, labelled axes with units, and a
//! min / avg / max table under each chart that is also its legend. Lines are drawn from
//! buckets of a known width, so two points further apart than a bucket and a half have no
//! data between them: the line stops there and starts again (a gap, never a line across it).

use jiff::tz::TimeZone;
use maud::{Markup, html};

use super::words::Words;
use crate::report::Stat;

/// The drawing's size in SVG units; it scales to the page's width.
// Small enough that its 14-unit text is still 10 px on a 390 px phone.
const W: f64 = 480.0;
const H: f64 = 180.0;
/// The plot area inside it: room for the value labels on the left and the times below.
const LEFT: f64 = 86.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;

/// Colour and dash pattern per line, so lines differ without colour too.
const PENS: [(&str, &str); 6] =
    [("#0d47a1", "none"), ("#e65100", "7 4"), ("#2e7d32", "2 3"), ("#6a1b9a", "9 3 2 3"), ("#00695c", "4 4"), ("#ad1457", "1 3")];

/// What a chart's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    /// 0 to 100 percent.
    Percent,
    /// Bits per second, from 0 to the largest value (rounded up to 1, 2 or 5 times a power of 10).
    BitsPerSecond,
}

impl Unit {
    fn name(self, w: &Words) -> &'static str {
        let [percent, bits] = w.units;
        match self {
            Unit::Percent => percent,
            Unit::BitsPerSecond => bits,
        }
    }

    /// A value as the axis and the table write it.
    pub(super) fn format(self, v: f64, w: &Words) -> String {
        let s = w.strings();
        match self {
            Unit::Percent => s.pct(v),
            Unit::BitsPerSecond => {
                let (div, prefix) = [(1e9, "G"), (1e6, "M"), (1e3, "k")].into_iter().find(|(d, _)| v.abs() >= *d).unwrap_or((1.0, ""));
                let digits = if div == 1.0 { 0 } else { 1 };
                format!("{} {prefix}bit/s", s.num(v / div, digits))
            }
        }
    }

    /// The top of the value axis.
    fn top(self, lines: &[Line<'_>]) -> f64 {
        match self {
            Unit::Percent => 100.0,
            Unit::BitsPerSecond => {
                let max = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.0, f64::max);
                nice_ceiling(max)
            }
        }
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `x` (1 for nothing).
fn nice_ceiling(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|v| *v >= x).unwrap_or(10.0 * power)
}

/// One line: a name for the legend and the table, its points, and its min / avg / max over
/// the raw samples when known (else taken from the points).
pub(super) struct Line<'a> {
    /// What the line is ("received", "/var").
    pub name: &'a str,
    /// (Unix ms, value) per bucket with data, time-ordered.
    pub points: &'a [(i64, f64)],
    /// Min / avg / max of the samples behind the points.
    pub stat: Option<Stat>,
}

/// A chart over `[start_ms, end_ms)` of lines bucketed by `step_ms`, times in `zone`.
pub(super) struct Chart<'a> {
    /// The caption, without the unit.
    pub title: &'a str,
    /// What the values are.
    pub unit: Unit,
    /// The period, Unix ms.
    pub start_ms: i64,
    /// Its end (exclusive).
    pub end_ms: i64,
    /// The buckets' width: points further apart than one and a half of it have a gap between.
    pub step_ms: i64,
    /// The lines.
    pub lines: Vec<Line<'a>>,
    /// Where the time labels are.
    pub zone: &'a TimeZone,
    /// The words of the page (unit names, the table's head, times and numbers).
    pub words: &'static Words,
}

/// The runs of `points` without a gap: consecutive finite points at most 1.5 buckets apart.
pub(super) fn runs(points: &[(i64, f64)], step_ms: i64) -> Vec<&[(i64, f64)]> {
    let max_gap = step_ms.saturating_add(step_ms / 2);
    points
        .split(|p| !p.1.is_finite())
        .flat_map(|finite| finite.chunk_by(|a, b| b.0.saturating_sub(a.0) <= max_gap))
        .filter(|run| !run.is_empty())
        .collect()
}

impl Chart<'_> {
    fn x(&self, t: i64) -> f64 {
        let span = (self.end_ms - self.start_ms).max(1) as f64;
        LEFT + (t - self.start_ms) as f64 / span * (W - LEFT - RIGHT)
    }

    fn y(&self, v: f64, top: f64) -> f64 {
        TOP + (1.0 - (v / top).clamp(0.0, 1.0)) * (H - TOP - BOTTOM)
    }

    fn time(&self, ms: i64) -> String {
        let Ok(t) = jiff::Timestamp::from_millisecond(ms) else { return ms.to_string() };
        let local = t.to_zoned(self.zone.clone());
        let s = self.words.strings();
        if self.end_ms - self.start_ms <= 3 * 86_400_000 {
            format!("{} {}", s.short_date(local.date()), local.strftime("%H:%M"))
        } else {
            s.date(local.date())
        }
    }

    /// The text alternative: what is drawn, over which time, where the figures are.
    fn alternative(&self) -> String {
        let names: Vec<&str> = self.lines.iter().map(|l| l.name).collect();
        let gaps: usize = self.lines.iter().map(|l| runs(l.points, self.step_ms).len().saturating_sub(1)).sum();
        let w = self.words;
        (w.chart_alternative)(self.title, self.unit.name(w), &names.join(", "), &self.time(self.start_ms), &self.time(self.end_ms), gaps)
    }

    fn axes(&self, top: f64) -> Markup {
        let (x0, x1, y1) = (LEFT, W - RIGHT, H - BOTTOM);
        let mid = self.start_ms + (self.end_ms - self.start_ms) / 2;
        html! {
            rect x=(x0) y=(TOP) width=(x1 - x0) height=(y1 - TOP) fill="#f5f5f5" {}
            @for v in [0.0, top / 2.0, top] {
                @let y = self.y(v, top);
                line x1=(x0) y1=(y) x2=(x1) y2=(y) stroke="#bdbdbd" stroke-width="1" {}
                text x=(x0 - 4.0) y=(y + 5.0) text-anchor="end" font-size="14" fill="#333" { (self.unit.format(v, self.words)) }
            }
            @for (t, anchor) in [(self.start_ms, "start"), (mid, "middle"), (self.end_ms, "end")] {
                text x=(self.x(t)) y=(H - 8.0) text-anchor=(anchor) font-size="14" fill="#333" { (self.time(t)) }
            }
        }
    }

    fn line(&self, line: &Line<'_>, (colour, dash): (&str, &str), top: f64) -> Markup {
        let xy = |p: &(i64, f64)| format!("{:.1},{:.1}", self.x(p.0), self.y(p.1, top));
        html! {
            @for run in runs(line.points, self.step_ms) {
                @if let [p] = run {
                    circle cx=(format!("{:.1}", self.x(p.0))) cy=(format!("{:.1}", self.y(p.1, top))) r="2.5" fill=(colour) {}
                } @else {
                    polyline points=(run.iter().map(xy).collect::<Vec<_>>().join(" ")) fill="none" stroke=(colour) stroke-width="2" stroke-dasharray=(dash) {}
                }
            }
        }
    }

    fn table(&self) -> Markup {
        let (unit, w) = (self.unit, self.words);
        let [line, min, avg, max] = w.chart_columns;
        html! {
            table.figures {
                thead { tr { th scope="col" { (line) } th scope="col" { (min) } th scope="col" { (avg) } th scope="col" { (max) } } }
                tbody { @for (i, l) in self.lines.iter().enumerate() {
                    @let (colour, dash) = PENS[i % PENS.len()];
                    tr {
                        th scope="row" {
                            svg.swatch width="28" height="10" aria-hidden="true" { line x1="0" y1="5" x2="28" y2="5" stroke=(colour) stroke-width="3" stroke-dasharray=(dash) {} }
                            (l.name)
                        }
                        @match l.stat.or_else(|| Stat::of(l.points)) {
                            Some(s) => { td.num { (unit.format(s.min, w)) } td.num { (unit.format(s.avg, w)) } td.num { (unit.format(s.max, w)) } }
                            None => { td colspan="3" { (w.no_samples) } }
                        }
                    }
                } }
            }
        }
    }
}

/// The chart as a figure: caption with the unit, the SVG, the min / avg / max table; or the
/// caption and "No samples in this period." when no line has a point.
pub(super) fn chart(c: &Chart<'_>) -> Markup {
    if c.lines.iter().all(|l| l.points.is_empty()) {
        return html! { figure.chart { figcaption { (c.title) } p { (c.words.no_samples_period) } } };
    }
    let top = c.unit.top(&c.lines);
    let alternative = c.alternative();
    let viewbox = format!("0 0 {W} {H}");
    html! {
        figure.chart {
            figcaption { (c.title) " (" (c.unit.name(c.words)) ")" }
            svg.chart viewBox=(viewbox) role="img" aria-label=(alternative) {
                title { (alternative) }
                (c.axes(top))
                @for (i, l) in c.lines.iter().enumerate() { (c.line(l, PENS[i % PENS.len()], top)) }
            }
            (c.table())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: i64 = 300_000;

    fn chart_of(points: &[(i64, f64)], unit: Unit) -> String {
        let zone = TimeZone::UTC;
        let c = Chart {
            title: "Eth0",
            unit,
            start_ms: 0,
            end_ms: 100 * STEP,
            step_ms: STEP,
            lines: vec![Line { name: "received", points, stat: None }],
            zone: &zone,
            words: Words::get(crate::report::Lang::En),
        };
        chart(&c).into_string()
    }

    /// Three buckets, a silence of ten, three more and one alone: two lines and a dot, never
    /// a line across the silence.
    #[test]
    fn a_gap_in_the_data_breaks_the_line() {
        let at = |k: i64, v: f64| (k * STEP + STEP / 2, v);
        let points = [at(0, 10.0), at(1, 20.0), at(2, 30.0), at(13, 40.0), at(14, 50.0), at(15, 60.0), at(30, 5.0)];
        let lengths: Vec<usize> = runs(&points, STEP).iter().map(|r| r.len()).collect();
        assert_eq!(lengths, vec![3, 3, 1]);
        let svg = chart_of(&points, Unit::Percent);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        assert!(svg.contains("with 2 gaps in the data"), "{svg}");
        // Without the silence, one line.
        let joined: Vec<(i64, f64)> = (0..6).map(|k| at(k, 1.0)).collect();
        assert_eq!(chart_of(&joined, Unit::Percent).matches("<polyline").count(), 1);
        // A value that is not a number is a gap too.
        assert_eq!(runs(&[at(0, 1.0), at(1, f64::NAN), at(2, 1.0), at(3, 1.0)], STEP).len(), 2);
    }

    #[test]
    fn the_chart_says_what_it_shows_with_units_and_figures() {
        let points = [(STEP, 1_000_000.0), (2 * STEP, 3_000_000.0)];
        let svg = chart_of(&points, Unit::BitsPerSecond);
        assert!(svg.contains("<title>Eth0 in bits per second (received) from 1 Jan 00:00 to 1 Jan 08:20;"), "{svg}");
        assert!(svg.contains("role=\"img\" aria-label=\"Eth0 in bits per second"), "{svg}");
        // The axis goes to 5 Mbit/s, the table has the extremes and the mean.
        assert!(svg.contains(">5.0 Mbit/s</text>") && svg.contains(">0 bit/s</text>"), "{svg}");
        assert!(
            svg.contains("<td class=\"num\">1.0 Mbit/s</td><td class=\"num\">2.0 Mbit/s</td><td class=\"num\">3.0 Mbit/s</td>"),
            "{svg}"
        );
        assert!(chart_of(&[], Unit::Percent).contains("No samples in this period."));
        assert_eq!((nice_ceiling(0.0), nice_ceiling(7.0), nice_ceiling(1200.0), nice_ceiling(2000.0)), (1.0, 10.0, 2000.0, 2000.0));
    }
}
