//! Every fixed piece of report text, keyed by language.
//!
//! One `static` table per [`Lang`]: no other file holds report wording. Dates and numbers are
//! formatted here too, because the order of day and month, month names and the thousands and
//! decimal separators are language matters.

use jiff::civil::Date;

use crate::risk::Light;
use crate::risk::change::Change;

/// The language of a report, its mails and the pages a recipient sees; written `"en"` or
/// `"de"` in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lang {
    /// English: `3 Jun 2024`, `1,234.5`.
    #[default]
    En,
    /// German: `03.06.2024`, `1.234,5`.
    De,
}

impl Lang {
    /// `en` or `de`, as written in the configuration and the data manifest.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }
}

/// The fixed texts of one language. Field names say where a text appears.
#[derive(Debug)]
pub struct Strings {
    /// The language these texts are in.
    pub lang: Lang,
    /// The language's own name, for the data manifest.
    pub language_name: &'static str,
    /// PDF document title and cover heading.
    pub title: &'static str,
    /// Product name in the cover band and footer.
    pub product: &'static str,
    /// Cover label: tenant.
    pub tenant: &'static str,
    /// Cover label: period.
    pub period: &'static str,
    /// Cover label: time zone.
    pub time_zone: &'static str,
    /// Cover label: generation time.
    pub generated_at: &'static str,
    /// Note when the requested zone is unknown; `{}` is the zone as requested.
    pub unknown_zone: &'static str,
    /// Label of the overall risk lamp.
    pub overall: &'static str,
    /// "Score"; followed by `n / 100`.
    pub score: &'static str,
    /// Heading of the executive summary.
    pub summary: &'static str,
    /// Counts under the summary lamp: `{devices}` and `{findings}` are replaced.
    pub summary_counts: &'static str,
    /// Heading: the three most important recommendations.
    pub top_recommendations: &'static str,
    /// Sentence instead of the top recommendations when there are none.
    pub no_recommendations: &'static str,
    /// Heading of the change since the last report.
    pub changes: &'static str,
    /// Label before the previous period's dates.
    pub compared_with: &'static str,
    /// Sentence when there was no previous period to compare with.
    pub no_previous: &'static str,
    /// Change names.
    pub change_new: &'static str,
    /// See `change_new`.
    pub change_open: &'static str,
    /// See `change_new`.
    pub change_fixed: &'static str,
    /// Heading of the statistics overview.
    pub statistics: &'static str,
    /// Statistics: alerts of every kind.
    pub events: &'static str,
    /// Statistics: alerts a security engine acted on.
    pub detections: &'static str,
    /// Statistics: distinct addresses and file hashes.
    pub indicators: &'static str,
    /// Heading of the lights per service on the summary page.
    pub service_lights: &'static str,
    /// Heading of the overview of all services.
    pub overview: &'static str,
    /// Service names in [`crate::risk::SERVICES`] order.
    pub services: [&'static str; 8],
    /// What each service covers, in [`crate::risk::SERVICES`] order.
    pub service_about: [&'static str; 8],
    /// Threats section heading.
    pub threats: &'static str,
    /// Threats intro.
    pub threats_intro: &'static str,
    /// Sub-heading: alerts per day.
    pub per_day: &'static str,
    /// Sub-heading: top signatures.
    pub top_signatures: &'static str,
    /// Sub-heading: top source addresses.
    pub top_sources: &'static str,
    /// Sub-heading: top destination addresses.
    pub top_destinations: &'static str,
    /// Sub-heading: top categories.
    pub top_categories: &'static str,
    /// Sub-heading: by severity.
    pub by_severity: &'static str,
    /// Sub-heading: by device.
    pub by_device: &'static str,
    /// Sub-heading: allowed versus blocked.
    pub allowed_blocked: &'static str,
    /// Action: allowed.
    pub allowed: &'static str,
    /// Action: blocked, quarantined or rejected.
    pub blocked: &'static str,
    /// Action not stated.
    pub action_unknown: &'static str,
    /// Sentence for a section without alerts.
    pub no_alerts: &'static str,
    /// Malware section heading.
    pub malware: &'static str,
    /// Sentence for no malware.
    pub no_malware: &'static str,
    /// Sub-heading: top detections.
    pub top_detections: &'static str,
    /// Mail quarantine heading.
    pub mail: &'static str,
    /// Sentence for no quarantined mail.
    pub no_mail: &'static str,
    /// Sub-heading: top reasons.
    pub top_reasons: &'static str,
    /// Traffic heading.
    pub traffic: &'static str,
    /// Sub-heading: per interface.
    pub per_interface: &'static str,
    /// Sub-heading: per category.
    pub per_category: &'static str,
    /// Note when only the busiest interfaces are listed; `{shown}` and `{total}` are replaced.
    pub interfaces_limited: &'static str,
    /// Sentence for no traffic data.
    pub no_traffic: &'static str,
    /// Performance heading.
    pub performance: &'static str,
    /// Performance intro: what min / avg / max mean.
    pub performance_intro: &'static str,
    /// Sub-heading of the charts.
    pub charts: &'static str,
    /// Note when only some devices get a chart; `{shown}` and `{total}` are replaced.
    pub charts_limited: &'static str,
    /// Text inside a chart without data.
    pub no_data: &'static str,
    /// Legend: CPU.
    pub cpu: &'static str,
    /// Legend: memory.
    pub memory: &'static str,
    /// Devices and licenses heading.
    pub devices: &'static str,
    /// Sentence when the tenant has no devices.
    pub no_devices: &'static str,
    /// Availability and coverage heading.
    pub availability: &'static str,
    /// Sentence when every device covered the whole period.
    pub all_covered: &'static str,
    /// Line above the gap table: `{gaps}` and `{total}` are replaced.
    pub gaps_counts: &'static str,
    /// All recommendations heading.
    pub recommendations: &'static str,
    /// Sentence shown instead of an empty findings table.
    pub no_findings: &'static str,
    /// Appendix heading.
    pub appendix: &'static str,
    /// Definitions sub-heading.
    pub definitions: &'static str,
    /// (term, definition) pairs of the appendix.
    pub defs: [(&'static str, &'static str); 8],
    /// Data manifest sub-heading.
    pub manifest: &'static str,
    /// Manifest label: data hash.
    pub data_hash: &'static str,
    /// Manifest label: rule version.
    pub rule_version: &'static str,
    /// Manifest label: language.
    pub language: &'static str,
    /// Manifest label: sections shown.
    pub sections: &'static str,
    /// The file-hash widget.
    pub files: FileStrings,
    /// The false positives of the appendix.
    pub fp: FalsePositiveStrings,
    /// Placeholder for a missing value.
    pub none: &'static str,
    /// "Page"; followed by the page number.
    pub page: &'static str,
    /// "of", between the page number and the page count.
    pub page_of: &'static str,
    /// Column headings.
    pub col_level: &'static str,
    /// Column: device.
    pub col_device: &'static str,
    /// Column: service.
    pub col_service: &'static str,
    /// Column: evidence.
    pub col_evidence: &'static str,
    /// Column: recommendation.
    pub col_recommendation: &'static str,
    /// Column: change since the last report.
    pub col_change: &'static str,
    /// Column: host name.
    pub col_hostname: &'static str,
    /// Column: model.
    pub col_model: &'static str,
    /// Column: agent version.
    pub col_agent: &'static str,
    /// Column: last seen.
    pub col_last_seen: &'static str,
    /// Column: light.
    pub col_light: &'static str,
    /// Column: score.
    pub col_score: &'static str,
    /// Column: number of findings.
    pub col_findings: &'static str,
    /// Column: what a service covers.
    pub col_about: &'static str,
    /// Column: count.
    pub col_count: &'static str,
    /// Column: share in percent.
    pub col_share: &'static str,
    /// Column: signature.
    pub col_signature: &'static str,
    /// Column: address.
    pub col_address: &'static str,
    /// Column: category.
    pub col_category: &'static str,
    /// Column: severity.
    pub col_severity: &'static str,
    /// Column: interface.
    pub col_interface: &'static str,
    /// Column: received.
    pub col_received: &'static str,
    /// Column: sent.
    pub col_sent: &'static str,
    /// Column: tenant.
    pub col_tenant: &'static str,
    /// Column: licensed.
    pub col_licensed: &'static str,
    /// Column: license expiry.
    pub col_expiry: &'static str,
    /// Column: CPU min / avg / max.
    pub col_cpu: &'static str,
    /// Column: memory min / avg / max.
    pub col_memory: &'static str,
    /// Column: disk (fullest mount) min / avg / max.
    pub col_disk: &'static str,
    /// Column: coverage.
    pub col_coverage: &'static str,
    /// Column: number of gaps.
    pub col_gaps: &'static str,
    /// Column: longest gap.
    pub col_longest_gap: &'static str,
    /// Yes.
    pub yes: &'static str,
    /// No.
    pub no: &'static str,
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
    /// Abbreviated month names, January first (English dates only).
    pub months: [&'static str; 12],
    /// Full month names, January first, for naming a month period.
    pub month_names: [&'static str; 12],
    /// An ISO week as a period's name: `{week}` and `{year}` are replaced.
    pub week_name: &'static str,
    /// A week from another first day as a period's name: `{date}` is replaced.
    pub week_from: &'static str,
    /// Thousands separator.
    pub thousands: char,
    /// Decimal separator.
    pub decimal: char,
}

static EN: Strings = Strings {
    lang: Lang::En,
    language_name: "English",
    title: "Security report",
    product: "Ampel",
    tenant: "Tenant",
    period: "Period",
    time_zone: "Time zone",
    generated_at: "Generated at",
    unknown_zone: "Unknown time zone \"{}\": times are shown in UTC.",
    overall: "Overall risk",
    score: "Score",
    summary: "Executive summary",
    summary_counts: "Devices: {devices} · findings: {findings}",
    top_recommendations: "The three most important things to do",
    no_recommendations: "Nothing to do: no risk was found in this period.",
    changes: "Since the last report",
    compared_with: "Compared with",
    no_previous: "There is no earlier period to compare with.",
    change_new: "New",
    change_open: "Still open",
    change_fixed: "Fixed",
    statistics: "Statistics overview",
    events: "Events",
    detections: "Detections",
    indicators: "Indicators",
    service_lights: "Lights per service",
    overview: "Overview of all services",
    services: ["Licenses", "Threats", "Malware", "Mail", "Availability", "Performance", "Traffic", "Coverage"],
    service_about: [
        "License state and expiry of every appliance",
        "Intrusion detection and firewall alerts",
        "Malware found by the virus scanner",
        "Mail quarantine and rejected mail",
        "Whether every device reports",
        "CPU, memory and disk usage",
        "Traffic and capture drops",
        "Share of the period with data",
    ],
    threats: "Threats",
    threats_intro: "Alerts from intrusion detection, the firewall and authentication in the period.",
    per_day: "Alerts per day",
    top_signatures: "Top 10 signatures",
    top_sources: "Top 10 sources",
    top_destinations: "Top 10 destinations",
    top_categories: "Top 10 categories",
    by_severity: "By severity",
    by_device: "By device",
    allowed_blocked: "Allowed versus blocked",
    allowed: "Allowed",
    blocked: "Blocked",
    action_unknown: "Not stated",
    no_alerts: "No alerts in this period.",
    malware: "Malware",
    no_malware: "No malware was found in this period.",
    top_detections: "Top 10 detections",
    mail: "Mail quarantine",
    no_mail: "No mail was quarantined or rejected in this period.",
    top_reasons: "Top 10 reasons",
    traffic: "Traffic",
    per_interface: "Per interface",
    per_category: "Per category",
    interfaces_limited: "The {shown} busiest of {total} interfaces.",
    no_traffic: "No traffic counters were reported in this period.",
    performance: "Performance",
    performance_intro: "Lowest, average and highest value of each device over the period, in percent (min / avg / max). Disk: the fullest mount.",
    charts: "CPU and memory over time",
    charts_limited: "Charts of the {shown} busiest of {total} devices; the table above lists all.",
    no_data: "no data",
    cpu: "CPU",
    memory: "Memory",
    devices: "Devices and licenses",
    no_devices: "No devices reported for this tenant.",
    availability: "Availability and coverage",
    all_covered: "Every device sent data throughout the period.",
    gaps_counts: "{gaps} of {total} devices did not send data throughout the period (gaps, or new in it):",
    recommendations: "All recommendations",
    no_findings: "All is well: no risk was found in this period.",
    appendix: "Appendix",
    definitions: "Definitions",
    defs: [
        ("Red", "High risk: act now."),
        ("Yellow", "Endangered: act soon."),
        ("Green", "OK: nothing found."),
        ("Grey", "Not enough data to judge."),
        ("Score", "0 to 100; 100 means no risk found. The tenant's score is capped by its worst light."),
        (
            "Events, detections, indicators",
            "Events are all alerts received; detections are alerts an engine acted on (blocked, quarantined, rejected) and all malware; indicators are distinct addresses and file hashes in alerts.",
        ),
        ("New, still open, fixed", "Compared with the previous period of the same length, by the finding's stable id."),
        (
            "Coverage",
            "Share of the period for which a device sent samples at its expected interval; a gap is a silence longer than twice that interval.",
        ),
    ],
    manifest: "Data manifest",
    data_hash: "Data hash (SHA-256)",
    rule_version: "Rule version",
    language: "Language",
    sections: "Sections",
    files: FileStrings {
        heading: "File hashes",
        intro: "The ten files most often alerted on: files the IDS saw (Suricata fileinfo) and antivirus detections, counted by their strongest hash: SHA-256, else SHA-1, else MD5. Files sent without a hash are counted by name.",
        empty: "No files with a hash or a detection in this period.",
        col_hash: "Hash",
        col_file: "File",
        col_verdict: "Verdict",
        col_devices: "Devices",
        no_hash: "no hash",
        not_flagged: "not flagged",
    },
    fp: FalsePositiveStrings {
        heading: "False positives",
        intro: "Alerts matching a [[suppress]] entry of the collector's configuration do not count in this report and drive no light; a suppressed rule's findings are left out. Each entry that matched in this period:",
        excluded: "Suppressed as false positives: {alerts} alerts and {findings} rule findings. They do not count in this report and are not listed.",
        included: "False positives are included in this report: {n} suppression entries were not applied, every alert counts.",
        none_matched: "No suppression entry matched in this period.",
        expired: "Suppression #{index} ({reason}) expired on {date}, no longer applied.",
        col_entry: "Entry",
        col_matches: "Matches",
        col_reason: "Reason",
        col_alerts: "Alerts",
        col_findings: "Findings",
        col_suppressed: "Suppressed",
        col_devices: "Devices",
    },
    none: "\u{2013}",
    page: "Page",
    page_of: "of",
    col_level: "Level",
    col_device: "Device",
    col_service: "Service",
    col_evidence: "Evidence",
    col_recommendation: "Recommendation",
    col_change: "Change",
    col_hostname: "Host name",
    col_model: "Model",
    col_agent: "Agent",
    col_last_seen: "Last seen",
    col_light: "Light",
    col_score: "Score",
    col_findings: "Findings",
    col_about: "Covers",
    col_count: "Count",
    col_share: "Share",
    col_signature: "Signature",
    col_address: "Address",
    col_category: "Category",
    col_severity: "Severity",
    col_interface: "Interface",
    col_received: "Received",
    col_sent: "Sent",
    col_tenant: "Tenant",
    col_licensed: "Licensed",
    col_expiry: "Expiry",
    col_cpu: "CPU %",
    col_memory: "Memory %",
    col_disk: "Disk %",
    col_coverage: "Coverage",
    col_gaps: "Gaps",
    col_longest_gap: "Longest gap",
    yes: "yes",
    no: "no",
    tenant_wide: "(tenant)",
    light_red: "High risk",
    light_yellow: "Endangered",
    light_green: "OK",
    light_grey: "No data",
    months: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    month_names: ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
    week_name: "week {week}, {year}",
    week_from: "week from {date}",
    thousands: ',',
    decimal: '.',
};

static DE: Strings = Strings {
    lang: Lang::De,
    language_name: "Deutsch",
    title: "Sicherheitsbericht",
    product: "Ampel",
    tenant: "Mandant",
    period: "Zeitraum",
    time_zone: "Zeitzone",
    generated_at: "Erstellt am",
    unknown_zone: "Unbekannte Zeitzone \u{201E}{}\u{201C}: Zeiten sind in UTC angegeben.",
    overall: "Gesamtrisiko",
    score: "Punktzahl",
    summary: "Zusammenfassung",
    summary_counts: "Geräte: {devices} · Befunde: {findings}",
    top_recommendations: "Die drei wichtigsten Maßnahmen",
    no_recommendations: "Nichts zu tun: In diesem Zeitraum wurde kein Risiko gefunden.",
    changes: "Seit dem letzten Bericht",
    compared_with: "Verglichen mit",
    no_previous: "Es gibt keinen früheren Zeitraum zum Vergleich.",
    change_new: "Neu",
    change_open: "Weiter offen",
    change_fixed: "Behoben",
    statistics: "Statistik-Überblick",
    events: "Ereignisse",
    detections: "Erkennungen",
    indicators: "Indikatoren",
    service_lights: "Ampeln je Dienst",
    overview: "Überblick über alle Dienste",
    services: ["Lizenzen", "Bedrohungen", "Schadsoftware", "E-Mail", "Erreichbarkeit", "Leistung", "Datenverkehr", "Abdeckung"],
    service_about: [
        "Lizenzstatus und Ablauf jeder Appliance",
        "Meldungen von Angriffserkennung und Firewall",
        "Vom Virenscanner gefundene Schadsoftware",
        "Mail-Quarantäne und abgewiesene Mails",
        "Ob jedes Gerät Daten meldet",
        "Auslastung von CPU, Speicher und Festplatte",
        "Datenverkehr und verworfene Pakete",
        "Anteil des Zeitraums mit Daten",
    ],
    threats: "Bedrohungen",
    threats_intro: "Meldungen von Angriffserkennung, Firewall und Anmeldung im Zeitraum.",
    per_day: "Meldungen pro Tag",
    top_signatures: "Top 10 Signaturen",
    top_sources: "Top 10 Quellen",
    top_destinations: "Top 10 Ziele",
    top_categories: "Top 10 Kategorien",
    by_severity: "Nach Schweregrad",
    by_device: "Nach Gerät",
    allowed_blocked: "Erlaubt und blockiert",
    allowed: "Erlaubt",
    blocked: "Blockiert",
    action_unknown: "Nicht angegeben",
    no_alerts: "Keine Meldungen in diesem Zeitraum.",
    malware: "Schadsoftware",
    no_malware: "In diesem Zeitraum wurde keine Schadsoftware gefunden.",
    top_detections: "Top 10 Funde",
    mail: "Mail-Quarantäne",
    no_mail: "In diesem Zeitraum wurde keine Mail in Quarantäne gestellt oder abgewiesen.",
    top_reasons: "Top 10 Gründe",
    traffic: "Datenverkehr",
    per_interface: "Je Schnittstelle",
    per_category: "Je Kategorie",
    interfaces_limited: "Die {shown} meistgenutzten von {total} Schnittstellen.",
    no_traffic: "In diesem Zeitraum wurden keine Verkehrszähler gemeldet.",
    performance: "Leistung",
    performance_intro: "Niedrigster, mittlerer und höchster Wert jedes Geräts im Zeitraum, in Prozent (Min. / Mittel / Max.). Festplatte: der vollste Mount.",
    charts: "CPU und Speicher im Verlauf",
    charts_limited: "Diagramme der {shown} am stärksten ausgelasteten von {total} Geräten; die Tabelle oben nennt alle.",
    no_data: "keine Daten",
    cpu: "CPU",
    memory: "Speicher",
    devices: "Geräte und Lizenzen",
    no_devices: "Für diesen Mandanten wurden keine Geräte gemeldet.",
    availability: "Erreichbarkeit und Abdeckung",
    all_covered: "Jedes Gerät hat im ganzen Zeitraum Daten gesendet.",
    gaps_counts: "{gaps} von {total} Geräten haben nicht im ganzen Zeitraum Daten gesendet (Lücken oder neu darin):",
    recommendations: "Alle Empfehlungen",
    no_findings: "Alles in Ordnung: In diesem Zeitraum wurde kein Risiko gefunden.",
    appendix: "Anhang",
    definitions: "Begriffe",
    defs: [
        ("Rot", "Hohes Risiko: sofort handeln."),
        ("Gelb", "Gefährdet: bald handeln."),
        ("Grün", "In Ordnung: nichts gefunden."),
        ("Grau", "Zu wenige Daten für ein Urteil."),
        (
            "Punktzahl",
            "0 bis 100; 100 heißt: kein Risiko gefunden. Die Punktzahl des Mandanten ist durch seine schlechteste Ampel begrenzt.",
        ),
        (
            "Ereignisse, Erkennungen, Indikatoren",
            "Ereignisse sind alle empfangenen Meldungen; Erkennungen sind Meldungen, auf die eine Engine reagiert hat (blockiert, in Quarantäne, abgewiesen), und alle Schadsoftware; Indikatoren sind verschiedene Adressen und Datei-Hashes in Meldungen.",
        ),
        ("Neu, weiter offen, behoben", "Verglichen mit dem vorigen Zeitraum gleicher Länge, anhand der festen Kennung des Befunds."),
        (
            "Abdeckung",
            "Anteil des Zeitraums, in dem ein Gerät im erwarteten Abstand Messwerte gesendet hat; eine Lücke ist eine Stille länger als der doppelte Abstand.",
        ),
    ],
    manifest: "Datennachweis",
    data_hash: "Daten-Hash (SHA-256)",
    rule_version: "Regelversion",
    language: "Sprache",
    sections: "Abschnitte",
    files: FileStrings {
        heading: "Datei-Hashes",
        intro: "Die zehn häufigsten Dateien in Alarmen: vom IDS gesehene Dateien (Suricata fileinfo) und Funde des Virenscanners, gezählt nach ihrem stärksten Hash: SHA-256, sonst SHA-1, sonst MD5. Dateien ohne Hash werden nach Namen gezählt.",
        empty: "Keine Dateien mit Hash oder Fund in diesem Zeitraum.",
        col_hash: "Hash",
        col_file: "Datei",
        col_verdict: "Befund",
        col_devices: "Geräte",
        no_hash: "kein Hash",
        not_flagged: "ohne Befund",
    },
    fp: FalsePositiveStrings {
        heading: "Fehlalarme",
        intro: "Alarme, auf die ein [[suppress]]-Eintrag der Collector-Konfiguration passt, zählen in diesem Bericht nicht und bestimmen keine Ampel; die Befunde einer unterdrückten Regel entfallen. Jeder Eintrag, der in diesem Zeitraum gegriffen hat:",
        excluded: "Als Fehlalarme unterdrückt: {alerts} Alarme und {findings} Regelbefunde. Sie zählen in diesem Bericht nicht und werden nicht aufgeführt.",
        included: "Fehlalarme sind in diesem Bericht enthalten: {n} Unterdrückungseinträge wurden nicht angewandt, jeder Alarm zählt.",
        none_matched: "Kein Unterdrückungseintrag hat in diesem Zeitraum gegriffen.",
        expired: "Unterdrückung Nr. {index} ({reason}) ist am {date} abgelaufen und wird nicht mehr angewandt.",
        col_entry: "Nr.",
        col_matches: "Trifft auf",
        col_reason: "Begründung",
        col_alerts: "Alarme",
        col_findings: "Befunde",
        col_suppressed: "Unterdrückt",
        col_devices: "Geräte",
    },
    none: "\u{2013}",
    page: "Seite",
    page_of: "von",
    col_level: "Stufe",
    col_device: "Gerät",
    col_service: "Dienst",
    col_evidence: "Beobachtung",
    col_recommendation: "Empfehlung",
    col_change: "Änderung",
    col_hostname: "Hostname",
    col_model: "Modell",
    col_agent: "Agent",
    col_last_seen: "Zuletzt gesehen",
    col_light: "Ampel",
    col_score: "Punkte",
    col_findings: "Befunde",
    col_about: "Umfasst",
    col_count: "Anzahl",
    col_share: "Anteil",
    col_signature: "Signatur",
    col_address: "Adresse",
    col_category: "Kategorie",
    col_severity: "Schweregrad",
    col_interface: "Schnittstelle",
    col_received: "Empfangen",
    col_sent: "Gesendet",
    col_tenant: "Mandant",
    col_licensed: "Lizenziert",
    col_expiry: "Ablauf",
    col_cpu: "CPU %",
    col_memory: "Speicher %",
    col_disk: "Festplatte %",
    col_coverage: "Abdeckung",
    col_gaps: "Lücken",
    col_longest_gap: "Längste Lücke",
    yes: "ja",
    no: "nein",
    tenant_wide: "(Mandant)",
    light_red: "Hohes Risiko",
    light_yellow: "Gefährdet",
    light_green: "In Ordnung",
    light_grey: "Keine Daten",
    months: ["Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"],
    month_names: ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"],
    week_name: "KW {week}/{year}",
    week_from: "Woche ab {date}",
    thousands: '.',
    decimal: ',',
};

impl Strings {
    /// The table for `lang`.
    pub fn get(lang: Lang) -> &'static Strings {
        match lang {
            Lang::En => &EN,
            Lang::De => &DE,
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

    /// Human name of a change.
    pub fn change(&self, change: Change) -> &'static str {
        match change {
            Change::New => self.change_new,
            Change::StillOpen => self.change_open,
            Change::Fixed => self.change_fixed,
        }
    }

    /// Human name of a service id (one of [`crate::risk::SERVICES`]); unknown ids as they are.
    pub fn service<'a>(&self, id: &'a str) -> &'a str {
        match crate::risk::SERVICES.iter().position(|s| *s == id) {
            Some(i) => self.services.get(i).copied().unwrap_or(id),
            None => id,
        }
    }

    /// Abbreviated month name; `month` is 1–12 as jiff gives it.
    fn month(&self, month: i8) -> &'static str {
        let idx = usize::try_from(month.clamp(1, 12) - 1).unwrap_or(0);
        self.months.get(idx).copied().unwrap_or("")
    }

    /// A full date: `3 Jun 2024` or `03.06.2024`.
    pub fn date(&self, d: Date) -> String {
        match self.lang {
            Lang::En => format!("{} {} {}", d.day(), self.month(d.month()), d.year()),
            Lang::De => format!("{:02}.{:02}.{}", d.day(), d.month(), d.year()),
        }
    }

    /// A month as a period's name: `November 2026`.
    pub fn month_name(&self, d: Date) -> String {
        let idx = usize::try_from(d.month().clamp(1, 12) - 1).unwrap_or(0);
        format!("{} {}", self.month_names.get(idx).copied().unwrap_or(""), d.year())
    }

    /// An ISO week as a period's name: `week 49, 2026` / `KW 49/2026`.
    pub fn week_name(&self, week: i8, year: i16) -> String {
        self.week_name.replace("{week}", &week.to_string()).replace("{year}", &year.to_string())
    }

    /// A week from another first day (`date`, formatted) as a period's name.
    pub fn week_from(&self, date: &str) -> String {
        self.week_from.replace("{date}", date)
    }

    /// A short date for chart ticks: `3 Jun` or `03.06.`.
    pub fn short_date(&self, d: Date) -> String {
        match self.lang {
            Lang::En => format!("{} {}", d.day(), self.month(d.month())),
            Lang::De => format!("{:02}.{:02}.", d.day(), d.month()),
        }
    }

    /// An integer with thousands separators: `12,345` or `12.345`.
    pub fn int(&self, n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(self.thousands);
            }
            out.push(c);
        }
        out
    }

    /// A number with `decimals` decimals and the language's separators; the placeholder for
    /// a value that is not finite.
    pub fn num(&self, v: f64, decimals: usize) -> String {
        if !v.is_finite() {
            return self.none.to_owned();
        }
        let s = format!("{:.*}", decimals, v.abs());
        let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
        let mut out = String::new();
        if v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
            out.push('-');
        }
        out.push_str(&self.int(whole.parse().unwrap_or(0)));
        if !frac.is_empty() {
            out.push(self.decimal);
            out.push_str(frac);
        }
        out
    }

    /// A percentage: `12.5 %` / `12,5 %`.
    pub fn pct(&self, v: f64) -> String {
        format!("{} %", self.num(v, 1))
    }

    /// A byte count in SI units: `1.2 GB` / `1,2 GB`.
    pub fn bytes(&self, n: u64) -> String {
        const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
        let mut v = n as f64;
        let mut unit = 0;
        while v >= 1000.0 && unit + 1 < UNITS.len() {
            v /= 1000.0;
            unit += 1;
        }
        if unit == 0 { format!("{} B", self.int(n)) } else { format!("{} {}", self.num(v, 1), UNITS[unit]) }
    }

    /// A duration in days, hours and minutes: `2 d 3 h`, `45 min`.
    pub fn duration(&self, ms: i64) -> String {
        let min = ms.max(0) / 60_000;
        let (d, h, m) = (min / 1440, (min / 60) % 24, min % 60);
        match (d, h) {
            (0, 0) => format!("{m} min"),
            (0, _) => format!("{h} h {m} min"),
            _ => format!("{d} d {h} h"),
        }
    }

    /// "Page n".
    /// "Page 3 of 19"; "Page 3" while the count is not known yet.
    pub fn page_no(&self, n: usize, of: Option<usize>) -> String {
        match of {
            Some(total) => format!("{} {n} {} {total}", self.page, self.page_of),
            None => format!("{} {n}", self.page),
        }
    }

    /// The note for an unknown time zone.
    pub fn unknown_zone_note(&self, zone: &str) -> String {
        self.unknown_zone.replace("{}", zone)
    }

    /// The counts line under the summary lamp.
    pub fn counts(&self, devices: usize, findings: usize) -> String {
        self.summary_counts.replace("{devices}", &self.int(devices as u64)).replace("{findings}", &self.int(findings as u64))
    }

    /// Every fixed text (and more: field names), so that the font subset is sure to hold their
    /// characters. `Debug` prints every string field without escaping printable characters.
    pub fn all_text(&self) -> String {
        format!("{self:?}")
    }
}

/// The texts of the file-hash widget.
#[derive(Debug)]
pub struct FileStrings {
    /// Heading.
    pub heading: &'static str,
    /// What is counted and how.
    pub intro: &'static str,
    /// Sentence when there are no files.
    pub empty: &'static str,
    /// Column: the hash.
    pub col_hash: &'static str,
    /// Column: file name or path.
    pub col_file: &'static str,
    /// Column: detection or matched signature.
    pub col_verdict: &'static str,
    /// Column: devices that saw the file.
    pub col_devices: &'static str,
    /// In the hash column of a file sent without a hash.
    pub no_hash: &'static str,
    /// In the verdict column of a file no engine flagged.
    pub not_flagged: &'static str,
}

/// The texts of the appendix's false positives.
#[derive(Debug)]
pub struct FalsePositiveStrings {
    /// Sub-heading.
    pub heading: &'static str,
    /// Above the table of entries that matched.
    pub intro: &'static str,
    /// `false-positives = "exclude"`: `{alerts}` and `{findings}` are replaced.
    pub excluded: &'static str,
    /// `false-positives = "include"`: `{n}` is replaced.
    pub included: &'static str,
    /// No entry matched.
    pub none_matched: &'static str,
    /// An expired entry: `{index}`, `{reason}` and `{date}` are replaced.
    pub expired: &'static str,
    /// Column: the entry's number.
    pub col_entry: &'static str,
    /// Column: what it matches.
    pub col_matches: &'static str,
    /// Column: its reason.
    pub col_reason: &'static str,
    /// Column: alerts suppressed.
    pub col_alerts: &'static str,
    /// Column: findings dropped.
    pub col_findings: &'static str,
    /// Column: the signatures or rules suppressed.
    pub col_suppressed: &'static str,
    /// Column: devices.
    pub col_devices: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_follow_the_language() {
        let (en, de) = (Strings::get(Lang::En), Strings::get(Lang::De));
        assert_eq!((en.int(1_234_567), de.int(1_234_567)), ("1,234,567".to_owned(), "1.234.567".to_owned()));
        assert_eq!((en.int(0), en.int(999), en.int(1000)), ("0".to_owned(), "999".to_owned(), "1,000".to_owned()));
        assert_eq!((en.num(1234.56, 1), de.num(1234.56, 1)), ("1,234.6".to_owned(), "1.234,6".to_owned()));
        assert_eq!((en.num(-0.04, 1), en.num(f64::NAN, 1)), ("0.0".to_owned(), "\u{2013}".to_owned()));
        assert_eq!((en.bytes(999), de.bytes(1_500_000)), ("999 B".to_owned(), "1,5 MB".to_owned()));
        let d = Date::new(2024, 6, 3).unwrap_or_default();
        assert_eq!((en.date(d), de.date(d)), ("3 Jun 2024".to_owned(), "03.06.2024".to_owned()));
        assert_eq!(en.duration(26 * 3_600_000), "1 d 2 h");
        assert!(de.all_text().contains("Schweregrad") && de.all_text().contains('ß'));
    }
}
