//! Marathon's label selector queries (`GET /v2/apps?label=…`): selectors separated by
//! commas, all of which must match (AND):
//!
//! - `key`: the app has label `key`;
//! - `key==value`, `key!=value`: it has the label, with (not with) that value;
//! - `key in (v1, v2)`, `key notin (v1, v2)`: it has the label, with a value in (not in) the set.
//!
//! Keys and values are `A-Za-z0-9`, `-`, `_` and `.`; any other character is written with a
//! backslash before it (`my\ label`, `\!\!\!`). Whitespace between the parts is ignored.

use std::collections::BTreeMap;

/// Why a query is not a label selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Can not parse label selector '{query}': {expected} at character {position}. Use key, key==value, key!=value, key in (a, b) or key notin (a, b), separated by commas; escape characters other than A-Za-z0-9-_. with a backslash."
)]
pub struct LabelSelectorError {
    /// The query as given.
    pub query: String,
    /// What the parser expected.
    pub expected: &'static str,
    /// Where (0-based, in characters).
    pub position: usize,
}

/// How one selector tests a label's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// The label exists.
    Exists,
    /// Its value is this one.
    Equals(String),
    /// Its value is not this one.
    NotEquals(String),
    /// Its value is one of these.
    In(Vec<String>),
    /// Its value is none of these.
    NotIn(Vec<String>),
}

/// One selector: a label key and a test of its value. Every test needs the label to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    /// The label key.
    pub key: String,
    /// What its value must be.
    pub test: Test,
}

impl LabelSelector {
    /// True when `labels` satisfy this selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let Some(value) = labels.get(&self.key) else {
            return false;
        };
        match &self.test {
            Test::Exists => true,
            Test::Equals(v) => value == v,
            Test::NotEquals(v) => value != v,
            Test::In(set) => set.contains(value),
            Test::NotIn(set) => !set.contains(value),
        }
    }
}

/// A whole query: every selector must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelectors(pub Vec<LabelSelector>);

impl LabelSelectors {
    /// Parses a query (`""` has no selector and matches every app, as in Marathon).
    pub fn parse(query: &str) -> Result<Self, LabelSelectorError> {
        let mut p = Parser {
            query,
            chars: query.chars().collect(),
            at: 0,
        };
        let mut selectors = Vec::new();
        p.skip_spaces();
        if p.at == p.chars.len() {
            return Ok(LabelSelectors(selectors));
        }
        loop {
            selectors.push(p.selector()?);
            p.skip_spaces();
            match p.peek() {
                None => return Ok(LabelSelectors(selectors)),
                Some(',') => p.at += 1,
                Some(_) => return Err(p.error("',' or the end of the query")),
            }
        }
    }

    /// True when `labels` satisfy every selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|s| s.matches(labels))
    }
}

struct Parser<'a> {
    query: &'a str,
    chars: Vec<char>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn rest_starts_with(&self, word: &str) -> bool {
        (self.at..)
            .zip(word.chars())
            .all(|(i, c)| self.chars.get(i) == Some(&c))
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn error(&self, expected: &'static str) -> LabelSelectorError {
        LabelSelectorError {
            query: self.query.to_string(),
            expected,
            position: self.at,
        }
    }

    /// A key or value: allowed characters, or any character after a backslash.
    fn term(&mut self) -> Result<String, LabelSelectorError> {
        self.skip_spaces();
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                let Some(&escaped) = self.chars.get(self.at + 1) else {
                    return Err(self.error("a character after the backslash"));
                };
                out.push(escaped);
                self.at += 2;
            } else if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                out.push(c);
                self.at += 1;
            } else {
                break;
            }
        }
        if out.is_empty() {
            return Err(self.error("a label key or value"));
        }
        Ok(out)
    }

    fn set(&mut self) -> Result<Vec<String>, LabelSelectorError> {
        self.skip_spaces();
        if self.peek() != Some('(') {
            return Err(self.error("'(' opening the set of values"));
        }
        self.at += 1;
        let mut values = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(')') {
            self.at += 1;
            return Ok(values);
        }
        loop {
            values.push(self.term()?);
            self.skip_spaces();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(')') => {
                    self.at += 1;
                    return Ok(values);
                }
                _ => return Err(self.error("',' or ')' in the set of values")),
            }
        }
    }

    fn selector(&mut self) -> Result<LabelSelector, LabelSelectorError> {
        let key = self.term()?;
        self.skip_spaces();
        let test = if self.rest_starts_with("==") {
            self.at += 2;
            Test::Equals(self.term()?)
        } else if self.rest_starts_with("!=") {
            self.at += 2;
            Test::NotEquals(self.term()?)
        } else if self.rest_starts_with("notin") {
            self.at += 5;
            Test::NotIn(self.set()?)
        } else if self.rest_starts_with("in") {
            self.at += 2;
            Test::In(self.set()?)
        } else {
            Test::Exists
        };
        Ok(LabelSelector { key, test })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Marathon's documented examples (apps.raml, LabelSelectorParsersTest): the query, apps'
    /// labels, and whether each matches.
    #[test]
    fn marathons_examples_match_as_documented() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case<'_>] = &[
            ("existence", &[("existence", "one")], true),
            ("existence", &[("none", "one")], false),
            ("foo == one", &[("foo", "one")], true),
            ("foo==one", &[("foo", "one")], true),
            ("foo == one", &[("foo", "four")], false),
            ("foo == one", &[("bla", "one")], false),
            ("foo != one", &[("foo", "one")], false),
            ("foo != one", &[("foo", "four")], true),
            // != still needs the label.
            ("foo != one", &[("bla", "one")], false),
            (
                r"foo in (one, two, three\ is\ cool)",
                &[("foo", "one")],
                true,
            ),
            (
                r"foo in (one, two, three\ is\ cool)",
                &[("foo", "three is cool")],
                true,
            ),
            (
                r"foo in (one, two, three\ is\ cool)",
                &[("foo", "four")],
                false,
            ),
            (
                r"foo in (one, two, three\ is\ cool)",
                &[("bla", "one")],
                false,
            ),
            ("bla notin (one, two, three)", &[("bla", "one")], false),
            ("bla notin (one, two, three)", &[("bla", "four")], true),
            ("bla notin (one, two, three)", &[("rest", "one")], false),
            (
                "foo==one, bla!=one, foo in (one, two, three), bla notin (one, two, three), existence",
                &[("foo", "one"), ("bla", "four"), ("existence", "true")],
                true,
            ),
            (
                "foo==one, bla!=one, foo in (one, two, three), bla notin (one, two, three), existence",
                &[("foo", "one")],
                false,
            ),
            (
                r"\{\{\{ in (\*\*\*, \&\&\&, \$\$\$), \^\^\^ notin (\-\-\-, \!\!\!, \@\@\@), \#\#\#",
                &[("{{{", "&&&"), ("^^^", "&&&"), ("###", "&&&")],
                true,
            ),
            (
                r"\{\{\{ in (\*\*\*, \&\&\&, \$\$\$), \^\^\^ notin (\-\-\-, \!\!\!, \@\@\@), \#\#\#",
                &[("^^^", "---")],
                false,
            ),
            // apps.raml's example query.
            (
                r"my_label, environment==production, tier!=frontend\ tier, deployed in (us, eu), deployed notin (aa, bb)",
                &[
                    ("my_label", ""),
                    ("environment", "production"),
                    ("tier", "frontend"),
                    ("deployed", "eu"),
                ],
                true,
            ),
            (
                r"my_label, environment==production, tier!=frontend\ tier",
                &[
                    ("my_label", "x"),
                    ("environment", "production"),
                    ("tier", "frontend tier"),
                ],
                false,
            ),
            (
                "environment in (stage,production)",
                &[("environment", "stage")],
                true,
            ),
            (
                "tier notin (frontend, service)",
                &[("tier", "backend")],
                true,
            ),
            (
                "tier notin (frontend, service)",
                &[("tier", "service")],
                false,
            ),
            // A comma inside a value is escaped.
            (r"k==a\,b", &[("k", "a,b")], true),
            // No selector: every app.
            ("", &[], true),
        ];
        for (query, app_labels, want) in cases {
            let selectors = LabelSelectors::parse(query)
                .unwrap_or_else(|e| panic!("{query:?} does not parse: {e}"));
            assert_eq!(
                selectors.matches(&labels(app_labels)),
                *want,
                "{query:?} against {app_labels:?}"
            );
        }
    }

    #[test]
    fn selectors_read_as_marathon_reads_them() {
        let parsed = LabelSelectors::parse(r"foo in (one, two, three\ is\ cool), e").unwrap();
        assert_eq!(
            parsed.0,
            vec![
                LabelSelector {
                    key: "foo".into(),
                    test: Test::In(vec!["one".into(), "two".into(), "three is cool".into()]),
                },
                LabelSelector {
                    key: "e".into(),
                    test: Test::Exists,
                },
            ]
        );
    }

    #[test]
    fn what_marathon_refuses_is_refused_with_where_and_what() {
        for query in [
            "foo some (one, two, three)",
            "foo in one",
            "foo test",
            "foo ==",
            "a b",
            "k==v,",
            r"k==v\",
            "foo in (a b)",
            "=value",
        ] {
            let err = LabelSelectors::parse(query).expect_err(query);
            assert_eq!(err.query, query);
            assert!(
                err.to_string().contains("Can not parse label selector"),
                "{err}"
            );
        }
        let err = LabelSelectors::parse("foo in one").unwrap_err();
        assert_eq!(
            (err.expected, err.position),
            ("'(' opening the set of values", 7)
        );
    }
}
