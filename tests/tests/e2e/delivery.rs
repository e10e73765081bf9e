//! Scheduled delivery through the real `ampel-collector serve`, its wall clock set by
//! libfaketime, mailing into a real aiosmtpd: recipients are invited, confirm over the real
//! HTTP listener, and the reports arrive as the job's time zone and period say.

use std::time::Duration;

use ampel_tests::{Deployment, Proc, Smtp, faketime, free_tcp_port, http_request, link_token};
use serde_json::Value;

/// A deployment with a plain aiosmtpd, an HTTP listener and the given `[[jobs]]` (and other
/// tables after them).
struct Rig {
    d: Deployment,
    smtp: Smtp,
    http: u16,
    _mail: tempfile::TempDir,
}

impl Rig {
    fn new(jobs: &str) -> Rig {
        let mail = tempfile::tempdir().unwrap();
        let smtp = Smtp::start(&mail.path().join("Maildir"), None);
        let http = free_tcp_port();
        let d = Deployment::new(&format!("{}\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n{jobs}", smtp.mail_config()));
        Rig { d, smtp, http, _mail: mail }
    }

    /// `serve` with the wall clock starting at `utc`.
    fn serve_at(&self, utc: &str) -> Proc {
        self.d.serve_with_env(&faketime(utc))
    }

    /// Waits for `n` invitations and confirms each over HTTP, as the button on the page does.
    fn confirm(&self, n: usize) {
        let invites = self.smtp.wait_for(n, Duration::from_secs(20), |m| subject(m).contains("please confirm"));
        for m in invites {
            let text = m["text"].as_str().unwrap();
            let token = link_token(text, "/confirm").unwrap_or_else(|| panic!("no confirm link in {text}"));
            let (status, page) = http_request(self.http, "POST", "/confirm", &format!("t={token}")).unwrap();
            assert_eq!(status, 200, "{page}");
        }
    }

    fn wait_reports(&self, n: usize, timeout: Duration) -> Vec<Value> {
        self.smtp.wait_for(n, timeout, |m| subject(m).contains("security report for"))
    }

    /// `report list --json`.
    fn archive(&self) -> Vec<Value> {
        serde_json::from_str(&self.d.collector(&["report", "list", "--json"]).ok()).unwrap()
    }
}

fn subject(m: &Value) -> &str {
    m["subject"].as_str().unwrap_or_default()
}

fn daily_berlin(to: &str) -> String {
    format!(
        "[[jobs]]\nname = \"daily\"\ntenants = [\"acme\"]\nperiod = \"day\"\nsend = [\"daily 08:00\"]\n\
         time-zone = \"Europe/Berlin\"\nto = \"{to}\"\n"
    )
}

/// One 08:00 run of a daily Berlin job started 25 s before: the report's file name, subject,
/// text and archived bounds name the previous local day (`named` as people write it), `hours`
/// long.
fn daily_run(start_utc: &str, day: &str, (named, next): (&str, &str), hours: i64) {
    let rig = Rig::new(&daily_berlin("Ops <ops@example.org>"));
    let mut c = rig.serve_at(start_utc);
    rig.confirm(1);
    let reports = rig.wait_reports(1, Duration::from_secs(60));
    c.stop();
    let r = &reports[0];
    assert_eq!(r["attachments"][0]["filename"], format!("ampel-acme-{day}.pdf"), "{r}");
    assert_eq!(subject(r), format!("acme: security report for {named}"));
    let text = r["text"].as_str().unwrap();
    assert!(text.contains(&format!("Period: {named} ({named} 00:00 – {next} 00:00 Europe/Berlin)")), "{text}");
    let archive = rig.archive();
    assert_eq!(archive.len(), 1, "{archive:?}");
    let span = archive[0]["period_end_ms"].as_i64().unwrap() - archive[0]["period_start_ms"].as_i64().unwrap();
    assert_eq!(span, hours * 3_600_000, "{day} in Berlin is {hours} hours long");
    assert!(archive[0]["file"].as_str().unwrap().ends_with(&format!("-daily-ampel-acme-{day}.pdf")));
}

#[test]
fn delivery_daily_job_at_0800_berlin_covers_the_previous_local_day_across_both_dst_changes() {
    // 30 March 2026 07:59:35 CEST: the report covers 29 March, the 23-hour day of the spring
    // change; 26 October 07:59:35 CET: 25 October, the 25-hour day of the autumn change.
    let spring = std::thread::spawn(|| daily_run("2026-03-30T05:59:35Z", "2026-03-29", ("29 Mar 2026", "30 Mar 2026"), 23));
    let autumn = std::thread::spawn(|| daily_run("2026-10-26T06:59:35Z", "2026-10-25", ("25 Oct 2026", "26 Oct 2026"), 25));
    let results = [spring.join(), autumn.join()];
    for r in results {
        if let Err(panic) = r {
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn delivery_two_send_rules_on_one_day_with_days_1_give_two_file_names() {
    let rig = Rig::new(
        "[[jobs]]\nname = \"rolling\"\ntenants = [\"acme\"]\ndays = 1\nsend = [\"daily 08:00\", \"daily 08:01\"]\n\
         to = \"ops@example.org\"\n",
    );
    let mut c = rig.serve_at("2026-12-07T07:59:35Z");
    rig.confirm(1);
    let reports = rig.wait_reports(2, Duration::from_secs(120));
    c.stop();
    let mut names: Vec<&str> = reports.iter().map(|r| r["attachments"][0]["filename"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["ampel-acme-20261206T0800-20261207T0800.pdf", "ampel-acme-20261206T0801-20261207T0801.pdf"]);
    let subjects: Vec<&str> = reports.iter().map(subject).collect();
    assert!(subjects[0] != subjects[1], "{subjects:?}");
    let files: Vec<String> = rig.archive().iter().map(|r| r["file"].as_str().unwrap().to_owned()).collect();
    assert_eq!(files.len(), 2);
    assert_ne!(files[0], files[1]);
}

#[test]
fn delivery_resend_keeps_the_original_delivery_and_adds_one() {
    let mut rig = Rig::new(&daily_berlin("Ops <ops@example.org>"));
    let mut c = rig.serve_at("2026-12-07T06:59:35Z");
    rig.confirm(1);
    rig.wait_reports(1, Duration::from_secs(60));
    c.stop();

    // Resent as it went: attached.
    let said = rig.d.collector(&["report", "resend", "1"]).ok();
    assert!(said.contains("resent to 1 recipient(s) as attachment"), "{said}");
    let reports = rig.wait_reports(2, Duration::from_secs(10));
    assert!(reports.iter().all(|r| r["attachments"][0]["filename"] == "ampel-acme-2026-12-06.pdf"), "{reports:?}");
    let rec = &rig.archive()[0];
    assert_eq!((rec["status"].as_str(), rec["mode"].as_str(), rec["late"].as_bool()), (Some("sent"), Some("attachment"), Some(false)));
    assert_eq!(rec["resends"][0]["mode"], "attachment");
    assert_eq!(rec["resends"][0]["status"], "sent");
    assert_eq!(rec["resends"][0]["recipients"][0], "Ops <ops@example.org>");

    // The server now refuses mails of that size: a link instead, and the reason recorded.
    rig.smtp.restart(Some(2000));
    let said = rig.d.collector(&["report", "resend", "1"]).ok();
    assert!(said.contains("as link") && said.contains("SIZE"), "{said}");
    let reports = rig.wait_reports(3, Duration::from_secs(10));
    assert_eq!(reports.iter().filter(|r| r["attachments"].as_array().unwrap().is_empty()).count(), 1, "{reports:?}");
    let rec = &rig.archive()[0];
    assert_eq!((rec["status"].as_str(), rec["mode"].as_str()), (Some("sent"), Some("attachment")), "the original stays");
    assert_eq!(rec["resends"].as_array().unwrap().len(), 2);
    assert_eq!(rec["resends"][1]["mode"], "link");
    assert!(rec["resends"][1]["link_reason"].as_str().unwrap().contains("2000"), "{rec}");

    // `report list` keeps its columns however long the status gets.
    let table = rig.d.collector(&["report", "list"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    let col = lines[0].find("MODE").unwrap();
    assert_eq!(lines[1].find("attachment"), Some(col), "{table}");
    assert!(lines[1].contains("sent, resent 2×"), "{table}");

    // Once nobody is confirmed, there is nothing to send: an error, not a success.
    let unsubscribe = reports[0]["list_unsubscribe"].as_str().unwrap();
    let token = link_token(unsubscribe, "/unsubscribe").unwrap();
    let mut c = rig.d.serve();
    let (status, _) = http_request(rig.http, "POST", &format!("/unsubscribe?t={token}"), "List-Unsubscribe=One-Click").unwrap();
    assert_eq!(status, 200);
    c.stop();
    let out = rig.d.collector(&["report", "resend", "1"]).output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nobody to send it to"), "{err}");
    assert_eq!(rig.archive()[0]["resends"].as_array().unwrap().len(), 2);
}

#[test]
fn delivery_nobody_confirmed_warns_counts_and_reminds_once_then_expires() {
    let rig = Rig::new(&format!(
        "{}\n[delivery]\nremind-after = \"15s\"\ninvite-ttl = \"15s\"\n",
        daily_berlin("Ops Team <ops@example.org>").replace("time-zone = \"Europe/Berlin\"\n", "")
    ));
    let mut c = rig.serve_at("2026-12-07T07:59:50Z");
    // The invitation keeps the display name.
    let invite = rig.smtp.wait_for(1, Duration::from_secs(20), |m| subject(m).starts_with("Ampel: please confirm"));
    assert_eq!(invite[0]["to"], "\"Ops Team\" <ops@example.org>");
    // 08:00: nobody confirmed. A warning, a counter, no mail.
    c.wait_for_log("nobody got this report", Duration::from_secs(30));
    assert!(c.log().contains("WARN"), "{}", c.log());
    let (_, metrics) = http_request(rig.http, "GET", "/metrics", "").unwrap();
    assert!(metrics.contains("ampel_reports_unserved_total 1"), "{metrics}");
    // One reminder 15 s after the invitation, then expired 15 s after that.
    let reminder = rig.smtp.wait_for(1, Duration::from_secs(30), |m| subject(m).starts_with("Reminder: "));
    assert_eq!(reminder[0]["to"], "\"Ops Team\" <ops@example.org>");
    c.wait_for_log("marked expired", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    c.stop();
    let messages = rig.smtp.messages();
    assert_eq!(messages.iter().filter(|m| subject(m).starts_with("Reminder: ")).count(), 1, "{messages:?}");
    assert!(messages.iter().all(|m| !subject(m).contains("security report for")), "{messages:?}");
    let list = rig.d.collector(&["recipients"]).ok();
    assert!(list.contains("expired"), "{list}");
    assert!(list.contains("WARNING: job daily: none of its 1 address(es) has confirmed, so its reports reach nobody"), "{list}");

    // The operator invites again, and can remove the address from the job.
    let said = rig.d.collector(&["recipients", "invite", "ops@example.org", "--job", "daily"]).ok();
    assert!(said.contains("invitation for job daily sent") && said.contains("was expired"), "{said}");
    rig.smtp.wait_for(2, Duration::from_secs(10), |m| subject(m).starts_with("Ampel: please confirm"));
    assert!(rig.d.collector(&["recipients"]).ok().contains("invited"));
    rig.d.collector(&["recipients", "remove", "ops@example.org", "--job", "daily"]).ok();
    let list = rig.d.collector(&["recipients"]).ok();
    assert!(list.lines().any(|l| l.contains("ops@example.org") && l.trim_end().ends_with("daily")), "{list}");
    let log = rig.d.collector(&["recipients", "--log"]).ok();
    for event in ["invited", "reminded", "expired", "removed"] {
        assert!(log.contains(event), "{event} missing from the consent log:\n{log}");
    }
    let out = rig.d.collector(&["recipients", "invite", "eve@example.org", "--job", "daily"]).output();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not among the to and cc"));
}

/// Cc is a Cc: every confirmed recipient's copy shows the same `To` and `Cc` headers; each
/// copy goes to one envelope recipient with its own unsubscribe link.
#[test]
fn delivery_a_cc_address_appears_in_the_cc_header_of_every_copy() {
    let rig = Rig::new(&daily_berlin("Ops <ops@example.org>").replace("to = ", "cc = \"NOC <noc@example.org>\"\nto = "));
    let mut c = rig.serve_at("2026-12-07T06:59:35Z");
    rig.confirm(2);
    let reports = rig.wait_reports(2, Duration::from_secs(60));
    c.stop();
    let mut rcpts: Vec<&str> = reports.iter().map(|r| r["rcpt_to"].as_str().unwrap()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["noc@example.org", "ops@example.org"]);
    for r in &reports {
        assert_eq!(r["to"], "Ops <ops@example.org>", "{r}");
        assert_eq!(r["cc"], "NOC <noc@example.org>", "{r}");
    }
    assert_ne!(reports[0]["list_unsubscribe"], reports[1]["list_unsubscribe"], "each copy unsubscribes its own address");
}

/// Links carry no readable address, and every kind expires — unsubscribe too; each mail
/// brings a fresh one.
#[test]
fn delivery_links_are_opaque_and_unsubscribe_links_expire_and_are_reissued() {
    let rig = Rig::new(&daily_berlin("Ops <ops@example.org>"));
    let mut c = rig.d.serve();
    let invite = rig.smtp.wait_for(1, Duration::from_secs(20), |m| subject(m).starts_with("Ampel: please confirm"));
    c.stop();
    let text = invite[0]["text"].as_str().unwrap();
    let confirm = link_token(text, "/confirm").unwrap();
    let unsubscribe = link_token(text, "/unsubscribe").unwrap();
    let hex_address: String = "ops@example.org".bytes().map(|b| format!("{b:02x}")).collect();
    for t in [&confirm, &unsubscribe] {
        assert!(!t.contains("ops") && !t.contains(&hex_address), "the address shows in the token {t}");
    }

    // 93 days on: both links have expired. The reminder brings fresh ones that work.
    let later = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(93 * 24)).unwrap();
    let mut c = rig.serve_at(&later.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    let (status, _) = http_request(rig.http, "POST", &format!("/unsubscribe?t={unsubscribe}"), "List-Unsubscribe=One-Click").unwrap();
    assert_eq!(status, 403, "an unsubscribe link 93 days old");
    let (status, _) = http_request(rig.http, "POST", "/confirm", &format!("t={confirm}")).unwrap();
    assert_eq!(status, 403);
    let reminder = rig.smtp.wait_for(1, Duration::from_secs(30), |m| subject(m).starts_with("Reminder: "));
    let fresh = link_token(reminder[0]["list_unsubscribe"].as_str().unwrap(), "/unsubscribe").unwrap();
    assert_ne!(fresh, unsubscribe);
    let (status, page) = http_request(rig.http, "POST", &format!("/unsubscribe?t={fresh}"), "List-Unsubscribe=One-Click").unwrap();
    assert_eq!(status, 200, "{page}");
    c.stop();
    assert!(rig.d.collector(&["recipients"]).ok().contains("unsubscribed"));
}

/// A run due when the collector starts waits until the agent that was sending before the
/// restart has delivered what it spooled meanwhile, then renders: the report does not show a
/// gap that the agent's data fills a moment later.
#[test]
fn delivery_a_run_due_at_start_up_waits_for_the_agents_spooled_data() {
    let now = jiff::Timestamp::now();
    // A daily UTC job whose slot passed three minutes ago; its cursor is set by a first start
    // ten minutes ago (libfaketime), so that slot is due at the restart below.
    let slot = (now - jiff::SignedDuration::from_mins(3)).to_zoned(jiff::tz::TimeZone::UTC);
    let job = format!(
        "[[jobs]]\nname = \"hourly\"\ntenants = [\"acme\"]\nhours = 1\nsend = [\"daily {}\"]\ntime-zone = \"UTC\"\nto = \"ops@example.org\"\n",
        slot.strftime("%H:%M")
    );
    let rig = Rig::new(&job);
    let with_job = std::fs::read_to_string(&rig.d.config).unwrap();
    let ten_ago = (now - jiff::SignedDuration::from_mins(10)).strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut c = rig.serve_at(&ten_ago);
    c.wait_for_log("scheduler started", Duration::from_secs(20));
    c.stop();

    // The agent sends to a collector without the job; then the collector dies.
    std::fs::write(&rig.d.config, with_job.replace(&job, "")).unwrap();
    let mut c = rig.d.serve();
    let dev = rig.d.issue("acme", "fw-1");
    let _agent = rig.d.agent(&dev, "fw-1", "1s");
    ampel_tests::wait_until(Duration::from_secs(30), || (spool_points(&rig.d) > 0).then_some(())).expect("the agent sent nothing");
    c.kill9();
    let down = jiff::Timestamp::now().as_millisecond();
    std::thread::sleep(Duration::from_secs(4));

    // Back with the job: the run is due at once, and waits for the agent.
    std::fs::write(&rig.d.config, &with_job).unwrap();
    let up = jiff::Timestamp::now().as_millisecond();
    let mut c = rig.d.serve();
    c.wait_for_log("report archived", Duration::from_secs(150));
    c.stop();
    let log = c.log();
    let at = |needle: &str| log.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the collector's log:\n{log}"));
    assert!(at("reports wait for the agents that were sending before the restart") < at("every agent caught up"), "{log}");
    assert!(at("every agent caught up") < at("report archived"), "the report ran before the agent caught up:\n{log}");
    // What the agent gathered while the collector was down is in the store.
    let store = ampel_collector::store::Store::open(&rig.d.dir.path().join("data/store"), Default::default()).unwrap();
    let spooled = store.count_points("fw-1", down, up).unwrap();
    assert!(spooled > 0, "nothing gathered between {down} and {up} reached the store");
}

fn spool_points(d: &Deployment) -> u64 {
    d.device("fw-1").and_then(|v| v["points"].as_u64()).unwrap_or(0)
}
