use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON value kept as text, parsed on first use.
///
/// Attribute values cross the Wasm boundary as text; most policies look at a few
/// attributes of a few resources, so parsing is deferred until someone asks.
#[derive(Default)]
pub struct JsonText {
    text: String,
    parsed: OnceLock<Option<Value>>,
}

impl JsonText {
    /// Wraps JSON text. The text is trusted to be JSON; [`JsonText::value`]
    /// returns `None` if it is not.
    pub fn new(text: impl Into<String>) -> Self {
        JsonText {
            text: text.into(),
            parsed: OnceLock::new(),
        }
    }

    /// Serializes a value.
    pub fn from_value(value: &Value) -> Self {
        let text = value.to_string();
        let parsed = OnceLock::new();
        let _ = parsed.set(Some(value.clone()));
        JsonText { text, parsed }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }

    /// The parsed value, or `None` when the text is not valid JSON.
    pub fn value(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).ok())
            .as_ref()
    }
}

impl Clone for JsonText {
    fn clone(&self) -> Self {
        JsonText::new(self.text.clone())
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for JsonText {}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.text).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(JsonText::new(String::from(Box::<str>::from(raw))))
    }
}

/// Deserializes an optional JSON value, treating `null` as absent.
pub(crate) fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<JsonText>, D::Error> {
    let raw = Option::<Box<RawValue>>::deserialize(deserializer)?;
    Ok(raw
        .filter(|raw| raw.get() != "null")
        .map(|raw| JsonText::new(String::from(Box::<str>::from(raw)))))
}
