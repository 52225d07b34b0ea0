//! Answers "which documents does this rule match" from per-path bitmaps instead of
//! evaluating the rule document by document. [`Rule::matches`] is the reference: the
//! property test in `tests.rs` checks that both agree on random documents and rules.
//!
//! Each document gets a dense `u32`. For every key path the index keeps:
//!
//! - the documents where the path is present, and one bitmap per string, boolean and null;
//!   strings sit in an ordered map, so `prefix` and `industry` are range scans;
//! - numbers (five-decimal fixed point) and dates (day numbers) as a *bit-sliced index*:
//!   64 bitmaps, one per bit of the value, so a range is about a hundred bitmap operations
//!   however many distinct values there are, and memory is a few bits per document
//!   instead of a bitmap per distinct amount. A document with several numbers (or dates)
//!   at one path cannot live in slices; it goes to a small exact-value map instead.
//!
//! The index keeps no copy of the documents: to undo one it needs it again, passed to
//! [`Index::upsert`] and [`Index::remove`] as `previous`. Without it, removal sweeps every
//! bitmap, which is correct but slow.

use std::{
    borrow::Borrow,
    collections::{BTreeMap, HashMap},
    hash::{BuildHasher, RandomState},
    ops::Bound,
    sync::Arc,
};

use hashbrown::HashTable;
use roaring::RoaringBitmap;
use serde_json::Value;
use zhida_catalogue::industry;

use crate::{Condition, Date, Literal, Node, Range, Rule, parse_date, to_fixed};

/// Separates path segments in path keys.
const SEP: char = '\u{1f}';

/// Adds `doc`; appending (the common case while building) skips the search.
fn add(set: &mut RoaringBitmap, doc: u32) {
    if set.try_push(doc).is_err() {
        set.insert(doc);
    }
}

fn add_in<K: Ord>(map: &mut BTreeMap<K, RoaringBitmap>, key: K, doc: u32) {
    add(map.entry(key).or_default(), doc);
}

fn remove_in<K: Ord + Borrow<Q>, Q: Ord + ?Sized>(
    map: &mut BTreeMap<K, RoaringBitmap>,
    key: &Q,
    doc: u32,
) {
    if let Some(set) = map.get_mut(key) {
        set.remove(doc);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

fn sweep<K: Ord>(map: &mut BTreeMap<K, RoaringBitmap>, doc: u32) {
    map.retain(|_, set| {
        set.remove(doc);
        !set.is_empty()
    });
}

/// Document ids, interned: one arena of bytes, a span per document, and a hash table of
/// document numbers keyed by the span's text. About 4 bytes of table, 8 of span and the
/// id's own bytes per document.
#[derive(Debug, Default)]
struct Names {
    arena: String,
    /// (start, len) in `arena`; `FREE` for a slot without a document.
    spans: Vec<(u32, u32)>,
    table: HashTable<u32>,
    hasher: RandomState,
    free: Vec<u32>,
    /// Bytes of `arena` no span refers to any more.
    garbage: usize,
}

const FREE: (u32, u32) = (u32::MAX, 0);

impl Names {
    fn name(&self, doc: u32) -> Option<&str> {
        let (start, len) = *self.spans.get(doc as usize)?;
        (start != u32::MAX).then(|| &self.arena[start as usize..(start + len) as usize])
    }

    fn get(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.table
            .find(hash, |&doc| self.name(doc) == Some(id))
            .copied()
    }

    /// A new document number for `id`, which must not be present.
    fn insert(&mut self, id: &str) -> u32 {
        let start = u32::try_from(self.arena.len()).expect("ids fit in 4 GiB");
        let len = u32::try_from(id.len()).expect("ids fit in 4 GiB");
        self.arena.push_str(id);
        let doc = match self.free.pop() {
            Some(doc) => {
                self.spans[doc as usize] = (start, len);
                doc
            }
            None => {
                self.spans.push((start, len));
                u32::try_from(self.spans.len() - 1).expect("fewer than 2^32 documents")
            }
        };
        let Self {
            arena,
            spans,
            table,
            hasher,
            ..
        } = self;
        let text = |doc: u32| {
            let (start, len) = spans[doc as usize];
            &arena[start as usize..(start + len) as usize]
        };
        table.insert_unique(hasher.hash_one(id), doc, |&d| hasher.hash_one(text(d)));
        doc
    }

    fn remove(&mut self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        let Self {
            arena,
            spans,
            table,
            ..
        } = self;
        let entry = table
            .find_entry(hash, |&doc| {
                let (start, len) = spans[doc as usize];
                start != u32::MAX && &arena[start as usize..(start + len) as usize] == id
            })
            .ok()?;
        let (doc, _) = entry.remove();
        self.garbage += id.len();
        self.spans[doc as usize] = FREE;
        self.free.push(doc);
        if self.garbage > 1 << 20 && self.garbage > self.arena.len() / 2 {
            self.compact();
        }
        Some(doc)
    }

    /// Rewrites the arena without the bytes of removed ids; document numbers stay.
    fn compact(&mut self) {
        let mut arena = String::with_capacity(self.arena.len() - self.garbage);
        for span in &mut self.spans {
            if *span != FREE {
                let (start, len) = *span;
                let new_start = u32::try_from(arena.len()).expect("smaller than before");
                arena.push_str(&self.arena[start as usize..(start + len) as usize]);
                *span = (new_start, len);
            }
        }
        self.arena = arena;
        self.garbage = 0;
    }
}

/// Numbers or dates of one path, bit-sliced. Keys are `i64`, mapped to `u64` preserving
/// order (flip the sign bit) so that unsigned bit comparisons order them.
#[derive(Debug)]
struct Sliced {
    /// Documents with exactly one value here, which the slices hold.
    single: RoaringBitmap,
    /// `slices[b]`: the single-valued documents whose key has bit `b` set.
    slices: Vec<RoaringBitmap>,
    /// Documents with several values here, by value.
    multi: BTreeMap<i64, RoaringBitmap>,
}

impl Default for Sliced {
    fn default() -> Self {
        Self {
            single: RoaringBitmap::new(),
            slices: vec![RoaringBitmap::new(); 64],
            multi: BTreeMap::new(),
        }
    }
}

fn ordered(key: i64) -> u64 {
    (key as u64) ^ (1 << 63)
}

impl Sliced {
    fn insert(&mut self, doc: u32, values: &[i64]) {
        match values {
            [] => {}
            [value] => {
                add(&mut self.single, doc);
                let bits = ordered(*value);
                for (bit, slice) in self.slices.iter_mut().enumerate() {
                    if bits >> bit & 1 == 1 {
                        add(slice, doc);
                    }
                }
            }
            several => several
                .iter()
                .for_each(|v| add_in(&mut self.multi, *v, doc)),
        }
    }

    /// Removes `doc`; `values` are the ones it was inserted with (`None`: unknown, sweep).
    fn remove(&mut self, doc: u32, values: Option<&[i64]>) {
        if self.single.remove(doc) {
            self.slices.iter_mut().for_each(|slice| {
                slice.remove(doc);
            });
        }
        match values {
            Some([] | [_]) => {}
            Some(several) => several
                .iter()
                .for_each(|v| remove_in(&mut self.multi, v, doc)),
            None => sweep(&mut self.multi, doc),
        }
    }

    /// Single-valued documents with a key `>= c`.
    fn at_least(&self, c: u64) -> RoaringBitmap {
        let mut above = RoaringBitmap::new();
        let mut equal = self.single.clone();
        for (bit, slice) in self.slices.iter().enumerate().rev() {
            if equal.is_empty() {
                break;
            }
            if c >> bit & 1 == 1 {
                equal &= slice;
            } else {
                above |= &equal & slice;
                equal -= slice;
            }
        }
        above | equal
    }

    /// Single-valued documents with a key `<= c`.
    fn at_most(&self, c: u64) -> RoaringBitmap {
        let mut below = RoaringBitmap::new();
        let mut equal = self.single.clone();
        for (bit, slice) in self.slices.iter().enumerate().rev() {
            if equal.is_empty() {
                break;
            }
            if c >> bit & 1 == 1 {
                below |= &equal - slice;
                equal &= slice;
            } else {
                equal -= slice;
            }
        }
        below | equal
    }

    /// Documents with a value in `low..=high`.
    fn within(&self, (low, high): (i64, i64)) -> RoaringBitmap {
        let mut out = if low > high {
            RoaringBitmap::new()
        } else {
            match (low == i64::MIN, high == i64::MAX) {
                (true, true) => self.single.clone(),
                (true, false) => self.at_most(ordered(high)),
                (false, true) => self.at_least(ordered(low)),
                (false, false) => self.at_least(ordered(low)) & self.at_most(ordered(high)),
            }
        };
        if low <= high {
            for (_, set) in self.multi.range(low..=high) {
                out |= set;
            }
        }
        out
    }

    /// Documents with at least one value that is none of `values`.
    fn other_than(&self, values: &[i64]) -> RoaringBitmap {
        let mut out = self.single.clone();
        for value in values {
            out -= self.within((*value, *value));
        }
        for (_, set) in self.multi.iter().filter(|(k, _)| !values.contains(k)) {
            out |= set;
        }
        out
    }
}

#[derive(Debug, Default)]
struct PathIndex {
    present: RoaringBitmap,
    strings: BTreeMap<Box<str>, RoaringBitmap>,
    /// Five-decimal fixed point.
    numbers: Sliced,
    /// Strings that are dates (`YYYY-MM-DD`), as day numbers.
    dates: Sliced,
    bools: [RoaringBitmap; 2],
    nulls: RoaringBitmap,
}

/// One leaf of a document, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Leaf<'a> {
    Present,
    Str(&'a str),
    Num(i64),
    Bool(bool),
    Null,
}

/// A document's leaves grouped by path, numbers and dates gathered per path.
struct Flat<'a> {
    leaves: Vec<(u32, Leaf<'a>)>,
}

impl<'a> Flat<'a> {
    /// `(path, numbers, dates)` for every path with numbers or dates.
    fn sliced(&self) -> Vec<(u32, Vec<i64>, Vec<i64>)> {
        let mut out: Vec<(u32, Vec<i64>, Vec<i64>)> = Vec::new();
        for (path, leaf) in &self.leaves {
            let (number, date) = match leaf {
                Leaf::Num(n) => (Some(*n), None),
                Leaf::Str(s) => (None, parse_date(s).map(day_number)),
                _ => (None, None),
            };
            if number.is_none() && date.is_none() {
                continue;
            }
            if out.last().is_none_or(|(p, _, _)| p != path) {
                out.push((*path, Vec::new(), Vec::new()));
            }
            let (_, numbers, dates) = out.last_mut().expect("pushed above");
            numbers.extend(number);
            dates.extend(date);
        }
        out
    }
}

/// Documents by id, indexed for [`Rule`] evaluation.
#[derive(Debug, Default)]
pub struct Index {
    names: Names,
    all: RoaringBitmap,
    path_ids: HashMap<Box<str>, u32>,
    paths: Vec<PathIndex>,
}

impl Index {
    pub fn len(&self) -> usize {
        self.all.len() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.names.get(id).is_some()
    }

    /// The dense number of `id`'s document, from 0, below the most documents indexed at
    /// once: callers keep per-document data in a `Vec` by it instead of a second map keyed
    /// by id. It stays while the document does; a removed document's number is reused.
    pub fn doc(&self, id: &str) -> Option<u32> {
        self.names.get(id)
    }

    /// Adds or replaces the document of `id`, and answers its number (see [`Index::doc`]).
    /// When `id` is already indexed, `previous` must be the document it was indexed with;
    /// `None` makes the replacement sweep every bitmap.
    pub fn upsert(&mut self, id: &str, document: &Value, previous: Option<&Value>) -> u32 {
        self.remove(id, previous);
        let doc = self.names.insert(id);
        let flat = self.flatten(document, true);
        for (path, leaf) in &flat.leaves {
            let index = &mut self.paths[*path as usize];
            match leaf {
                Leaf::Present => add(&mut index.present, doc),
                Leaf::Str(s) => match index.strings.get_mut(*s) {
                    Some(set) => add(set, doc),
                    None => {
                        index
                            .strings
                            .insert((*s).into(), RoaringBitmap::from_iter([doc]));
                    }
                },
                Leaf::Num(_) => {}
                Leaf::Bool(b) => add(&mut index.bools[usize::from(*b)], doc),
                Leaf::Null => add(&mut index.nulls, doc),
            }
        }
        for (path, numbers, dates) in flat.sliced() {
            let index = &mut self.paths[path as usize];
            index.numbers.insert(doc, &numbers);
            index.dates.insert(doc, &dates);
        }
        add(&mut self.all, doc);
        doc
    }

    /// Removes `id`; false if it was not there. `previous` is the document it was indexed
    /// with; `None` sweeps every bitmap.
    pub fn remove(&mut self, id: &str, previous: Option<&Value>) -> bool {
        let Some(doc) = self.names.remove(id) else {
            return false;
        };
        self.all.remove(doc);
        let Some(previous) = previous else {
            for index in &mut self.paths {
                index.present.remove(doc);
                sweep(&mut index.strings, doc);
                index.numbers.remove(doc, None);
                index.dates.remove(doc, None);
                index.bools.iter_mut().for_each(|set| {
                    set.remove(doc);
                });
                index.nulls.remove(doc);
            }
            return true;
        };
        let flat = self.flatten(previous, false);
        for (path, leaf) in &flat.leaves {
            let index = &mut self.paths[*path as usize];
            match leaf {
                Leaf::Present => {
                    index.present.remove(doc);
                }
                Leaf::Str(s) => remove_in(&mut index.strings, *s, doc),
                Leaf::Num(_) => {}
                Leaf::Bool(b) => {
                    index.bools[usize::from(*b)].remove(doc);
                }
                Leaf::Null => {
                    index.nulls.remove(doc);
                }
            }
        }
        for (path, numbers, dates) in flat.sliced() {
            let index = &mut self.paths[path as usize];
            index.numbers.remove(doc, Some(&numbers));
            index.dates.remove(doc, Some(&dates));
        }
        true
    }

    /// Ids of the documents `rule` matches.
    pub fn matching(&self, rule: &Rule) -> Vec<&str> {
        self.eval(&rule.root)
            .iter()
            .filter_map(|doc| self.names.name(doc))
            .collect()
    }

    /// How many documents `rule` matches.
    pub fn count(&self, rule: &Rule) -> u64 {
        self.eval(&rule.root).len()
    }

    /// Ids of the documents `rule` matches, each with the conditions that made it match,
    /// exactly as [`Rule::explain`] would give them for the document, but from the
    /// bitmaps: each condition is evaluated once for all documents, and a document's
    /// explanation is a walk of the rule testing membership.
    pub fn matching_explained(&self, rule: &Rule) -> Vec<(&str, Vec<Arc<str>>)> {
        let tree = self.explainer(&rule.root);
        let mut out = Vec::new();
        for doc in &self.eval(&rule.root) {
            let Some(name) = self.names.name(doc) else {
                continue;
            };
            let mut reasons = Vec::new();
            if tree.explain(doc, &mut reasons) {
                out.push((name, reasons));
            }
        }
        out
    }

    fn explainer(&self, node: &Node) -> Explainer {
        match node {
            Node::All(children) => {
                Explainer::All(children.iter().map(|c| self.explainer(c)).collect())
            }
            Node::Any(children) => {
                Explainer::Any(children.iter().map(|c| self.explainer(c)).collect())
            }
            Node::Field { path, conditions } => {
                let index = self.path_index(path);
                let shown = path.join(".");
                Explainer::Field(
                    conditions
                        .iter()
                        .map(|c| (Arc::from(format!("{shown} {c}")), self.condition(index, c)))
                        .collect(),
                )
            }
        }
    }

    /// The leaves of `document`, sorted by path id and deduplicated. With `create`, unknown
    /// paths get an id; without, they are skipped (nothing of them can be indexed).
    fn flatten<'a>(&mut self, document: &'a Value, create: bool) -> Flat<'a> {
        let mut leaves = Vec::new();
        self.walk(document, &mut String::new(), None, create, &mut leaves);
        leaves.sort_unstable();
        leaves.dedup();
        Flat { leaves }
    }

    fn walk<'a>(
        &mut self,
        value: &'a Value,
        path: &mut String,
        id: Option<u32>,
        create: bool,
        out: &mut Vec<(u32, Leaf<'a>)>,
    ) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push(SEP);
                    }
                    path.push_str(key);
                    let child_id = self.path_id(path, create);
                    if let Some(child_id) = child_id {
                        out.push((child_id, Leaf::Present));
                    }
                    // A path unknown to the index can still lead to known ones only if
                    // it was created; without `create` nothing below it exists either.
                    if child_id.is_some() || create {
                        self.walk(child, path, child_id, create, out);
                    }
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, path, id, create, out);
                }
            }
            _ => {
                let Some(id) = id else { return };
                let leaf = match value {
                    Value::String(s) => Leaf::Str(s),
                    Value::Number(_) => match to_fixed(value) {
                        Some(n) => Leaf::Num(n),
                        None => return,
                    },
                    Value::Bool(b) => Leaf::Bool(*b),
                    _ => Leaf::Null,
                };
                out.push((id, leaf));
            }
        }
    }

    fn path_id(&mut self, path: &str, create: bool) -> Option<u32> {
        if let Some(id) = self.path_ids.get(path) {
            return Some(*id);
        }
        if !create {
            return None;
        }
        let id = u32::try_from(self.paths.len()).expect("fewer than 2^32 paths");
        self.paths.push(PathIndex::default());
        self.path_ids.insert(path.into(), id);
        Some(id)
    }

    fn path_index(&self, path: &[String]) -> Option<&PathIndex> {
        let key: String = path.join(&SEP.to_string());
        self.path_ids
            .get(key.as_str())
            .map(|id| &self.paths[*id as usize])
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
                let index = self.path_index(path);
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
        let strings = |keep: &dyn Fn(&str) -> bool| {
            union(p.strings.iter().filter(|(k, _)| keep(k)).map(|(_, s)| s))
        };
        match condition {
            Condition::Exists(true) => p.present.clone(),
            Condition::Exists(false) => &self.all - &p.present,
            Condition::Equals(Literal::Str(s)) => {
                p.strings.get(s.as_str()).cloned().unwrap_or_default()
            }
            Condition::Equals(Literal::Num(n)) => p.numbers.within((*n, *n)),
            Condition::Equals(Literal::Bool(b)) => p.bools[usize::from(*b)].clone(),
            Condition::Equals(Literal::Null) => p.nulls.clone(),
            Condition::Prefix(prefix) => union(with_prefix(&p.strings, prefix).map(|(_, s)| s)),
            // Suffixes and case-insensitive matches scan the distinct values of the path:
            // few for the attributes rules select on, and no second map to keep in memory.
            Condition::Suffix(suffix) => strings(&|k| k.ends_with(suffix.as_str())),
            Condition::EqualsIgnoreCase(lower) => strings(&|k| k.to_lowercase() == *lower),
            Condition::AnythingBut(values) => {
                let numbers: Vec<i64> = values
                    .iter()
                    .filter_map(|v| match v {
                        Literal::Num(n) => Some(*n),
                        _ => None,
                    })
                    .collect();
                strings(&|k| {
                    !values
                        .iter()
                        .any(|v| matches!(v, Literal::Str(s) if s == k))
                }) | p.numbers.other_than(&numbers)
            }
            Condition::AnythingButPrefix(prefix) => strings(&|k| !k.starts_with(prefix.as_str())),
            Condition::AnythingButSuffix(suffix) => strings(&|k| !k.ends_with(suffix.as_str())),
            Condition::Numeric(range) => p.numbers.within(inclusive(range, |n| *n)),
            Condition::Date(range) => p.dates.within(inclusive(range, |d| day_number(*d))),
            Condition::Industry(code) => union(
                with_prefix(&p.strings, code)
                    .filter(|(k, _)| industry::is_code(k))
                    .map(|(_, s)| s),
            ),
        }
    }
}

/// A rule with each condition's documents, to explain matches without the documents.
enum Explainer {
    All(Vec<Explainer>),
    Any(Vec<Explainer>),
    /// Conditions in rule order: the reason text and the documents satisfying it.
    Field(Vec<(Arc<str>, RoaringBitmap)>),
}

impl Explainer {
    /// [`Node::explain`](crate::Node) over bitmaps: same order, same short circuits.
    fn explain(&self, doc: u32, reasons: &mut Vec<Arc<str>>) -> bool {
        match self {
            Explainer::All(children) => {
                let mark = reasons.len();
                let all = children.iter().all(|c| c.explain(doc, reasons));
                if !all {
                    reasons.truncate(mark);
                }
                all
            }
            Explainer::Any(children) => children.iter().any(|c| {
                let mark = reasons.len();
                let matched = c.explain(doc, reasons);
                if !matched {
                    reasons.truncate(mark);
                }
                matched
            }),
            Explainer::Field(conditions) => {
                match conditions.iter().find(|(_, docs)| docs.contains(doc)) {
                    Some((reason, _)) => {
                        reasons.push(reason.clone());
                        true
                    }
                    None => false,
                }
            }
        }
    }
}

fn union<'a>(sets: impl IntoIterator<Item = &'a RoaringBitmap>) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for set in sets {
        out |= set;
    }
    out
}

fn with_prefix<'a>(
    map: &'a BTreeMap<Box<str>, RoaringBitmap>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a Box<str>, &'a RoaringBitmap)> {
    map.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
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

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn slices_return_exactly_the_keys_in_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut sliced = Sliced::default();
        let keys: Vec<Vec<i64>> = (0..2000)
            .map(|_| {
                let one = |rng: &mut StdRng| match rng.random_range(0..3) {
                    0 => rng.random_range(-300..300),
                    1 => rng.random_range(-100_000_000_000_000..100_000_000_000_000),
                    _ => rng.random_range(0..5000) * 100_000,
                };
                // Mostly one value; some documents carry two or three (arrays).
                let n = if rng.random_bool(0.9) {
                    1
                } else {
                    rng.random_range(2..4)
                };
                (0..n).map(|_| one(&mut rng)).collect()
            })
            .collect();
        for (doc, values) in keys.iter().enumerate() {
            sliced.insert(doc as u32, values);
        }
        // Removing half, with and without the values, must leave no trace.
        for (doc, values) in keys.iter().enumerate().filter(|(d, _)| d % 2 == 0) {
            let values = (doc % 4 == 0).then_some(values.as_slice());
            sliced.remove(doc as u32, values);
        }
        let live = |doc: &usize| doc % 2 == 1;
        let mut bounds: Vec<(i64, i64)> = vec![
            (i64::MIN, i64::MAX),
            (0, 0),
            (-1, 1),
            (i64::MIN, -5),
            (5, i64::MAX),
            (10, 3),
        ];
        let flat: Vec<i64> = keys.iter().flatten().copied().collect();
        for _ in 0..300 {
            let a = flat[rng.random_range(0..flat.len())] + rng.random_range(-2..3);
            let b = flat[rng.random_range(0..flat.len())] + rng.random_range(-2..3);
            bounds.push((a.min(b), a.max(b)));
        }
        for (low, high) in bounds {
            let expected: RoaringBitmap = keys
                .iter()
                .enumerate()
                .filter(|(doc, values)| {
                    live(doc) && values.iter().any(|k| (low..=high).contains(k))
                })
                .map(|(doc, _)| doc as u32)
                .collect();
            assert_eq!(sliced.within((low, high)), expected, "range {low}..={high}");
        }
        let excluded = [flat[1], flat[3]];
        let expected: RoaringBitmap = keys
            .iter()
            .enumerate()
            .filter(|(doc, values)| live(doc) && values.iter().any(|k| !excluded.contains(k)))
            .map(|(doc, _)| doc as u32)
            .collect();
        assert_eq!(sliced.other_than(&excluded), expected);
    }

    #[test]
    fn names_survive_removal_reuse_and_compaction() {
        let mut names = Names::default();
        let ids: Vec<String> = (0..150_000)
            .map(|i| format!("subject-{i:06}-of-the-test-district"))
            .collect();
        let bytes: usize = ids.iter().map(String::len).sum();
        let docs: Vec<u32> = ids.iter().map(|id| names.insert(id)).collect();
        for id in ids.iter().step_by(3) {
            assert!(names.remove(id).is_some());
        }
        // More than a MiB of removed bytes and over half the arena: compacted by now.
        for id in ids.iter().skip(1).step_by(3) {
            names.remove(id);
        }
        assert!(names.arena.len() < bytes / 2, "the arena was compacted");
        for (i, id) in ids.iter().enumerate() {
            if i % 3 == 2 {
                assert_eq!(names.get(id), Some(docs[i]), "{id}");
                assert_eq!(names.name(docs[i]), Some(id.as_str()));
            } else {
                assert_eq!(names.get(id), None, "{id}");
            }
        }
        let again = names.insert(&ids[0]);
        assert_eq!(names.get(&ids[0]), Some(again));
        assert!(names.remove("nobody").is_none());
    }

    #[test]
    fn document_numbers_are_dense_stable_and_reused_after_removal() {
        let mut index = Index::default();
        let doc = serde_json::json!({"street": "五角场街道"});
        let numbers: Vec<u32> = ["a", "b", "c"]
            .iter()
            .map(|id| index.upsert(id, &doc, None))
            .collect();
        assert_eq!(numbers, [0, 1, 2]);
        assert_eq!(index.doc("b"), Some(1));
        assert_eq!(index.upsert("b", &doc, Some(&doc)), 1, "replaced in place");
        assert!(index.remove("a", Some(&doc)));
        assert_eq!(index.doc("a"), None);
        assert_eq!(index.upsert("d", &doc, None), 0, "a's number, free again");
        assert_eq!(index.doc("d"), Some(0));
        assert_eq!(index.doc("c"), Some(2));
    }

    #[test]
    fn day_numbers_count_days_from_the_unix_epoch() {
        assert_eq!(day_number((1970, 1, 1)), 0);
        assert_eq!(day_number((2000, 3, 1)), 11_017);
        assert_eq!(day_number((2024, 2, 29)) + 1, day_number((2024, 3, 1)));
        assert_eq!(day_number((1969, 12, 31)), -1);
    }
}
