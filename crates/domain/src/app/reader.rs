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

    /// An optional whole number, with its text as written (for messages). `1e9` is a whole
    /// number; `1.5` is recorded as an error; numbers beyond `i64` saturate (their text stays
    /// exact, so a range check still names what was sent).
    pub fn whole_opt(&mut self, key: &str) -> Option<(i64, String)> {
        let v = self.take(key)?;
        match whole(&v) {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(key, e);
                None
            }
        }
    }

    /// A whole number in `min..=max`, or `default` when absent; anything else is recorded.
    pub fn int_in(&mut self, key: &str, default: i64, min: i64, max: i64) -> i64 {
        let Some((n, text)) = self.whole_opt(key) else {
            return default;
        };
        if n < min {
            self.error(key, format!("got {text}, expected {min} or more"));
        } else if n > max {
            let path = self.path(key);
            self.errors
                .add_limit(path, format!("got {text}, expected {max} or less"));
        }
        n.clamp(min, max)
    }

    /// A number in `min..=max`, or `default` when absent; anything else is recorded.
    pub fn number_in(&mut self, key: &str, default: f64, min: f64, max: f64) -> f64 {
        let v = self.f64(key, default);
        match out_of(v, min, max) {
            Some(e) if v > max => {
                let path = self.path(key);
                self.errors.add_limit(path, e);
                max
            }
            Some(e) => {
                self.error(key, e);
                v
            }
            None => v,
        }
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

/// A JSON value as a whole number and its text: `Err` with the message to record otherwise.
pub fn whole(v: &Value) -> Result<(i64, String), String> {
    let Value::Number(n) = v else {
        return Err(EXPECTED_NUMBER.to_string());
    };
    let text = n.to_string();
    if let Some(i) = n.as_i64() {
        return Ok((i, text));
    }
    if n.as_u64().is_some() {
        return Ok((i64::MAX, text));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 => {
            // `as` saturates: 1e300 becomes i64::MAX, and the text keeps what was sent.
            let shown = if f.abs() < 1e16 {
                format!("{}", f as i64)
            } else {
                text
            };
            Ok((f as i64, shown))
        }
        _ => Err(format!("got {text}, expected a whole number")),
    }
}

/// Why `v` is outside `min..=max` (`NaN` included), in Marathon's words.
pub fn out_of(v: f64, min: f64, max: f64) -> Option<String> {
    if v < min || v.is_nan() {
        Some(format!("got {v}, expected {min:?} or more"))
    } else if v > max {
        Some(format!("got {v}, expected {max:?} or less"))
    } else {
        None
    }
}
