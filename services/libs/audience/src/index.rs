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
    /// Dates as day numbers.
    dates: Ranged,
    numbers: Ranged,
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
                    self.dates.apply(day_number(date), doc, insert);
                }
            }
            Key::Num(n) => self.numbers.apply(*n, doc, insert),
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

/// `range` as inclusive integer bounds (all keys are integers, so `> v` is `>= v + 1`).
fn inclusive<T: Copy>(range: &Range<T>, key: impl Fn(&T) -> i64) -> (i64, i64) {
    let low = match range.lower {
        None => i64::MIN,
        Some((v, true)) => key(&v),
        Some((v, false)) => key(&v).saturating_add(1),
    };
    let high = match range.upper {
        None => i64::MAX,
        Some((v, true)) => key(&v),
        Some((v, false)) => key(&v).saturating_sub(1),
    };
    (low, high)
}

/// Days since 1970-01-01 (proleptic Gregorian), so dates share the numeric range index.
fn day_number((year, month, day): Date) -> i64 {
    let (y, m) = if month <= 2 {
        (i64::from(year) - 1, i64::from(month) + 9)
    } else {
        (i64::from(year), i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Levels of bitmaps over integer keys: level `l` holds one bitmap per bucket of
/// `16^l` consecutive keys, so a range is the union of at most ~30 bitmaps per level
/// instead of one per distinct value (a capital amount has hundreds of thousands).
#[derive(Debug)]
struct Ranged {
    levels: Vec<BTreeMap<i64, RoaringBitmap>>,
}

/// 16^12 > 2·10^14, the span of five-decimal fixed point within ±10^9.
const LEVELS: usize = 13;
const FANOUT_BITS: u32 = 4;

impl Default for Ranged {
    fn default() -> Self {
        Self {
            levels: (0..LEVELS).map(|_| BTreeMap::new()).collect(),
        }
    }
}

impl Ranged {
    fn exact(&self) -> &BTreeMap<i64, RoaringBitmap> {
        &self.levels[0]
    }

    fn apply(&mut self, key: i64, doc: u32, insert: bool) {
        for (level, map) in self.levels.iter_mut().enumerate() {
            // Arithmetic shift: floor division, also for negative keys.
            update_in(map, key >> (FANOUT_BITS * level as u32), doc, insert);
        }
    }

    /// Documents with a key in `low..=high`.
    fn within(&self, (mut low, mut high): (i64, i64)) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let fanout = 1i64 << FANOUT_BITS;
        for (level, map) in self.levels.iter().enumerate() {
            if low > high {
                break;
            }
            // Whole parent buckets inside the range go up a level; the ragged ends stay.
            let first_parent = low.div_euclid(fanout) + i64::from(low.rem_euclid(fanout) != 0);
            let last_parent = high.saturating_add(1).div_euclid(fanout) - 1;
            if level + 1 == LEVELS || first_parent > last_parent {
                for (_, set) in map.range(low..=high) {
                    out |= set;
                }
                break;
            }
            for (_, set) in map.range(low..first_parent * fanout) {
                out |= set;
            }
            let right = (last_parent + 1) * fanout;
            if right <= high {
                for (_, set) in map.range(right..=high) {
                    out |= set;
                }
            }
            low = first_parent;
            high = last_parent;
        }
        out
    }
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
            Condition::Equals(Literal::Num(n)) => {
                p.numbers.exact().get(n).unwrap_or(&empty).clone()
            }
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
                            .exact()
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
            Condition::Numeric(range) => p.numbers.within(inclusive(range, |n| *n)),
            Condition::Date(range) => p.dates.within(inclusive(range, |d| day_number(*d))),
            Condition::Industry(code) => union(
                with_prefix(&p.strings, code)
                    .filter(|(k, _)| is_industry_code(k))
                    .map(|(_, s)| s),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn range_levels_return_exactly_the_keys_in_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut ranged = Ranged::default();
        let keys: Vec<i64> = (0..2000)
            .map(|_| match rng.random_range(0..3) {
                0 => rng.random_range(-300..300),
                1 => rng.random_range(-100_000_000_000_000..100_000_000_000_000),
                _ => rng.random_range(0..5000) * 100_000,
            })
            .collect();
        for (doc, key) in keys.iter().enumerate() {
            ranged.apply(*key, doc as u32, true);
        }
        // Removing half must leave no trace in any level.
        for (doc, key) in keys.iter().enumerate().filter(|(d, _)| d % 2 == 0) {
            ranged.apply(*key, doc as u32, false);
        }
        let live = |doc: &usize| doc % 2 == 1;
        let mut bounds: Vec<(i64, i64)> = vec![
            (i64::MIN, i64::MAX),
            (0, 0),
            (-1, 1),
            (i64::MIN, -5),
            (5, i64::MAX),
        ];
        for _ in 0..300 {
            let a = keys[rng.random_range(0..keys.len())] + rng.random_range(-2..3);
            let b = keys[rng.random_range(0..keys.len())] + rng.random_range(-2..3);
            bounds.push((a.min(b), a.max(b)));
        }
        for (low, high) in bounds {
            let expected: RoaringBitmap = keys
                .iter()
                .enumerate()
                .filter(|(doc, key)| live(doc) && (low..=high).contains(*key))
                .map(|(doc, _)| doc as u32)
                .collect();
            assert_eq!(ranged.within((low, high)), expected, "range {low}..={high}");
        }
    }

    #[test]
    fn day_numbers_count_days_from_the_unix_epoch() {
        assert_eq!(day_number((1970, 1, 1)), 0);
        assert_eq!(day_number((2000, 3, 1)), 11_017);
        assert_eq!(day_number((2024, 2, 29)) + 1, day_number((2024, 3, 1)));
        assert_eq!(day_number((1969, 12, 31)), -1);
    }
}
