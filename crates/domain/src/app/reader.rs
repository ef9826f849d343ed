//! Reads a JSON object field by field, collecting every type error instead of stopping at one.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::validation::ValidationErrors;

/// Marathon's (Play JSON's) type error messages.
pub const EXPECTED_NUMBER: &str = "error.expected.jsnumber";
/// A string was expected.
pub const EXPECTED_STRING: &str = "error.expected.jsstring";
/// A boolean was expected.
pub const EXPECTED_BOOLEAN: &str = "error.expected.jsboolean";
/// An array was expected.
pub const EXPECTED_ARRAY: &str = "error.expected.jsarray";
/// An object was expected.
pub const EXPECTED_OBJECT: &str = "error.expected.jsobject";
/// A required field is absent.
pub const PATH_MISSING: &str = "error.path.missing";

/// Takes fields out of one JSON object; whatever is left over is kept as unknown fields.
pub struct ObjectReader<'e> {
    map: Map<String, Value>,
    base: String,
    errors: &'e mut ValidationErrors,
}

impl<'e> ObjectReader<'e> {
    /// Starts reading `value` found at `base` (`""` for the top level).
    pub fn new(value: &Value, base: &str, errors: &'e mut ValidationErrors) -> Option<Self> {
        match value {
            Value::Object(map) => Some(ObjectReader {
                map: map.clone(),
                base: base.to_string(),
                errors,
            }),
            _ => {
                errors.add(path_or_root(base), EXPECTED_OBJECT);
                None
            }
        }
    }

    /// The JSON path of a field of this object.
    pub fn path(&self, key: &str) -> String {
        format!("{}/{key}", self.base)
    }

    /// Records a problem at a field of this object.
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let path = self.path(key);
        self.errors.add(path, message);
    }

    /// Records a problem at any path.
    pub fn error_at(&mut self, path: String, message: impl Into<String>) {
        self.errors.add(path, message);
    }

    /// Takes a field out, treating JSON `null` as absent.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// A number, or `default` when absent.
    pub fn f64(&mut self, key: &str, default: f64) -> f64 {
        self.f64_opt(key).unwrap_or(default)
    }

    /// An optional number.
    pub fn f64_opt(&mut self, key: &str) -> Option<f64> {
        let v = self.take(key)?;
        let n = v.as_f64();
        if n.is_none() {
            self.error(key, EXPECTED_NUMBER);
        }
        n
    }

    /// An integer, or `default` when absent; fractional numbers are type errors.
    pub fn i64(&mut self, key: &str, default: i64) -> i64 {
        self.i64_opt(key).unwrap_or(default)
    }

    /// An optional integer.
    pub fn i64_opt(&mut self, key: &str) -> Option<i64> {
        let v = self.take(key)?;
        let n = v.as_i64();
        if n.is_none() {
            self.error(key, EXPECTED_NUMBER);
        }
        n
    }

    /// A boolean, or `default` when absent.
    pub fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(v) = self.take(key) else {
            return default;
        };
        v.as_bool().unwrap_or_else(|| {
            self.error(key, EXPECTED_BOOLEAN);
            default
        })
    }

    /// An optional string.
    pub fn string_opt(&mut self, key: &str) -> Option<String> {
        let v = self.take(key)?;
        match v {
            Value::String(s) => Some(s),
            _ => {
                self.error(key, EXPECTED_STRING);
                None
            }
        }
    }

    /// An optional array of strings.
    pub fn strings_opt(&mut self, key: &str) -> Option<Vec<String>> {
        let v = self.take(key)?;
        let Value::Array(items) = v else {
            self.error(key, EXPECTED_ARRAY);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Value::String(s) => out.push(s),
                _ => {
                    let path = format!("{}({i})", self.path(key));
                    self.error_at(path, EXPECTED_STRING);
                }
            }
        }
        Some(out)
    }

    /// An object of string values (`env`, `labels`).
    pub fn string_map(&mut self, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(v) = self.take(key) else {
            return out;
        };
        let Value::Object(map) = v else {
            self.error(key, EXPECTED_OBJECT);
            return out;
        };
        for (k, v) in map {
            match v {
                Value::String(s) => {
                    out.insert(k, s);
                }
                _ => {
                    let path = format!("{}/{k}", self.path(key));
                    self.error_at(path, EXPECTED_STRING);
                }
            }
        }
        out
    }

    /// An optional array, each element handed to `read` with its path.
    pub fn array<T>(
        &mut self,
        key: &str,
        mut read: impl FnMut(&Value, String, &mut ValidationErrors) -> Option<T>,
    ) -> Option<Vec<T>> {
        let v = self.take(key)?;
        let Value::Array(items) = v else {
            self.error(key, EXPECTED_ARRAY);
            return None;
        };
        let base = self.path(key);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(t) = read(item, format!("{base}({i})"), self.errors) {
                out.push(t);
            }
        }
        Some(out)
    }

    /// Reads a nested object with its own reader.
    pub fn object<T>(&mut self, key: &str, read: impl FnOnce(ObjectReader<'_>) -> T) -> Option<T> {
        let v = self.take(key)?;
        let path = self.path(key);
        ObjectReader::new(&v, &path, self.errors).map(read)
    }

    /// Errors recorded so far (shared with nested readers).
    pub fn errors(&mut self) -> &mut ValidationErrors {
        self.errors
    }

    /// The fields nobody took: kept verbatim so they round-trip.
    pub fn rest(self) -> Map<String, Value> {
        self.map
    }
}

/// Marathon names the top level `/`.
pub fn path_or_root(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}
