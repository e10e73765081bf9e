//! `ampel-bench console`: the web console's server time and page weight, against the real
//! collector (`Server::start`: store, fleet summary task, HTTP listener) on a loopback port.
//!
//! A scratch store is filled with `--tenants` tenants of `--devices` devices each sending CPU,
//! memory and disk every 5 minutes for a day (what the fleet's 24 hours read), and one tenant
//! `big` of `--big-devices` devices with the same data from the start of the last calendar
//! month (UTC) to now, plus alerts, so its `?period=month` page judges 30 days and more. Then the
//! benchmark logs in through the form as a browser does, waits for the first fleet summary,
//! and times the fleet page and the tenant page request by request (client-side on loopback,
//! so connection set-up is included: an upper bound of the server time).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ampel_collector::store::{PendingBatch, Store};
use ampel_protocol::{Batch, DeviceId, Identity, Record, TenantId};
use anyhow::Context;
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Scratch, alert, metric_batch, now_ms, percentiles, report as line};

const DAY: i64 = 86_400_000;
/// The agents' interval in the filled data.
const EVERY: i64 = 300_000;
/// Samples per batch: a day.
const PER_BATCH: i64 = DAY / EVERY;
/// The login of the benchmark's administrator.
const PASSWORD: &str = "bench password";

/// Options of the console benchmark.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Tenants on the fleet page.
    #[arg(long, default_value_t = 1000)]
    pub tenants: usize,
    /// Devices per tenant.
    #[arg(long, default_value_t = 10)]
    pub devices: usize,
    /// Devices of the tenant whose page is timed.
    #[arg(long, default_value_t = 50)]
    pub big_devices: usize,
    /// Timed requests of the fleet page.
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Timed requests of the tenant page.
    #[arg(long, default_value_t = 10)]
    pub tenant_runs: usize,
    /// Where to create the scratch directory (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs the benchmark.
pub async fn run(a: &ConsoleArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(a.dir.as_deref(), "console", false)?;
    let cfg = config(scratch.path())?;
    ampel_collector::pki::Pki::init(
        &cfg.pki_dir(),
        &ampel_collector::pki::InitOptions { names: vec!["localhost".into()], ..Default::default() },
    )?;
    let filling = Instant::now();
    fill(&cfg, a)?;
    line("console.setup.fill", filling.elapsed().as_secs_f64(), "s (commit + fold)");
    let started = Instant::now();
    let server = ampel_collector::server::Server::start(&cfg)?;
    let http = server.http_addr.context("the HTTP listener did not start")?;
    let (cookie, requests) = login(http).await?;
    line("console.login_to_fleet", requests as f64, "requests (POST /console/login, then its redirect to the fleet)");
    let first = wait_for_summary(http, &cookie).await?;
    line("console.fleet.first_summary", first.saturating_duration_since(started).as_secs_f64(), "s after start (polled every 100 ms)");
    time_page(http, &cookie, "/console/", a.runs, "console.fleet_page").await?;
    time_page(http, &cookie, "/console/tenants/big?period=month", a.tenant_runs, "console.tenant_page").await?;
    server.stop().await;
    Ok(())
}

/// The collector's config: QUIC and HTTP on loopback ports chosen by the system, one
/// administrator.
fn config(dir: &std::path::Path) -> anyhow::Result<ampel_collector::config::Config> {
    let hash = ampel_collector::console::users::hash_password(PASSWORD)?;
    let src = format!(
        "data-dir = \"{}\"\n[quic]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [[users]]\nname = \"admin\"\nrole = \"administrator\"\ntenants = \"*\"\npassword-hash = \"{}\"\n",
        dir.join("data").display(),
        hash.as_str()
    );
    Ok(ampel_collector::config::Config::parse(&dir.join("collector.toml"), &src)?)
}

/// Device `d` of `tenant`.
fn device(tenant: &str, d: usize) -> anyhow::Result<Identity> {
    Ok(Identity { tenant: TenantId::new(tenant)?, device: DeviceId::new(&format!("{tenant}-fw{d:02}"))? })
}

/// The fleet's tenants with a day of data, then the big tenant's devices from the start of
/// the last month.
fn fill(cfg: &ampel_collector::config::Config, a: &ConsoleArgs) -> anyhow::Result<()> {
    ampel_collector::files::create_dir_all(&cfg.store_dir())?;
    let store = Store::open(&cfg.store_dir(), cfg.store_options())?;
    let now = now_ms();
    let day_start = now - DAY;
    for t in 0..a.tenants {
        let tenant = format!("t{t:04}");
        let group: Vec<PendingBatch> =
            (0..a.devices).map(|d| Ok(batch(device(&tenant, d)?, d, 1, 0, PER_BATCH, day_start, None))).collect::<anyhow::Result<_>>()?;
        store.commit(&group)?;
        if t % 50 == 49 {
            store.fold_all()?;
        }
    }
    let month_start = last_month_start(now)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let days = (now - month_start) / DAY + 1;
    for day in 0..days {
        let group: Vec<PendingBatch> = (0..a.big_devices)
            .map(|d| Ok(batch(device("big", d)?, d, day as u64 + 1, day * PER_BATCH, PER_BATCH, month_start, Some(&mut rng))))
            .collect::<anyhow::Result<_>>()?;
        store.commit(&group)?;
    }
    store.fold_all()?;
    line(
        "console.setup.points",
        ((a.tenants * a.devices) as i64 * PER_BATCH * 3 + a.big_devices as i64 * days * PER_BATCH * 3) as f64,
        "points",
    );
    Ok(())
}

/// `samples` samples of CPU, memory and disk of device `d` from sample `k0`, with 20 alerts
/// when `rng` is given.
fn batch(identity: Identity, d: usize, seq: u64, k0: i64, samples: i64, t0: i64, rng: Option<&mut rand::rngs::StdRng>) -> PendingBatch {
    let mut b: Batch = metric_batch(d, seq, 3, k0, samples, t0, EVERY);
    if let Some(rng) = rng {
        let day = t0 + k0 * EVERY;
        b.records.extend((0..20).map(|i| Record::Alert(alert(day + i * DAY / 20, rng))));
    }
    PendingBatch { identity, batch: b, received_ms: now_ms() }
}

/// Midnight UTC of the first day of the month before `now`.
fn last_month_start(now: i64) -> anyhow::Result<i64> {
    let today = jiff::Timestamp::from_millisecond(now)?.to_zoned(jiff::tz::TimeZone::UTC).date();
    let first = today.first_of_month().checked_sub(jiff::Span::new().months(1))?;
    Ok(first.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp().as_millisecond())
}

/// A response: status, head, body.
struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().find(|l| l.to_ascii_lowercase().starts_with(&prefix)).map(|l| l[prefix.len()..].trim())
    }

    /// The value of cookie `name` this response sets.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .find_map(|l| l["set-cookie:".len()..].trim().strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned))
    }
}

/// One request on its own connection, as a browser without keep-alive would send it.
async fn request(addr: SocketAddr, method: &str, target: &str, cookie: &str, body: &str) -> anyhow::Result<Resp> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("a response without a head")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    anyhow::ensure!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "chunked answer to {target}: weights would be off");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("a response without a status")?;
    Ok(Resp { status, head, body: raw[split + 4..].to_vec() })
}

/// Logs in as the administrator through the form, following the redirect to the fleet page;
/// returns the session cookie and the requests from the login POST to the fleet page.
async fn login(addr: SocketAddr) -> anyhow::Result<(String, usize)> {
    let form = request(addr, "GET", "/console/login", "", "").await?;
    let token = form.set_cookie("ampel_login").context("no login cookie")?;
    let body = format!("user=admin&password={}&csrf={token}", PASSWORD.replace(' ', "+"));
    let posted = request(addr, "POST", "/console/login", &format!("ampel_login={token}"), &body).await?;
    let session = posted.set_cookie("ampel_session").with_context(|| format!("login refused ({})", posted.status))?;
    let cookie = format!("ampel_session={session}");
    let mut requests = 1;
    let mut next = posted;
    while let Some(location) = next.header("location").filter(|_| (300..400).contains(&next.status)).map(str::to_owned) {
        next = request(addr, "GET", &location, &cookie, "").await?;
        requests += 1;
    }
    anyhow::ensure!(next.status == 200 && String::from_utf8_lossy(&next.body).contains("<h1>Fleet</h1>"), "login did not end on the fleet");
    Ok((cookie, requests))
}

/// Waits until the fleet page shows a summary; returns when it first did.
async fn wait_for_summary(addr: SocketAddr, cookie: &str) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    while Instant::now() < deadline {
        let page = request(addr, "GET", "/console/", cookie, "").await?;
        if !String::from_utf8_lossy(&page.body).contains("being computed") {
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no fleet summary within an hour")
}

/// Times `runs` requests of `target` and prints p50, p99 and the page's weight.
async fn time_page(addr: SocketAddr, cookie: &str, target: &str, runs: usize, name: &str) -> anyhow::Result<()> {
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let r = request(addr, "GET", target, cookie, "").await?;
        times.push(started.elapsed());
        anyhow::ensure!(r.status == 200, "{target}: {}", r.status);
        bytes = r.body.len();
    }
    let (p50, p99) = percentiles(times);
    line(&format!("{name}.p50"), p50, "ms");
    line(&format!("{name}.p99"), p99, "ms");
    line(&format!("{name}.bytes"), bytes as f64, "bytes");
    Ok(())
}
