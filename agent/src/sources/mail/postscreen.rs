//! Postfix `postscreen` lines: the clients it kept away from the SMTP server, and why.
//!
//! postscreen logs a failed test (`PREGREET`, `DNSBL rank`, `COMMAND PIPELINING`, ...) when it
//! happens and what came of it later: `NOQUEUE: reject: RCPT from [addr]:port: 550 ...` when
//! the test's action is `enforce` and the client goes on to RCPT, and `DISCONNECT [addr]:port`
//! whenever postscreen ends a session itself instead of handing it to the SMTP server
//! (`enforce`, `drop`, or a client that hung up; postscreen.c `psc_conclude`). With `ignore` the
//! session is handed on and nothing follows. So a failed test is remembered per client until a
//! line says what came of it:
//!
//! | lines | alert |
//! | --- | --- |
//! | `NOQUEUE: reject: RCPT from [a]:p: 550 ...` | `rejected`; the reply without the client address; category `dnsbl` for "blocked using", else the failed test, else `reject` |
//! | `NOQUEUE: reject: CONNECT from [a]:p: too many connections` | `rejected`, category `reject` |
//! | a failed test, then `DISCONNECT [a]:p` | `blocked`; `postscreen <test>`, category the test |
//! | `HANGUP` (not a failed test, says postscreen.c), `CONNECT`, `PASS NEW/OLD`, allow list, `DISCONNECT` with no failed test, cache lines | none |
//!
//! Envelope sender, recipients and HELO are not kept, as for every other mail line. Clients
//! whose test failed under `ignore` never see a `DISCONNECT`; the oldest remembered client
//! makes room once [`MAX_PENDING`] are waiting.

use std::collections::VecDeque;

use ampel_protocol::{Alert, AlertAction};

use super::{mail_alert, reject_reason};

/// Clients remembered with a failed test and no outcome yet.
pub(super) const MAX_PENDING: usize = 1024;

/// The test failures postscreen logs: the message's start and the category it gets.
const TESTS: [(&str, &str); 10] = [
    ("PREGREET ", "pregreet"),
    ("DNSBL rank ", "dnsbl"),
    ("COMMAND PIPELINING ", "pipelining"),
    ("NON-SMTP COMMAND ", "non-smtp command"),
    ("BARE NEWLINE ", "bare newline"),
    ("COMMAND TIME LIMIT ", "command time limit"),
    ("COMMAND COUNT LIMIT ", "command count limit"),
    ("COMMAND LENGTH LIMIT ", "command length limit"),
    ("DENYLISTED ", "denylist"),
    ("BLACKLISTED ", "denylist"),
];

/// postscreen's sessions with a failed test, oldest first.
#[derive(Debug, Default)]
pub struct Postscreen {
    /// (`[addr]:port`, the failed test's category).
    pending: VecDeque<(String, &'static str)>,
}

/// A client as postscreen writes it, `[addr]:port`, at the first `[` of `s`: the whole token
/// and the address.
fn client(s: &str) -> Option<(&str, &str)> {
    let start = s.find('[')?;
    let close = start + s[start..].find("]:")?;
    let port = s[close + 2..].bytes().take_while(u8::is_ascii_digit).count();
    if port == 0 || close == start + 1 {
        return None;
    }
    Some((&s[start..close + 2 + port], &s[start + 1..close]))
}

impl Postscreen {
    /// The alert of one postscreen message (the line after `postscreen[pid]: `): `None` for a
    /// line that carries none, `Some(Err(()))` for one that should and cannot be read.
    pub(super) fn message(&mut self, ts: i64, msg: &str) -> Option<Result<Alert, ()>> {
        if let Some(body) = msg.strip_prefix("NOQUEUE: reject: ") {
            return Some(self.reject(ts, body));
        }
        if let Some(rest) = msg.strip_prefix("DISCONNECT ") {
            let Some((key, addr)) = client(rest) else { return Some(Err(())) };
            let test = self.take(key)?;
            let mut a = mail_alert(ts, &format!("postscreen {test}"), AlertAction::Blocked, test);
            a.src = Some(addr.to_owned());
            return Some(Ok(a));
        }
        let (_, test) = TESTS.iter().find(|(start, _)| msg.starts_with(start))?;
        let Some((key, _)) = client(msg) else { return Some(Err(())) };
        self.remember(key, test);
        None
    }

    /// `RCPT from [a]:p: reply; from=<..>, ...` or `CONNECT from [a]:p: reason`.
    fn reject(&mut self, ts: i64, body: &str) -> Result<Alert, ()> {
        let (key, addr) = body.split_once(" from ").and_then(|(_, c)| client(c)).ok_or(())?;
        let reply = body.split_once(key).and_then(|(_, r)| r.strip_prefix(": ")).ok_or(())?;
        let reason = reject_reason(reply, addr);
        let failed = self.take(key);
        // The reply names a DNSBL when that is what it enforces, whatever else failed first.
        let category = if reason.contains(" blocked using ") { "dnsbl" } else { failed.unwrap_or("reject") };
        let mut a = mail_alert(ts, &reason, AlertAction::Rejected, category);
        a.src = Some(addr.to_owned());
        Ok(a)
    }

    fn remember(&mut self, key: &str, test: &'static str) {
        if self.pending.iter().any(|(k, _)| k == key) {
            return;
        }
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((key.to_owned(), test));
    }

    /// The failed test remembered for `key`, forgotten.
    fn take(&mut self, key: &str) -> Option<&'static str> {
        let i = self.pending.iter().position(|(k, _)| k == key)?;
        self.pending.remove(i).map(|(_, test)| test)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_read_with_their_port() {
        assert_eq!(client("for [192.0.2.7]:4711 x"), Some(("[192.0.2.7]:4711", "192.0.2.7")));
        assert_eq!(client("from [2001:db8::1]:25: EHLO"), Some(("[2001:db8::1]:25", "2001:db8::1")));
        for bad in ["[1.2.3.4]", "[1.2.3.4]:", "[]:25", "no client", "[1.2.3.4:25"] {
            assert_eq!(client(bad), None, "{bad}");
        }
    }

    #[test]
    fn remembered_clients_are_bounded() {
        let mut p = Postscreen::default();
        for i in 0..MAX_PENDING + 10 {
            assert!(p.message(0, &format!("PREGREET 11 after 0.1 from [10.0.0.1]:{i}: EHLO x")).is_none());
        }
        assert_eq!(p.pending.len(), MAX_PENDING);
        // The oldest made room: its DISCONNECT has nothing to report, the newest's does.
        assert!(p.message(0, "DISCONNECT [10.0.0.1]:0").is_none());
        let a = p.message(0, &format!("DISCONNECT [10.0.0.1]:{}", MAX_PENDING + 9)).unwrap().unwrap();
        assert_eq!((a.action, a.signature.as_str()), (AlertAction::Blocked, "postscreen pregreet"));
    }
}
