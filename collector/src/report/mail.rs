//! Every word of the mails and web pages a recipient sees, keyed by language: report mails
//! (subject, plain text, HTML), invitations and reminders, and the confirm, unsubscribe,
//! download and error pages. One `static` table per [`Lang`], beside the report's own
//! [`Strings`](super::strings::Strings); placeholders in braces are replaced by
//! [`fill`].

use super::Lang;

/// The fixed texts of mails and pages in one language. Field names say where a text appears.
#[derive(Debug)]
pub struct MailStrings {
    /// Default report subject: `{tenant}`, `{period}` (the period's name).
    pub subject: &'static str,
    /// First line of the body: `{tenant}`.
    pub heading: &'static str,
    /// Body: `{period}` (name) and `{dates}` (bounds with the zone).
    pub period_line: &'static str,
    /// Body: `{light}` and `{score}`.
    pub overall_line: &'static str,
    /// Light names in mails, upper case: red, yellow, green, grey.
    pub lights: [&'static str; 4],
    /// "score" before `n/100` in the HTML part.
    pub score: &'static str,
    /// Sentence when there are no findings.
    pub no_findings: &'static str,
    /// Heading above the findings.
    pub attention: &'static str,
    /// Device column value of a tenant-wide finding.
    pub tenant_wide: &'static str,
    /// Note of a late delivery.
    pub late: &'static str,
    /// Closing line when the PDF is attached.
    pub attached: &'static str,
    /// Closing line before the download link.
    pub download_intro: &'static str,
    /// The download link's text in the HTML part.
    pub download_link: &'static str,
    /// Invitation subject.
    pub invite_subject: &'static str,
    /// Invitation text: `{address}`, `{tenants}`, `{confirm}`, `{unsubscribe}`.
    pub invite_text: &'static str,
    /// Prefix of a reminder's subject.
    pub reminder_prefix: &'static str,
    /// First paragraph of a reminder.
    pub reminder_note: &'static str,
    /// Page title: the confirm form.
    pub confirm_title: &'static str,
    /// Confirm button.
    pub confirm_button: &'static str,
    /// Page title: confirmed.
    pub confirmed_title: &'static str,
    /// Confirmed page text: `{address}`.
    pub confirmed_text: &'static str,
    /// Page title: the unsubscribe form.
    pub unsubscribe_title: &'static str,
    /// Unsubscribe button.
    pub unsubscribe_button: &'static str,
    /// Page title: unsubscribed.
    pub unsubscribed_title: &'static str,
    /// Unsubscribed page text: `{address}`.
    pub unsubscribed_text: &'static str,
    /// Page title: a link that is not valid.
    pub invalid_title: &'static str,
    /// Text of that page.
    pub invalid_text: &'static str,
    /// Page title: report no longer archived.
    pub gone_title: &'static str,
    /// Text of that page.
    pub gone_text: &'static str,
    /// Page title: report moved to another collector with its tenant.
    pub moved_title: &'static str,
    /// Text of that page: `{tenant}`, `{shard}`.
    pub moved_text: &'static str,
    /// Page title: internal error.
    pub error_title: &'static str,
    /// Text of that page.
    pub error_text: &'static str,
}

static EN: MailStrings = MailStrings {
    subject: "{tenant}: security report for {period}",
    heading: "Ampel security report for {tenant}",
    period_line: "Period: {period} ({dates})",
    overall_line: "Overall: {light} (score {score} of 100)",
    lights: ["RED", "YELLOW", "GREEN", "GREY"],
    score: "score",
    no_findings: "No findings: all devices are in order.",
    attention: "What needs attention:",
    tenant_wide: "tenant",
    late: "Note: this report is delivered late.",
    attached: "The full report is attached as PDF.",
    download_intro: "Download the full report (PDF; the link expires):",
    download_link: "Download the report (PDF)",
    invite_subject: "Ampel: please confirm that you want security reports",
    invite_text: "Hello,\n\nthis address ({address}) was entered to receive Ampel security reports for: {tenants}.\n\n\
                  To receive them, confirm here:\n{confirm}\n\n\
                  If you do not want them, do nothing, or unsubscribe here:\n{unsubscribe}\n",
    reminder_prefix: "Reminder: ",
    reminder_note: "This is the only reminder; without a confirmation no reports are sent.\n\n",
    confirm_title: "Confirm security reports",
    confirm_button: "Yes, send me the reports",
    confirmed_title: "Confirmed",
    confirmed_text: "{address} will receive the reports. Every report mail has an unsubscribe link.",
    unsubscribe_title: "Unsubscribe",
    unsubscribe_button: "Unsubscribe from security reports",
    unsubscribed_title: "Unsubscribed",
    unsubscribed_text: "{address} will receive no more reports.",
    invalid_title: "Link not valid",
    invalid_text: "This link is not valid or has expired. Ask your administrator for a new invitation.",
    gone_title: "Not found",
    gone_text: "This report is no longer in the archive.",
    moved_title: "Report moved",
    moved_text: "This report has moved with the other reports of {tenant} to another collector (shard {shard}); \
                 links mailed before the move end here. Later report mails come from the new collector; ask \
                 your administrator to send this report again.",
    error_title: "Error",
    error_text: "Something went wrong; please try again later.",
};

static DE: MailStrings = MailStrings {
    subject: "{tenant}: Sicherheitsbericht für {period}",
    heading: "Ampel-Sicherheitsbericht für {tenant}",
    period_line: "Zeitraum: {period} ({dates})",
    overall_line: "Gesamt: {light} (Punktzahl {score} von 100)",
    lights: ["ROT", "GELB", "GRÜN", "GRAU"],
    score: "Punktzahl",
    no_findings: "Keine Befunde: alle Geräte sind in Ordnung.",
    attention: "Was Aufmerksamkeit braucht:",
    tenant_wide: "Mandant",
    late: "Hinweis: Dieser Bericht wird verspätet zugestellt.",
    attached: "Der vollständige Bericht ist als PDF angehängt.",
    download_intro: "Der vollständige Bericht (PDF) steht hier zum Download bereit (Link zeitlich begrenzt):",
    download_link: "Bericht herunterladen (PDF)",
    invite_subject: "Ampel: Bitte bestätigen Sie den Empfang von Sicherheitsberichten",
    invite_text: "Guten Tag,\n\ndiese Adresse ({address}) wurde für Ampel-Sicherheitsberichte eingetragen: {tenants}.\n\n\
                  Um sie zu erhalten, bestätigen Sie hier:\n{confirm}\n\n\
                  Wenn Sie sie nicht wünschen, tun Sie nichts oder melden Sie sich hier ab:\n{unsubscribe}\n",
    reminder_prefix: "Erinnerung: ",
    reminder_note: "Dies ist die einzige Erinnerung; ohne Bestätigung werden keine Berichte gesendet.\n\n",
    confirm_title: "Sicherheitsberichte bestätigen",
    confirm_button: "Ja, senden Sie mir die Berichte",
    confirmed_title: "Bestätigt",
    confirmed_text: "{address} erhält die Berichte. Jede Bericht-Mail enthält einen Link zum Abmelden.",
    unsubscribe_title: "Abmelden",
    unsubscribe_button: "Von Sicherheitsberichten abmelden",
    unsubscribed_title: "Abgemeldet",
    unsubscribed_text: "{address} erhält keine Berichte mehr.",
    invalid_title: "Link ungültig",
    invalid_text: "Dieser Link ist ungültig oder abgelaufen. Bitten Sie Ihre Administration um eine neue Einladung.",
    gone_title: "Nicht gefunden",
    gone_text: "Dieser Bericht ist nicht mehr im Archiv.",
    moved_title: "Bericht umgezogen",
    moved_text: "Dieser Bericht ist mit den übrigen Berichten von {tenant} auf einen anderen Collector umgezogen \
                 (Shard {shard}); Links aus Mails von vor dem Umzug enden hier. Spätere Bericht-Mails kommen vom \
                 neuen Collector; bitten Sie Ihre Administration, diesen Bericht erneut zu senden.",
    error_title: "Fehler",
    error_text: "Etwas ist schiefgegangen; bitte versuchen Sie es später noch einmal.",
};

impl MailStrings {
    /// The table for `lang`.
    pub fn get(lang: Lang) -> &'static MailStrings {
        match lang {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    /// Every text of the table, for tests that look for one language in another's mail.
    pub fn all(&self) -> Vec<&'static str> {
        let mut all = vec![
            self.subject,
            self.heading,
            self.period_line,
            self.overall_line,
            self.score,
            self.no_findings,
            self.attention,
            self.tenant_wide,
            self.late,
            self.attached,
            self.download_intro,
            self.download_link,
            self.invite_subject,
            self.invite_text,
            self.reminder_prefix,
            self.reminder_note,
            self.confirm_title,
            self.confirm_button,
            self.confirmed_title,
            self.confirmed_text,
            self.unsubscribe_title,
            self.unsubscribe_button,
            self.unsubscribed_title,
            self.unsubscribed_text,
            self.invalid_title,
            self.invalid_text,
            self.gone_title,
            self.gone_text,
            self.moved_title,
            self.moved_text,
            self.error_title,
            self.error_text,
        ];
        all.extend(self.lights);
        all
    }

    /// A light's name for mails, upper case; `light` is `red`, `yellow`, `green` or another
    /// (grey).
    pub fn light(&self, light: &str) -> &'static str {
        let [red, yellow, green, grey] = self.lights;
        match light {
            "red" => red,
            "yellow" => yellow,
            "green" => green,
            _ => grey,
        }
    }
}

/// `template` with each `{name}` of `values` replaced.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |s, (name, value)| s.replace(&format!("{{{name}}}"), value))
}

impl Lang {
    /// The first language of an `Accept-Language` header this collector speaks (`de-DE,
    /// en;q=0.8` → German), by the order of preference the header gives; English otherwise.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut fields = part.split(';');
            let tag = fields.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = fields.find_map(|f| f.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("de") => Lang::De,
                Some("en") => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// `en` → English, `de` → German; anything else is not a language of this collector.
    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browsers_preference_picks_the_page_language() {
        assert_eq!(Lang::from_accept_language("de-DE,de;q=0.9,en;q=0.8"), Lang::De);
        assert_eq!(Lang::from_accept_language("en-US,de;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr-FR, de;q=0.7"), Lang::De);
        assert_eq!(Lang::from_accept_language("fr"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(fill("{a} and {b}", &[("a", "x"), ("b", "y")]), "x and y");
    }
}
