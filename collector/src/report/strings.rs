//! Every fixed piece of report text, keyed by language.
//!
//! Only English exists today; German arrives with its own issue. Adding it means one more
//! [`Lang`] variant and one more `static` table: no other file holds report wording. Dates are
//! formatted here too, because month names and the order of day and month are language matters.

use jiff::civil::Date;

use crate::risk::Light;

/// A report language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English (the only language so far).
    #[default]
    En,
}

/// The fixed texts of one language.
#[derive(Debug)]
pub struct Strings {
    /// PDF document title and cover heading.
    pub title: &'static str,
    /// Product name shown in the cover band and footer.
    pub product: &'static str,
    /// Label before the tenant on the cover.
    pub tenant: &'static str,
    /// Label before the period on the cover.
    pub period: &'static str,
    /// Label before the time zone on the cover.
    pub time_zone: &'static str,
    /// Label before the generation time on the cover.
    pub generated_at: &'static str,
    /// Note when the requested zone is unknown; `{}` is the zone as requested.
    pub unknown_zone: &'static str,
    /// Label of the overall risk lamp.
    pub overall: &'static str,
    /// "Score"; followed by `n / 100`.
    pub score: &'static str,
    /// Heading of the summary section.
    pub summary: &'static str,
    /// Heading of the findings table.
    pub findings: &'static str,
    /// Sentence shown instead of an empty findings table.
    pub no_findings: &'static str,
    /// Counts under the summary lamp: `{devices}` and `{findings}` are replaced.
    pub summary_counts: &'static str,
    /// Heading of the device table.
    pub devices: &'static str,
    /// Sentence shown when the tenant has no devices.
    pub no_devices: &'static str,
    /// Heading of the per-device performance section.
    pub performance: &'static str,
    /// Text inside a chart without data.
    pub no_data: &'static str,
    /// Legend entry and series name for CPU usage.
    pub cpu: &'static str,
    /// Legend entry and series name for memory usage.
    pub memory: &'static str,
    /// Placeholder for a missing value (empty host name, never seen, bad time).
    pub none: &'static str,
    /// "Page"; followed by the page number in the footer.
    pub page: &'static str,
    /// Column headings of the findings table.
    pub col_level: &'static str,
    /// Device column heading.
    pub col_device: &'static str,
    /// Service column heading.
    pub col_service: &'static str,
    /// Evidence column heading.
    pub col_evidence: &'static str,
    /// Recommendation column heading.
    pub col_recommendation: &'static str,
    /// Host name column heading.
    pub col_hostname: &'static str,
    /// Model column heading.
    pub col_model: &'static str,
    /// OS column heading.
    pub col_os: &'static str,
    /// Agent version column heading.
    pub col_agent: &'static str,
    /// Last seen column heading.
    pub col_last_seen: &'static str,
    /// Points column heading.
    pub col_points: &'static str,
    /// Light column heading.
    pub col_light: &'static str,
    /// Device column value for tenant-wide findings.
    pub tenant_wide: &'static str,
    /// Light names: red, yellow, green, grey.
    pub light_red: &'static str,
    /// See `light_red`.
    pub light_yellow: &'static str,
    /// See `light_red`.
    pub light_green: &'static str,
    /// See `light_red`.
    pub light_grey: &'static str,
    /// Abbreviated month names, January first.
    pub months: [&'static str; 12],
}

static EN: Strings = Strings {
    title: "Security report",
    product: "Ampel",
    tenant: "Tenant",
    period: "Period",
    time_zone: "Time zone",
    generated_at: "Generated at",
    unknown_zone: "Unknown time zone \"{}\": times are shown in UTC.",
    overall: "Overall risk",
    score: "Score",
    summary: "Summary",
    findings: "Findings",
    no_findings: "All is well: no risk was found in this period.",
    summary_counts: "{devices} devices, {findings} findings",
    devices: "Devices",
    no_devices: "No devices reported for this tenant.",
    performance: "CPU and memory",
    no_data: "no data",
    cpu: "CPU",
    memory: "Memory",
    none: "\u{2013}",
    page: "Page",
    col_level: "Level",
    col_device: "Device",
    col_service: "Service",
    col_evidence: "Evidence",
    col_recommendation: "Recommendation",
    col_hostname: "Host name",
    col_model: "Model",
    col_os: "OS",
    col_agent: "Agent",
    col_last_seen: "Last seen",
    col_points: "Points",
    col_light: "Light",
    tenant_wide: "(tenant)",
    light_red: "High risk",
    light_yellow: "Endangered",
    light_green: "OK",
    light_grey: "No data",
    months: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
};

impl Strings {
    /// The table for `lang`.
    pub fn get(lang: Lang) -> &'static Strings {
        match lang {
            Lang::En => &EN,
        }
    }

    /// Human name of a light.
    pub fn light(&self, light: Light) -> &'static str {
        match light {
            Light::Red => self.light_red,
            Light::Yellow => self.light_yellow,
            Light::Green => self.light_green,
            Light::Grey => self.light_grey,
        }
    }

    /// Abbreviated month name; `month` is 1–12 as jiff gives it.
    fn month(&self, month: i8) -> &'static str {
        let idx = usize::try_from(month.clamp(1, 12) - 1).unwrap_or(0);
        self.months.get(idx).copied().unwrap_or("")
    }

    /// A full date, e.g. `3 Jun 2024`.
    pub fn date(&self, d: Date) -> String {
        format!("{} {} {}", d.day(), self.month(d.month()), d.year())
    }

    /// A short date for chart ticks, e.g. `3 Jun`.
    pub fn short_date(&self, d: Date) -> String {
        format!("{} {}", d.day(), self.month(d.month()))
    }

    /// "Page n".
    pub fn page_no(&self, n: usize) -> String {
        format!("{} {n}", self.page)
    }

    /// The note for an unknown time zone.
    pub fn unknown_zone_note(&self, zone: &str) -> String {
        self.unknown_zone.replace("{}", zone)
    }

    /// The counts line under the summary lamp.
    pub fn counts(&self, devices: usize, findings: usize) -> String {
        self.summary_counts.replace("{devices}", &devices.to_string()).replace("{findings}", &findings.to_string())
    }

    /// Every fixed text, so that the font subset is sure to hold their characters.
    pub fn all_text(&self) -> String {
        let mut s = String::new();
        for part in [
            self.title,
            self.product,
            self.tenant,
            self.period,
            self.time_zone,
            self.generated_at,
            self.unknown_zone,
            self.overall,
            self.score,
            self.summary,
            self.findings,
            self.no_findings,
            self.summary_counts,
            self.devices,
            self.no_devices,
            self.performance,
            self.no_data,
            self.cpu,
            self.memory,
            self.none,
            self.page,
            self.col_level,
            self.col_device,
            self.col_service,
            self.col_evidence,
            self.col_recommendation,
            self.col_hostname,
            self.col_model,
            self.col_os,
            self.col_agent,
            self.col_last_seen,
            self.col_points,
            self.col_light,
            self.tenant_wide,
            self.light_red,
            self.light_yellow,
            self.light_green,
            self.light_grey,
        ] {
            s.push_str(part);
        }
        for m in self.months {
            s.push_str(m);
        }
        s
    }
}
