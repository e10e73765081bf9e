//! The sections a report definition selects (`widgets = [...]` in a `[[jobs]]` entry).
//!
//! The cover is always there. An empty list means every widget, which is the default: a
//! recipient who was not asked gets the whole report. Unknown names are refused when the
//! configuration is read, with the list of known ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// One selectable part of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Widget {
    /// Executive summary: tenant light and score, lights per service, top three
    /// recommendations, change since the last report.
    Summary,
    /// Statistics overview: events, detections, indicators.
    Statistics,
    /// Overview table of all services.
    Overview,
    /// Threats: alerts per day, actions, severity, devices.
    Threats,
    /// The top-N tables of threats, malware and mail (signatures, sources, destinations,
    /// categories).
    TopTables,
    /// Malware section.
    Malware,
    /// Mail quarantine section.
    Mail,
    /// The ten files most often alerted on: hash, name, verdict, count, devices.
    FileHashes,
    /// Traffic per interface and category.
    Traffic,
    /// Performance: CPU, memory, disk min / avg / max per device.
    Performance,
    /// CPU and memory charts per device.
    Charts,
    /// Devices and licenses table.
    Devices,
    /// Availability and coverage (gaps).
    Availability,
    /// All recommendations (the findings table).
    Recommendations,
    /// Appendix: definitions, data manifest and the false positives left out.
    Appendix,
}

impl Widget {
    /// Every widget, in report order.
    pub const ALL: [Widget; 15] = [
        Widget::Summary,
        Widget::Statistics,
        Widget::Overview,
        Widget::Threats,
        Widget::TopTables,
        Widget::Malware,
        Widget::Mail,
        Widget::FileHashes,
        Widget::Traffic,
        Widget::Performance,
        Widget::Charts,
        Widget::Devices,
        Widget::Availability,
        Widget::Recommendations,
        Widget::Appendix,
    ];

    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Widget::Summary => "summary",
            Widget::Statistics => "statistics",
            Widget::Overview => "overview",
            Widget::Threats => "threats",
            Widget::TopTables => "top-tables",
            Widget::Malware => "malware",
            Widget::Mail => "mail",
            Widget::FileHashes => "file-hashes",
            Widget::Traffic => "traffic",
            Widget::Performance => "performance",
            Widget::Charts => "charts",
            Widget::Devices => "devices",
            Widget::Availability => "availability",
            Widget::Recommendations => "recommendations",
            Widget::Appendix => "appendix",
        }
    }
}

impl FromStr for Widget {
    type Err = String;
    fn from_str(s: &str) -> Result<Widget, String> {
        Widget::ALL.into_iter().find(|w| w.name() == s.trim()).ok_or_else(|| {
            let names: Vec<&str> = Widget::ALL.iter().map(|w| w.name()).collect();
            format!("unknown report widget {s:?}; known widgets: {}", names.join(", "))
        })
    }
}

impl<'de> Deserialize<'de> for Widget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Widget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much of the report a recipient gets (`depth` of a job or a recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Depth {
    /// Every selected widget.
    #[default]
    Full,
    /// The cover, the executive summary, the overview of all services and the findings
    /// (all recommendations): what a manager reads; of those only the ones selected.
    Summary,
}

impl Depth {
    /// The widgets a summary keeps.
    pub const SUMMARY: [Widget; 3] = [Widget::Summary, Widget::Overview, Widget::Recommendations];

    /// `full` or `summary`.
    pub fn name(self) -> &'static str {
        match self {
            Depth::Full => "full",
            Depth::Summary => "summary",
        }
    }
}

/// The widgets a report shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widgets(Vec<Widget>);

impl Default for Widgets {
    /// Every widget.
    fn default() -> Widgets {
        Widgets(Widget::ALL.to_vec())
    }
}

impl Widgets {
    /// The widgets of a report definition; an empty list means all of them.
    pub fn from_list(list: &[Widget]) -> Widgets {
        if list.is_empty() {
            return Widgets::default();
        }
        let mut v = list.to_vec();
        v.sort_unstable();
        v.dedup();
        Widgets(v)
    }

    /// These widgets as `depth` shows them.
    pub fn at_depth(mut self, depth: Depth) -> Widgets {
        if depth == Depth::Summary {
            self.0.retain(|w| Depth::SUMMARY.contains(w));
        }
        self
    }

    /// Whether `w` is shown.
    pub fn has(&self, w: Widget) -> bool {
        self.0.contains(&w)
    }

    /// Whether every widget is shown.
    pub fn is_all(&self) -> bool {
        self.0.len() == Widget::ALL.len()
    }

    /// The names, comma-separated, for the data manifest.
    pub fn names(&self) -> String {
        self.0.iter().map(|w| w.name()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for w in Widget::ALL {
            assert_eq!(w.name().parse::<Widget>(), Ok(w));
        }
        let err = "pie-chart".parse::<Widget>().unwrap_err();
        assert!(err.contains("pie-chart") && err.contains("top-tables"), "{err}");
        assert!(Widgets::from_list(&[]).is_all());
        let some = Widgets::from_list(&[Widget::Threats, Widget::Summary, Widget::Threats]);
        assert_eq!(some.names(), "summary, threats");
        assert!(!some.has(Widget::Charts));
    }
}
