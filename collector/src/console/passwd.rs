//! `ampel-collector user passwd NAME`: reads a password (from the terminal without echo, or
//! one line from stdin when it is not a terminal), hashes it with argon2id and prints what to
//! put into collector.toml.
//!
//! It prints rather than edits the file: rewriting collector.toml would lose its comments and
//! layout (the `toml` crate does not keep them), the file is often owned by configuration
//! management, and the administrator sees exactly what changes. Prompts go to stderr, the
//! result to stdout, the password nowhere.

use std::io::{BufRead, IsTerminal, Write};
use std::os::fd::AsFd;

use anyhow::{Context, Result, bail};

use super::users::{UserConfig, UserName, hash_password};

/// Puts the terminal's echo back when dropped, also on an early return.
struct EchoOff<'a> {
    fd: std::io::StdinLock<'a>,
    saved: nix::sys::termios::Termios,
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(self.fd.as_fd(), nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// One line from stdin without its line ending.
fn read_line(input: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    if input.read_line(&mut line).context("reading the password")? == 0 {
        bail!("no password given (stdin ended)");
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Asks on the terminal with echo off.
fn prompt(question: &str) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    eprint!("{question}");
    std::io::stderr().flush().context("writing the prompt")?;
    let stdin = std::io::stdin().lock();
    let saved = tcgetattr(stdin.as_fd()).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet).context("turning the terminal's echo off")?;
    let mut guard = EchoOff { fd: stdin, saved };
    read_line(&mut guard.fd)
}

/// The password: asked twice on a terminal, else one line from stdin.
pub fn read_password() -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return read_line(&mut std::io::stdin().lock());
    }
    let first = prompt("New password: ")?;
    let again = prompt("Repeat it: ")?;
    if first != again {
        bail!("the passwords differ; nothing changed");
    }
    Ok(first)
}

/// What to paste into collector.toml for `name` with `hash`: the `password-hash` line of an
/// existing user, or a whole `[[users]]` entry (least privilege: an analyst of no tenant) for
/// a new one.
pub fn snippet(name: &UserName, hash: &str, existing: Option<&UserConfig>) -> String {
    match existing {
        Some(_) => format!("password-hash = \"{hash}\"\n"),
        None => format!("[[users]]\nname = \"{name}\"\nrole = \"analyst\"\ntenants = []\npassword-hash = \"{hash}\"\n"),
    }
}

/// `user passwd NAME`, with the users of the config file when it could be read.
pub fn run(name: &str, users: Option<&[UserConfig]>) -> Result<()> {
    let name = UserName::parse(name).map_err(anyhow::Error::msg)?;
    let password = read_password()?;
    let hash = hash_password(&password)?;
    let existing = users.and_then(|u| u.iter().find(|u| u.name == name));
    match (existing, users) {
        (Some(_), _) => eprintln!("Replace the password-hash line of user {name} in collector.toml with:"),
        (None, Some(_)) => eprintln!("User {name} is not in collector.toml yet; add this entry (set role and tenants):"),
        (None, None) => eprintln!("Put this into collector.toml (set role and tenants; keep an existing entry's):"),
    }
    print!("{}", snippet(&name, hash.as_str(), existing));
    eprintln!("Then reload the collector (systemctl reload ampel-collector): sessions of this user end.");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_new_user_gets_a_least_privilege_entry_that_parses() {
        let name = UserName::parse("ann").unwrap();
        let hash = hash_password("correct horse battery").unwrap();
        let entry = snippet(&name, hash.as_str(), None);
        #[derive(serde::Deserialize)]
        struct Doc {
            users: Vec<UserConfig>,
        }
        let doc: Doc = toml::from_str(&entry).unwrap();
        assert_eq!(doc.users[0].role, super::super::users::Role::Analyst);
        assert!(!doc.users[0].sees("acme"));
        assert!(doc.users[0].password_hash.verify("correct horse battery"));
        let line = snippet(&name, hash.as_str(), Some(&doc.users[0]));
        assert_eq!(line, format!("password-hash = \"{}\"\n", hash.as_str()));
        assert_eq!(read_line(&mut "secret pass\r\nmore".as_bytes()).unwrap(), "secret pass");
        assert!(read_line(&mut "".as_bytes()).is_err());
    }
}
