//! The collector's answer to an agent that reached the wrong shard.
//!
//! A collector that does not own the tenant of a verified client certificate closes the data
//! connection right after the handshake with application code [`CLOSE_WRONG_SHARD`] and a
//! reason naming the owning shard: `shard <name> <host:port>`. QUIC carries an application
//! close only in 1-RTT packets, which are protected with the keys of the mutually authenticated
//! handshake, so the agent knows the answer comes from a collector its CA vouched for. An agent
//! that does not know the code (0.1 and earlier) sees a closed connection and retries later —
//! nothing was stored, nothing is lost. [`CLOSE_NO_SHARD`] says no shard owns the tenant yet.

/// Application close code: another shard owns this tenant; the reason names it.
pub const CLOSE_WRONG_SHARD: u32 = 5;
/// Application close code: no shard owns this tenant; keep the data and retry later.
pub const CLOSE_NO_SHARD: u32 = 6;
/// Most bytes of a redirect reason (a DNS name is at most 253 bytes).
pub const REASON_MAX: usize = 320;

/// Where a redirect sends the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The owning shard's name.
    pub shard: String,
    /// Its QUIC address, `host:port` (not yet resolved or checked as an address).
    pub address: String,
}

/// Why a close reason is not a redirect.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedirectError {
    /// Longer than [`REASON_MAX`].
    #[error("redirect reason of {0} bytes is too long")]
    TooLong(usize),
    /// Not `shard <name> <host:port>` in printable ASCII.
    #[error("redirect reason is not of the form \"shard <name> <host:port>\"")]
    Shape,
}

impl Redirect {
    /// The close reason carrying this redirect.
    pub fn encode(&self) -> Vec<u8> {
        format!("shard {} {}", self.shard, self.address).into_bytes()
    }

    /// Reads a close reason written by [`Redirect::encode`].
    pub fn decode(reason: &[u8]) -> Result<Redirect, RedirectError> {
        if reason.len() > REASON_MAX {
            return Err(RedirectError::TooLong(reason.len()));
        }
        if !reason.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(RedirectError::Shape);
        }
        let text = std::str::from_utf8(reason).map_err(|_| RedirectError::Shape)?;
        let mut words = text.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("shard"), Some(shard), Some(address), None) if !shard.is_empty() && !address.is_empty() => {
                Ok(Redirect { shard: shard.to_owned(), address: address.to_owned() })
            }
            _ => Err(RedirectError::Shape),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_round_trips_and_anything_else_is_refused() {
        let r = Redirect { shard: "eu-2".into(), address: "[2001:db8::2]:4433".into() };
        assert_eq!(Redirect::decode(&r.encode()), Ok(r));
        for bad in [
            &b"superseded by a newer connection"[..],
            b"shard eu-2",
            b"shard eu-2 a:1 b",
            b"shard  a:1",
            b"shard eu-2 a:1\n",
            b"shard \xff a:1",
        ] {
            assert_eq!(Redirect::decode(bad), Err(RedirectError::Shape), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Redirect::decode(&[b'a'; REASON_MAX + 1]), Err(RedirectError::TooLong(REASON_MAX + 1)));
    }
}
