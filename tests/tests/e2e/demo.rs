//! The embedded default: `ampel-collector demo` runs end to end from nothing.

use ampel_tests::{Cmd, require};

#[test]
fn demo_completes_and_leaves_pdfs_and_mails() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo");
    let stdout = Cmd::new("ampel-collector").args(["demo", "--seconds", "4", "--out", out_dir.to_str().unwrap()]).ok();
    assert!(stdout.contains("demo: done"), "{stdout}");
    for tenant in ["acme", "globex"] {
        let pdf = out_dir.join(format!("ampel-{tenant}-demo.pdf"));
        assert!(pdf.exists(), "{} missing; stdout:\n{stdout}", pdf.display());
        let text = std::process::Command::new(require("pdftotext", "poppler-utils")).arg(&pdf).arg("-").output().unwrap();
        let text = String::from_utf8_lossy(&text.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(tenant));
        // The demo's devices enrolled seconds ago: full coverage of seconds is not full
        // coverage of the period, and the report says the devices are new (issue 19).
        assert!(text.contains("% (new since "), "no device marked new in {tenant}'s report:\n{text}");
    }
    let emls: Vec<_> = std::fs::read_dir(out_dir.join("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(emls.len(), 2, "one mail per tenant");
    let eml = std::fs::read_to_string(emls[0].path()).unwrap();
    assert!(eml.contains("security report for") && eml.contains("application/pdf"), "{eml}");
    // Three real agents reported; the offline device is shown as such.
    assert!(stdout.contains("fw-lyon") && stdout.contains("left offline"), "{stdout}");
}
