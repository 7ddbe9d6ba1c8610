//! The check that every value of a document can be read in full.
//!
//! A plan keeps its attribute values as text and parses each member when someone
//! reads it. serde_json's raw-value scan accepts text that a full parse refuses: a
//! number outside the range of `f64` (`1e400`, a 401-digit integer), a lone UTF-16
//! surrogate escape (`"\ud800"`), nesting past its recursion limit. Read as absent
//! later, such a value would let a policy pass what it was meant to refuse. So a plan
//! is read in full once, as serde_json's `Value` would read it, and refused at the
//! line and column of the first value that cannot be.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Reads `text` as a JSON document in full, keeping nothing: the error is the one a
/// full parse of the first unreadable value gives, with its position in `text`.
/// Whole-document nesting counts from the root, so whatever passes here also parses
/// when one member is parsed on its own.
pub(crate) fn check_fully_readable(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<FullyReadable>(text).map(drop)
}

/// Any JSON value, every number, string and key of it decoded as `Value` decodes them.
struct FullyReadable;

impl<'de> Deserialize<'de> for FullyReadable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ReadAll)
    }
}

struct ReadAll;

impl<'de> Visitor<'de> for ReadAll {
    type Value = FullyReadable;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(FullyReadable)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(FullyReadable)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(FullyReadable)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(FullyReadable)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(FullyReadable)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(FullyReadable)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(FullyReadable)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<FullyReadable>()?.is_some() {}
        Ok(FullyReadable)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_key::<KeyReadable>()?.is_some() {
            map.next_value::<FullyReadable>()?;
        }
        Ok(FullyReadable)
    }
}

/// A key, decoded (escapes included) as `Value` decodes it.
struct KeyReadable;

impl<'de> Deserialize<'de> for KeyReadable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ReadAll).map(|_| KeyReadable)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    /// Whatever `Value` reads, this reads; whatever it refuses, this refuses, at the
    /// same place.
    #[test]
    fn agrees_with_a_full_parse() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for text in [
            r#"{"a": [1, -2, 3.5, "x", true, null, {"b": {}}]}"#,
            "1e400",
            "-1e400",
            "1e-400",
            &"9".repeat(401),
            r#""\ud800""#,
            r#"{"\udc00": 1}"#,
            r#""\ud83d\ude00""#,
            &deep,
            "[1,]",
        ] {
            let ours = check_fully_readable(text);
            let full = serde_json::from_str::<serde_json::Value>(text);
            assert_eq!(ours.is_ok(), full.is_ok(), "{text:.40}");
            if let (Err(ours), Err(full)) = (ours, full) {
                assert_eq!(ours.to_string(), full.to_string(), "{text:.40}");
            }
        }
    }
}
