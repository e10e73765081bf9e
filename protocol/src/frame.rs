//! Length-prefixed frames: a 4-byte big-endian length, then that many payload bytes.
//!
//! On QUIC a batch travels on a bidirectional stream as one frame up and one [`Ack`](crate::Ack)
//! frame down; the agent then sends its next batch on the same stream (one batch per stream at a
//! time). A reader first takes the header, checks it with
//! [`payload_len`] — so a hostile 4 GiB length is refused before a byte is reserved — and only
//! then reads the payload.

use crate::codec::{CodecError, Limits};

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// Prefixes `payload` with its length.
pub fn encode_frame(payload: &[u8], limits: &Limits) -> Result<Vec<u8>, CodecError> {
    if payload.len() > limits.max_frame || u32::try_from(payload.len()).is_err() {
        return Err(CodecError::TooLarge { len: payload.len(), max: limits.max_frame });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// The payload length a header announces, refused when over [`Limits::max_frame`].
pub fn payload_len(header: [u8; HEADER_LEN], limits: &Limits) -> Result<usize, CodecError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > limits.max_frame {
        return Err(CodecError::TooLarge { len, max: limits.max_frame });
    }
    Ok(len)
}

/// Splits the first whole frame off `buf`: `Ok(None)` while more bytes are needed, otherwise the
/// payload and the number of bytes the frame took.
pub fn split_frame<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(&'a [u8], usize)>, CodecError> {
    let Some(header) = buf.get(..HEADER_LEN) else { return Ok(None) };
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(header);
    let len = payload_len(h, limits)?;
    match buf.get(HEADER_LEN..HEADER_LEN + len) {
        Some(payload) => Ok(Some((payload, HEADER_LEN + len))),
        None => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn four_gib_length_prefix_is_refused_from_the_header_alone() {
        let limits = Limits::default();
        assert!(matches!(payload_len([0xff; 4], &limits), Err(CodecError::TooLarge { .. })));
        assert!(split_frame(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3], &limits).is_err());
    }

    #[test]
    fn frames_split_only_when_whole() {
        let limits = Limits::default();
        let f = encode_frame(b"hello", &limits).unwrap();
        for cut in 0..f.len() {
            assert_eq!(split_frame(&f[..cut], &limits).unwrap(), None);
        }
        let mut two = f.clone();
        two.extend_from_slice(&encode_frame(b"", &limits).unwrap());
        let (p, used) = split_frame(&two, &limits).unwrap().unwrap();
        assert_eq!((p, used), (&b"hello"[..], 9));
        assert_eq!(split_frame(&two[used..], &limits).unwrap(), Some((&b""[..], 4)));
    }

    #[test]
    fn oversized_payload_is_not_framed() {
        let limits = Limits { max_frame: 3, ..Limits::default() };
        assert!(encode_frame(b"four", &limits).is_err());
    }
}
