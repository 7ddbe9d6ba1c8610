use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// The user's configuration of a policy: a JSON object, `{}` when none was given.
///
/// Read it field by field with the typed getters, which return
/// [`Error::InvalidConfig`] naming the field when it has the wrong type, and refuse
/// fields you do not know with [`Config::deny_unknown_fields`]; or deserialize it
/// whole with [`Config::parse`]. A `null` field counts as absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    fields: Map<String, Value>,
}

impl Config {
    /// Parses the configuration text. Blank text and `null` give an empty
    /// configuration; anything but a JSON object is an invalid configuration.
    pub fn from_json(text: &str) -> Result<Config, Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let value: Value = serde_json::from_str(text).map_err(|err| {
            Error::invalid_config(format!("the configuration is not JSON: {err}"))
        })?;
        Config::from_value(value)
    }

    /// Wraps a configuration value, which must be an object (or `null`).
    pub fn from_value(value: Value) -> Result<Config, Error> {
        match value {
            Value::Object(fields) => Ok(Config { fields }),
            Value::Null => Ok(Config::default()),
            other => Err(Error::invalid_config(format!(
                "the configuration must be a JSON object, not {}",
                kind(&other)
            ))),
        }
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// All the fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The value of a field; `None` when it is absent or `null`.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).filter(|value| !value.is_null())
    }

    /// A string field.
    pub fn get_str(&self, field: &str) -> Result<Option<&str>, Error> {
        self.typed(field, "a string", Value::as_str)
    }

    /// A boolean field.
    pub fn get_bool(&self, field: &str) -> Result<Option<bool>, Error> {
        self.typed(field, "`true` or `false`", Value::as_bool)
    }

    /// An integer field.
    pub fn get_i64(&self, field: &str) -> Result<Option<i64>, Error> {
        self.typed(field, "an integer", Value::as_i64)
    }

    /// A non-negative integer field.
    pub fn get_u64(&self, field: &str) -> Result<Option<u64>, Error> {
        self.typed(field, "a non-negative integer", Value::as_u64)
    }

    /// A number field.
    pub fn get_f64(&self, field: &str) -> Result<Option<f64>, Error> {
        self.typed(field, "a number", Value::as_f64)
    }

    /// A field holding a list of strings.
    pub fn get_str_list(&self, field: &str) -> Result<Option<Vec<&str>>, Error> {
        self.typed(field, "a list of strings", |value| {
            value
                .as_array()?
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
        })
    }

    /// Refuses any field not in `known`, naming the first unknown one.
    pub fn deny_unknown_fields(&self, known: &[&str]) -> Result<(), Error> {
        match self
            .fields
            .keys()
            .find(|key| !known.contains(&key.as_str()))
        {
            None => Ok(()),
            Some(unknown) => Err(Error::invalid_config(format!(
                "unknown field `{unknown}` (expected {})",
                expected(known)
            ))),
        }
    }

    /// Deserializes the whole configuration. Errors name the offending field: use
    /// `#[serde(deny_unknown_fields)]` to refuse unknown fields, `#[serde(default)]`
    /// for optional ones.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let value = Value::Object(self.fields.clone());
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner().to_string();
            // serde's own messages already name unknown and missing fields.
            if path == "." || inner.starts_with("unknown field") {
                Error::invalid_config(inner)
            } else {
                Error::invalid_config(format!("field `{path}`: {inner}"))
            }
        })
    }

    fn typed<'a, T>(
        &'a self,
        field: &str,
        what: &str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        read(value).map(Some).ok_or_else(|| {
            Error::invalid_config(format!(
                "field `{field}`: expected {what}, found {}",
                kind(value)
            ))
        })
    }
}

impl TryFrom<Value> for Config {
    type Error = Error;

    fn try_from(value: Value) -> Result<Self, Error> {
        Config::from_value(value)
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn expected(known: &[&str]) -> String {
    match known {
        [] => "no fields".to_string(),
        [one] => format!("`{one}`"),
        _ => format!(
            "one of {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_forms() {
        for text in ["", "  ", "{}", "null"] {
            assert!(Config::from_json(text).unwrap().is_empty(), "{text:?}");
        }
        let err = Config::from_json("[1]").unwrap_err();
        assert_eq!(
            err,
            Error::invalid_config("the configuration must be a JSON object, not a list")
        );
        assert!(matches!(
            Config::from_json("{"),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn typed_getters_name_the_field() {
        let config = Config::try_from(json!({
            "name": "x", "on": true, "n": -3, "ratio": 0.5, "types": ["a", "b"], "gone": null
        }))
        .unwrap();
        assert_eq!(config.get_str("name").unwrap(), Some("x"));
        assert_eq!(config.get_bool("on").unwrap(), Some(true));
        assert_eq!(config.get_i64("n").unwrap(), Some(-3));
        assert_eq!(config.get_f64("ratio").unwrap(), Some(0.5));
        assert_eq!(config.get_str_list("types").unwrap(), Some(vec!["a", "b"]));
        assert_eq!(config.get_str("gone").unwrap(), None);
        assert_eq!(config.get_str("missing").unwrap(), None);
        assert_eq!(
            config.get_u64("n").unwrap_err(),
            Error::invalid_config("field `n`: expected a non-negative integer, found a number")
        );
        assert_eq!(
            config.get_str_list("name").unwrap_err().message(),
            "field `name`: expected a list of strings, found a string"
        );
    }

    #[test]
    fn unknown_fields() {
        let config = Config::try_from(json!({"a": 1, "zz": 2})).unwrap();
        assert_eq!(
            config
                .deny_unknown_fields(&["a", "b"])
                .unwrap_err()
                .message(),
            "unknown field `zz` (expected one of `a`, `b`)"
        );
        assert!(config.deny_unknown_fields(&["a", "zz"]).is_ok());
    }

    #[test]
    fn parse_names_the_field() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code, reason = "read by Debug only")]
        struct Settings {
            #[serde(default)]
            ignore: Vec<String>,
        }
        let ok: Settings = Config::from_json(r#"{"ignore": ["x"]}"#)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(ok.ignore, ["x"]);
        let err = Config::from_json(r#"{"ignore": [1]}"#)
            .unwrap()
            .parse::<Settings>()
            .unwrap_err();
        assert_eq!(
            err.message(),
            "field `ignore[0]`: invalid type: integer `1`, expected a string"
        );
        let err = Config::from_json(r#"{"ignor": []}"#)
            .unwrap()
            .parse::<Settings>()
            .unwrap_err();
        assert_eq!(err.message(), "unknown field `ignor`, expected `ignore`");
    }
}
