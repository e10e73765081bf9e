//! [`Piece`]: bytes of a PDF in an export frame, as one CBOR byte string (a `Vec<u8>` would
//! be an array of integers, up to twice as long).

use serde::de::{Deserializer, Error, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Bytes of an archive file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece(pub Vec<u8>);

impl Serialize for Piece {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

struct PieceVisitor;

impl<'de> Visitor<'de> for PieceVisitor {
    type Value = Piece;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Piece, E> {
        Ok(Piece(v.to_vec()))
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Piece, E> {
        Ok(Piece(v))
    }
}

impl<'de> Deserialize<'de> for Piece {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Piece, D::Error> {
        d.deserialize_bytes(PieceVisitor)
    }
}
