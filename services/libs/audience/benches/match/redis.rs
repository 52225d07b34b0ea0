//! Baseline: the rules answered by Redis set algebra, the way one would build audience
//! selection on Redis without a bitmap engine.
//!
//! Layout (every key under [`PREFIX`], paths joined by `.`):
//!
//! - `all`: every profile id;
//! - `present:{path}`: ids whose profile has the key (for `exists`);
//! - `value:{path}:s:{string}` and `value:{path}:n:{number}`: ids by value, numbers written
//!   as the engine compares them (five decimals, shortest form);
//! - `strings:{path}` (scores 0, so ordered by bytes), `numbers:{path}` (score = the number
//!   in fixed point) and `dates:{path}` (score = `yyyymmdd`): the distinct values of a path,
//!   so a prefix or range turns into the list of value sets to union.
//!
//! A rule is answered in two pipelined round trips: first every range and prefix is
//! resolved to value keys (`ZRANGE … BYLEX|BYSCORE`), then the set algebra runs into
//! temporary keys (`SUNIONSTORE`, `SINTERSTORE`, `SDIFFSTORE`), followed by `SMEMBERS` of
//! the result and `UNLINK` of the temporaries.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use redis::{Client, Cmd, Connection, Pipeline, RedisResult};
use serde_json::Value;

use crate::rule::{self, Cond, Expr, Range, Scalar};

/// Every key the bench creates starts with this, so it can delete them all.
const PREFIX: &str = "zhida-bench:";
/// Profiles per load pipeline. Within a batch, members are grouped per key, so each key
/// gets one `SADD` with many members rather than one command per profile.
const LOAD_BATCH: usize = 50_000;

/// A connection to a Redis holding the bench's sets; deletes them when dropped.
pub struct RedisSets {
    con: Connection,
}

impl RedisSets {
    /// Connects (the URL names the database, e.g. `/9`) and deletes the keys an
    /// interrupted run left behind.
    pub fn connect(url: &str) -> RedisResult<Self> {
        let con = Client::open(url)?.get_connection_with_timeout(Duration::from_secs(3))?;
        let mut sets = Self { con };
        sets.delete_all()?;
        Ok(sets)
    }

    pub fn server_version(&mut self) -> RedisResult<String> {
        Ok(self
            .info("server", "redis_version")?
            .unwrap_or_else(|| "?".into()))
    }

    /// `used_memory` of the whole server, in bytes.
    pub fn used_memory(&mut self) -> RedisResult<u64> {
        Ok(self
            .info("memory", "used_memory")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    fn info(&mut self, section: &str, field: &str) -> RedisResult<Option<String>> {
        let info: String = redis::cmd("INFO").arg(section).query(&mut self.con)?;
        Ok(info.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name == field).then(|| value.trim().to_string())
        }))
    }

    /// Loads the profiles; returns how many value sets it created.
    pub fn load(&mut self, docs: &[(String, Value)]) -> RedisResult<usize> {
        // Value keys seen so far: each distinct value is added to its sorted set once.
        let mut known = HashSet::new();
        for batch in docs.chunks(LOAD_BATCH) {
            let mut members: HashMap<String, Vec<&str>> = HashMap::new();
            let mut distinct: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
            for (id, doc) in batch {
                members.entry(all_key()).or_default().push(id);
                for (path, values) in rule::fields(doc) {
                    members.entry(present_key(&path)).or_default().push(id);
                    for value in values.into_iter().filter_map(rule::scalar) {
                        let key = value_key(&path, &value);
                        members.entry(key.clone()).or_default().push(id);
                        if known.insert(key) {
                            for (sorted_key, entry) in distinct_entries(&path, value) {
                                distinct.entry(sorted_key).or_default().push(entry);
                            }
                        }
                    }
                }
            }
            let mut pipe = redis::pipe();
            for (key, ids) in &members {
                pipe.cmd("SADD").arg(key).arg(ids).ignore();
            }
            for (key, entries) in &distinct {
                pipe.cmd("ZADD").arg(key).arg(entries).ignore();
            }
            pipe.exec(&mut self.con)?;
        }
        Ok(known.len())
    }

    /// Ids of the profiles `rule` matches.
    pub fn matching(&mut self, rule: &Expr) -> RedisResult<Vec<String>> {
        let resolved = self.resolve(rule)?;
        let mut plan = Plan {
            pipe: redis::pipe(),
            temps: Vec::new(),
            resolved: &resolved,
        };
        let result = plan.set_of(rule);
        let Plan {
            mut pipe, temps, ..
        } = plan;
        // Temporaries are per rule: unlinked keys leave the keyspace at once (their memory
        // is freed in the background), so the next rule can reuse the names.
        pipe.cmd("SMEMBERS").arg(&result);
        if !temps.is_empty() {
            pipe.cmd("UNLINK").arg(&temps).ignore();
        }
        let (ids,): (Vec<String>,) = pipe.query(&mut self.con)?;
        Ok(ids)
    }

    /// Turns every prefix, range, `industry` and `anything-but` of `rule` into the list of
    /// value keys it covers, in one round trip.
    fn resolve<'r>(&mut self, rule: &'r Expr) -> RedisResult<Resolved<'r>> {
        let mut lookups = Vec::new();
        collect_lookups(rule, &mut lookups);
        let mut resolved = Resolved::new();
        if lookups.is_empty() {
            return Ok(resolved);
        }
        let mut pipe = redis::pipe();
        for (_, _, commands) in &lookups {
            commands.iter().for_each(|cmd| {
                pipe.add_command(cmd.clone());
            });
        }
        let mut replies = pipe.query::<Vec<Vec<String>>>(&mut self.con)?.into_iter();
        for (path, cond, commands) in lookups {
            let values = replies.by_ref().take(commands.len()).collect();
            let keys = value_keys(&path, cond, values);
            resolved.insert((path, cond), keys);
        }
        Ok(resolved)
    }

    /// Deletes every key under [`PREFIX`]; returns how many.
    fn delete_all(&mut self) -> RedisResult<usize> {
        let mut scan = redis::cmd("SCAN");
        scan.cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{PREFIX}*"))
            .arg("COUNT")
            .arg(10_000);
        let keys: Vec<String> = scan.iter(&mut self.con)?.collect::<RedisResult<_>>()?;
        for chunk in keys.chunks(10_000) {
            redis::cmd("UNLINK").arg(chunk).exec(&mut self.con)?;
        }
        Ok(keys.len())
    }
}

impl Drop for RedisSets {
    fn drop(&mut self) {
        if let Err(e) = self.delete_all() {
            eprintln!("could not delete the redis keys {PREFIX}*: {e}");
        }
    }
}

fn all_key() -> String {
    format!("{PREFIX}all")
}

fn present_key(path: &str) -> String {
    format!("{PREFIX}present:{path}")
}

fn value_key(path: &str, value: &Scalar) -> String {
    match value {
        Scalar::Str(s) => string_key(path, s),
        Scalar::Num(n) => number_key(path, &rule::number_text(*n)),
    }
}

fn string_key(path: &str, value: &str) -> String {
    format!("{PREFIX}value:{path}:s:{value}")
}

/// `text` as [`rule::number_text`] writes it, the form `numbers:{path}` holds.
fn number_key(path: &str, text: &str) -> String {
    format!("{PREFIX}value:{path}:n:{text}")
}

fn strings_key(path: &str) -> String {
    format!("{PREFIX}strings:{path}")
}

fn numbers_key(path: &str) -> String {
    format!("{PREFIX}numbers:{path}")
}

fn dates_key(path: &str) -> String {
    format!("{PREFIX}dates:{path}")
}

/// Where a newly seen value goes among the sorted sets of distinct values: (key, (score,
/// member)). A string that is a date goes both to the strings (for prefixes) and the dates.
fn distinct_entries(path: &str, value: Scalar) -> Vec<(String, (i64, String))> {
    match value {
        Scalar::Num(n) => vec![(numbers_key(path), (n, rule::number_text(n)))],
        Scalar::Str(s) => {
            let date = rule::date_number(&s).map(|d| (dates_key(path), (d, s.clone())));
            std::iter::once((strings_key(path), (0, s)))
                .chain(date)
                .collect()
        }
    }
}

/// Value keys of the conditions that needed a lookup, by (path, condition).
type Resolved<'r> = HashMap<(String, &'r Cond), Vec<String>>;

/// The conditions of `rule` that need a lookup, with the commands that do it.
fn collect_lookups<'r>(rule: &'r Expr, out: &mut Vec<(String, &'r Cond, Vec<Cmd>)>) {
    match rule {
        Expr::All(children) | Expr::Any(children) => {
            children.iter().for_each(|c| collect_lookups(c, out));
        }
        Expr::Field { path, conditions } => {
            let path = path.join(".");
            for cond in conditions {
                let commands = lookup_commands(&path, cond);
                if !commands.is_empty() {
                    out.push((path.clone(), cond, commands));
                }
            }
        }
    }
}

/// The sorted-set reads that list the values `cond` covers; none when the condition names
/// its value sets itself (exact values, `exists`).
fn lookup_commands(path: &str, cond: &Cond) -> Vec<Cmd> {
    match cond {
        Cond::Equals(_) | Cond::Exists(_) => vec![],
        Cond::Prefix(prefix) | Cond::Industry(prefix) => {
            vec![by_lex(&strings_key(path), prefix)]
        }
        Cond::AnythingBut(_) => vec![whole(&strings_key(path)), whole(&numbers_key(path))],
        Cond::Numeric(range) => vec![by_score(&numbers_key(path), range)],
        Cond::Date(range) => vec![by_score(&dates_key(path), range)],
    }
}

/// Members starting with `prefix`: from `[prefix` up to, excluding, `prefix` + 0xFF, a
/// byte that UTF-8 never uses, so above every continuation of the prefix.
fn by_lex(key: &str, prefix: &str) -> Cmd {
    let low = format!("[{prefix}");
    let mut high = format!("({prefix}").into_bytes();
    high.push(0xFF);
    let mut cmd = redis::cmd("ZRANGE");
    cmd.arg(key).arg(low).arg(high).arg("BYLEX");
    cmd
}

fn by_score(key: &str, range: &Range) -> Cmd {
    let bound = |b: Option<rule::Bound>, unbounded: &str| match b {
        None => unbounded.to_string(),
        Some(b) if b.inclusive => b.value.to_string(),
        Some(b) => format!("({}", b.value),
    };
    let mut cmd = redis::cmd("ZRANGE");
    cmd.arg(key)
        .arg(bound(range.lower, "-inf"))
        .arg(bound(range.upper, "+inf"))
        .arg("BYSCORE");
    cmd
}

fn whole(key: &str) -> Cmd {
    let mut cmd = redis::cmd("ZRANGE");
    cmd.arg(key).arg(0).arg(-1);
    cmd
}

/// The value keys `cond` covers, from the replies to its [`lookup_commands`].
fn value_keys(path: &str, cond: &Cond, replies: Vec<Vec<String>>) -> Vec<String> {
    let mut replies = replies.into_iter();
    let mut next = || replies.next().unwrap_or_default().into_iter();
    match cond {
        Cond::Prefix(_) | Cond::Date(_) => next().map(|s| string_key(path, &s)).collect(),
        // The engine also requires the value itself to be a well-formed code.
        Cond::Industry(_) => next()
            .filter(|s| zhida_catalogue::industry::is_code(s))
            .map(|s| string_key(path, &s))
            .collect(),
        Cond::Numeric(_) => next().map(|n| number_key(path, &n)).collect(),
        // Every other string or number: not "all minus the excluded", because a profile
        // whose array holds an excluded and another value still matches.
        Cond::AnythingBut(excluded) => {
            let excluded: HashSet<String> = excluded.iter().map(|v| value_key(path, v)).collect();
            let strings: Vec<String> = next().map(|s| string_key(path, &s)).collect();
            let numbers = next().map(|n| number_key(path, &n));
            strings
                .into_iter()
                .chain(numbers)
                .filter(|key| !excluded.contains(key))
                .collect()
        }
        Cond::Equals(_) | Cond::Exists(_) => vec![],
    }
}

/// The set algebra of one rule, queued on a pipeline.
struct Plan<'a, 'r> {
    pipe: Pipeline,
    temps: Vec<String>,
    resolved: &'a Resolved<'r>,
}

impl Plan<'_, '_> {
    /// Queues the commands that compute the ids `rule` matches; returns the key that will
    /// hold them (an existing set when no command is needed).
    fn set_of(&mut self, rule: &Expr) -> String {
        match rule {
            Expr::Any(children) => {
                let keys = children.iter().map(|c| self.set_of(c)).collect();
                self.union(keys)
            }
            Expr::All(children) => self.intersection(children),
            Expr::Field { path, conditions } => self.field(&path.join("."), conditions),
        }
    }

    /// A field matches when any of its conditions does: the union of what each covers.
    fn field(&mut self, path: &str, conditions: &[Cond]) -> String {
        let mut keys = Vec::new();
        for cond in conditions {
            match cond {
                Cond::Equals(value) => keys.push(value_key(path, value)),
                Cond::Exists(true) => keys.push(present_key(path)),
                Cond::Exists(false) => {
                    let absent = self.difference(all_key(), vec![present_key(path)]);
                    keys.push(absent);
                }
                _ => keys.extend(
                    self.resolved
                        .get(&(path.to_string(), cond))
                        .expect("resolve() looked every such condition up")
                        .iter()
                        .cloned(),
                ),
            }
        }
        self.union(keys)
    }

    /// Keys of one object: intersect the positive ones, then subtract the `present` sets of
    /// `exists: false` keys rather than intersecting with "all minus present", which
    /// would build a set of nearly every profile first.
    fn intersection(&mut self, children: &[Expr]) -> String {
        let (absent, positive): (Vec<&Expr>, Vec<&Expr>) =
            children.iter().partition(|c| absent_path(c).is_some());
        let positive: Vec<String> = positive.into_iter().map(|c| self.set_of(c)).collect();
        let base = if positive.is_empty() {
            all_key()
        } else {
            self.store("SINTERSTORE", positive)
        };
        let absent = absent
            .into_iter()
            .filter_map(absent_path)
            .map(|path| present_key(&path))
            .collect();
        self.difference(base, absent)
    }

    fn union(&mut self, keys: Vec<String>) -> String {
        if keys.is_empty() {
            // Never created, so an empty set to every command.
            return format!("{PREFIX}nothing");
        }
        self.store("SUNIONSTORE", keys)
    }

    fn difference(&mut self, base: String, minus: Vec<String>) -> String {
        if minus.is_empty() {
            return base;
        }
        self.store("SDIFFSTORE", std::iter::once(base).chain(minus).collect())
    }

    /// `op` of `keys` into a new temporary key; a single key is its own result.
    fn store(&mut self, op: &str, mut keys: Vec<String>) -> String {
        if keys.len() == 1 {
            return keys.remove(0);
        }
        let temp = format!("{PREFIX}tmp:{}", self.temps.len());
        self.pipe.cmd(op).arg(&temp).arg(&keys).ignore();
        self.temps.push(temp.clone());
        temp
    }
}

/// The path of a field whose only condition is `exists: false`.
fn absent_path(rule: &Expr) -> Option<String> {
    match rule {
        Expr::Field { path, conditions } if conditions[..] == [Cond::Exists(false)] => {
            Some(path.join("."))
        }
        _ => None,
    }
}
