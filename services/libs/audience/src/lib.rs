//! Audience rules: who a policy is for, written with the syntax and semantics of AWS SNS
//! subscription filter policies applied to a JSON document (the `MessageBody` scope), where
//! the document is a profile. Operators: exact strings, numbers, booleans and null,
//! `prefix`, `suffix`, `equals-ignore-case`, `anything-but` (values, `prefix`, `suffix`),
//! `numeric` ranges, `exists`, `$or`, nested keys; an array in the document matches when
//! any element does. Two extensions for profiles:
//!
//! - `{"date": [">=", "2020-01-01", "<", "2024-01-01"]}` compares ISO dates (`YYYY-MM-DD`);
//! - `{"industry": "C39"}` matches a GB/T 4754-2017 code and every code below it
//!   (`C39`, `C391`, `C3911`), the way a policy for a division covers its classes. The
//!   code must exist in the industry table the caller passes to [`Rule::parse`] (from
//!   `zhida_catalogue`).
//!
//! Limits (as AWS, where AWS has one): at most [`MAX_COMBINATIONS`] value combinations,
//! [`MAX_DEPTH`] levels of nested keys, [`MAX_RULE_BYTES`] of JSON; numbers within ±10⁹ and
//! compared at five decimal places. Every error says where: `$.enterprise.size[1]: …`.
//!
//! This crate is pure (no I/O): [`Rule::matches`] is the reference semantics that the
//! profiler's index must agree with.

mod index;
mod subscriptions;

use std::fmt;

use serde_json::{Map, Value};
use zhida_catalogue::{Industries, industry};

pub use index::Index;
pub use subscriptions::{Matched, Stored, Subscription, Subscriptions};

/// Most value combinations a rule may expand to (AWS: 150).
pub const MAX_COMBINATIONS: usize = 150;
/// Most levels of nested keys.
pub const MAX_DEPTH: usize = 5;
/// Largest rule accepted, in bytes of JSON.
pub const MAX_RULE_BYTES: usize = 64 * 1024;

const NUMERIC_LIMIT: f64 = 1e9;
const SCALE: f64 = 100_000.0;

/// A rule that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct RuleError {
    /// JSON path of the offending part, e.g. `$.street[0]`.
    pub at: String,
    pub message: String,
}

fn error<T>(at: &str, message: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError {
        at: at.to_string(),
        message: message.into(),
    })
}

/// A parsed, validated audience rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    root: Node,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Node {
    /// Every child matches (the keys of one object).
    All(Vec<Node>),
    /// At least one child matches (`$or`).
    Any(Vec<Node>),
    /// The values at `path` satisfy at least one of `conditions`.
    Field {
        path: Vec<String>,
        conditions: Vec<Condition>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Literal {
    Str(String),
    /// Fixed point, five decimals.
    Num(i64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Range<T> {
    /// (bound, inclusive)
    lower: Option<(T, bool)>,
    upper: Option<(T, bool)>,
}

impl<T: PartialOrd + Copy> Range<T> {
    fn contains(&self, v: T) -> bool {
        let above = self
            .lower
            .is_none_or(|(b, inclusive)| if inclusive { v >= b } else { v > b });
        let below = self
            .upper
            .is_none_or(|(b, inclusive)| if inclusive { v <= b } else { v < b });
        above && below
    }
}

/// A calendar date as (year, month, day), ordered.
type Date = (i32, u32, u32);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Condition {
    Equals(Literal),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Literal>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    Numeric(Range<i64>),
    Exists(bool),
    Date(Range<Date>),
    Industry(String),
}

impl Rule {
    /// Parses a rule from JSON text; `industry` operators must name a code of `industries`.
    pub fn parse(text: &str, industries: &Industries) -> Result<Self, RuleError> {
        if text.len() > MAX_RULE_BYTES {
            return error(
                "$",
                format!("rule is {} bytes; at most {MAX_RULE_BYTES}", text.len()),
            );
        }
        let value: Value = serde_json::from_str(text).or_else(|e| {
            error(
                "$",
                format!("not JSON (line {}, column {}): {e}", e.line(), e.column()),
            )
        })?;
        Self::from_json(&value, industries)
    }

    /// Parses a rule from a JSON value; `industry` operators must name a code of
    /// `industries`.
    pub fn from_json(value: &Value, industries: &Industries) -> Result<Self, RuleError> {
        let Value::Object(object) = value else {
            return error("$", "a rule is a JSON object");
        };
        let root = parse_object(object, &mut Vec::new(), "$", 0, industries)?;
        let combinations = root.combinations();
        if combinations > MAX_COMBINATIONS {
            return error(
                "$",
                format!(
                    "rule expands to {combinations} value combinations; at most {MAX_COMBINATIONS}"
                ),
            );
        }
        Ok(Self { root })
    }

    /// Whether `document` (a profile as JSON) is in the audience.
    pub fn matches(&self, document: &Value) -> bool {
        self.root.explain(document, &mut Vec::new())
    }

    /// The conditions that made `document` match, for "you received this because …",
    /// in key order (as the JSON object sorts them); `None` when it does not match.
    pub fn explain(&self, document: &Value) -> Option<Vec<String>> {
        let mut reasons = Vec::new();
        self.root.explain(document, &mut reasons).then_some(reasons)
    }
}

fn parse_object(
    object: &Map<String, Value>,
    path: &mut Vec<String>,
    at: &str,
    depth: usize,
    industries: &Industries,
) -> Result<Node, RuleError> {
    if object.is_empty() {
        return error(at, "an empty object matches nothing; name at least one key");
    }
    let mut children = Vec::with_capacity(object.len());
    for (key, value) in object {
        if key == "$or" {
            let at = format!("{at}.$or");
            let Value::Array(branches) = value else {
                return error(&at, "$or takes an array of at least two objects");
            };
            if branches.len() < 2 {
                return error(&at, "$or takes an array of at least two objects");
            }
            let mut any = Vec::with_capacity(branches.len());
            for (i, branch) in branches.iter().enumerate() {
                let at = format!("{at}[{i}]");
                let Value::Object(branch) = branch else {
                    return error(&at, "each $or branch is an object");
                };
                any.push(parse_object(branch, path, &at, depth, industries)?);
            }
            children.push(Node::Any(any));
            continue;
        }
        if key.is_empty() {
            return error(at, "empty key");
        }
        if key.chars().any(char::is_control) {
            return error(at, "keys cannot contain control characters");
        }
        let at = format!("{at}.{key}");
        path.push(key.clone());
        match value {
            Value::Object(nested) => {
                if depth + 1 > MAX_DEPTH {
                    return error(&at, format!("nested deeper than {MAX_DEPTH} levels"));
                }
                children.push(parse_object(nested, path, &at, depth + 1, industries)?);
            }
            Value::Array(conditions) => {
                if conditions.is_empty() {
                    return error(&at, "an empty list of conditions matches nothing");
                }
                let conditions = conditions
                    .iter()
                    .enumerate()
                    .map(|(i, c)| parse_condition(c, &format!("{at}[{i}]"), industries))
                    .collect::<Result<_, _>>()?;
                children.push(Node::Field {
                    path: path.clone(),
                    conditions,
                });
            }
            _ => {
                return error(
                    &at,
                    "must be a list of conditions, e.g. [\"a\", {\"prefix\": \"b\"}], or a nested object",
                );
            }
        }
        path.pop();
    }
    Ok(if children.len() == 1 {
        children.remove(0)
    } else {
        Node::All(children)
    })
}

fn fixed(n: f64, at: &str) -> Result<i64, RuleError> {
    if !n.is_finite() || n.abs() > NUMERIC_LIMIT {
        return error(at, format!("numbers must lie within ±{NUMERIC_LIMIT}"));
    }
    // In range, so the cast cannot saturate.
    Ok((n * SCALE).round() as i64)
}

fn to_fixed(value: &Value) -> Option<i64> {
    let n = value.as_f64()?;
    (n.is_finite() && n.abs() <= NUMERIC_LIMIT).then(|| (n * SCALE).round() as i64)
}

fn literal(value: &Value, at: &str) -> Result<Literal, RuleError> {
    Ok(match value {
        Value::String(s) => Literal::Str(s.clone()),
        Value::Number(n) => Literal::Num(fixed(n.as_f64().unwrap_or(f64::NAN), at)?),
        Value::Bool(b) => Literal::Bool(*b),
        Value::Null => Literal::Null,
        _ => return error(at, "expected a string, number, boolean or null"),
    })
}

fn non_empty_string<'a>(value: &'a Value, at: &str, operator: &str) -> Result<&'a str, RuleError> {
    match value.as_str() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => error(at, format!("{operator} takes a non-empty string")),
    }
}

fn parse_condition(
    value: &Value,
    at: &str,
    industries: &Industries,
) -> Result<Condition, RuleError> {
    let Value::Object(operator) = value else {
        if value.is_array() {
            return error(at, "conditions cannot be nested lists");
        }
        return literal(value, at).map(Condition::Equals);
    };
    let mut entries = operator.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        return error(at, "an operator object has exactly one key");
    };
    let at = &format!("{at}.{name}");
    Ok(match name.as_str() {
        "prefix" => Condition::Prefix(non_empty_string(argument, at, name)?.to_string()),
        "suffix" => Condition::Suffix(non_empty_string(argument, at, name)?.to_string()),
        "equals-ignore-case" => {
            Condition::EqualsIgnoreCase(non_empty_string(argument, at, name)?.to_lowercase())
        }
        "exists" => match argument {
            Value::Bool(b) => Condition::Exists(*b),
            _ => return error(at, "exists takes true or false"),
        },
        "anything-but" => match argument {
            Value::String(_) | Value::Number(_) => {
                Condition::AnythingBut(vec![literal(argument, at)?])
            }
            Value::Array(values) if !values.is_empty() => Condition::AnythingBut(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(_) | Value::Number(_) => literal(v, &format!("{at}[{i}]")),
                        _ => error(
                            &format!("{at}[{i}]"),
                            "anything-but lists strings or numbers",
                        ),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(inner) if inner.len() == 1 => match inner.iter().next() {
                Some((k, v)) if k == "prefix" => Condition::AnythingButPrefix(
                    non_empty_string(v, at, "anything-but prefix")?.to_string(),
                ),
                Some((k, v)) if k == "suffix" => Condition::AnythingButSuffix(
                    non_empty_string(v, at, "anything-but suffix")?.to_string(),
                ),
                _ => {
                    return error(
                        at,
                        "anything-but takes a value, a list, {\"prefix\": …} or {\"suffix\": …}",
                    );
                }
            },
            _ => {
                return error(
                    at,
                    "anything-but takes a value, a list, {\"prefix\": …} or {\"suffix\": …}",
                );
            }
        },
        "numeric" => Condition::Numeric(range(argument, at, |v, at| match v {
            Value::Number(n) => fixed(n.as_f64().unwrap_or(f64::NAN), at),
            _ => error(at, "numeric bounds are numbers"),
        })?),
        "date" => Condition::Date(range(argument, at, |v, at| {
            match v.as_str().and_then(parse_date) {
                Some(date) => Ok(date),
                None => error(at, "date bounds are dates written YYYY-MM-DD"),
            }
        })?),
        "industry" => {
            let code = non_empty_string(argument, at, name)?;
            if !industries.contains(code) {
                return error(
                    at,
                    format!(
                        "{code:?} is not a GB/T 4754-2017 code: a section letter A–T, then 2, 3 or 4 digits (or none), as listed in the standard"
                    ),
                );
            }
            Condition::Industry(code.to_string())
        }
        other => {
            return error(
                at,
                format!(
                    "unknown operator {other:?}; one of prefix, suffix, equals-ignore-case, anything-but, numeric, exists, date, industry"
                ),
            );
        }
    })
}

/// `["<", 10]`, `[">=", 0, "<", 10]`, `["=", 5]`; bounds parsed by `bound`.
fn range<T: PartialOrd + Copy>(
    argument: &Value,
    at: &str,
    bound: impl Fn(&Value, &str) -> Result<T, RuleError>,
) -> Result<Range<T>, RuleError> {
    let shape = "a range such as [\">=\", 0, \"<\", 10] or [\"=\", 5]";
    let Value::Array(parts) = argument else {
        return error(at, format!("expected {shape}"));
    };
    if parts.len() != 2 && parts.len() != 4 {
        return error(at, format!("expected {shape}"));
    }
    let mut range = Range {
        lower: None,
        upper: None,
    };
    for (i, pair) in parts.chunks(2).enumerate() {
        let at = &format!("{at}[{}]", i * 2);
        let value = bound(&pair[1], &format!("{at}+1"))?;
        match (pair[0].as_str(), parts.len(), i) {
            (Some("="), 2, 0) => {
                range.lower = Some((value, true));
                range.upper = Some((value, true));
            }
            (Some(">"), _, 0) => range.lower = Some((value, false)),
            (Some(">="), _, 0) => range.lower = Some((value, true)),
            (Some("<"), 2, 0) | (Some("<"), 4, 1) => range.upper = Some((value, false)),
            (Some("<="), 2, 0) | (Some("<="), 4, 1) => range.upper = Some((value, true)),
            _ => {
                return error(
                    at,
                    "operators: one of = < <= > >=, or a lower bound (> >=) then an upper bound (< <=)",
                );
            }
        }
    }
    if let (Some((low, _)), Some((high, _))) = (range.lower, range.upper)
        && low > high
    {
        return error(at, "the lower bound is above the upper bound");
    }
    Ok(range)
}

/// Whether `text` is a calendar date written `YYYY-MM-DD` (the form the `date` operator reads).
pub fn is_date(text: &str) -> bool {
    parse_date(text).is_some()
}

fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    if bytes.len() != 10
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
    {
        return None;
    }
    let year: i32 = text[0..4].parse().ok()?;
    let month: u32 = text[5..7].parse().ok()?;
    let day: u32 = text[8..10].parse().ok()?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days).contains(&day).then_some((year, month, day))
}

impl Node {
    fn combinations(&self) -> usize {
        match self {
            Node::Field { conditions, .. } => conditions.len(),
            Node::All(children) => children
                .iter()
                .map(Node::combinations)
                .fold(1usize, usize::saturating_mul),
            Node::Any(children) => children
                .iter()
                .map(Node::combinations)
                .fold(0usize, usize::saturating_add),
        }
    }

    fn explain(&self, document: &Value, reasons: &mut Vec<String>) -> bool {
        match self {
            Node::All(children) => {
                let mark = reasons.len();
                let all = children.iter().all(|c| c.explain(document, reasons));
                if !all {
                    reasons.truncate(mark);
                }
                all
            }
            Node::Any(children) => children.iter().any(|c| {
                let mark = reasons.len();
                let matched = c.explain(document, reasons);
                if !matched {
                    reasons.truncate(mark);
                }
                matched
            }),
            Node::Field { path, conditions } => {
                let mut values = Vec::new();
                let present = collect(document, path, &mut values);
                let matched = conditions.iter().find(|c| match c {
                    Condition::Exists(wanted) => *wanted == present,
                    // AWS: anything-but (like every value operator) needs the key present.
                    _ => values.iter().any(|v| c.matches(v)),
                });
                if let Some(condition) = matched {
                    reasons.push(format!("{} {condition}", path.join(".")));
                }
                matched.is_some()
            }
        }
    }
}

/// Gathers the leaf values at `path`, descending into arrays; true if the key exists.
fn collect<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) -> bool {
    match (value, path.split_first()) {
        (Value::Array(items), _) => {
            let mut present = false;
            for item in items {
                present |= collect(item, path, out);
            }
            present
        }
        (_, None) => {
            out.push(value);
            true
        }
        (Value::Object(object), Some((key, rest))) => match object.get(key) {
            Some(child) => {
                if rest.is_empty() {
                    flatten(child, out);
                    true
                } else {
                    collect(child, rest, out)
                }
            }
            None => false,
        },
        _ => false,
    }
}

fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        _ => out.push(value),
    }
}

impl Literal {
    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Literal::Str(s), Value::String(v)) => s == v,
            (Literal::Num(n), Value::Number(_)) => to_fixed(value) == Some(*n),
            (Literal::Bool(b), Value::Bool(v)) => b == v,
            (Literal::Null, Value::Null) => true,
            _ => false,
        }
    }
}

impl Condition {
    fn matches(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Condition::Equals(literal) => literal.equals(value),
            Condition::Prefix(p) => text.is_some_and(|t| t.starts_with(p.as_str())),
            Condition::Suffix(s) => text.is_some_and(|t| t.ends_with(s.as_str())),
            Condition::EqualsIgnoreCase(s) => text.is_some_and(|t| t.to_lowercase() == *s),
            // Numbers beyond ±10⁹ are outside what rules compare, for every operator.
            Condition::AnythingBut(values) => {
                (value.is_string() || to_fixed(value).is_some())
                    && !values.iter().any(|l| l.equals(value))
            }
            Condition::AnythingButPrefix(p) => text.is_some_and(|t| !t.starts_with(p.as_str())),
            Condition::AnythingButSuffix(s) => text.is_some_and(|t| !t.ends_with(s.as_str())),
            Condition::Numeric(range) => to_fixed(value).is_some_and(|n| range.contains(n)),
            Condition::Date(range) => text.and_then(parse_date).is_some_and(|d| range.contains(d)),
            Condition::Industry(code) => text.is_some_and(|t| industry::is_within(t, code)),
            // Decided on presence, in `Node::explain`.
            Condition::Exists(_) => false,
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write!(f, "{s:?}"),
            Literal::Num(n) => write!(f, "{}", *n as f64 / SCALE),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => write!(f, "null"),
        }
    }
}

fn write_range<T>(
    f: &mut fmt::Formatter<'_>,
    range: &Range<T>,
    show: impl Fn(&T) -> String,
) -> fmt::Result {
    if let Some((b, inclusive)) = &range.lower {
        write!(f, "{} {}", if *inclusive { ">=" } else { ">" }, show(b))?;
    }
    if let Some((b, inclusive)) = &range.upper {
        let sep = if range.lower.is_some() { ", " } else { "" };
        write!(
            f,
            "{sep}{} {}",
            if *inclusive { "<=" } else { "<" },
            show(b)
        )?;
    }
    Ok(())
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Equals(l) => write!(f, "= {l}"),
            Condition::Prefix(p) => write!(f, "starts with {p:?}"),
            Condition::Suffix(s) => write!(f, "ends with {s:?}"),
            Condition::EqualsIgnoreCase(s) => write!(f, "= {s:?} (ignoring case)"),
            Condition::AnythingBut(values) => {
                let values: Vec<String> = values.iter().map(Literal::to_string).collect();
                write!(f, "is none of [{}]", values.join(", "))
            }
            Condition::AnythingButPrefix(p) => write!(f, "does not start with {p:?}"),
            Condition::AnythingButSuffix(s) => write!(f, "does not end with {s:?}"),
            Condition::Numeric(range) => write_range(f, range, |n| (*n as f64 / SCALE).to_string()),
            Condition::Date(range) => {
                write_range(f, range, |(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
            }
            Condition::Exists(true) => write!(f, "is present"),
            Condition::Exists(false) => write!(f, "is absent"),
            Condition::Industry(code) => write!(f, "is in industry {code}"),
        }
    }
}

#[cfg(test)]
mod tests;
