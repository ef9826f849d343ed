//! Marathon's constraint language: `[field, OPERATOR]` or `[field, OPERATOR, value]`.
//!
//! Parsing and validation live here; what a constraint does to placement lives in
//! [`crate::placement`]. Messages are Marathon's (`SchedulingValidationMessages`) where
//! Marathon has one, and drover's own for the fault-domain rules it adds.

use std::borrow::Cow;
use std::fmt;

use regex::Regex;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::agent::Agent;
use crate::attributes::AttributeValue;

/// Marathon: a constraint array with the wrong number of elements.
pub const MSG_TWO_OR_THREE: &str = "Each constraint must have either 2 or 3 fields";
/// Marathon: an empty array.
pub const MSG_MISSING_FIELD_AND_OPERATOR: &str = "Missing field and operator";
/// Marathon: an empty field name.
pub const MSG_ILLEGAL: &str = "illegal constraint specification";
/// Marathon's list of operators, with `IS`, which drover (like Marathon 1.5+) supports.
pub const MSG_OPERATOR_INVALID: &str =
    "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS";
/// Marathon: `UNIQUE` with a value.
pub const MSG_UNIQUE_NO_VALUE: &str = "UNIQUE does not accept a value";
/// Marathon: `GROUP_BY` with a value that is not an integer.
pub const MSG_GROUP_BY_INT: &str = "GROUP BY must define an integer value or else no value at all";
/// Marathon: `MAX_PER` without an integer value.
pub const MSG_MAX_PER_INT: &str = "MAX_PER requires an integer value";
/// drover: `MAX_PER` with 0 or less (Marathon accepted it, and then never placed anything).
pub const MSG_MAX_PER_POSITIVE: &str = "MAX_PER requires an integer value of 1 or more";
/// Marathon: `LIKE`/`UNLIKE` without a value.
pub const MSG_LIKE_REGEX: &str = "LIKE and UNLIKE require a non-empty, regular expression value";
/// Marathon: a value that does not compile as a regular expression.
pub const MSG_BAD_REGEX: &str = "is not a valid regular expression";
/// Marathon: `IS` with a value that is not a Mesos text or float.
pub const MSG_IS_TEXT: &str = "IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)";
/// drover: `IS` without a value (Marathon accepted it and then matched nothing).
pub const MSG_IS_VALUE: &str = "IS requires a value, e.g. [\"@zone\",\"IS\",\"aws-us-east1-a\"]";
/// drover: `@region` takes only `IS`, or `CLUSTER` with a value.
pub const MSG_REGION_OPERATOR: &str = "@region only supports IS (or CLUSTER with a value) because a service runs in exactly one region; use [\"@region\",\"IS\",\"<name>\"]";
/// Marathon's type error for a non-string element.
pub const MSG_EXPECTED_STRING: &str = "error.expected.jsstring";
/// Marathon's type error for a constraint that is not an array.
pub const MSG_EXPECTED_ARRAY: &str = "error.expected.jsarray";

/// What a constraint looks at on an agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `hostname` or `@hostname`.
    Hostname,
    /// `@region`: the agent's fault-domain region.
    Region,
    /// `@zone`: the agent's fault-domain zone.
    Zone,
    /// Any other name: an agent attribute.
    Attribute(String),
}

impl Field {
    /// Reads a field name as Marathon does.
    pub fn parse(name: &str) -> Self {
        match name {
            "hostname" | "@hostname" => Field::Hostname,
            "@region" => Field::Region,
            "@zone" => Field::Zone,
            other => Field::Attribute(other.to_string()),
        }
    }
}

/// The seven operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// Every instance on a different value.
    Unique,
    /// Every instance on the same value (the given one, or the first one used).
    Cluster,
    /// Spread evenly over the values, over at most n values when n is given.
    GroupBy,
    /// The value matches a regular expression (whole value).
    Like,
    /// The value does not match a regular expression (or is missing).
    Unlike,
    /// At most n instances per value.
    MaxPer,
    /// The value equals the given one.
    Is,
}

impl Operator {
    /// Reads an operator name, case-insensitively like Marathon.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "UNIQUE" => Operator::Unique,
            "CLUSTER" => Operator::Cluster,
            "GROUP_BY" => Operator::GroupBy,
            "LIKE" => Operator::Like,
            "UNLIKE" => Operator::Unlike,
            "MAX_PER" => Operator::MaxPer,
            "IS" => Operator::Is,
            _ => return None,
        })
    }

    /// The canonical (upper-case) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Unique => "UNIQUE",
            Operator::Cluster => "CLUSTER",
            Operator::GroupBy => "GROUP_BY",
            Operator::Like => "LIKE",
            Operator::Unlike => "UNLIKE",
            Operator::MaxPer => "MAX_PER",
            Operator::Is => "IS",
        }
    }
}

/// A validated constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    /// The field as the user wrote it (kept for output).
    pub field_name: String,
    /// What the field refers to.
    pub field: Field,
    /// The operator.
    pub operator: Operator,
    /// The value, if any.
    pub value: Option<String>,
    /// For `LIKE`/`UNLIKE`: the value compiled to match whole strings.
    regex: Option<Regex>,
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        self.field_name == other.field_name
            && self.operator == other.operator
            && self.value == other.value
    }
}

impl Constraint {
    /// Builds and validates a constraint from its parts.
    pub fn new(field: &str, operator: &str, value: Option<&str>) -> Result<Self, String> {
        if field.is_empty() {
            return Err(MSG_ILLEGAL.to_string());
        }
        let op = Operator::parse(operator).ok_or_else(|| MSG_OPERATOR_INVALID.to_string())?;
        let field_kind = Field::parse(field);
        let mut regex = None;
        let is_int = |v: &str| v.parse::<i32>().is_ok();
        match op {
            Operator::Unique if value.is_some() => return Err(MSG_UNIQUE_NO_VALUE.into()),
            Operator::GroupBy if value.is_some_and(|v| !is_int(v)) => {
                return Err(MSG_GROUP_BY_INT.into());
            }
            Operator::MaxPer => {
                let n = value
                    .and_then(|v| v.parse::<i32>().ok())
                    .ok_or_else(|| MSG_MAX_PER_INT.to_string())?;
                if n < 1 {
                    return Err(format!("{MSG_MAX_PER_POSITIVE} (got {n})"));
                }
            }
            Operator::Like | Operator::Unlike => {
                let pattern = value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| MSG_LIKE_REGEX.to_string())?;
                // The pattern must be a regular expression on its own: wrapped unchecked,
                // `a)|(b` would compile as `^(?:a)|(b)$` and match what it does not say.
                Regex::new(pattern).map_err(|_| MSG_BAD_REGEX.to_string())?;
                regex = Some(
                    Regex::new(&format!("^(?:{pattern})$"))
                        .map_err(|_| MSG_BAD_REGEX.to_string())?,
                );
            }
            Operator::Is => {
                // An empty value matches no agent, so the app could never start.
                let v = value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| MSG_IS_VALUE.to_string())?;
                let literal = v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.' | '-'));
                if !literal {
                    return Err(MSG_IS_TEXT.into());
                }
            }
            _ => {}
        }
        if field_kind == Field::Region {
            let names_a_region = match op {
                Operator::Is => true,
                Operator::Cluster => value.is_some_and(|v| !v.is_empty()),
                _ => false,
            };
            if !names_a_region {
                return Err(MSG_REGION_OPERATOR.into());
            }
        }
        Ok(Constraint {
            field_name: field.to_string(),
            field: field_kind,
            operator: op,
            value: value.map(str::to_string),
            regex,
        })
    }

    /// Reads one constraint from Marathon's JSON array form.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let items = v.as_array().ok_or_else(|| MSG_EXPECTED_ARRAY.to_string())?;
        if items.is_empty() {
            return Err(MSG_MISSING_FIELD_AND_OPERATOR.into());
        }
        if items.len() < 2 || items.len() > 3 {
            return Err(MSG_TWO_OR_THREE.into());
        }
        let mut parts = Vec::with_capacity(3);
        for item in items {
            parts.push(
                item.as_str()
                    .ok_or_else(|| MSG_EXPECTED_STRING.to_string())?,
            );
        }
        Constraint::new(parts[0], parts[1], parts.get(2).copied())
    }

    /// The region this constraint pins the service to, if it is a region constraint.
    pub fn region(&self) -> Option<&str> {
        (self.field == Field::Region)
            .then_some(self.value.as_deref())
            .flatten()
    }

    /// The integer value of `GROUP_BY` (0 = any number of values) or `MAX_PER`.
    pub fn count_value(&self) -> i64 {
        self.value
            .as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    }

    /// Whether an agent's value for the field passes the checks that do not depend on
    /// where other instances are (`LIKE`, `UNLIKE`, `IS`, `CLUSTER` with a value, and
    /// "the field must exist" for every operator but `UNLIKE`).
    pub fn accepts_value(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return self.operator == Operator::Unlike;
        };
        match self.operator {
            Operator::Like => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            Operator::Unlike => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            Operator::Is => self.value.as_deref() == Some(value),
            Operator::Cluster => match self.value.as_deref() {
                Some(v) if !v.is_empty() => v == value,
                _ => true,
            },
            Operator::Unique | Operator::GroupBy | Operator::MaxPer => true,
        }
    }

    /// The agent's value for this constraint's field, formatted as constraints compare it.
    /// An agent without a fault domain is in `local_region` and has no zone.
    pub fn value_of<'a>(&self, agent: &'a Agent, local_region: &'a str) -> Option<Cow<'a, str>> {
        match &self.field {
            Field::Hostname => Some(Cow::Borrowed(agent.hostname.as_str())),
            Field::Region => Some(Cow::Borrowed(agent.region().unwrap_or(local_region))),
            Field::Zone => agent.zone().map(Cow::Borrowed),
            Field::Attribute(name) => agent.attributes.get(name).map(|v| match v {
                AttributeValue::Text(t) => Cow::Borrowed(t.as_str()),
                other => Cow::Owned(other.to_string()),
            }),
        }
    }

    /// The JSON array form.
    pub fn to_json(&self) -> Value {
        let mut v = vec![
            Value::from(self.field_name.clone()),
            Value::from(self.operator.as_str()),
        ];
        if let Some(value) = &self.value {
            v.push(Value::from(value.clone()));
        }
        Value::Array(v)
    }
}

impl fmt::Display for Constraint {
    /// `["@zone","GROUP_BY","4"]`, the form used in unplaced reasons.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Serialize for Constraint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        Constraint::from_json(&v).unwrap_err()
    }

    #[test]
    fn every_marathon_validation_message() {
        assert_eq!(err(json!(["hostname"])), MSG_TWO_OR_THREE);
        assert_eq!(err(json!(["a", "UNIQUE", "b", "c"])), MSG_TWO_OR_THREE);
        assert_eq!(err(json!([])), MSG_MISSING_FIELD_AND_OPERATOR);
        assert_eq!(err(json!(["", "UNIQUE"])), MSG_ILLEGAL);
        assert_eq!(err(json!(["a", "b", "c"])), MSG_OPERATOR_INVALID);
        assert_eq!(err(json!(["a", "IN", "x"])), MSG_OPERATOR_INVALID);
        assert_eq!(err(json!(["hostname", "UNIQUE", "x"])), MSG_UNIQUE_NO_VALUE);
        assert_eq!(err(json!(["hostname", "UNIQUE", ""])), MSG_UNIQUE_NO_VALUE);
        assert_eq!(err(json!(["@zone", "GROUP_BY", "two"])), MSG_GROUP_BY_INT);
        assert_eq!(err(json!(["@zone", "GROUP_BY", ""])), MSG_GROUP_BY_INT);
        assert_eq!(err(json!(["hostname", "MAX_PER"])), MSG_MAX_PER_INT);
        assert_eq!(err(json!(["hostname", "MAX_PER", "1.5"])), MSG_MAX_PER_INT);
        assert_eq!(
            err(json!(["hostname", "MAX_PER", "4294967296"])),
            MSG_MAX_PER_INT
        );
        assert_eq!(err(json!(["rack", "LIKE"])), MSG_LIKE_REGEX);
        assert_eq!(err(json!(["rack", "UNLIKE", ""])), MSG_LIKE_REGEX);
        assert_eq!(err(json!(["rack", "LIKE", "r(1"])), MSG_BAD_REGEX);
        assert_eq!(err(json!(["rack", "IS", "a b"])), MSG_IS_TEXT);
        assert_eq!(err(json!(["rack", "IS"])), MSG_IS_VALUE);
        assert_eq!(err(json!(["@region", "IS", ""])), MSG_IS_VALUE);
        assert_eq!(err(json!(["rack", 1])), MSG_EXPECTED_STRING);
        assert_eq!(err(json!("hostname:UNIQUE")), MSG_EXPECTED_ARRAY);
    }

    #[test]
    fn max_per_below_one_is_refused_naming_the_value() {
        assert_eq!(
            err(json!(["hostname", "MAX_PER", "0"])),
            "MAX_PER requires an integer value of 1 or more (got 0)"
        );
        assert_eq!(
            err(json!(["@zone", "MAX_PER", "-1"])),
            "MAX_PER requires an integer value of 1 or more (got -1)"
        );
        let c = Constraint::from_json(&json!(["@zone", "MAX_PER", "1"])).unwrap();
        assert_eq!(c.count_value(), 1);
    }

    #[test]
    fn a_like_pattern_must_be_a_regular_expression_by_itself() {
        for bad in ["a)|(b", "r1)(", ")"] {
            assert_eq!(err(json!(["rack", "LIKE", bad])), MSG_BAD_REGEX, "{bad}");
            assert_eq!(err(json!(["rack", "UNLIKE", bad])), MSG_BAD_REGEX, "{bad}");
        }
    }

    #[test]
    fn region_takes_only_is_or_cluster_with_a_value() {
        for bad in [
            json!(["@region", "GROUP_BY"]),
            json!(["@region", "UNIQUE"]),
            json!(["@region", "LIKE", "aws-.*"]),
            json!(["@region", "UNLIKE", "aws-.*"]),
            json!(["@region", "MAX_PER", "2"]),
            json!(["@region", "CLUSTER"]),
            json!(["@region", "CLUSTER", ""]),
        ] {
            assert_eq!(err(bad.clone()), MSG_REGION_OPERATOR, "{bad}");
        }
        let is = Constraint::from_json(&json!(["@region", "IS", "aws-us-east1"])).unwrap();
        assert_eq!(is.region(), Some("aws-us-east1"));
        let cluster = Constraint::from_json(&json!(["@region", "CLUSTER", "r2"])).unwrap();
        assert_eq!(cluster.region(), Some("r2"));
    }

    #[test]
    fn valid_forms_are_accepted_case_insensitively() {
        for ok in [
            json!(["hostname", "UNIQUE"]),
            json!(["@hostname", "unique"]),
            json!(["rack", "CLUSTER"]),
            json!(["rack", "CLUSTER", "r1"]),
            json!(["@zone", "GROUP_BY"]),
            json!(["@zone", "GROUP_BY", "3"]),
            json!(["rack", "LIKE", "r[1-3]"]),
            json!(["hostname", "MAX_PER", "2"]),
            json!(["cores", "IS", "4.5"]),
        ] {
            let c = Constraint::from_json(&ok).unwrap();
            assert_eq!(c.to_json()[0], ok[0]);
        }
    }

    #[test]
    fn like_matches_the_whole_value_and_missing_fields_pass_only_unlike() {
        let like = Constraint::new("rack", "LIKE", Some("r1")).unwrap();
        assert!(like.accepts_value(Some("r1")));
        assert!(!like.accepts_value(Some("r10")));
        assert!(!like.accepts_value(None));
        let unlike = Constraint::new("rack", "UNLIKE", Some("r1")).unwrap();
        assert!(unlike.accepts_value(Some("r10")));
        assert!(!unlike.accepts_value(Some("r1")));
        assert!(unlike.accepts_value(None));
        for op in ["UNIQUE", "GROUP_BY", "CLUSTER"] {
            assert!(
                !Constraint::new("rack", op, None)
                    .unwrap()
                    .accepts_value(None)
            );
        }
        let is = Constraint::new("rack", "IS", Some("r1")).unwrap();
        assert!(is.accepts_value(Some("r1")) && !is.accepts_value(Some("r2")));
    }

    #[test]
    fn displays_as_json_for_reasons() {
        let c = Constraint::new("@zone", "GROUP_BY", Some("4")).unwrap();
        assert_eq!(c.to_string(), r#"["@zone","GROUP_BY","4"]"#);
    }
}
