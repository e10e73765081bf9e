//! Reports: rendered from stored data, checked with real PDF tools, mailed through a real SMTP
//! server with STARTTLS and a private CA.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ampel_protocol::{Batch, Metric, PROTOCOL_VERSION, Record};
use ampel_tests::{Deployment, Proc, free_tcp_port, require, send_batches, wait_until};

const END: &str = "2026-11-20T12:00:00Z";
const END_MS: i64 = 1_795_176_000_000;

/// One hour of CPU and memory samples for a device, sent as a real agent would.
fn feed(d: &Deployment, device: &str) {
    let dir = d.dir.path().join("agents").join(device);
    let records: Vec<Record> = (0..60)
        .flat_map(|i| {
            let ts = END_MS - 3_600_000 + i * 60_000;
            [
                Record::Metric(Metric { ts, name: "cpu.usage_percent".into(), labels: vec![], value: 20.0 + (i % 10) as f64 }),
                Record::Metric(Metric { ts, name: "memory.used_percent".into(), labels: vec![], value: 55.0 }),
            ]
        })
        .collect();
    let batch = Batch { version: PROTOCOL_VERSION, seq: 1, sender: None, records };
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cert = dir.join(format!("{device}.pem"));
    let key = dir.join(format!("{device}.key"));
    rt.block_on(send_batches(addr, &dir.join("ca.pem"), &cert, &key, &[batch])).unwrap();
}

fn deployment_with_data(extra: &str) -> Deployment {
    // The data sits at a fixed past time so reports are comparable; keep it whatever today is.
    let d = Deployment::new(&format!(
        "[store.retention]\nraw = \"forever\"\nminute = \"forever\"\nhour = \"forever\"\nday = \"forever\"\n\
         alerts = \"forever\"\nstates = \"forever\"\n\n{extra}"
    ));
    d.issue("acme", "fw-alpha");
    d.issue("acme", "fw-beta");
    d.issue("globex", "fw-other");
    let mut c = d.serve();
    feed(&d, "fw-alpha");
    feed(&d, "fw-beta");
    c.stop();
    d
}

fn pdftotext(pdf: &Path) -> String {
    let tool = require("pdftotext", "poppler-utils");
    let out = Command::new(tool).arg("-layout").arg(pdf).arg("-").output().unwrap();
    assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn qpdf_check(pdf: &Path) {
    let tool = require("qpdf", "qpdf");
    let out = Command::new(tool).arg("--check").arg(pdf).output().unwrap();
    assert!(
        out.status.success(),
        "qpdf --check rejects {}:\n{}{}",
        pdf.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn report_preview_writes_a_valid_pdf_naming_the_tenant_and_its_devices_and_is_deterministic() {
    let d = deployment_with_data("");
    let a = d.dir.path().join("a.pdf");
    let b = d.dir.path().join("b.pdf");
    for out in [&a, &b] {
        d.collector(&["report", "preview", "--tenant", "acme", "--period", "last-2h", "--end", END, "--out", out.to_str().unwrap()]).ok();
    }
    qpdf_check(&a);
    let text = pdftotext(&a);
    for needle in ["acme", "fw-alpha", "fw-beta"] {
        assert!(text.contains(needle), "report text lacks {needle:?}:\n{text}");
    }
    assert!(!text.contains("fw-other"), "another tenant's device leaked into the report:\n{text}");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same data, different bytes");
}

/// aiosmtpd with STARTTLS, using the deployment's own server certificate (private CA).
fn smtp_server(d: &Deployment, port: u16, maildir: &Path) -> Proc {
    require("python3", "python3");
    let probe = Command::new("/usr/bin/python3").args(["-c", "import aiosmtpd"]).output().unwrap();
    assert!(probe.status.success(), "aiosmtpd is required: apt-get install python3-aiosmtpd (tests/run installs it)");
    let pki = d.pki_dir();
    let child = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .arg("--tlscert")
        .arg(pki.join("server.pem"))
        .arg("--tlskey")
        .arg(pki.join("server.key"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let p = Proc::adopt("aiosmtpd", child);
    let up = wait_until(Duration::from_secs(15), || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    assert!(up.is_some(), "aiosmtpd did not listen on port {port}");
    p
}

/// The PDF attachments of every message in a Maildir, decoded.
fn attachments(maildir: &Path) -> Vec<Vec<u8>> {
    let script = r#"
import mailbox, sys, os
out = sys.argv[2]
n = 0
for msg in mailbox.Maildir(sys.argv[1], create=False):
    for part in msg.walk():
        if part.get_content_type() == "application/pdf":
            open(os.path.join(out, "%d.pdf" % n), "wb").write(part.get_payload(decode=True))
            n += 1
"#;
    let out = tempfile::tempdir().unwrap();
    let st = Command::new("/usr/bin/python3").args(["-c", script]).arg(maildir).arg(out.path()).status().unwrap();
    assert!(st.success(), "could not read the Maildir");
    let mut files: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().map(|f| std::fs::read(f).unwrap()).collect()
}

#[test]
fn report_send_through_starttls_with_a_private_ca_delivers_the_identical_pdf() {
    let port = free_tcp_port();
    let mail = format!(
        "[mail]\ntransport = \"smtp\"\nhost = \"localhost\"\nport = {port}\nsecurity = \"starttls\"\nca-file = \"data/pki/ca.pem\"\nfrom = \"Ampel <ampel@localhost>\"\n"
    );
    let d = deployment_with_data(&mail);
    let maildir = d.dir.path().join("maildir");
    let _smtp = smtp_server(&d, port, &maildir);
    let test = d.collector(&["mail", "test"]).ok();
    assert!(test.to_lowercase().contains("starttls"), "mail test should report the STARTTLS step: {test}");
    d.collector(&["report", "send", "--tenant", "acme", "--period", "last-2h", "--end", END, "--to", "soc@acme.example"]).ok();
    let pdf = d.dir.path().join("expected.pdf");
    d.collector(&["report", "preview", "--tenant", "acme", "--period", "last-2h", "--end", END, "--out", pdf.to_str().unwrap()]).ok();
    let got = wait_until(Duration::from_secs(10), || {
        let a = attachments(&maildir);
        (!a.is_empty()).then_some(a)
    })
    .expect("no message arrived at the SMTP server");
    assert_eq!(got.len(), 1);
    assert!(got[0] == std::fs::read(&pdf).unwrap(), "the mailed PDF differs from the rendered one");
}

#[test]
fn mail_test_names_the_failing_step() {
    // Nothing listens on this port: the connect step fails.
    let port = free_tcp_port();
    let d = Deployment::new(&format!("[mail]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"starttls\"\n"));
    let out = d.collector(&["mail", "test"]).output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("connect"), "{err}");
}

/// `report preview --job` renders as the scheduler would: the job's language, widgets, time
/// zone and period (a rolling week ending at `--end`, where the data is); an unknown job name
/// lists the configured ones.
#[test]
fn report_preview_of_a_job_uses_its_language_widgets_and_time_zone() {
    let port = free_tcp_port();
    let d = deployment_with_data(&format!(
        "[mail]\noutbox = \"outbox\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[[jobs]]\nname = \"wochenbericht\"\ntenants = [\"acme\"]\n\
         days = 7\nsend = [\"mon 08:00\"]\ntime-zone = \"Europe/Berlin\"\nlanguage = \"de\"\n\
         widgets = [\"summary\", \"devices\", \"appendix\"]\nto = \"ops@example.org\"\n"
    ));
    let out = d.dir.path().join("job.pdf");
    let said = d.collector(&["report", "preview", "--job", "wochenbericht", "--end", END, "--out", out.to_str().unwrap()]).ok();
    assert!(said.contains("acme"), "{said}");
    qpdf_check(&out);
    let text = pdftotext(&out);
    for needle in [
        "Sicherheitsbericht",
        "Zusammenfassung",
        "Geräte und Lizenzen",
        "fw-alpha",
        "fw-beta",
        "Europe/Berlin",
        "Deutsch (de)",
        "20.11.2026 13:00 CET",
        // Sections share pages now (summary, devices and appendix fit on two).
        "Seite 2 von",
    ] {
        assert!(text.contains(needle), "report text lacks {needle:?}:\n{text}");
    }
    for absent in ["Security report", "Keine Meldungen in diesem Zeitraum", "CPU und Speicher im Verlauf", "Alle Empfehlungen"] {
        assert!(!text.contains(absent), "{absent:?} is in a report whose job did not ask for it:\n{text}");
    }
    let out = d.collector(&["report", "preview", "--job", "monthly", "--out", d.dir.path().join("x.pdf").to_str().unwrap()]).output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("\"monthly\"") && err.contains("wochenbericht"), "{err}");
}

/// The file-hash widget over the shared EVE fixtures that carry `fileinfo`, parsed by the
/// agent's EVE parser and stored by the collector: one row per file, hashed files by their
/// SHA-256, the ones Suricata sent without a hash by name, each counted once with its device.
#[test]
fn file_hash_widget_lists_the_fixtures_files() {
    use ampel_agent::sources::eve::EveParser;
    use ampel_agent::sources::tail::parse_file;
    use ampel_collector::assess::suppress::FalsePositives;
    use ampel_collector::assess::{Period, report_data};
    use ampel_collector::config::Config;
    use ampel_collector::report::stats::HashKind;
    use ampel_collector::store::{PendingBatch, Store, StoreOptions};
    use ampel_protocol::{DeviceId, Identity, TenantId};

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fixtures/eve");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let start = END_MS - 86_400_000;
    let mut group = Vec::new();
    for (seq, (file, device)) in
        [("josevnz-eve-2.json", "ids-1"), ("cccs-alert_http.json", "ids-2"), ("cccs-alert_smtp.json", "ids-2")].into_iter().enumerate()
    {
        let mut records = Vec::new();
        parse_file(&fixtures.join(file), &mut EveParser::default(), 0, &mut |r| records.push(r.clone())).unwrap();
        // Only the alerts, moved into the report's day (the fixtures are years old).
        let mut records: Vec<Record> = records.into_iter().filter(|r| matches!(r, Record::Alert(_))).collect();
        for (i, r) in records.iter_mut().enumerate() {
            if let Record::Alert(a) = r {
                a.ts = start + i as i64 * 1_000;
            }
        }
        let device = DeviceId::new(device).unwrap();
        if store.device(device.as_str()).unwrap().is_none() {
            store.register_device(&tenant, &device, start - 86_400_000).unwrap();
        }
        let identity = Identity { tenant: tenant.clone(), device };
        let batch = Batch { version: PROTOCOL_VERSION, seq: seq as u64 + 1, sender: None, records };
        group.push(PendingBatch { identity, batch, received_ms: start + 3_600_000 });
    }
    store.commit(&group).unwrap();
    let cfg = Config::parse(Path::new("/etc/ampel/collector.toml"), "").unwrap();
    let period = Period::range(start, END_MS, "UTC").unwrap();
    let data = report_data(&store, &cfg, "acme", &period, FalsePositives::default()).unwrap();
    /// Hash, name, count, devices.
    type Row<'a> = (Option<(HashKind, &'a str)>, Option<&'a str>, u64, Vec<&'a str>);
    let rows: Vec<Row<'_>> = data
        .file_hashes
        .iter()
        .map(|r| {
            let hash = r.hash.as_ref().map(|(k, h)| (*k, h.as_str()));
            (hash, r.name.as_deref(), r.count, r.devices.iter().map(String::as_str).collect())
        })
        .collect();
    let zeros = "0".repeat(64);
    assert_eq!(
        rows,
        vec![
            (Some((HashKind::Sha256, zeros.as_str())), Some("attachment.txt"), 1, vec!["ids-2"]),
            (Some((HashKind::Sha256, "sha256")), Some("/bad_path"), 1, vec!["ids-2"]),
            (None, Some("/hh/hello.png"), 1, vec!["ids-1"]),
            (None, Some("/hh/hh.html"), 1, vec!["ids-1"]),
            (None, Some("COVID results.xls"), 1, vec!["ids-1"]),
            (None, Some("ORoYQZRqYPYg9TKs89OsEl.dll"), 1, vec!["ids-1"]),
        ]
    );
    // Rendered: the widget shows them, the hash in groups of eight.
    let pdf = ampel_collector::report::render(&data).unwrap();
    let path = dir.path().join("files.pdf");
    std::fs::write(&path, pdf).unwrap();
    let text = pdftotext(&path);
    for needle in ["File hashes", "00000000 00000000", "COVID results.xls", "attachment.txt", "no hash"] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}
