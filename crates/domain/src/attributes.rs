//! Agent attributes (`rack:r1;ssd:true`) with Mesos's four value types, formatted as Marathon does.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::ranges::Ranges;

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// Free text, e.g. `r1`.
    Text(String),
    /// A number, e.g. `4` or `2.5`.
    Scalar(f64),
    /// Integer ranges, e.g. `[1-10,20-30]`.
    Ranges(Ranges),
    /// A set of words, e.g. `{a,b}`.
    Set(Vec<String>),
}

/// Attributes by name, sorted so every listing is deterministic.
pub type Attributes = BTreeMap<String, AttributeValue>;

/// Why an `--attributes` text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributesError {
    /// An entry without `name:value`.
    #[error("attribute `{0}` must look like `name:value`, e.g. `rack:r1;ssd:true`")]
    Shape(String),
    /// A JSON value of a kind attributes cannot have.
    #[error("attribute `{0}` must be a string, a number or an array of strings")]
    JsonType(String),
}

impl AttributeValue {
    /// Reads a value the way Mesos reads `--attributes`: a number is a scalar, `[..]` ranges,
    /// `{..}` a set, anything else text.
    pub fn parse(text: &str) -> Self {
        let t = text.trim();
        if let Ok(v) = t.parse::<f64>()
            && v.is_finite()
        {
            return AttributeValue::Scalar(v);
        }
        if t.starts_with('[')
            && let Ok(r) = Ranges::parse(t)
        {
            return AttributeValue::Ranges(r);
        }
        if let Some(inner) = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            let mut items: Vec<String> = inner
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            items.sort();
            return AttributeValue::Set(items);
        }
        AttributeValue::Text(t.to_string())
    }
}

/// Formats a scalar as Marathon compares it: at most three decimals, no trailing zeros.
pub fn format_scalar(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

impl fmt::Display for AttributeValue {
    /// The string constraints match against (Marathon's `getValueString`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Text(t) => f.write_str(t),
            AttributeValue::Scalar(v) => f.write_str(&format_scalar(*v)),
            AttributeValue::Ranges(r) => write!(f, "{r}"),
            AttributeValue::Set(items) => write!(f, "{{{}}}", items.join(",")),
        }
    }
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttributeValue::Scalar(v) => s.serialize_f64(*v),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        attribute_from_json("value", &v).map_err(serde::de::Error::custom)
    }
}

/// Reads one attribute from JSON: numbers are scalars, strings use Mesos's text rules,
/// arrays of strings are sets.
pub fn attribute_from_json(name: &str, v: &Value) -> Result<AttributeValue, AttributesError> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map(AttributeValue::Scalar)
            .ok_or_else(|| AttributesError::JsonType(name.to_string())),
        Value::String(s) => Ok(AttributeValue::parse(s)),
        Value::Bool(b) => Ok(AttributeValue::Text(b.to_string())),
        Value::Array(items) => {
            let mut set = Vec::with_capacity(items.len());
            for item in items {
                set.push(
                    item.as_str()
                        .ok_or_else(|| AttributesError::JsonType(name.to_string()))?
                        .to_string(),
                );
            }
            set.sort();
            Ok(AttributeValue::Set(set))
        }
        _ => Err(AttributesError::JsonType(name.to_string())),
    }
}

/// Parses Mesos's `--attributes` form: `rack:r1;ssd:true;cores:4;tags:{a,b}`.
pub fn parse_attributes(text: &str) -> Result<Attributes, AttributesError> {
    let mut out = Attributes::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, value) = entry
            .split_once(':')
            .ok_or_else(|| AttributesError::Shape(entry.to_string()))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(AttributesError::Shape(entry.to_string()));
        }
        out.insert(name.to_string(), AttributeValue::parse(value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_mesos_type_and_prints_it_as_marathon_does() {
        let a =
            parse_attributes("rack:r1;cores:4;load:0.12345;ports:[1-2,5-9];tags:{b,a}").unwrap();
        assert_eq!(a["rack"], AttributeValue::Text("r1".into()));
        assert_eq!(a["cores"].to_string(), "4");
        assert_eq!(a["load"].to_string(), "0.123");
        assert_eq!(a["ports"].to_string(), "[1-2,5-9]");
        assert_eq!(a["tags"].to_string(), "{a,b}");
    }

    #[test]
    fn json_attributes_round_trip() {
        let a: Attributes =
            serde_json::from_str(r#"{"rack":"r1","gpu":2,"tags":["x","a"],"ssd":true}"#).unwrap();
        assert_eq!(a["gpu"], AttributeValue::Scalar(2.0));
        assert_eq!(a["tags"].to_string(), "{a,x}");
        assert_eq!(a["ssd"].to_string(), "true");
        let again: Attributes = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn malformed_attributes_say_what_to_write() {
        let e = parse_attributes("rack=r1").unwrap_err().to_string();
        assert!(e.contains("name:value"), "{e}");
        assert_eq!(format_scalar(1000.0), "1000");
        assert_eq!(format_scalar(2.5), "2.5");
    }
}
