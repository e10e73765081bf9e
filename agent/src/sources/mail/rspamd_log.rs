//! rspamd's per-message result line (`rspamd_task_write_log`), from rspamd.log or syslog.
//!
//! With rspamd's default `log_format` (cfg_utils.c `RSPAMD_DEFAULT_LOG_FORMAT`) the line reads
//!
//! ```text
//! 2025-02-15 03:53:31 #1576(normal) <9a8448>; task; rspamd_task_write_log: id: <mid>,
//!   qid: <QID>, ip: 203.0.113.5, from: <a@example.com>, (default: T (reject): [16.50/15.00]
//!   [GTUBE(0.00){},...]), len: 2345, time: 345.1ms, dns req: 42, digest: <...>, rcpts: <...>
//! ```
//!
//! (one line). It becomes the alert a history row with the same action becomes
//! ([`super::rspamd_alert`]): the message id, the client address and the score; sender and
//! recipients are not kept (history rows carry none either). A line with
//! `rspamd_task_write_log` but no `(default: F (action): [score/required]` part (a custom
//! `log_format` without `$action` or `$scores`) is malformed.

use ampel_protocol::Alert;

use super::rspamd_alert;

/// What marks the line.
const MARKER: &str = "rspamd_task_write_log: ";

/// Whether `rest` is an rspamd result line.
pub(super) fn is_result(rest: &str) -> bool {
    rest.contains(MARKER)
}

/// The alert of an rspamd result line (after its timestamp): `None` for `no action`,
/// `Some(Err(()))` when the verdict cannot be read.
pub(super) fn line(ts: i64, rest: &str) -> Option<Result<Alert, ()>> {
    let body = &rest[rest.find(MARKER)? + MARKER.len()..];
    let Some((action, score, required)) = verdict(body) else { return Some(Err(())) };
    let id = body.strip_prefix("id: <").and_then(|s| s.split_once('>')).map_or("", |(id, _)| id);
    let ip = body.split_once(", ip: ").and_then(|(_, s)| s.split(',').next()).unwrap_or("");
    rspamd_alert(ts, action, ip, id, score, required).map(Ok)
}

/// `(default: F (reject): [12.34/15.00]`: the action, the score and the score required.
fn verdict(body: &str) -> Option<(&str, f64, f64)> {
    let (_, after) = body.split_once("(default: ")?;
    let after = after.strip_prefix(['T', 'F', 'S'])?.strip_prefix(" (")?;
    let (action, after) = after.split_once("): [")?;
    let (scores, _) = after.split_once(']')?;
    let (score, required) = scores.split_once('/')?;
    Some((action, score.parse().ok()?, required.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn verdicts_are_read_and_odd_ones_refused() {
        let line = "id: <x@y>, ip: 192.0.2.1, (default: T (soft reject): [7.50/15.00] [A(1.00){b;}]), len: 1";
        assert_eq!(verdict(line), Some(("soft reject", 7.5, 15.0)));
        assert_eq!(verdict("id: <x>, (default: F (no action): [-0.30/15.00] []), len: 2"), Some(("no action", -0.3, 15.0)));
        for bad in ["id: <x>, len: 1", "(default: X (reject): [1/2]", "(default: T (reject): [one/2]", "(default: T (reject): [12]"] {
            assert_eq!(verdict(bad), None, "{bad}");
        }
    }
}
