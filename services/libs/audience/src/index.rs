//! Answers "which documents does this rule match" from per-path, per-value bitmaps instead
//! of evaluating the rule document by document. [`Rule::matches`] is the reference: the
//! property test in `tests.rs` checks that both agree on random documents and rules.
//!
//! Each document gets a dense `u32`; for every key path it has, the index keeps the set of
//! documents where the path is present, and sets per string, number (five-decimal fixed
//! point), date, boolean and null value, in ordered maps so prefixes and ranges are range
//! scans. Arrays are transparent, as in the rule semantics.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Bound,
};

use roaring::RoaringBitmap;
use serde_json::Value;

use crate::{Condition, Date, Literal, Node, Range, Rule, is_industry_code, parse_date, to_fixed};

/// Separates path segments in index keys; cannot occur in JSON keys we accept from rules
/// without being matched literally on both sides.
const SEP: char = '\u{1f}';

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Present,
    Str(String),
    Num(i64),
    Bool(bool),
    Null,
}

#[derive(Debug, Default)]
struct PathIndex {
    present: RoaringBitmap,
    strings: BTreeMap<String, RoaringBitmap>,
    /// Strings reversed (by char), for suffixes.
    reversed: BTreeMap<String, RoaringBitmap>,
    lowercase: HashMap<String, RoaringBitmap>,
    dates: BTreeMap<Date, RoaringBitmap>,
    numbers: BTreeMap<i64, RoaringBitmap>,
    bools: [RoaringBitmap; 2],
    nulls: RoaringBitmap,
}

/// Documents by id, indexed for [`Rule`] evaluation.
#[derive(Debug, Default)]
pub struct Index {
    ids: HashMap<String, u32>,
    names: Vec<Option<String>>,
    /// What each document contributed, to undo it on removal.
    entries: Vec<Vec<(String, Key)>>,
    free: Vec<u32>,
    all: RoaringBitmap,
    paths: HashMap<String, PathIndex>,
}

fn update(set: &mut RoaringBitmap, doc: u32, insert: bool) {
    if insert {
        set.insert(doc);
    } else {
        set.remove(doc);
    }
}

fn update_in<K: Ord>(map: &mut BTreeMap<K, RoaringBitmap>, key: K, doc: u32, insert: bool) {
    if insert {
        map.entry(key).or_default().insert(doc);
    } else if let Some(set) = map.get_mut(&key) {
        set.remove(doc);
        if set.is_empty() {
            map.remove(&key);
        }
    }
}

impl PathIndex {
    fn apply(&mut self, key: &Key, doc: u32, insert: bool) {
        match key {
            Key::Present => update(&mut self.present, doc, insert),
            Key::Str(s) => {
                update_in(&mut self.strings, s.clone(), doc, insert);
                update_in(&mut self.reversed, s.chars().rev().collect(), doc, insert);
                let lower = s.to_lowercase();
                if insert {
                    self.lowercase.entry(lower).or_default().insert(doc);
                } else if let Some(set) = self.lowercase.get_mut(&lower) {
                    set.remove(doc);
                    if set.is_empty() {
                        self.lowercase.remove(&lower);
                    }
                }
                if let Some(date) = parse_date(s) {
                    update_in(&mut self.dates, date, doc, insert);
                }
            }
            Key::Num(n) => update_in(&mut self.numbers, *n, doc, insert),
            Key::Bool(b) => update(&mut self.bools[usize::from(*b)], doc, insert),
            Key::Null => update(&mut self.nulls, doc, insert),
        }
    }
}

fn flatten(value: &Value, path: &mut String, out: &mut Vec<(String, Key)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push(SEP);
                }
                path.push_str(key);
                out.push((path.clone(), Key::Present));
                flatten(child, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| flatten(item, path, out)),
        _ if path.is_empty() => {}
        Value::String(s) => out.push((path.clone(), Key::Str(s.clone()))),
        Value::Number(_) => {
            if let Some(n) = to_fixed(value) {
                out.push((path.clone(), Key::Num(n)));
            }
        }
        Value::Bool(b) => out.push((path.clone(), Key::Bool(*b))),
        Value::Null => out.push((path.clone(), Key::Null)),
    }
}

fn union<'a>(sets: impl IntoIterator<Item = &'a RoaringBitmap>) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for set in sets {
        out |= set;
    }
    out
}

fn bounds<T: Copy>(range: &Range<T>) -> (Bound<T>, Bound<T>) {
    let convert = |b: Option<(T, bool)>| match b {
        None => Bound::Unbounded,
        Some((v, true)) => Bound::Included(v),
        Some((v, false)) => Bound::Excluded(v),
    };
    (convert(range.lower), convert(range.upper))
}

fn with_prefix<'a>(
    map: &'a BTreeMap<String, RoaringBitmap>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a RoaringBitmap)> {
    map.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
}

impl Index {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds or replaces the document of `id`.
    pub fn upsert(&mut self, id: &str, document: &Value) {
        self.remove(id);
        let doc = self.free.pop().unwrap_or_else(|| {
            self.names.push(None);
            self.entries.push(Vec::new());
            u32::try_from(self.names.len() - 1).expect("fewer than 2^32 documents")
        });
        let mut entries = Vec::new();
        flatten(document, &mut String::new(), &mut entries);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup();
        for (path, key) in &entries {
            self.paths
                .entry(path.clone())
                .or_default()
                .apply(key, doc, true);
        }
        self.entries[doc as usize] = entries;
        self.names[doc as usize] = Some(id.to_string());
        self.ids.insert(id.to_string(), doc);
        self.all.insert(doc);
    }

    /// Removes `id`; false if it was not there.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(doc) = self.ids.remove(id) else {
            return false;
        };
        for (path, key) in std::mem::take(&mut self.entries[doc as usize]) {
            if let Some(index) = self.paths.get_mut(&path) {
                index.apply(&key, doc, false);
                if index.present.is_empty() {
                    self.paths.remove(&path);
                }
            }
        }
        self.names[doc as usize] = None;
        self.all.remove(doc);
        self.free.push(doc);
        true
    }

    /// Ids of the documents `rule` matches.
    pub fn matching(&self, rule: &Rule) -> Vec<&str> {
        self.eval(&rule.root)
            .iter()
            .filter_map(|doc| self.names[doc as usize].as_deref())
            .collect()
    }

    /// How many documents `rule` matches.
    pub fn count(&self, rule: &Rule) -> u64 {
        self.eval(&rule.root).len()
    }

    fn eval(&self, node: &Node) -> RoaringBitmap {
        match node {
            Node::All(children) => {
                let mut sets = children.iter().map(|c| self.eval(c));
                let first = sets.next().unwrap_or_default();
                sets.fold(first, |acc, set| acc & set)
            }
            Node::Any(children) => children
                .iter()
                .fold(RoaringBitmap::new(), |acc, c| acc | self.eval(c)),
            Node::Field { path, conditions } => {
                let key: String = path.join(&SEP.to_string());
                let index = self.paths.get(&key);
                conditions.iter().fold(RoaringBitmap::new(), |acc, c| {
                    acc | self.condition(index, c)
                })
            }
        }
    }

    fn condition(&self, index: Option<&PathIndex>, condition: &Condition) -> RoaringBitmap {
        let Some(p) = index else {
            return match condition {
                Condition::Exists(false) => self.all.clone(),
                _ => RoaringBitmap::new(),
            };
        };
        let empty = RoaringBitmap::new();
        match condition {
            Condition::Exists(true) => p.present.clone(),
            Condition::Exists(false) => &self.all - &p.present,
            Condition::Equals(Literal::Str(s)) => p.strings.get(s).unwrap_or(&empty).clone(),
            Condition::Equals(Literal::Num(n)) => p.numbers.get(n).unwrap_or(&empty).clone(),
            Condition::Equals(Literal::Bool(b)) => p.bools[usize::from(*b)].clone(),
            Condition::Equals(Literal::Null) => p.nulls.clone(),
            Condition::Prefix(prefix) => union(with_prefix(&p.strings, prefix).map(|(_, s)| s)),
            Condition::Suffix(suffix) => {
                let reversed: String = suffix.chars().rev().collect();
                union(with_prefix(&p.reversed, &reversed).map(|(_, s)| s))
            }
            Condition::EqualsIgnoreCase(lower) => p.lowercase.get(lower).unwrap_or(&empty).clone(),
            Condition::AnythingBut(values) => union(
                p.strings
                    .iter()
                    .filter(|(k, _)| {
                        !values
                            .iter()
                            .any(|v| matches!(v, Literal::Str(s) if s == *k))
                    })
                    .map(|(_, s)| s)
                    .chain(
                        p.numbers
                            .iter()
                            .filter(|(k, _)| {
                                !values
                                    .iter()
                                    .any(|v| matches!(v, Literal::Num(n) if n == *k))
                            })
                            .map(|(_, s)| s),
                    ),
            ),
            Condition::AnythingButPrefix(prefix) => union(
                p.strings
                    .iter()
                    .filter(|(k, _)| !k.starts_with(prefix.as_str()))
                    .map(|(_, s)| s),
            ),
            Condition::AnythingButSuffix(suffix) => union(
                p.strings
                    .iter()
                    .filter(|(k, _)| !k.ends_with(suffix.as_str()))
                    .map(|(_, s)| s),
            ),
            Condition::Numeric(range) => union(p.numbers.range(bounds(range)).map(|(_, s)| s)),
            Condition::Date(range) => union(p.dates.range(bounds(range)).map(|(_, s)| s)),
            Condition::Industry(code) => union(
                with_prefix(&p.strings, code)
                    .filter(|(k, _)| is_industry_code(k))
                    .map(|(_, s)| s),
            ),
        }
    }
}
