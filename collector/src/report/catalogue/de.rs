//! Deutsch.

use super::Fmt;
use crate::risk::{Advice, Facts, Finding, GapFacts, Rule};

/// Die Belege von `f`.
pub(super) fn evidence(f: &Finding, x: &Fmt<'_>) -> String {
    let [start, end] = f.window_ms;
    let span = format!("{} bis {}{}", x.time(start), x.time(end), x.zone());
    let subject = f.subject.as_deref().unwrap_or("?");
    let pct = |v: f64, d: usize| format!("{} %", x.num(v, d));
    match &f.facts {
        Facts::LicenseMissing => "Das Gerät hat noch nie seinen Lizenzstatus gemeldet.".into(),
        Facts::LicenseUnknown { product, reason } => format!("Der Lizenzstatus von {product} ist nicht lesbar: {reason}."),
        Facts::NotLicensed { product, state_ms } => {
            format!("Die Appliance meldet {product} als nicht lizenziert (Stand {}).", x.time(*state_ms))
        }
        Facts::LicenseExpiry { product, expires_ms, left_ms, horizon_ms } => {
            let what = match &f.subject {
                Some(feature) => format!("des Moduls {feature} von {product}"),
                None => format!("von {product}"),
            };
            let (date, left, horizon) = (x.date(*expires_ms), x.duration_dative(*left_ms), x.duration(*horizon_ms));
            if *left_ms <= 0 {
                format!("Die Lizenz {what} ist am {date} abgelaufen (vor {}).", x.duration_dative(-left_ms))
            } else if f.rule == Rule::LicenseExpiryForecast {
                format!("Die Lizenz {what} läuft am {date} ab, in {left}: vor dem nächsten Bericht dieser Zeitraumlänge ({horizon}).")
            } else {
                format!("Die Lizenz {what} läuft am {date} ab, in {left} (Warnung {horizon} vorher).")
            }
        }
        Facts::IdsAlerts { severity, alerts, allowed, blocked, top } => format!(
            "{} IDS-Alarme mit Schweregrad {severity} oder schlimmer von {span}: {} durchgelassen, {} blockiert. Häufigste Signaturen: {}.",
            x.int(*alerts),
            x.int(*allowed),
            x.int(*blocked),
            x.signatures(top)
        ),
        Facts::Malware { detections, not_quarantined, quarantined, top } => format!(
            "{} Schadsoftware-Funde von {span}: {} nicht in Quarantäne, {} in Quarantäne. Gefunden: {}.",
            x.int(*detections),
            x.int(*not_quarantined),
            x.int(*quarantined),
            x.signatures(top)
        ),
        Facts::MailSpike { day_ms, today, daily_mean, days, factor, min_count } => {
            let before = match (*daily_mean > 0.0, *days == 1) {
                (true, true) => format!("das {}-Fache des Vortags ({})", x.num(*today as f64 / daily_mean, 1), x.num(*daily_mean, 1)),
                (true, false) => format!(
                    "das {}-Fache des Tagesmittels von {} an den {} Tagen davor",
                    x.num(*today as f64 / daily_mean, 1),
                    x.num(*daily_mean, 1),
                    x.int(*days)
                ),
                (false, true) => "am Vortag keine".into(),
                (false, false) => format!("an den {} Tagen davor keine", x.int(*days)),
            };
            format!(
                "{} Mails am {} in Quarantäne, {before} (Welle ab dem {}-Fachen und mindestens {}).",
                x.int(*today),
                x.date(*day_ms),
                x.num(*factor, 1),
                x.int(*min_count)
            )
        }
        Facts::NeverSeen => "Das Gerät ist registriert, hat aber noch nie Daten gesendet.".into(),
        Facts::Silent { last_seen_ms, silent_ms, yellow_ms, red_ms } => format!(
            "Seit {} keine Daten mehr, zuletzt am {} (gelb nach {}, rot nach {}).",
            x.duration_dative(*silent_ms),
            x.time(*last_seen_ms),
            x.duration_dative(*yellow_ms),
            x.duration_dative(*red_ms)
        ),
        Facts::Certificate { expires_ms, left_ms, warning_ms } => {
            if *left_ms <= 0 {
                format!(
                    "Das Gerätezertifikat ist am {} abgelaufen (vor {}); der Collector weist das Gerät ab.",
                    x.date(*expires_ms),
                    x.duration_dative(-left_ms)
                )
            } else {
                format!(
                    "Das Gerätezertifikat läuft am {} ab, in {} (Warnung {} vorher): Seine Erneuerung ist nicht gelungen.",
                    x.date(*expires_ms),
                    x.duration_dative(*left_ms),
                    x.duration(*warning_ms)
                )
            }
        }
        Facts::Usage { limit_percent, high_share_percent, samples, yellow_share_percent, red_share_percent } => format!(
            "{}-Auslastung bei {} oder mehr in {} von {} Messwerten von {span} (gelb über {}, rot über {}).",
            if f.rule == Rule::Memory { "Speicher" } else { "CPU" },
            pct(*limit_percent, 0),
            pct(*high_share_percent, 0),
            x.int(*samples),
            pct(*yellow_share_percent, 0),
            pct(*red_share_percent, 0)
        ),
        Facts::DiskUsage { used_percent, at_ms, yellow_percent, red_percent } => format!(
            "Dateisystem {subject} ist am {} zu {} belegt (gelb ab {}, rot ab {}).",
            x.time(*at_ms),
            pct(*used_percent, 1),
            pct(*yellow_percent, 0),
            pct(*red_percent, 0)
        ),
        Facts::DiskForecast { used_percent, growth_per_day, samples, first_ms, last_ms, full_ms, left_ms, warning_ms } => format!(
            "Dateisystem {subject} (jetzt {}) wächst um {} Prozentpunkte pro Tag (Ausgleichsgerade über {} Messwerte von {} bis {}); so ist es am {} voll, in {} (Warnung {} vorher).",
            pct(*used_percent, 1),
            x.num(*growth_per_day, 2),
            x.int(*samples),
            x.time(*first_ms),
            x.time(*last_ms),
            x.date(*full_ms),
            x.duration_dative(*left_ms),
            x.duration(*warning_ms)
        ),
        Facts::CaptureDrops { dropped, packets, drop_percent, threshold_percent } => format!(
            "Das IDS hat {} von {} mitgeschnittenen Paketen verworfen ({}) von {span} (gelb über {}).",
            x.num(*dropped, 0),
            x.num(*packets, 0),
            pct(*drop_percent, 2),
            pct(*threshold_percent, 1)
        ),
        Facts::NoPerformanceData => format!("Keine CPU- oder Speicher-Messwerte von {span}."),
        Facts::CoverageGaps { coverage_percent, from_ms, new_since_ms, min_percent, interval_ms, missing_ms, gap_count, gaps } => {
            // Der Hinweis auf ein neues Gerät steht vorn, wo ihn auch eine gekürzte Tabellenzelle zeigt.
            let mut s = match new_since_ms {
                Some(first) => format!("Das Gerät ist neu seit {} und wird ab dann beurteilt. ", x.time(*first)),
                None => String::new(),
            };
            s.push_str(&format!(
                "Die Messwerte decken {} von {} bis {}{} ab (grau unter {}, erwartet alle {}); {} in {} {}: {}.",
                pct(*coverage_percent, 1),
                x.time(*from_ms),
                x.time(end),
                x.zone(),
                pct(*min_percent, 0),
                x.duration(*interval_ms),
                missing(x, *missing_ms),
                x.int(*gap_count),
                if *gap_count == 1 { "Lücke" } else { "Lücken" },
                gap_list(x, gaps, *gap_count)
            ));
            s
        }
    }
}

/// `05:59 bis 09:00 (3 Stunden fehlen); …; und 2 weitere`.
fn gap_list(x: &Fmt<'_>, gaps: &[GapFacts], count: u64) -> String {
    let mut parts: Vec<String> =
        gaps.iter().map(|g| format!("{} bis {} ({})", x.time(g.start_ms), x.time(g.end_ms), missing(x, g.missing_ms))).collect();
    let more = count.saturating_sub(gaps.len() as u64);
    if more > 0 {
        parts.push(format!("und {} weitere", x.int(more)));
    }
    parts.join("; ")
}

/// `6 Minuten fehlen`, `1 Sekunde fehlt`.
fn missing(x: &Fmt<'_>, ms: i64) -> String {
    let verb = if super::duration_parts(ms).0 == 1 { "fehlt" } else { "fehlen" };
    format!("{} {verb}", x.duration(ms))
}

/// Die Empfehlung `a`; `subject` ist das betroffene Dateisystem oder Lizenzmodul.
pub(super) fn advice(a: Advice, subject: &str) -> String {
    match a {
        Advice::LicenseNotLicensed => "Die Appliance läuft ohne gültige Lizenz: Lizenz jetzt einspielen oder aktivieren; ohne sie erhält sie keine Signatur-Updates und filtert womöglich nicht mehr.".into(),
        Advice::LicenseExpired => "Lizenz jetzt verlängern: Mit abgelaufener Lizenz erhält die Appliance keine Signatur-Updates mehr und filtert womöglich nicht mehr.".into(),
        Advice::LicenseFeatureExpired => format!("Die Lizenz des Moduls {subject} verlängern: Die Appliance selbst bleibt lizenziert, aber dieses Modul erhält keine Updates mehr und arbeitet womöglich nicht mehr."),
        Advice::LicenseExpiring => "Lizenzverlängerung jetzt bestellen, damit sie vor dem Ablaufdatum eingespielt ist.".into(),
        Advice::LicenseFeatureExpiring => format!("Die Verlängerung des Moduls {subject} jetzt bestellen, damit sie vor seinem Ablaufdatum eingespielt ist."),
        Advice::LicenseExpiryForecast => "Die Lizenz läuft vor dem nächsten Bericht ab: Verlängerung mit dem Kunden einplanen.".into(),
        Advice::LicenseUnknown => "Der Agent konnte den Lizenzstatus nicht lesen; Lizenzquelle in der Agent-Konfiguration und das Agent-Log prüfen.".into(),
        Advice::LicenseMissing => "Das Gerät hat nie einen Lizenzstatus gemeldet; die Lizenzquelle in der Agent-Konfiguration aktivieren.".into(),
        Advice::IdsAllBlocked => "Alle schweren IDS-Alarme wurden blockiert, das IPS hat gewirkt: prüfen, ob die angegriffenen Hosts und Dienste gepatcht sind, und beobachten, ob die Quellen es weiter versuchen.".into(),
        Advice::IdsAllowedThrough => "Die Hosts hinter den durchgelassenen schweren IDS-Alarmen untersuchen; passende Signaturen auf Verwerfen (IPS-Modus) stellen und die angegriffenen Dienste patchen.".into(),
        Advice::MalwareAllQuarantined => "Alle Funde liegen in Quarantäne: klären, woher die Dateien kamen (Mail, Downloads, Freigaben), und diesen Weg absichern; nichts ungeprüft aus der Quarantäne freigeben.".into(),
        Advice::MalwareNotQuarantined => "Betroffene Hosts bereinigen oder isolieren, den Infektionsweg klären und sicherstellen, dass der Virenscanner in Quarantäne verschiebt statt nur zu melden.".into(),
        Advice::MailSpike => "Die Quarantäne-Mails des letzten Tages prüfen: Eine Spam- oder Phishing-Welle kann den Mandanten treffen; Nutzer warnen und die Absender-Reputationsfilter prüfen.".into(),
        Advice::NeverSeen => "ampel-agent mit seinem Zertifikat auf dem Gerät installieren und starten, dann `journalctl -u ampel-agent` auf Verbindungsfehler prüfen.".into(),
        Advice::SilentBriefly => "Das Gerät schweigt seit weniger als einem Tag: prüfen, ob ampel-agent läuft und den Collector erreicht; nach einem kurzen Ausfall sendet der Agent seine zwischengespeicherten Daten von selbst nach.".into(),
        Advice::SilentLong => "Das Gerät schweigt seit einem Tag oder länger: prüfen, ob es eingeschaltet und erreichbar ist und ampel-agent läuft; sein Log nennt den Verbindungsfehler.".into(),
        Advice::CertificateExpiring => "Die Zertifikatserneuerung des Agenten schlägt fehl: Im Agent-Log den Fehler der Erneuerung suchen und prüfen, ob der Enrollment-Dienst des Collectors erreichbar ist; notfalls das Gerät mit einem neuen Token neu registrieren (ampel-collector pki token).".into(),
        Advice::CertificateExpired => "Das Gerätezertifikat ist abgelaufen und der Collector weist das Gerät ab: mit ampel-collector pki token ein Token erzeugen und auf dem Gerät ampel-agent enroll ausführen.".into(),
        Advice::CpuHigh => "Die Prozesse finden, die die CPU belasten (typisch: IDS-Regelsätze und Virenscans), und sie anpassen oder eine größere Appliance einsetzen.".into(),
        Advice::MemoryHigh => "Herausfinden, was den Speicher belegt; IDS- oder Proxy-Caches verkleinern oder Speicher nachrüsten.".into(),
        Advice::DiskFull => format!("Jetzt Platz auf {subject} schaffen: Logs rotieren oder auslagern, alte Quarantäne-Dateien löschen oder das Volume vergrößern."),
        Advice::DiskFilling => format!("Platz auf {subject} schaffen, bevor die rote Schwelle erreicht ist: Logs rotieren oder auslagern, alte Quarantäne-Dateien löschen oder das Volume vergrößern."),
        Advice::DiskFullForecast => format!("{subject} füllt sich stetig: herausfinden, was wächst (Logs, Quarantäne, Mitschnitte), und es rotieren oder das Volume vergrößern, bevor es voll ist."),
        Advice::CaptureDrops => "Das IDS verpasst Pakete: mehr CPU-Kerne oder Capture-Threads zuweisen, den Ringpuffer vergrößern oder Massenverkehr von der Prüfung ausnehmen.".into(),
        Advice::CoverageGaps => "Die Daten des Geräts haben Lücken: Netzanbindung und Agent-Log zu den genannten Zeiten prüfen; die Ampeln dieses Zeitraums beruhen auf Teildaten.".into(),
        Advice::CoverageGapsNewDevice => "Das Gerät ist in diesem Zeitraum neu und seine Daten haben seit dem ersten Kontakt Lücken: Netzanbindung und Agent-Log zu den genannten Zeiten prüfen; seine Ampeln beruhen auf Teildaten.".into(),
        Advice::NoPerformanceData => "Die Performance-Quelle in der Agent-Konfiguration aktivieren.".into(),
    }
}
