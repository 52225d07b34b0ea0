//! The rule and the profile as the baselines see them.
//!
//! `zhida_audience` keeps its parsed rule private, so the baselines read the rule JSON again
//! into this small tree. `Rule::parse` stays the authority on what a valid rule is: this
//! runs only on rules it accepted, reproduces the semantics the translators need (and that
//! `Rule::matches` defines), and refuses the operators no bench rule uses.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Numbers compare as fixed point with five decimals, as in the engine.
const SCALE: f64 = 100_000.0;
/// Numbers the engine accepts lie within ±10⁹.
const NUMERIC_LIMIT: f64 = 1e9;

#[derive(Debug)]
pub enum Expr {
    /// Every child matches (the keys of one object).
    All(Vec<Expr>),
    /// At least one child matches (`$or`).
    Any(Vec<Expr>),
    /// The values at `path` satisfy at least one of `conditions`.
    Field {
        path: Vec<String>,
        conditions: Vec<Cond>,
    },
}

/// A document or rule value the baselines index: strings and numbers. Profiles hold no
/// booleans or nulls, so neither baseline indexes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scalar {
    Str(String),
    /// Fixed point, five decimals.
    Num(i64),
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    Equals(Scalar),
    Prefix(String),
    /// The value is a string or number other than these.
    AnythingBut(Vec<Scalar>),
    /// Over fixed-point numbers.
    Numeric(Range),
    /// Over dates as `yyyymmdd` numbers, which order like the dates.
    Date(Range),
    /// A GB/T 4754 code at or below this one.
    Industry(String),
    /// Decided on whether the key is present, not on its values.
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    pub lower: Option<Bound>,
    pub upper: Option<Bound>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bound {
    pub value: i64,
    pub inclusive: bool,
}

impl Expr {
    /// Reads a rule that `Rule::parse` accepted; `Err` names what the baselines lack.
    pub fn parse(rule: &Value) -> Result<Self, String> {
        match rule {
            Value::Object(object) => parse_object(object, &mut Vec::new()),
            _ => Err("a rule is a JSON object".into()),
        }
    }
}

fn parse_object(object: &Map<String, Value>, path: &mut Vec<String>) -> Result<Expr, String> {
    let mut children = Vec::with_capacity(object.len());
    for (key, value) in object {
        if key == "$or" {
            let branches = value.as_array().ok_or("$or takes an array")?;
            let branches = branches
                .iter()
                .map(|branch| match branch {
                    Value::Object(branch) => parse_object(branch, path),
                    _ => Err("each $or branch is an object".to_string()),
                })
                .collect::<Result<_, _>>()?;
            children.push(Expr::Any(branches));
            continue;
        }
        path.push(key.clone());
        children.push(match value {
            Value::Object(nested) => parse_object(nested, path)?,
            Value::Array(conditions) => Expr::Field {
                path: path.clone(),
                conditions: conditions
                    .iter()
                    .map(parse_condition)
                    .collect::<Result<_, _>>()?,
            },
            _ => return Err(format!("{key}: expected conditions or a nested object")),
        });
        path.pop();
    }
    Ok(if children.len() == 1 {
        children.remove(0)
    } else {
        Expr::All(children)
    })
}

fn parse_condition(condition: &Value) -> Result<Cond, String> {
    let Value::Object(operator) = condition else {
        return scalar(condition)
            .map(Cond::Equals)
            .ok_or_else(|| format!("unsupported value {condition}"));
    };
    let (name, argument) = operator
        .iter()
        .next()
        .ok_or("an operator object has one key")?;
    let text = || {
        argument
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{name} takes a string"))
    };
    Ok(match name.as_str() {
        "prefix" => Cond::Prefix(text()?),
        "industry" => Cond::Industry(text()?),
        "exists" => Cond::Exists(argument.as_bool().ok_or("exists takes a boolean")?),
        "anything-but" => {
            let values = match argument {
                Value::Array(values) => values.iter().collect(),
                single => vec![single],
            };
            Cond::AnythingBut(
                values
                    .into_iter()
                    .map(|v| scalar(v).ok_or_else(|| format!("unsupported anything-but {v}")))
                    .collect::<Result<_, _>>()?,
            )
        }
        "numeric" => Cond::Numeric(range(argument, fixed)?),
        "date" => Cond::Date(range(argument, |v| v.as_str().and_then(date_number))?),
        other => return Err(format!("operator {other} is not translated")),
    })
}

/// `["<=", 5]`, `[">", 0, "<=", 10]` or `["=", 5]`, with bounds read by `bound`.
fn range(argument: &Value, bound: impl Fn(&Value) -> Option<i64>) -> Result<Range, String> {
    let parts = argument.as_array().ok_or("a range is an array")?;
    let mut range = Range {
        lower: None,
        upper: None,
    };
    for pair in parts.chunks(2) {
        let [operator, value] = pair else {
            return Err(format!("bad range {argument}"));
        };
        let value = bound(value).ok_or_else(|| format!("bad bound in {argument}"))?;
        let at = |inclusive| Some(Bound { value, inclusive });
        match operator.as_str() {
            Some("=") => (range.lower, range.upper) = (at(true), at(true)),
            Some(">") => range.lower = at(false),
            Some(">=") => range.lower = at(true),
            Some("<") => range.upper = at(false),
            Some("<=") => range.upper = at(true),
            _ => return Err(format!("bad range operator in {argument}")),
        }
    }
    Ok(range)
}

/// A string or in-range number, the values both baselines index.
pub fn scalar(value: &Value) -> Option<Scalar> {
    match value {
        Value::String(s) => Some(Scalar::Str(s.clone())),
        Value::Number(_) => fixed(value).map(Scalar::Num),
        _ => None,
    }
}

/// A number as the engine compares it: fixed point, five decimals.
pub fn fixed(value: &Value) -> Option<i64> {
    let n = value.as_f64()?;
    (n.is_finite() && n.abs() <= NUMERIC_LIMIT).then(|| (n * SCALE).round() as i64)
}

/// A fixed-point number written back as the shortest decimal, e.g. `5000` or `0.5`.
pub fn number_text(fixed: i64) -> String {
    (fixed as f64 / SCALE).to_string()
}

/// `2022-01-05` as `20220105` if it is a calendar date (as the engine's `date` operator
/// reads dates).
pub fn date_number(text: &str) -> Option<i64> {
    if !zhida_audience::is_date(text) {
        return None;
    }
    let year: i64 = text[0..4].parse().ok()?;
    let month: i64 = text[5..7].parse().ok()?;
    let day: i64 = text[8..10].parse().ok()?;
    Some(year * 10_000 + month * 100 + day)
}

/// `20220105` back to `2022-01-05`.
pub fn date_text(number: i64) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        number / 10_000,
        number / 100 % 100,
        number % 100
    )
}

/// Every key path present in `document` (segments joined by `.`, which no profile key
/// contains), with the scalar values under it. Arrays are transparent as in the rule
/// semantics: their elements count as values of the key, and objects inside them extend
/// the path. A path holding an object has no values of its own; it is only present.
pub fn fields(document: &Value) -> BTreeMap<String, Vec<&Value>> {
    let mut out = BTreeMap::new();
    walk(document, "", &mut out);
    out
}

fn walk<'a>(value: &'a Value, path: &str, out: &mut BTreeMap<String, Vec<&'a Value>>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.entry(path.clone()).or_default();
                walk(child, &path, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, path, out)),
        // A document is an object, so a scalar always sits under some key.
        scalar => out.entry(path.to_string()).or_default().push(scalar),
    }
}
