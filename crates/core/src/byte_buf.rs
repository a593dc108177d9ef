//! Serde helpers that write a `Vec<u8>` as one byte string instead of a sequence of numbers.
//!
//! Serde's own `Vec<u8>` impl goes element by element: bincode then encodes and decodes a
//! message body one byte per call, which cost a quarter of a node's CPU on 1 MiB ingest. Mark
//! body-sized fields with `#[serde(with = "tern_core::byte_buf")]`; the wire format of bincode
//! is the same (a length, then the bytes), only faster.

use std::fmt;

use serde::Serializer;
use serde::de::{Deserializer, Error, SeqAccess, Visitor};

/// Serializes `bytes` as one byte string.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Deserializes a byte string (or, from self-describing formats, a sequence of bytes).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(ByteBufVisitor)
}

struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
        while let Some(byte) = seq.next_element()? {
            out.push(byte);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        body: Vec<u8>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Marked {
        #[serde(with = "crate::byte_buf")]
        body: Vec<u8>,
    }

    #[test]
    fn bincode_bytes_are_the_same_as_serdes_default() {
        let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let config = bincode::config::standard();
        let plain = bincode::serde::encode_to_vec(Plain { body: body.clone() }, config).unwrap();
        let marked = bincode::serde::encode_to_vec(Marked { body: body.clone() }, config).unwrap();
        assert_eq!(plain, marked);
        let (back, _): (Marked, usize) = bincode::serde::decode_from_slice(&plain, config).unwrap();
        assert_eq!(back.body, body);
    }
}
