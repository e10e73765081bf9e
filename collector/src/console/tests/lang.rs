//! The console in the reader's language: the user's `language` first, then the browser's
//! `Accept-Language`, then English; and error pages that lead back.

use super::{Resp, Rig, request, request_with, session};
use crate::report::Lang;

/// The English words of the navigation, as element texts.
const ENGLISH_NAV: [&str; 7] = [">Fleet<", ">Reports<", ">Jobs<", ">Recipients<", ">Enrollment<", ">Audit log<", ">Log out<"];
/// The German ones.
const GERMAN_NAV: [&str; 7] = [">Übersicht<", ">Berichte<", ">Aufträge<", ">Empfänger<", ">Registrierung<", ">Protokoll<", ">Abmelden<"];

/// Sets `language` of `user` in the console's `[[users]]` (as a reload would).
fn set_language(rig: &Rig, user: &str, language: Option<Lang>) {
    let mut users = rig.console.users().to_vec();
    users.iter_mut().filter(|u| u.name.as_str() == user).for_each(|u| u.language = language);
    rig.console.set_users(users);
}

/// Three hours of CPU samples of fw-acme at `percent`, a minute apart.
fn store_cpu(rig: &Rig, percent: f64) {
    use ampel_protocol::{Batch, Identity, Metric, PROTOCOL_VERSION, Record};
    let now = crate::console::now_ms();
    let me = Identity { tenant: "acme".parse().unwrap(), device: "fw-acme".parse().unwrap() };
    let records: Vec<Record> = (0..180)
        .map(|m| {
            Record::Metric(Metric { ts: now - (180 - m) * 60_000, name: "cpu.usage_percent".into(), labels: Vec::new(), value: percent })
        })
        .collect();
    let batch = Batch { version: PROTOCOL_VERSION, seq: 1, sender: None, records };
    rig.console.store.commit(&[crate::store::PendingBatch { identity: me, batch, received_ms: now }]).unwrap();
}

async fn get(rig: &Rig, target: &str, cookie: &str, accept_language: Option<&str>) -> Resp {
    let language = accept_language.map(|l| format!("Accept-Language: {l}\r\n")).unwrap_or_default();
    request_with(rig.addr, "GET", target, &format!("Cookie: {cookie}\r\n{language}"), "").await
}

/// `r` is a German page with the navigation; an administrator's has all seven links, a
/// tenant manager's five.
fn assert_german(r: &Resp, what: &str, admin: bool) {
    assert_eq!(r.status, 200, "{what}: {}", r.body);
    assert!(r.body.contains("<html lang=\"de\">"), "{what}: {}", r.body);
    let admin_only = [">Registrierung<", ">Protokoll<"];
    for word in GERMAN_NAV.into_iter().filter(|w| admin || !admin_only.contains(w)) {
        assert!(r.body.contains(word), "{what} lacks {word}: {}", r.body);
    }
    for word in ENGLISH_NAV {
        assert!(!r.body.contains(word), "{what} still says {word}: {}", r.body);
    }
}

#[tokio::test]
async fn a_german_user_sees_german_navigation_headings_and_buttons() {
    let rig = Rig::new().await;
    store_cpu(&rig, 97.5);
    set_language(&rig, "admin", Some(Lang::De));
    let admin = session(rig.addr, "admin").await;
    let fleet = get(&rig, "/console/", &admin, None).await;
    assert_german(&fleet, "fleet", true);
    for word in [
        "<h1>Übersicht</h1>",
        ">Mandant<",
        ">Punktzahl<",
        ">Offene Befunde<",
        ">Jetzt stumm<",
        ">Stand<",
        "Ampeln und Befunde der letzten 24 Stunden",
    ] {
        assert!(fleet.body.contains(word), "fleet lacks {word}: {}", fleet.body);
    }
    let tenant = get(&rig, "/console/tenants/acme", &admin, None).await;
    assert_german(&tenant, "tenant", true);
    for word in [
        "<h1>Mandant acme \u{b7} ",
        "<h2>Dienste</h2>",
        "<h2>Geräte</h2>",
        "<h2>Befunde</h2>",
        ">Zuletzt gesehen<",
        ">Letzte Woche<",
        ">Anzeigen</button>",
    ] {
        assert!(tenant.body.contains(word), "tenant lacks {word}: {}", tenant.body);
    }
    for word in [">Devices<", ">Findings<", ">Services<", ">Show<", ">Last week<"] {
        assert!(!tenant.body.contains(word), "tenant still says {word}");
    }
    let device = get(&rig, "/console/devices/fw-acme", &admin, None).await;
    assert_german(&device, "device", true);
    for word in ["<h1>Gerät fw-acme \u{b7} ", "<h2>Leistung</h2>", "<h2>Datenverkehr</h2>", "CPU-Auslastung", "<h3>Lizenz</h3>"] {
        assert!(device.body.contains(word), "device lacks {word}: {}", device.body);
    }
    // Numbers as Germans write them, findings in German from the catalogue.
    assert!(device.body.contains(">100,0 %</text>") && device.body.contains(">97,5 %</td>"), "{}", device.body);
    assert!(tenant.body.contains("CPU-Auslastung bei 90 % oder mehr in 100 % von 180 Messwerten"), "{}", tenant.body);
    let recipients = get(&rig, "/console/recipients", &admin, None).await;
    assert!(recipients.body.contains("<th scope=\"row\">it@example.org</th><td>to</td><td>bestätigt</td>"), "{}", recipients.body);
    let jobs = get(&rig, "/console/jobs", &admin, None).await;
    assert_german(&jobs, "jobs", true);
    for word in ["<h1>Aufträge</h1>", ">Jetzt senden</button>", ">Nächster Lauf (Zone des Auftrags)<", ">Woche<", "Montag 08:00"] {
        assert!(jobs.body.contains(word), "jobs lacks {word}: {}", jobs.body);
    }
    let reports = get(&rig, "/console/reports", &admin, None).await;
    assert!(reports.body.contains(">Herunterladen<") && reports.body.contains(">Erneut senden</button>"), "{}", reports.body);
}

#[tokio::test]
async fn the_browser_language_applies_without_a_setting_and_a_setting_beats_it() {
    let rig = Rig::new().await;
    let german = Some("de-DE,de;q=0.9");
    let manager = session(rig.addr, "manager").await;
    let fleet = get(&rig, "/console/", &manager, german).await;
    assert_german(&fleet, "fleet for a German browser", false);
    let english = get(&rig, "/console/", &manager, None).await;
    assert!(english.body.contains("<html lang=\"en\">") && english.body.contains(">Fleet<"), "{}", english.body);
    // The login page follows the browser too.
    let login = get(&rig, "/console/login", "", german).await;
    assert!(login.body.contains("<html lang=\"de\">") && login.body.contains(">Benutzername<"), "{}", login.body);
    // `language = "en"` wins over a German browser.
    set_language(&rig, "manager", Some(Lang::En));
    let fleet = get(&rig, "/console/", &manager, german).await;
    assert!(fleet.body.contains("<html lang=\"en\">"), "{}", fleet.body);
    for word in ENGLISH_NAV.iter().filter(|w| ["Enrollment", "Audit"].iter().all(|a| !w.contains(a))) {
        assert!(fleet.body.contains(word), "the English fleet lacks {word}: {}", fleet.body);
    }
}

#[tokio::test]
async fn a_bad_period_and_a_conflict_lead_back_with_the_navigation_and_the_reason() {
    let rig = Rig::new().await;
    let manager = session(rig.addr, "manager").await;
    let nav = ["href=\"/console/\"", "href=\"/console/reports\"", "href=\"/console/jobs\"", "action=\"/console/logout\""];
    let reversed = get(&rig, "/console/tenants/acme?from=2026-03-15&to=2026-03-01", &manager, None).await;
    assert_eq!(reversed.status, 400);
    assert!(reversed.body.contains("<h1>Bad Request</h1>"), "{}", reversed.body);
    assert!(reversed.body.contains("The period ends on 2026-03-01, before it starts on 2026-03-15"), "{}", reversed.body);
    assert!(reversed.body.contains(">To the fleet</a>"), "{}", reversed.body);
    for link in nav {
        assert!(reversed.body.contains(link), "the 400 page lacks {link}: {}", reversed.body);
    }
    // The same refusal in German for a German browser, dates as Germans write them.
    let german = get(&rig, "/console/tenants/acme?from=2026-03-15&to=2026-03-01", &manager, Some("de")).await;
    assert!(german.body.contains("Der Zeitraum endet am 01.03.2026, bevor er am 15.03.2026 beginnt"), "{}", german.body);
    assert!(german.body.contains("<h1>Ungültige Anfrage</h1>") && german.body.contains(">Zur Übersicht</a>"), "{}", german.body);

    let csrf = get(&rig, "/console/", &manager, None).await.csrf();
    let stranger = format!("csrf={csrf}&job=weekly&address=stranger%40example.com");
    let conflict = request(rig.addr, "POST", "/console/recipients/invite", &manager, &stranger).await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert!(conflict.body.contains("<h1>Conflict</h1>"), "{}", conflict.body);
    assert!(conflict.body.contains("is not among the to and cc addresses of job"), "{}", conflict.body);
    for link in nav {
        assert!(conflict.body.contains(link), "the 409 page lacks {link}: {}", conflict.body);
    }
    // A path the console does not have is its 404 page, with the way back.
    let nowhere = get(&rig, "/console/nowhere/at/all", &manager, Some("de")).await;
    assert_eq!(nowhere.status, 404);
    assert!(nowhere.body.contains("<h1>Nicht gefunden</h1>") && nowhere.body.contains(">Zur Übersicht</a>"), "{}", nowhere.body);
    assert_eq!(request(rig.addr, "GET", "/console/nowhere", "", "").await.status, 303, "anonymous: to the login");
    // Without a session a refusal leads to the login.
    let anonymous = request(rig.addr, "POST", "/console/recipients/invite", "", &stranger).await;
    assert_eq!(anonymous.status, 303, "anonymous requests still go to the login: {}", anonymous.body);
}
