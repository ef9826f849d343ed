//! Integer ranges as Mesos writes them: `[31000-32000,33000-33100]`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attributes::shown;

/// An inclusive range of integers, `begin-end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    /// First value in the range.
    pub begin: u64,
    /// Last value in the range (inclusive).
    pub end: u64,
}

impl Range {
    /// How many values the range holds (saturating: `[0-18446744073709551615]` holds one
    /// more than a u64 can count).
    pub fn len(&self) -> u64 {
        (self.end - self.begin).saturating_add(1)
    }

    /// Always false: a range holds at least its begin.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The highest port number; port ranges reaching above it are refused.
pub const MAX_PORT: u64 = 65535;

/// A set of disjoint, sorted, merged inclusive ranges (ports, or a ranges attribute).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Ranges(Vec<Range>);

/// Why a ranges text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangesError {
    /// The text is not wrapped in brackets.
    #[error("`{0}` is not a ranges value: expected brackets like `[31000-32000]`")]
    NotBracketed(String),
    /// One range inside is malformed.
    #[error(
        "`{range}` in `{text}` is not a range: expected `BEGIN-END` with BEGIN <= END, both non-negative integers"
    )]
    BadRange {
        /// The whole text.
        text: String,
        /// The bad part.
        range: String,
    },
    /// A port range reaches above [`MAX_PORT`].
    #[error(
        "port {value} in `{text}` is out of range: ports are 0 to {MAX_PORT}, e.g. `[31000-32000]`"
    )]
    PortOutOfRange {
        /// The whole text.
        text: String,
        /// The end of the first range that reaches above [`MAX_PORT`].
        value: u64,
    },
}

impl Ranges {
    /// Builds ranges from any list, sorting and merging overlapping or adjacent ones.
    pub fn new(mut ranges: Vec<Range>) -> Self {
        ranges.sort();
        let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.begin <= last.end.saturating_add(1) => {
                    last.end = last.end.max(r.end);
                }
                _ => merged.push(r),
            }
        }
        Ranges(merged)
    }

    /// A single range `begin-end`.
    pub fn single(begin: u64, end: u64) -> Self {
        Ranges::new(vec![Range { begin, end }])
    }

    /// The ranges, sorted and disjoint.
    pub fn as_slice(&self) -> &[Range] {
        &self.0
    }

    /// How many values all ranges hold together (saturating, like [`Range::len`]).
    pub fn count(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |sum, r| sum.saturating_add(r.len()))
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `value` lies in one of the ranges.
    pub fn contains(&self, value: u64) -> bool {
        let idx = self.0.partition_point(|r| r.end < value);
        self.0.get(idx).is_some_and(|r| r.begin <= value)
    }

    /// Removes one value; returns whether it was present.
    pub fn remove(&mut self, value: u64) -> bool {
        let idx = self.0.partition_point(|r| r.end < value);
        let Some(r) = self.0.get(idx).copied() else {
            return false;
        };
        if r.begin > value {
            return false;
        }
        match (r.begin == value, r.end == value) {
            (true, true) => {
                self.0.remove(idx);
            }
            (true, false) => self.0[idx].begin = value + 1,
            (false, true) => self.0[idx].end = value - 1,
            (false, false) => {
                self.0[idx].end = value - 1;
                self.0.insert(
                    idx + 1,
                    Range {
                        begin: value + 1,
                        end: r.end,
                    },
                );
            }
        }
        true
    }

    /// Takes the `n` lowest values out of the ranges, or nothing if fewer are held.
    pub fn take_lowest(&mut self, n: usize) -> Option<Vec<u64>> {
        if (n as u64) > self.count() {
            return None;
        }
        let mut taken = Vec::with_capacity(n);
        while taken.len() < n {
            let first = &mut self.0[0];
            let want = (n - taken.len()) as u64;
            let available = first.len();
            let k = want.min(available);
            // `..=` because `begin + k` overflows when the range ends at u64::MAX.
            taken.extend(first.begin..=first.begin + (k - 1));
            if k == available {
                self.0.remove(0);
            } else {
                first.begin += k;
            }
        }
        Some(taken)
    }

    /// Parses Mesos's text form, `[a-b,c-d]` (spaces allowed, `[]` is empty).
    pub fn parse(text: &str) -> Result<Self, RangesError> {
        let trimmed = text.trim();
        let inner = trimmed
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(|| RangesError::NotBracketed(shown(text)))?;
        let mut ranges = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || RangesError::BadRange {
                text: shown(text),
                range: shown(part),
            };
            let (b, e) = match part.split_once('-') {
                Some((b, e)) => (b.trim(), e.trim()),
                None => (part, part),
            };
            let begin: u64 = b.parse().map_err(|_| bad())?;
            let end: u64 = e.parse().map_err(|_| bad())?;
            if begin > end {
                return Err(bad());
            }
            ranges.push(Range { begin, end });
        }
        Ok(Ranges::new(ranges))
    }

    /// Parses port ranges: Mesos's text form, every value at most [`MAX_PORT`].
    pub fn parse_ports(text: &str) -> Result<Self, RangesError> {
        let ranges = Ranges::parse(text)?;
        ranges.within_ports(text)?;
        Ok(ranges)
    }

    /// Refuses ranges that reach above [`MAX_PORT`], naming the first such value.
    fn within_ports(&self, text: &str) -> Result<(), RangesError> {
        match self.0.iter().find(|r| r.end > MAX_PORT) {
            Some(r) => Err(RangesError::PortOutOfRange {
                text: shown(text),
                value: r.end,
            }),
            None => Ok(()),
        }
    }
}

/// Deserialises port ranges (a `ports` resource), refusing values above [`MAX_PORT`].
pub fn deserialize_ports<'de, D: Deserializer<'de>>(d: D) -> Result<Ranges, D::Error> {
    let text = String::deserialize(d)?;
    Ranges::parse_ports(&text).map_err(serde::de::Error::custom)
}

impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}-{}", r.begin, r.end)?;
        }
        f.write_str("]")
    }
}

impl Serialize for Ranges {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ranges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ranges::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_merges_and_prints_like_mesos() {
        let r = Ranges::parse("[33000-33010, 31000-32000,32001-32005]").unwrap();
        assert_eq!(r.to_string(), "[31000-32005,33000-33010]");
        assert_eq!(r.count(), 1006 + 11);
        assert_eq!(Ranges::parse("[]").unwrap().count(), 0);
        assert_eq!(Ranges::parse("[80]").unwrap().to_string(), "[80-80]");
    }

    #[test]
    fn rejects_malformed_text_with_the_part_that_is_wrong() {
        assert!(matches!(
            Ranges::parse("31000-32000"),
            Err(RangesError::NotBracketed(_))
        ));
        let err = Ranges::parse("[32000-31000]").unwrap_err();
        assert!(err.to_string().contains("`32000-31000`"), "{err}");
        assert!(Ranges::parse("[a-b]").is_err());
    }

    #[test]
    fn ports_stay_within_65535_but_other_ranges_may_not() {
        let e = Ranges::parse_ports("[0-70000]").unwrap_err();
        assert_eq!(
            e,
            RangesError::PortOutOfRange {
                text: "[0-70000]".into(),
                value: 70000
            }
        );
        assert!(e.to_string().contains("ports are 0 to 65535"), "{e}");
        assert!(Ranges::parse_ports("[65535]").is_ok());
        // A ranges attribute is not a port: Mesos allows any unsigned value.
        assert!(Ranges::parse("[0-70000]").is_ok());
    }

    #[test]
    fn the_widest_range_counts_and_takes_without_overflow() {
        let mut r = Ranges::parse("[0-18446744073709551615]").unwrap();
        assert_eq!(r.count(), u64::MAX);
        let mut top = Ranges::single(u64::MAX - 1, u64::MAX);
        assert_eq!(top.take_lowest(2), Some(vec![u64::MAX - 1, u64::MAX]));
        assert_eq!(r.take_lowest(1), Some(vec![0]));
    }

    #[test]
    fn takes_lowest_values_and_removes_single_ones() {
        let mut r = Ranges::parse("[10-12,20-21]").unwrap();
        assert_eq!(r.take_lowest(4), Some(vec![10, 11, 12, 20]));
        assert_eq!(r.to_string(), "[21-21]");
        assert_eq!(r.take_lowest(2), None);
        let mut r = Ranges::parse("[10-20]").unwrap();
        assert!(r.remove(15));
        assert!(!r.remove(15));
        assert!(!r.contains(15));
        assert!(r.contains(16));
        assert_eq!(r.to_string(), "[10-14,16-20]");
    }
}
