//! Running the counters command with its output, its error text and its time bounded.
//!
//! `Command::output` reads everything a child prints and waits for as long as it runs: a
//! wrapper script gone wrong (`yes`, a hung `nft`) would grow the agent without end or stall
//! its cycle. Here stdout is read up to a limit and stderr up to [`STDERR_MAX`] (the rest of
//! it is read and dropped, so the child never blocks on a full pipe); a child that prints more
//! than the limit, or does not finish within its time, is killed and reaped, and the cycle
//! reports why.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most bytes of the command's stderr kept for the error message.
pub(super) const STDERR_MAX: u64 = 4 << 10;

/// Why the command's output could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// What starting it said.
        source: std::io::Error,
    },
    /// Reading its output failed.
    #[error("reading the output of {program}: {source}")]
    Read {
        /// The program.
        program: String,
        /// What reading said.
        source: std::io::Error,
    },
    /// It printed more than the limit; it was killed.
    #[error("{program} printed more than {max} bytes; it was stopped")]
    TooLarge {
        /// The program.
        program: String,
        /// The limit, in bytes.
        max: u64,
    },
    /// It did not finish in time; it was killed.
    #[error("{program} did not finish within {} s; it was stopped", after.as_secs())]
    Timeout {
        /// The program.
        program: String,
        /// The time it had.
        after: Duration,
    },
    /// It exited unsuccessfully.
    #[error("{program}: {status}: {stderr}")]
    Failed {
        /// The program.
        program: String,
        /// How it exited.
        status: ExitStatus,
        /// The start of what it printed to stderr.
        stderr: String,
    },
}

/// Reads at most `max` + 1 bytes of `from`, so a result longer than `max` tells it went over.
fn read_at_most(from: impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    from.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Kills and reaps `child` (it may have exited already).
fn stop(child: &mut Child) {
    // Both fail only when the child is gone already, which is what is wanted.
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `program` with `args` and returns its stdout, at most `max` bytes, once it exited
/// successfully within `timeout`.
pub(super) fn output(program: &str, args: &[String], max: u64, timeout: Duration) -> Result<Vec<u8>, CommandError> {
    let program_owned = || program.to_owned();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CommandError::Spawn { program: program_owned(), source })?;
    let deadline = Instant::now() + timeout;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        stop(&mut child);
        let source = std::io::Error::other("no pipe to the child");
        return Err(CommandError::Read { program: program_owned(), source });
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver is gone only when the command timed out; the result is not wanted then.
        let _ = tx.send(read_at_most(stdout, max));
    });
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stderr = stderr;
        let start = read_at_most(&mut stderr, STDERR_MAX).unwrap_or_default();
        // Drain the rest so the child never blocks writing it.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        let _ = etx.send(start);
    });
    let read = rx.recv_timeout(timeout);
    match finish(&mut child, read, deadline, program, max, timeout) {
        Err(CommandError::Failed { program, status, .. }) => {
            // The child has exited; its stderr ends unless a child of its own still holds it.
            let stderr = erx.recv_timeout(STDERR_GRACE).unwrap_or_default();
            let stderr = String::from_utf8_lossy(&stderr[..stderr.len().min(STDERR_MAX as usize)]).trim().to_owned();
            Err(CommandError::Failed { program, status, stderr })
        }
        other => other,
    }
}

/// How long a failed command's stderr is waited for after it exited. The reader threads are
/// never joined: a grandchild holding a pipe open must not hold the agent's cycle.
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// Waits for `child` after its stdout was `read` (or not, in time): its output, or why not.
/// The child is reaped whatever happens.
fn finish(
    child: &mut Child,
    read: Result<std::io::Result<Vec<u8>>, mpsc::RecvTimeoutError>,
    deadline: Instant,
    program: &str,
    max: u64,
    timeout: Duration,
) -> Result<Vec<u8>, CommandError> {
    let bytes = match read {
        Ok(Ok(bytes)) if bytes.len() as u64 > max => {
            stop(child);
            return Err(CommandError::TooLarge { program: program.to_owned(), max });
        }
        Ok(Ok(bytes)) => bytes,
        Ok(Err(source)) => {
            stop(child);
            return Err(CommandError::Read { program: program.to_owned(), source });
        }
        Err(_) => {
            stop(child);
            return Err(CommandError::Timeout { program: program.to_owned(), after: timeout });
        }
    };
    // Its stdout is closed; it should be exiting. Give it what is left of the time.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                stop(child);
                return Err(CommandError::Timeout { program: program.to_owned(), after: timeout });
            }
            Err(source) => {
                stop(child);
                return Err(CommandError::Read { program: program.to_owned(), source });
            }
        }
    };
    if !status.success() {
        return Err(CommandError::Failed { program: program.to_owned(), status, stderr: String::new() });
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sh(script: &str, max: u64, timeout: Duration) -> Result<Vec<u8>, CommandError> {
        output("sh", &["-c".to_owned(), script.to_owned()], max, timeout)
    }

    #[test]
    fn output_within_the_limit_is_returned() {
        assert_eq!(sh("printf '{\"nftables\": []}'", 100, Duration::from_secs(10)).unwrap(), b"{\"nftables\": []}");
        assert_eq!(sh("printf 12345", 5, Duration::from_secs(10)).unwrap(), b"12345", "exactly the limit");
    }

    /// A command that prints without end is stopped at the limit and reaped, not read until
    /// memory runs out (before: `Command::output`).
    #[test]
    fn endless_output_is_cut_and_the_child_reaped() {
        let err = sh("exec yes", 1 << 20, Duration::from_secs(30));
        assert!(matches!(err, Err(CommandError::TooLarge { max: 1_048_576, .. })), "{err:?}");
        let err = sh("printf 123456", 5, Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.to_string(), "sh printed more than 5 bytes; it was stopped");
    }

    /// A command that hangs is killed when its time is up; one that fails says why, with a
    /// bounded part of its stderr, even when it prints far more than that there.
    #[test]
    fn hangs_and_failures_are_reported() {
        let err = sh("exec sleep 30", 100, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err:?}");
        let err = sh("head -c 1000000 /dev/zero | tr '\\0' e >&2; echo nope >&2; exit 3", 100, Duration::from_secs(30)).unwrap_err();
        let CommandError::Failed { status, stderr, .. } = &err else { panic!("{err:?}") };
        assert_eq!(status.code(), Some(3));
        assert!(stderr.len() as u64 <= STDERR_MAX && stderr.starts_with("eee"), "{} bytes", stderr.len());
        let err = output("/nonexistent/nft", &[], 100, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, CommandError::Spawn { .. }), "{err:?}");
    }
}
