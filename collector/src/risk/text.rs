//! The rule catalogue: every built-in rule id with what to do about its findings, in English
//! and German. One table, so a new language is one more column and a new rule one more row.

/// One row of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct RuleText {
    /// Rule id; starts with its service.
    pub rule: &'static str,
    /// Recommendation in English.
    pub en: &'static str,
    /// Recommendation in German.
    pub de: &'static str,
}

/// Every built-in rule.
pub const RULES: &[RuleText] = &[
    RuleText {
        rule: "license.expired",
        en: "Renew the license now: with an expired license the appliance stops updating signatures and may stop filtering.",
        de: "Lizenz jetzt verlängern: Mit abgelaufener Lizenz erhält die Appliance keine Signatur-Updates mehr und filtert womöglich nicht mehr.",
    },
    RuleText {
        rule: "license.expiring",
        en: "Order the license renewal now so that it is in place before the expiry date.",
        de: "Lizenzverlängerung jetzt bestellen, damit sie vor dem Ablaufdatum eingespielt ist.",
    },
    RuleText {
        rule: "license.expiry-forecast",
        en: "The license expires before the next report: plan the renewal with the customer.",
        de: "Die Lizenz läuft vor dem nächsten Bericht ab: Verlängerung mit dem Kunden einplanen.",
    },
    RuleText {
        rule: "license.unknown",
        en: "The agent could not read the license state; check the license source in the agent's configuration and its log.",
        de: "Der Agent konnte den Lizenzstatus nicht lesen; Lizenzquelle in der Agent-Konfiguration und das Agent-Log prüfen.",
    },
    RuleText {
        rule: "license.missing",
        en: "The device never reported its license; enable the license source in the agent's configuration.",
        de: "Das Gerät hat nie einen Lizenzstatus gemeldet; die Lizenzquelle in der Agent-Konfiguration aktivieren.",
    },
    RuleText {
        rule: "threats.ids-severe",
        en: "Investigate the hosts behind the severe IDS alerts; switch the matching signatures to drop (IPS mode) where they were only alerted, and patch the targeted services.",
        de: "Die Hosts hinter den schweren IDS-Alarmen untersuchen; passende Signaturen auf Verwerfen (IPS-Modus) stellen, wo sie nur gemeldet wurden, und die angegriffenen Dienste patchen.",
    },
    RuleText {
        rule: "malware.found",
        en: "Clean or isolate the affected hosts, find how the malware got in, and make sure the antivirus quarantines instead of only reporting.",
        de: "Betroffene Hosts bereinigen oder isolieren, den Infektionsweg klären und sicherstellen, dass der Virenscanner in Quarantäne verschiebt statt nur zu melden.",
    },
    RuleText {
        rule: "mail.quarantine-spike",
        en: "Look at the quarantined mails of the last day: a wave of spam or phishing may target the tenant; warn the users and check the sender reputation filters.",
        de: "Die Quarantäne-Mails des letzten Tages prüfen: Eine Spam- oder Phishing-Welle kann den Mandanten treffen; Nutzer warnen und die Absender-Reputationsfilter prüfen.",
    },
    RuleText {
        rule: "availability.never-seen",
        en: "Install and start ampel-agent on the device with its certificate, then check `journalctl -u ampel-agent` for connection errors.",
        de: "ampel-agent mit seinem Zertifikat auf dem Gerät installieren und starten, dann `journalctl -u ampel-agent` auf Verbindungsfehler prüfen.",
    },
    RuleText {
        rule: "availability.silent",
        en: "Check that the device is powered and reachable and that ampel-agent runs; its log names the connection error.",
        de: "Prüfen, ob das Gerät eingeschaltet und erreichbar ist und ampel-agent läuft; sein Log nennt den Verbindungsfehler.",
    },
    RuleText {
        rule: "availability.certificate-expiring",
        en: "The agent's certificate renewal is failing: check the agent's log for the renewal error and that the collector's enrollment service is reachable; if needed, enroll the device again with a new token (ampel-collector pki token).",
        de: "Die Zertifikatserneuerung des Agenten schlägt fehl: Im Agent-Log den Fehler der Erneuerung suchen und prüfen, ob der Enrollment-Dienst des Collectors erreichbar ist; notfalls das Gerät mit einem neuen Token neu registrieren (ampel-collector pki token).",
    },
    RuleText {
        rule: "availability.certificate-expired",
        en: "The device certificate has expired and the collector refuses the device: make a token with ampel-collector pki token and run ampel-agent enroll on the device.",
        de: "Das Gerätezertifikat ist abgelaufen und der Collector weist das Gerät ab: mit ampel-collector pki token ein Token erzeugen und auf dem Gerät ampel-agent enroll ausführen.",
    },
    RuleText {
        rule: "performance.cpu",
        en: "Find the processes that load the CPU (IDS rule sets and antivirus scans are typical) and tune them, or size the appliance up.",
        de: "Die Prozesse finden, die die CPU belasten (typisch: IDS-Regelsätze und Virenscans), und sie anpassen oder eine größere Appliance einsetzen.",
    },
    RuleText {
        rule: "performance.memory",
        en: "Find what uses the memory; reduce IDS or proxy caches, or add memory.",
        de: "Herausfinden, was den Speicher belegt; IDS- oder Proxy-Caches verkleinern oder Speicher nachrüsten.",
    },
    RuleText {
        rule: "performance.disk",
        en: "Free space on the file system: rotate or ship logs, remove old quarantine files, or grow the volume.",
        de: "Platz auf dem Dateisystem schaffen: Logs rotieren oder auslagern, alte Quarantäne-Dateien löschen oder das Volume vergrößern.",
    },
    RuleText {
        rule: "performance.disk-full-forecast",
        en: "The file system fills up steadily: find what grows (logs, quarantine, captures) and rotate it, or grow the volume before it is full.",
        de: "Das Dateisystem füllt sich stetig: herausfinden, was wächst (Logs, Quarantäne, Mitschnitte), und es rotieren oder das Volume vergrößern, bevor es voll ist.",
    },
    RuleText {
        rule: "traffic.capture-drops",
        en: "The IDS misses packets: give it more CPU cores or capture threads, raise the ring buffer, or exclude bulk traffic from inspection.",
        de: "Das IDS verpasst Pakete: mehr CPU-Kerne oder Capture-Threads zuweisen, den Ringpuffer vergrößern oder Massenverkehr von der Prüfung ausnehmen.",
    },
    RuleText {
        rule: "coverage.gaps",
        en: "The device's data has gaps: check its network link and the agent's log for the times listed; the lights of this period rest on partial data.",
        de: "Die Daten des Geräts haben Lücken: Netzanbindung und Agent-Log zu den genannten Zeiten prüfen; die Ampeln dieses Zeitraums beruhen auf Teildaten.",
    },
    RuleText {
        rule: "coverage.no-performance-data",
        en: "Enable the performance source in the agent's configuration.",
        de: "Die Performance-Quelle in der Agent-Konfiguration aktivieren.",
    },
];

/// The catalogue row of `rule`.
pub fn rule_text(rule: &str) -> Option<&'static RuleText> {
    RULES.iter().find(|r| r.rule == rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_both_languages_and_a_known_service() {
        for r in RULES {
            assert!(!r.en.is_empty() && !r.de.is_empty(), "{}", r.rule);
            let service = r.rule.split('.').next().unwrap_or("");
            assert!(super::super::SERVICES.contains(&service), "{}", r.rule);
        }
    }
}
