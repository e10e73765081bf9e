//! `ampel-collector demo`: the whole system on one machine, from nothing but the build.
//!
//! A throw-away PKI, the collector on a loopback port chosen at run time, three real
//! `ampel-agent` processes in two tenants (and one enrolled device that never reports, so the
//! report shows what a silent device looks like), some seconds of live data, then each tenant's
//! report rendered and mailed through the file transport into the output directory. Each agent
//! also reads a small Suricata EVE file written by the demo (an attack mix at the demo's start),
//! through its real `eve` source, so the report's threats section has something to show.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ampel_protocol::{DeviceId, TenantId};
use anyhow::{Context, Result, bail};

use crate::assess::Period;
use crate::cli::DemoArgs;
use crate::config::Config;
use crate::ingest::quic::now_ms;
use crate::mail::Mailer;
use crate::pki::{InitOptions, Pki};
use crate::reporting;
use crate::server::Server;

/// (tenant, device, model, runs an agent)
const FLEET: &[(&str, &str, &str, bool)] = &[
    ("acme", "fw-berlin", "UTM RC200", true),
    ("acme", "fw-hamburg", "UTM RC100", true),
    ("globex", "fw-paris", "UTM RC300", true),
    ("globex", "fw-lyon", "UTM RC100", false),
];

fn agent_binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    let me = std::env::current_exe().context("finding this binary's path")?;
    let candidate = me.with_file_name("ampel-agent");
    if candidate.exists() {
        return Ok(candidate);
    }
    bail!("ampel-agent not found next to {} — build it first (`cargo build --release`) or pass --agent PATH", me.display())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<()> {
    let agent_bin = agent_binary(args.agent.clone())?;
    let out = &args.out;
    if out.exists() && std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?.next().is_some() {
        bail!("{} exists and is not empty; choose a new directory with --out", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = out.canonicalize().with_context(|| format!("resolving {}", out.display()))?;

    // The collector's config, written and loaded like any operator's, with a console user whose
    // throw-away password is printed when the demo keeps running.
    let cfg_path = out.join("collector.toml");
    let password = demo_password();
    let hash = crate::console::users::hash_password(&password).context("hashing the demo console password")?;
    write(
        &cfg_path,
        &format!(
            "# Written by `ampel-collector demo`.\n\
             data-dir = \"data\"\n\n\
             [quic]\nlisten = \"127.0.0.1:0\"\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\n\
             [report]\ntime-zone = \"Europe/Berlin\"\n\n\
             [mail]\ntransport = \"file\"\noutbox = \"outbox\"\nfrom = \"Ampel Demo <ampel@localhost>\"\n\n\
             [[users]]\nname = \"admin\"\nrole = \"administrator\"\ntenants = \"*\"\npassword-hash = \"{}\"\n",
            hash.as_str()
        ),
    )?;
    let cfg = Config::load(&cfg_path)?;
    let pki = Pki::init(&cfg.pki_dir(), &InitOptions { names: vec!["localhost".into(), "127.0.0.1".into()], ..InitOptions::default() })
        .context("creating the demo CA")?;
    println!("demo: CA created in {}", pki.dir().display());

    let server = Server::start(&cfg).context("starting the collector")?;
    let addr = server.local_addr;
    println!("demo: collector listening on {addr} (QUIC, mutual TLS)");

    let started_ms = now_ms();
    let mut children = Vec::new();
    for (tenant, device, model, runs) in FLEET {
        let (t, d) = (TenantId::new(tenant)?, DeviceId::new(device)?);
        let dir = out.join("agents").join(device);
        let issued = pki.issue_device(&t, &d, 30).with_context(|| format!("issuing {device}"))?;
        issued.write_to(&dir).with_context(|| format!("writing the files of {device}"))?;
        server.store.register_device(&t, &d, started_ms)?;
        if !runs {
            println!("demo: {device} ({tenant}) enrolled but left offline");
            continue;
        }
        let agent_cfg = dir.join("agent.toml");
        write(
            &agent_cfg,
            &format!(
                "interval = \"1s\"\nstate-dir = \"state\"\n\n[collector]\ntransport = \"quic\"\naddress = \"{addr}\"\nserver-name = \"localhost\"\n\
                 ca = \"ca.pem\"\ncert = \"{device}.pem\"\nkey = \"{device}.key\"\n\n[sources.performance]\nenabled = true\nmounts = [\"/\"]\n\n\
                 [sources.inventory]\nenabled = true\nmodel = \"{model}\"\nfirmware = \"12.6.2\"\n\n\
                 [sources.eve]\nenabled = true\npath = \"{eve}\"\nfrom-beginning = true\n",
                eve = dir.join("eve.json").display()
            ),
        )?;
        write(&dir.join("eve.json"), &eve_alerts(started_ms, device.len()))?;
        let log = std::fs::File::create(dir.join("agent.log")).context("creating the agent log")?;
        let child = tokio::process::Command::new(&agent_bin)
            .arg("run")
            .arg("--config")
            .arg(&agent_cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", agent_bin.display()))?;
        println!("demo: agent {device} ({tenant}) started, pid {}", child.id().unwrap_or(0));
        children.push((device.to_string(), child));
    }

    println!("demo: collecting live data for {} s (Ctrl-C stops early)", args.seconds);
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(args.seconds)) => false,
        _ = crate::cli::wait_for_shutdown_signal() => true,
    };
    if interrupted || !args.keep_running {
        for (device, child) in &mut children {
            stop_child(device, child).await;
        }
    }
    if interrupted {
        server.stop().await;
        println!("demo: interrupted; agents and collector stopped");
        return Ok(());
    }
    let rendered = reports(&cfg, &server.store, started_ms, &out).await;
    if rendered.is_ok() && args.keep_running {
        // The agents' tenants registered after the summary's first pass: show them at once.
        server.refresh_fleet().await;
        match server.http_addr {
            Some(http) => println!("demo: web console on http://{http}/console/ — log in as admin with password {password}"),
            None => println!("demo: the web console is not running"),
        }
        println!("demo: collector, agents and console keep running; Ctrl-C stops them");
        if let Err(e) = crate::cli::wait_for_shutdown_signal().await {
            eprintln!("demo: {e:#}; stopping now");
        }
        for (device, child) in &mut children {
            stop_child(device, child).await;
        }
    }
    server.stop().await;
    rendered?;
    println!("demo: done; everything is in {}", out.display());
    Ok(())
}

/// A throw-away console password: 16 random bytes, hex.
fn demo_password() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Renders and "mails" (file transport) each tenant's report of the demo's period, from the
/// running collector's store.
async fn reports(cfg: &Config, store: &crate::store::Store, started_ms: i64, out: &Path) -> Result<()> {
    let end_ms = now_ms();
    let period = Period::range(started_ms - 1000, end_ms, &cfg.report.time_zone.0)?;
    let mailer = Mailer::new(&cfg.mail).context("setting up the file mail transport")?;
    for tenant in store.tenants()? {
        let req = reporting::ReportRequest {
            tenant: tenant.clone(),
            period: period.clone(),
            lang: crate::report::Lang::En,
            widgets: Vec::new(),
            depth: crate::report::Depth::Full,
            false_positives: Default::default(),
        };
        let (data, pdf) = reporting::report(store, cfg, &req)?;
        let pdf_path = out.join(format!("ampel-{tenant}-demo.pdf"));
        reporting::write_pdf(&pdf_path, &pdf)?;
        let to = vec![format!("security@{tenant}.example")];
        let delivery = mailer.send(&reporting::report_mail(&data, &period, req.lang, pdf, to)).await.context("mailing the report")?;
        let points: u64 = data.devices.iter().map(|d| d.points).sum();
        println!(
            "demo: tenant {tenant}: {} (score {}), {} devices, {points} points -> {}, mail {}",
            data.light.as_str(),
            data.score,
            data.devices.len(),
            pdf_path.display(),
            delivery.file.map(|f| f.display().to_string()).unwrap_or_default()
        );
    }
    Ok(())
}

/// Suricata EVE alert lines for the demo's IDS source: a small attack mix at the start of the
/// demo (what a recipient would see in the threats section), different per device by `seed`.
fn eve_alerts(start_ms: i64, seed: usize) -> String {
    const SIGNATURES: [(u64, &str, &str, u8); 6] = [
        (2_001_219, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2),
        (2_010_935, "ET SCAN Suspicious inbound to MSSQL port 1433", "Potentially Bad Traffic", 2),
        (2_024_897, "ET USER_AGENTS Go HTTP Client User-Agent", "Misc activity", 3),
        (2_027_865, "ET INFO Observed DNS Query to .cloud TLD", "Potentially Bad Traffic", 3),
        (2_013_028, "ET POLICY curl User-Agent Outbound", "Attempted Information Leak", 3),
        (2_019_284, "ET EXPLOIT Possible CVE-2014-6271 Bash Vulnerability", "Attempted Administrator Privilege Gain", 1),
    ];
    let mut out = String::new();
    for k in 0..36usize {
        let (sid, sig, cat, sev) = SIGNATURES[(k * k + seed) % SIGNATURES.len()];
        let ms = start_ms + (k as i64) * 97;
        let ts = jiff::Timestamp::from_millisecond(ms)
            .ok()
            .and_then(|t| jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%.6f+0000", t).ok())
            .unwrap_or_default();
        let action = if sev == 1 || k % 3 == 0 { "blocked" } else { "allowed" };
        let src = format!("198.51.100.{}", (k * 7 + seed) % 23 + 1);
        out.push_str(&format!(
            "{{\"timestamp\":\"{ts}\",\"event_type\":\"alert\",\"src_ip\":\"{src}\",\"src_port\":{},\"dest_ip\":\"192.0.2.10\",\"dest_port\":{},\"proto\":\"TCP\",\"alert\":{{\"action\":\"{action}\",\"gid\":1,\"signature_id\":{sid},\"rev\":3,\"signature\":\"{sig}\",\"category\":\"{cat}\",\"severity\":{sev}}}}}\n",
            40_000 + k,
            [22, 1433, 443, 53, 80, 80][k % 6],
        ));
    }
    out
}

async fn stop_child(device: &str, child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(Ok(status)) if !status.success() => eprintln!("demo: agent {device} exited with {status}; see its agent.log"),
        Ok(_) => {}
        Err(_) => {
            let _ = child.kill().await;
        }
    }
}
