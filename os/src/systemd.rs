//! systemd integration without a dependency: the `sd_notify` datagram protocol (`READY=1`,
//! `STOPPING=1`, `RELOADING=1`, `WATCHDOG=1`, `STATUS=`) and the list of keys a reload changed.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op, so `ampel-collector serve` and
//! `ampel-agent run` behave the same in a terminal, in the tests and under their units.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where readiness, reload and watchdog messages go: the socket named by `NOTIFY_SOCKET`.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
}

impl Notifier {
    /// Connects to `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). Without
    /// it, or when it cannot be used, the notifier stays silent: systemd would then time the
    /// start out, which is the right signal for an operator.
    pub fn from_env() -> Notifier {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else { return Notifier { socket: None } };
        let addr = match name.to_str().and_then(|n| n.strip_prefix('@')) {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
            }
            None => std::os::unix::net::SocketAddr::from_pathname(&name),
        };
        let socket = match (UnixDatagram::unbound(), addr) {
            (Ok(s), Ok(a)) => Some((s, a)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(socket = ?name, error = %e, "NOTIFY_SOCKET is set but unusable; not notifying systemd");
                None
            }
        };
        Notifier { socket }
    }

    /// Sends one message (newline-separated `KEY=value` lines). Failures are logged, not
    /// fatal: the service keeps working, systemd's timeouts report the problem.
    pub fn notify(&self, message: &str) {
        if let Some((socket, addr)) = &self.socket
            && let Err(e) = socket.send_to_addr(message.as_bytes(), addr)
        {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }

    /// The service is ready (the collector's listeners are bound and its store is open; the
    /// agent's state is open and its transport is starting), with a status line.
    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.notify("STOPPING=1\nSTATUS=stopping");
    }

    /// A reload has begun; follow with [`Notifier::ready`].
    pub fn reloading(&self) {
        self.notify("RELOADING=1\nSTATUS=reloading the configuration");
    }

    /// The main loop is alive.
    pub fn watchdog(&self) {
        self.notify("WATCHDOG=1");
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// recommends; `None` when there is no watchdog or it is meant for another process
/// (`WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Ticks at the watchdog interval, or never when there is no watchdog; feed it to a
/// `tokio::select!` in the main loop so a wedged loop stops the pings.
#[derive(Debug)]
pub struct WatchdogTimer {
    interval: Option<tokio::time::Interval>,
}

impl WatchdogTimer {
    /// A timer for [`watchdog_interval`].
    pub fn from_env() -> WatchdogTimer {
        let interval = watchdog_interval().map(|every| {
            let mut i = tokio::time::interval(every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        WatchdogTimer { interval }
    }

    /// Completes when the next ping is due; pends forever without a watchdog.
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// The dotted keys whose values differ between two parsed TOML documents (added, removed or
/// changed), for the "reloaded: changed ..." log line. Arrays of tables compare whole.
pub fn changed_keys(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    diff(old, new, "", &mut out);
    out
}

fn diff(old: &toml::Table, new: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let empty = toml::Table::new();
        match (old.get(key), new.get(key)) {
            // An added or removed table lists its keys, so the log names what the admin typed.
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => diff(a, b, &path, out),
            (Some(toml::Value::Table(a)), None) => diff(a, &empty, &path, out),
            (None, Some(toml::Value::Table(b))) => diff(&empty, b, &path, out),
            (a, b) if a != b => out.push(path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn changed_keys_lists_added_removed_and_changed_nested_keys() {
        let old: toml::Table = toml::from_str("a = 1\n[risk]\nx = \"1m\"\ny = 2\n[mail]\nfrom = \"f\"\n").unwrap();
        let new: toml::Table = toml::from_str("a = 1\nb = 2\n[risk]\nx = \"2m\"\ny = 2\n").unwrap();
        assert_eq!(changed_keys(&old, &new), ["b", "mail.from", "risk.x"]);
        assert!(changed_keys(&old, &old).is_empty());
    }

    #[test]
    fn notifier_sends_datagrams_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let addr = std::os::unix::net::SocketAddr::from_pathname(&path).unwrap();
        let n = Notifier { socket: Some((UnixDatagram::unbound().unwrap(), addr)) };
        n.ready("up");
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up");
    }
}
