//! The mutators: byte-level and structural changes to corpus inputs, and the hostile
//! tokens and JSON values they insert.

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::Seed;

static HOSTILE_TOKENS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(build_hostile_tokens);
static HOSTILE_VALUES: LazyLock<Vec<Value>> = LazyLock::new(build_hostile_values);

/// Byte-level tokens that break parsers: numbers past every integer width, float edge
/// cases, separators, quotes, NUL, invalid UTF-8, a long run.
pub fn hostile_tokens() -> &'static [Vec<u8>] {
    &HOSTILE_TOKENS
}

fn build_hostile_tokens() -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = [
        "1e9",
        "4294967296",
        "4294967295",
        "2147483648",
        "18446744073709551616",
        "99999999999999999999999999",
        "1e308",
        "1e400",
        "-1",
        "-0",
        "0.0000001",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "\0",
        "\u{202e}",
        "\u{fffd}",
        "日本",
        "🦀",
        "\"",
        "\\",
        "\\u0000",
        "\\ud800",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        ";",
        "-",
        " ",
        "\n",
        "null",
        "[0-70000]",
        "[65535-0]",
        "a)|(b",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    t.push(vec![0xff, 0xfe]);
    t.push(vec![0xc3]);
    t.push(vec![b'9'; 400]);
    t.push(vec![b'a'; 70_000]);
    t
}

/// One byte-level change to an input; positions wrap around the input's length.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit.
    FlipBit {
        /// Where.
        at: usize,
        /// Which bit.
        bit: u8,
    },
    /// Insert a hostile token.
    Insert {
        /// Where.
        at: usize,
        /// Which of [`hostile_tokens`].
        token: usize,
    },
    /// Replace the n-th run of digits with a hostile token.
    ReplaceNumber {
        /// Which run.
        nth: usize,
        /// Which of [`hostile_tokens`].
        token: usize,
    },
    /// Remove a stretch.
    Delete {
        /// Where.
        at: usize,
        /// How long.
        len: usize,
    },
    /// Repeat a stretch in place.
    Duplicate {
        /// Where.
        at: usize,
        /// How long.
        len: usize,
    },
    /// Insert a stretch of another corpus input.
    Splice {
        /// Where.
        at: usize,
        /// Which corpus input.
        other: usize,
        /// Where in it.
        from: usize,
        /// How long.
        len: usize,
    },
}

/// A few byte-level mutations.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (any::<usize>(), any::<usize>()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (0..8usize, any::<usize>()).prop_map(|(nth, token)| Mutation::ReplaceNumber { nth, token }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (any::<usize>(), any::<usize>(), any::<usize>(), 1..128usize).prop_map(
            |(at, other, from, len)| Mutation::Splice {
                at,
                other,
                from,
                len
            }
        ),
    ];
    proptest::collection::vec(one, 1..6)
}

/// Applies byte-level mutations to a seed.
pub fn mutate(seed: &[u8], corpus: &[Seed], ops: &[Mutation]) -> Vec<u8> {
    let tokens = hostile_tokens();
    let mut b = seed.to_vec();
    for op in ops {
        let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
        match *op {
            Mutation::FlipBit { at, bit } => {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] ^= 1 << bit;
                }
            }
            Mutation::Insert { at, token } => {
                let i = pos(at, b.len());
                let t = &tokens[token % tokens.len()];
                b.splice(i..i, t.iter().copied());
            }
            Mutation::ReplaceNumber { nth, token } => {
                let runs = digit_runs(&b);
                if !runs.is_empty() {
                    let (start, end) = runs[nth % runs.len()];
                    let t = &tokens[token % tokens.len()];
                    b.splice(start..end, t.iter().copied());
                }
            }
            Mutation::Delete { at, len } => {
                let i = pos(at, b.len());
                let end = (i + len).min(b.len());
                b.drain(i..end);
            }
            Mutation::Duplicate { at, len } => {
                let i = pos(at, b.len());
                let end = (i + len).min(b.len());
                let copy: Vec<u8> = b[i..end].to_vec();
                b.splice(i..i, copy);
            }
            Mutation::Splice {
                at,
                other,
                from,
                len,
            } => {
                let src = &corpus[other % corpus.len()].bytes;
                let s = pos(from, src.len()).min(src.len());
                let e = (s + len).min(src.len());
                let i = pos(at, b.len());
                b.splice(i..i, src[s..e].iter().copied());
            }
        }
    }
    b
}

fn digit_runs(b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// JSON values that break validation: integers past every width, floats at the edges,
/// strings that are not what they look like, deep and wide structures.
pub fn hostile_values() -> &'static [Value] {
    &HOSTILE_VALUES
}

fn build_hostile_values() -> Vec<Value> {
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let mut deep_object = json!({});
    for _ in 0..100 {
        deep_object = json!({ "a": deep_object });
    }
    vec![
        json!(0),
        json!(-1),
        json!(-0.0),
        json!(0.5),
        json!(1.15),
        json!(1e9),
        json!(1_000_000_000),
        json!(2_147_483_648u64),
        json!(4_294_967_295u64),
        json!(4_294_967_296u64),
        json!(9_007_199_254_740_993u64),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(-1e308),
        json!(5e-324),
        json!(65535),
        json!(65536),
        json!(70000),
        json!(""),
        json!(" "),
        json!("0"),
        json!("-1"),
        json!("1e9"),
        json!("NaN"),
        json!("Infinity"),
        json!("\0"),
        json!("a\0b"),
        json!("é日本\u{202e}🦀"),
        json!("x".repeat(100_000)),
        json!("[0-70000]"),
        json!("[31000-32000]"),
        json!("[1-0]"),
        json!("{a,b}"),
        json!("a)|(b"),
        json!("("),
        json!("/"),
        json!(".."),
        json!("UNIQUE"),
        json!("MAX_PER"),
        json!("hostname"),
        json!("@zone"),
        json!("@region"),
        json!("DOCKER"),
        Value::Null,
        json!(true),
        json!([]),
        json!({}),
        json!(["a", "b"]),
        json!(["hostname", "MAX_PER", "0"]),
        Value::Array(vec![json!(0); 10_000]),
        deep,
        deep_object,
    ]
}

/// One structural change to a JSON document; node numbers count nodes in pre-order and
/// wrap around.
#[derive(Debug, Clone)]
pub enum JsonMutation {
    /// Replace a node with a hostile value.
    Replace {
        /// Which node.
        node: usize,
        /// Which of [`hostile_values`].
        with: usize,
    },
    /// Set a field (one of the target's known names) on an object node.
    SetField {
        /// Which node (the nearest object at or after it).
        node: usize,
        /// Which of the target's field names.
        key: usize,
        /// Which of [`hostile_values`].
        with: usize,
    },
    /// Remove one field or element of a node.
    Remove {
        /// Which node.
        node: usize,
        /// Which child.
        child: usize,
    },
    /// Wrap a node in an array.
    Wrap {
        /// Which node.
        node: usize,
    },
}

/// A few structural mutations.
pub fn json_mutations() -> impl Strategy<Value = Vec<JsonMutation>> {
    let one = prop_oneof![
        (any::<usize>(), any::<usize>())
            .prop_map(|(node, with)| JsonMutation::Replace { node, with }),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(node, key, with)| JsonMutation::SetField { node, key, with }),
        (any::<usize>(), any::<usize>())
            .prop_map(|(node, child)| JsonMutation::Remove { node, child }),
        any::<usize>().prop_map(|node| JsonMutation::Wrap { node }),
    ];
    proptest::collection::vec(one, 1..5)
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn nth_node(v: &mut Value, n: usize) -> Option<&mut Value> {
    fn walk<'v>(v: &'v mut Value, n: &mut usize) -> Option<&'v mut Value> {
        if *n == 0 {
            return Some(v);
        }
        *n -= 1;
        match v {
            Value::Array(items) => items.iter_mut().find_map(|c| walk(c, n)),
            Value::Object(map) => map.values_mut().find_map(|c| walk(c, n)),
            _ => None,
        }
    }
    let mut n = n;
    walk(v, &mut n)
}

/// Applies structural mutations to a JSON document; `keys` are the target's field names.
pub fn mutate_json(doc: &Value, keys: &[&str], ops: &[JsonMutation]) -> Value {
    let values = hostile_values();
    let mut doc = doc.clone();
    for op in ops {
        let total = count_nodes(&doc);
        let pick = |n: usize| n % total;
        match *op {
            JsonMutation::Replace { node, with } => {
                if let Some(v) = nth_node(&mut doc, pick(node)) {
                    *v = values[with % values.len()].clone();
                }
            }
            JsonMutation::SetField { node, key, with } => {
                let start = pick(node);
                let object = (0..total)
                    .map(|k| (start + k) % total)
                    .find(|&k| nth_node(&mut doc, k).is_some_and(|v| v.is_object()));
                if let Some(k) = object
                    && let Some(Value::Object(map)) = nth_node(&mut doc, k)
                    && !keys.is_empty()
                {
                    map.insert(
                        keys[key % keys.len()].to_string(),
                        values[with % values.len()].clone(),
                    );
                }
            }
            JsonMutation::Remove { node, child } => match nth_node(&mut doc, pick(node)) {
                Some(Value::Array(items)) if !items.is_empty() => {
                    let i = child % items.len();
                    items.remove(i);
                }
                Some(Value::Object(map)) if !map.is_empty() => {
                    let key = map.keys().nth(child % map.len()).cloned();
                    if let Some(key) = key {
                        map.remove(&key);
                    }
                }
                _ => {}
            },
            JsonMutation::Wrap { node } => {
                if let Some(v) = nth_node(&mut doc, pick(node)) {
                    *v = Value::Array(vec![v.take()]);
                }
            }
        }
    }
    doc
}

/// An arbitrary JSON value of bounded size, mixing plain and hostile leaves.
pub fn arb_json(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let n = hostile_values().len();
    let leaf = prop_oneof![
        (0..n).prop_map(|i| hostile_values()[i].clone()),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        (0..keys.len()).prop_map(move |i| keys[i].to_string()),
                        "\\PC{0,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}
