//! RFC 8785 (JCS) canonical JSON over a closed subset: objects, arrays, strings,
//! integers `0..=2^53-1`, booleans and null. No floats, no negative numbers, no
//! exponents, no duplicate keys, nesting at most [`MAX_DEPTH`]. Reading re-serializes
//! with JCS and requires byte equality, so one value has exactly one encoding.

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The largest integer the subset allows: `2^53 - 1`.
pub const MAX_INT: u64 = (1 << 53) - 1;
/// The deepest nesting of arrays and objects allowed.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("not JSON in the closed subset: {0}")]
    Parse(String),
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("not in canonical form (RFC 8785): re-serializing gives different bytes")]
    NotCanonical,
    #[error("cannot serialize: {0}")]
    Serialize(String),
}

/// A JSON value that refuses what the subset forbids while it is parsed.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value in the closed subset")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Strict, E> {
        if v > MAX_INT {
            return Err(E::custom(format!("integer `{v}` is above 2^53-1")));
        }
        Ok(Strict(Value::from(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Strict, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("negative integer `{v}`"))),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Err(E::custom(format!(
            "number `{v}` is not an integer in 0..2^53 (no floats, exponents or big integers)"
        )))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            out.insert(key, value);
        }
        Ok(Strict(Value::Object(out)))
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Checks that a value is inside the subset (used before writing).
pub fn check_subset(value: &Value) -> Result<(), CanonicalError> {
    fn walk(value: &Value, level: usize) -> Result<(), CanonicalError> {
        if level > MAX_DEPTH {
            return Err(CanonicalError::TooDeep);
        }
        match value {
            Value::Number(n) => match n.as_u64() {
                Some(v) if v <= MAX_INT => Ok(()),
                _ => Err(CanonicalError::Serialize(format!(
                    "number `{n}` is not an integer in 0..2^53"
                ))),
            },
            Value::Array(items) => items.iter().try_for_each(|v| walk(v, level + 1)),
            Value::Object(map) => map.values().try_for_each(|v| walk(v, level + 1)),
            _ => Ok(()),
        }
    }
    walk(value, 0)
}

/// Serializes `value` as canonical JSON after checking the subset.
pub fn to_canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value =
        serde_json::to_value(value).map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    check_subset(&value)?;
    serde_json_canonicalizer::to_vec(&value).map_err(|e| CanonicalError::Serialize(e.to_string()))
}

/// Parses canonical JSON strictly: the subset, no duplicate keys, no trailing data, no
/// BOM, depth at most [`MAX_DEPTH`], and the bytes must be exactly the JCS encoding.
pub fn parse_canonical(bytes: &[u8]) -> Result<Value, CanonicalError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) =
        Strict::deserialize(&mut de).map_err(|e| CanonicalError::Parse(e.to_string()))?;
    de.end().map_err(|e| CanonicalError::Parse(e.to_string()))?;
    if depth(&value) > MAX_DEPTH {
        return Err(CanonicalError::TooDeep);
    }
    let again = serde_json_canonicalizer::to_vec(&value)
        .map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    if again != bytes {
        return Err(CanonicalError::NotCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn accepts_canonical_and_refuses_the_rest() {
        assert!(parse_canonical(br#"{"a":[1,true,null,"x"],"b":{}}"#).is_ok());
        for bad in [
            &br#"{"b":1,"a":2}"#[..],
            br#"{"a":1,"a":1}"#,
            br#"{"a":1.5}"#,
            br#"{"a":1e3}"#,
            br#"{"a":-1}"#,
            br#"{"a":9007199254740992}"#,
            br#"{"a":1} "#,
            b"\xef\xbb\xbf{}",
            br#"{ "a":1}"#,
            br#"{"a":"\u0041"}"#,
        ] {
            assert!(
                parse_canonical(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(
            parse_canonical(deep.as_bytes()),
            Err(CanonicalError::TooDeep)
        );
        assert_eq!(
            parse_canonical(br#"{"a":9007199254740991}"#).unwrap()["a"],
            9007199254740991u64
        );
    }
}
