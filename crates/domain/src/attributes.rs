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

/// The longest attribute name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// The longest attribute value, in bytes of its text form (what constraints compare).
pub const MAX_VALUE_LEN: usize = 1024;

/// Why an `--attributes` text (or an agent's attributes in JSON) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributesError {
    /// An entry without `name:value`.
    #[error("attribute `{0}` must look like `name:value`, e.g. `rack:r1;ssd:true`")]
    Shape(String),
    /// A JSON value of a kind attributes cannot have.
    #[error("attribute `{0}` must be a string, a number or an array of strings")]
    JsonType(String),
    /// The same name twice: the second would silently replace the first.
    #[error("attribute `{0}` is given twice; give each attribute once")]
    Duplicate(String),
    /// A name that is empty, too long or holds control characters.
    #[error(
        "attribute name `{0}` must be 1 to {MAX_NAME_LEN} bytes without control characters, e.g. `rack`"
    )]
    BadName(String),
    /// A value that is too long or holds control characters.
    #[error(
        "attribute `{0}` must have a value of at most {MAX_VALUE_LEN} bytes without control characters"
    )]
    BadValue(String),
    /// A set item (from a JSON array) that the `{a,b}` text form could not hold.
    #[error(
        "attribute `{name}`: set item `{item}` must be a non-empty word without `,`, `{{`, `}}` or surrounding spaces"
    )]
    BadSetItem {
        /// The attribute.
        name: String,
        /// The item, as given (shortened if long).
        item: String,
    },
}

/// A name or value as shown in an error: escaped, and shortened so a hostile megabyte
/// does not end up in a log line.
pub(crate) fn shown(text: &str) -> String {
    const SHOWN: usize = 64;
    let mut out: String = text
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(SHOWN).is_some() {
        out.push('…');
    }
    out
}

fn check_name(name: &str) -> Result<(), AttributesError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(AttributesError::BadName(shown(name)));
    }
    Ok(())
}

fn check_value(name: &str, value: &AttributeValue) -> Result<(), AttributesError> {
    if let AttributeValue::Set(items) = value
        && let Some(item) = items
            .iter()
            .find(|i| i.is_empty() || i.trim() != i.as_str() || i.contains([',', '{', '}']))
    {
        return Err(AttributesError::BadSetItem {
            name: shown(name),
            item: shown(item),
        });
    }
    let text = value.to_string();
    if text.len() > MAX_VALUE_LEN || text.chars().any(char::is_control) {
        return Err(AttributesError::BadValue(shown(name)));
    }
    Ok(())
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
/// arrays of strings are sets; the value is held to the same bounds as `--attributes`.
pub fn attribute_from_json(name: &str, v: &Value) -> Result<AttributeValue, AttributesError> {
    let value = attribute_value_from_json(name, v)?;
    check_value(name, &value)?;
    Ok(value)
}

fn attribute_value_from_json(name: &str, v: &Value) -> Result<AttributeValue, AttributesError> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map(AttributeValue::Scalar)
            .ok_or_else(|| AttributesError::JsonType(shown(name))),
        Value::String(s) => Ok(AttributeValue::parse(s)),
        Value::Bool(b) => Ok(AttributeValue::Text(b.to_string())),
        Value::Array(items) => {
            let mut set = Vec::with_capacity(items.len());
            for item in items {
                set.push(
                    item.as_str()
                        .ok_or_else(|| AttributesError::JsonType(shown(name)))?
                        .to_string(),
                );
            }
            set.sort();
            Ok(AttributeValue::Set(set))
        }
        _ => Err(AttributesError::JsonType(shown(name))),
    }
}

/// Parses Mesos's `--attributes` form: `rack:r1;ssd:true;cores:4;tags:{a,b}`.
pub fn parse_attributes(text: &str) -> Result<Attributes, AttributesError> {
    let mut out = Attributes::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, value) = entry
            .split_once(':')
            .ok_or_else(|| AttributesError::Shape(shown(entry)))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(AttributesError::Shape(shown(entry)));
        }
        check_name(name)?;
        let value = AttributeValue::parse(value);
        check_value(name, &value)?;
        if out.insert(name.to_string(), value).is_some() {
            return Err(AttributesError::Duplicate(shown(name)));
        }
    }
    Ok(out)
}

/// Deserialises attributes by name (an agent's, in JSON), checking names and values as
/// [`parse_attributes`] does.
pub fn deserialize_attributes<'de, D: Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(d)?;
    let mut out = Attributes::new();
    for (name, v) in raw {
        check_name(&name).map_err(serde::de::Error::custom)?;
        let value = attribute_from_json(&name, &v).map_err(serde::de::Error::custom)?;
        out.insert(name, value);
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
    fn names_and_values_are_bounded_and_free_of_control_characters() {
        let e = parse_attributes("rack:r1;rack:r2").unwrap_err();
        assert_eq!(e, AttributesError::Duplicate("rack".into()));
        let nul = format!("rack:r{}1", '\0');
        assert_eq!(
            parse_attributes(&nul).unwrap_err(),
            AttributesError::BadValue("rack".into())
        );
        let long_name = format!("{}:x", "n".repeat(MAX_NAME_LEN + 1));
        let e = parse_attributes(&long_name).unwrap_err().to_string();
        assert!(e.contains("1 to 128 bytes") && e.contains('…'), "{e}");
        assert!(parse_attributes(&format!("{}:x", "n".repeat(MAX_NAME_LEN))).is_ok());
        let long_value = format!("rack:{}", "v".repeat(MAX_VALUE_LEN + 1));
        let e = parse_attributes(&long_value).unwrap_err().to_string();
        assert!(e.contains("at most 1024 bytes"), "{e}");
    }

    #[test]
    fn json_sets_must_survive_their_text_form() {
        let e = serde_json::from_str::<AttributeValue>(r#"["a,b"]"#).unwrap_err();
        assert!(e.to_string().contains("set item `a,b`"), "{e}");
        for bad in [r#"[""]"#, r#"[" a"]"#, r#"["{x}"]"#] {
            assert!(
                serde_json::from_str::<AttributeValue>(bad).is_err(),
                "{bad}"
            );
        }
        let ok: AttributeValue = serde_json::from_str(r#"["b","a c"]"#).unwrap();
        assert_eq!(AttributeValue::parse(&ok.to_string()), ok);
    }

    #[test]
    fn json_attribute_names_are_checked_like_flag_names() {
        #[derive(Debug, Deserialize)]
        struct Holder {
            #[serde(deserialize_with = "deserialize_attributes")]
            attributes: Attributes,
        }
        let e = serde_json::from_str::<Holder>(r#"{"attributes":{"":"x"}}"#).unwrap_err();
        assert!(e.to_string().contains("attribute name ``"), "{e}");
        let e = serde_json::from_str::<Holder>(r#"{"attributes":{"a\u0000":"x"}}"#).unwrap_err();
        assert!(e.to_string().contains("attribute name `a\\0`"), "{e}");
        let h: Holder = serde_json::from_str(r#"{"attributes":{"rack":"r1"}}"#).unwrap();
        assert_eq!(h.attributes["rack"], AttributeValue::Text("r1".into()));
    }

    #[test]
    fn malformed_attributes_say_what_to_write() {
        let e = parse_attributes("rack=r1").unwrap_err().to_string();
        assert!(e.contains("name:value"), "{e}");
        assert_eq!(format_scalar(1000.0), "1000");
        assert_eq!(format_scalar(2.5), "2.5");
    }
}
