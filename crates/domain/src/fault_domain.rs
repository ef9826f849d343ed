//! Fault domains: the region and zone a node lives in, in DC/OS's detect-script format.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

/// The output a fault domain detect script must print, shown in error messages.
pub const DETECT_OUTPUT_EXAMPLE: &str =
    r#"{"fault_domain":{"region":{"name":"aws-us-east-1"},"zone":{"name":"aws-us-east-1a"}}}"#;

/// The longest region or zone name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// A node's place in the world: a region, and a zone inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultDomain {
    /// Region name, e.g. `aws-us-east1`.
    pub region: String,
    /// Zone name, unique across regions, e.g. `aws-us-east1-a`.
    pub zone: String,
}

/// Why a fault domain document was refused; every variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultDomainError {
    /// The text is not JSON at all.
    #[error("fault domain is not valid JSON ({0}); expected {DETECT_OUTPUT_EXAMPLE}")]
    NotJson(String),
    /// A field is absent.
    #[error("fault domain is missing `{0}`; expected {DETECT_OUTPUT_EXAMPLE}")]
    Missing(&'static str),
    /// A field has the wrong JSON type.
    #[error("fault domain field `{field}` must be {expected}; expected {DETECT_OUTPUT_EXAMPLE}")]
    WrongType {
        /// Dotted path of the field.
        field: &'static str,
        /// What the field should be.
        expected: &'static str,
    },
    /// A name is empty or only whitespace.
    #[error("fault domain field `{0}` is empty; expected a name, as in {DETECT_OUTPUT_EXAMPLE}")]
    Empty(&'static str),
    /// A name that is too long, or has control characters or surrounding whitespace.
    #[error(
        "fault domain field `{field}` {problem}; expected a name, as in {DETECT_OUTPUT_EXAMPLE}"
    )]
    BadName {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A key that the format does not have (usually a typo).
    #[error("fault domain has an unknown field `{0}`; expected exactly {DETECT_OUTPUT_EXAMPLE}")]
    Unknown(String),
}

impl FaultDomain {
    /// A fault domain from its two names.
    pub fn new(region: impl Into<String>, zone: impl Into<String>) -> Self {
        FaultDomain {
            region: region.into(),
            zone: zone.into(),
        }
    }

    /// Parses the text a detect script prints (or `--domain`'s value).
    pub fn parse(text: &str) -> Result<Self, FaultDomainError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| FaultDomainError::NotJson(e.to_string()))?;
        Self::from_json(&value)
    }

    /// Reads `{"fault_domain":{"region":{"name":R},"zone":{"name":Z}}}` from parsed JSON.
    pub fn from_json(value: &Value) -> Result<Self, FaultDomainError> {
        let top = object(value, "(top level)")?;
        only_keys(top, &["fault_domain"], "")?;
        let fd = object(
            top.get("fault_domain")
                .ok_or(FaultDomainError::Missing("fault_domain"))?,
            "fault_domain",
        )?;
        only_keys(fd, &["region", "zone"], "fault_domain.")?;
        let region = name(
            fd,
            "region",
            "fault_domain.region",
            "fault_domain.region.name",
        )?;
        let zone = name(fd, "zone", "fault_domain.zone", "fault_domain.zone.name")?;
        Ok(FaultDomain { region, zone })
    }

    /// The DC/OS JSON form of this fault domain.
    pub fn to_json(&self) -> Value {
        json!({"fault_domain": {"region": {"name": self.region}, "zone": {"name": self.zone}}})
    }
}

fn object<'a>(
    v: &'a Value,
    field: &'static str,
) -> Result<&'a serde_json::Map<String, Value>, FaultDomainError> {
    v.as_object().ok_or(FaultDomainError::WrongType {
        field,
        expected: "an object",
    })
}

fn only_keys(
    map: &serde_json::Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> Result<(), FaultDomainError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(FaultDomainError::Unknown(format!("{prefix}{k}"))),
        None => Ok(()),
    }
}

fn name(
    parent: &serde_json::Map<String, Value>,
    key: &str,
    object_field: &'static str,
    name_field: &'static str,
) -> Result<String, FaultDomainError> {
    let obj = object(
        parent
            .get(key)
            .ok_or(FaultDomainError::Missing(object_field))?,
        object_field,
    )?;
    let prefix = format!("{object_field}.");
    only_keys(obj, &["name"], &prefix)?;
    let name = obj
        .get("name")
        .ok_or(FaultDomainError::Missing(name_field))?
        .as_str()
        .ok_or(FaultDomainError::WrongType {
            field: name_field,
            expected: "a string",
        })?;
    if name.trim().is_empty() {
        return Err(FaultDomainError::Empty(name_field));
    }
    let problem = if name.len() > MAX_NAME_LEN {
        Some("is longer than 128 bytes")
    } else if name.chars().any(char::is_control) {
        Some("holds a control character")
    } else if name.trim() != name {
        Some("starts or ends with whitespace")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(FaultDomainError::BadName {
            field: name_field,
            problem,
        });
    }
    Ok(name.to_string())
}

impl fmt::Display for FaultDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.zone)
    }
}

impl Serialize for FaultDomain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for FaultDomain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        FaultDomain::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_dcos_detect_script_output() {
        let fd = FaultDomain::parse(DETECT_OUTPUT_EXAMPLE).unwrap();
        assert_eq!(fd, FaultDomain::new("aws-us-east-1", "aws-us-east-1a"));
        let back: FaultDomain = serde_json::from_value(serde_json::to_value(&fd).unwrap()).unwrap();
        assert_eq!(back, fd);
    }

    #[test]
    fn every_error_names_the_field() {
        let long = "z".repeat(MAX_NAME_LEN + 1);
        let long_zone =
            format!(r#"{{"fault_domain":{{"region":{{"name":"r"}},"zone":{{"name":"{long}"}}}}}}"#);
        let cases = [
            (
                long_zone.as_str(),
                "`fault_domain.zone.name` is longer than 128 bytes",
            ),
            (
                r#"{"fault_domain":{"region":{"name":"r\u0000"},"zone":{"name":"z"}}}"#,
                "`fault_domain.region.name` holds a control character",
            ),
            (
                r#"{"fault_domain":{"region":{"name":"r"},"zone":{"name":"z "}}}"#,
                "`fault_domain.zone.name` starts or ends with whitespace",
            ),
            ("not json", "not valid JSON"),
            ("{}", "missing `fault_domain`"),
            (
                r#"{"fault_domain":{"zone":{"name":"z"}}}"#,
                "missing `fault_domain.region`",
            ),
            (
                r#"{"fault_domain":{"region":{"name":"r"}}}"#,
                "missing `fault_domain.zone`",
            ),
            (
                r#"{"fault_domain":{"region":{},"zone":{"name":"z"}}}"#,
                "missing `fault_domain.region.name`",
            ),
            (
                r#"{"fault_domain":{"region":{"name":"r"},"zone":{"nam":"z"}}}"#,
                "unknown field `fault_domain.zone.nam`",
            ),
            (
                r#"{"fault_domain":{"region":{"name":7},"zone":{"name":"z"}}}"#,
                "`fault_domain.region.name` must be a string",
            ),
            (
                r#"{"fault_domain":{"region":{"name":"r"},"zone":{"name":" "}}}"#,
                "`fault_domain.zone.name` is empty",
            ),
            (r#"{"fault_domain":[]}"#, "`fault_domain` must be an object"),
            (
                r#"{"fault_domain":{"region":{"name":"r"},"zone":{"name":"z"}},"x":1}"#,
                "unknown field `x`",
            ),
        ];
        for (input, expected) in cases {
            let err = FaultDomain::parse(input).unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
            assert!(err.contains("expected"), "{input}: {err}");
        }
        let longest = "z".repeat(MAX_NAME_LEN);
        assert!(FaultDomain::from_json(&FaultDomain::new("r", longest).to_json()).is_ok());
    }
}
