//! Baseline: the rules answered by PostgreSQL, one row per profile, one column per profile
//! field, B-tree indexes on scalars and GIN on arrays; a rule becomes a `WHERE` clause.
//!
//! The table lives in its own schema, created on load and dropped on drop.

use std::{
    error::Error,
    io::Write,
    str::FromStr,
    time::{Duration, Instant},
};

use postgres::{Client, Config, NoTls};
use serde_json::Value;

use crate::rule::{self, Bound, Cond, Expr, Range, Scalar};

const SCHEMA: &str = "zhida_bench";
const TABLE: &str = "zhida_bench.profiles";

pub type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Type {
    Text,
    Int,
    Float,
    Date,
    /// `text[]`: a repeated field; NULL when the key is absent.
    TextArray,
}

#[derive(Debug, Clone, Copy)]
enum IndexKind {
    BTree,
    /// `text_pattern_ops`, so `LIKE 'prefix%'` is an index range whatever the collation
    /// (also serves `=`).
    Pattern,
    Gin,
}

/// A profile field (JSON path), held in the column named after its last segment.
struct Column {
    path: &'static str,
    ty: Type,
    index: IndexKind,
}

const fn column(path: &'static str, ty: Type, index: IndexKind) -> Column {
    Column { path, ty, index }
}

impl Column {
    fn name(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }
}

/// `subject_id` is the primary key `id`, not a column of its own.
const COLUMNS: [Column; 14] = [
    column("kind", Type::Text, IndexKind::BTree),
    column("street", Type::Text, IndexKind::Pattern),
    column("citizen.birth_year", Type::Int, IndexKind::BTree),
    column("citizen.groups", Type::TextArray, IndexKind::Gin),
    column("citizen.hukou", Type::Text, IndexKind::BTree),
    column("citizen.language", Type::Text, IndexKind::BTree),
    column("enterprise.industry", Type::Text, IndexKind::Pattern),
    column("enterprise.size", Type::Text, IndexKind::BTree),
    column("enterprise.registered_on", Type::Date, IndexKind::BTree),
    column(
        "enterprise.registered_capital",
        Type::Float,
        IndexKind::BTree,
    ),
    column("enterprise.employees", Type::Int, IndexKind::BTree),
    column("enterprise.qualifications", Type::TextArray, IndexKind::Gin),
    column("enterprise.parks", Type::TextArray, IndexKind::Gin),
    column("enterprise.associations", Type::TextArray, IndexKind::Gin),
];

impl Type {
    fn sql(self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Int => "int",
            Type::Float => "float8",
            Type::Date => "date",
            Type::TextArray => "text[]",
        }
    }
}

/// How long each loading step took.
#[derive(Debug)]
pub struct LoadTimes {
    pub copy: Duration,
    pub index: Duration,
    pub analyze: Duration,
}

/// A connection to a PostgreSQL holding the bench's table; drops its schema when dropped.
pub struct ProfileTable {
    client: Client,
}

impl ProfileTable {
    /// Connects with libpq-style parameters, e.g. `host=127.0.0.1 user=postgres dbname=test`,
    /// and drops what an interrupted run left behind.
    pub fn connect(params: &str) -> Result<Self> {
        let client = Config::from_str(params)?
            .connect_timeout(Duration::from_secs(3))
            .connect(NoTls)?;
        let mut table = Self { client };
        table.drop_schema()?;
        Ok(table)
    }

    pub fn server_version(&mut self) -> Result<String> {
        Ok(self.client.query_one("SHOW server_version", &[])?.get(0))
    }

    /// Size of the table with its indexes, in bytes.
    pub fn size(&mut self) -> Result<i64> {
        let sql = format!("SELECT pg_total_relation_size('{TABLE}')");
        Ok(self.client.query_one(&sql, &[])?.get(0))
    }

    pub fn load(&mut self, docs: &[(String, Value)]) -> Result<LoadTimes> {
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|c| format!("{} {}", c.name(), c.ty.sql()))
            .collect();
        self.client.batch_execute(&format!(
            "CREATE SCHEMA {SCHEMA}; CREATE TABLE {TABLE} (id text PRIMARY KEY, {})",
            columns.join(", ")
        ))?;

        let started = Instant::now();
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name()).collect();
        let mut copy = self.client.copy_in(&format!(
            "COPY {TABLE} (id, {}) FROM STDIN",
            names.join(", ")
        ))?;
        let mut line = String::new();
        for (id, doc) in docs {
            line.clear();
            copy_row(&mut line, id, doc);
            copy.write_all(line.as_bytes())?;
        }
        copy.finish()?;
        let copied = started.elapsed();

        let started = Instant::now();
        for column in &COLUMNS {
            let (method, operand) = match column.index {
                IndexKind::BTree => ("btree", column.name().to_string()),
                IndexKind::Pattern => ("btree", format!("{} text_pattern_ops", column.name())),
                IndexKind::Gin => ("gin", column.name().to_string()),
            };
            self.client.batch_execute(&format!(
                "CREATE INDEX ON {TABLE} USING {method} ({operand})"
            ))?;
        }
        let indexed = started.elapsed();

        let started = Instant::now();
        self.client.batch_execute(&format!("ANALYZE {TABLE}"))?;
        Ok(LoadTimes {
            copy: copied,
            index: indexed,
            analyze: started.elapsed(),
        })
    }

    /// Ids of the profiles `sql` (from [`select`]) returns, every row fetched. Parsed and
    /// planned on each call, as a new audience rule would be.
    pub fn matching(&mut self, sql: &str) -> Result<Vec<String>> {
        let rows = self.client.query(sql, &[])?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn drop_schema(&mut self) -> Result<()> {
        self.client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))?;
        Ok(())
    }
}

impl Drop for ProfileTable {
    fn drop(&mut self) {
        if let Err(e) = self.drop_schema() {
            eprintln!("could not drop the postgres schema {SCHEMA}: {e}");
        }
    }
}

/// One line of `COPY … FROM STDIN` (text format): tab-separated, `\N` for NULL.
fn copy_row(line: &mut String, id: &str, doc: &Value) {
    let fields = rule::fields(doc);
    line.push_str(&copy_escape(id));
    for column in &COLUMNS {
        line.push('\t');
        match fields.get(column.path) {
            None => line.push_str("\\N"),
            Some(values) if column.ty == Type::TextArray => {
                let elements: Vec<String> = values.iter().map(|v| array_element(v)).collect();
                line.push_str(&copy_escape(&format!("{{{}}}", elements.join(","))));
            }
            // Scalar columns hold the profile's one value (proto scalars are never lists).
            Some(values) => match values.first() {
                Some(Value::String(s)) => line.push_str(&copy_escape(s)),
                Some(other) => line.push_str(&other.to_string()),
                None => line.push_str("\\N"),
            },
        }
    }
    line.push('\n');
}

/// Text-format COPY escaping: backslash, and the tab and newline that delimit.
fn copy_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// An element of an array literal `{"a","b"}`, quoted so any text is safe.
fn array_element(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The query that answers `rule`; `Err` when the rule uses a field or operator this
/// translation does not cover (a bench bug, not a server problem).
pub fn select(rule: &Expr) -> std::result::Result<String, String> {
    Ok(format!("SELECT id FROM {TABLE} WHERE {}", predicate(rule)?))
}

fn predicate(rule: &Expr) -> std::result::Result<String, String> {
    match rule {
        Expr::All(children) => join(children.iter().map(predicate), " AND "),
        Expr::Any(children) => join(children.iter().map(predicate), " OR "),
        Expr::Field { path, conditions } => {
            let path = path.join(".");
            let column = COLUMNS
                .iter()
                .find(|c| c.path == path)
                .ok_or_else(|| format!("no column holds {path}"))?;
            field(column, conditions)
        }
    }
}

fn join(
    parts: impl Iterator<Item = std::result::Result<String, String>>,
    operator: &str,
) -> std::result::Result<String, String> {
    let parts = parts.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(if parts.len() == 1 {
        parts.into_iter().collect()
    } else {
        format!("({})", parts.join(operator))
    })
}

/// A field matches when any of its conditions does. Exact values are gathered into one
/// `IN (…)` or `&&`, the form the indexes serve best.
fn field(column: &Column, conditions: &[Cond]) -> std::result::Result<String, String> {
    let equals: Vec<&Scalar> = conditions
        .iter()
        .filter_map(|c| match c {
            Cond::Equals(value) => Some(value),
            _ => None,
        })
        .collect();
    let others = conditions
        .iter()
        .filter(|c| !matches!(c, Cond::Equals(_)))
        .map(|c| condition(column, c));
    let equals = (!equals.is_empty()).then(|| Ok(one_of(column, &equals)));
    join(equals.into_iter().chain(others), " OR ")
}

/// The literals among `values` that can equal a value of `column`, as SQL.
fn literals(ty: Type, values: &[&Scalar]) -> Vec<String> {
    values
        .iter()
        .filter_map(|value| match (ty, value) {
            (Type::Text | Type::TextArray, Scalar::Str(s)) => Some(quote(s)),
            (Type::Int | Type::Float, Scalar::Num(n)) => Some(rule::number_text(*n)),
            // A string equals a date value only if it is that date written the same way.
            (Type::Date, Scalar::Str(s)) => {
                rule::date_number(s).map(|_| format!("DATE {}", quote(s)))
            }
            _ => None,
        })
        .collect()
}

fn one_of(column: &Column, values: &[&Scalar]) -> String {
    let literals = literals(column.ty, values);
    let name = column.name();
    match (column.ty, literals.is_empty()) {
        (_, true) => "FALSE".into(),
        (Type::TextArray, false) => format!("{name} && ARRAY[{}]", literals.join(", ")),
        (_, false) if literals.len() == 1 => format!("{name} = {}", literals[0]),
        (_, false) => format!("{name} IN ({})", literals.join(", ")),
    }
}

fn condition(column: &Column, cond: &Cond) -> std::result::Result<String, String> {
    let name = column.name();
    Ok(match (cond, column.ty) {
        (Cond::Exists(true), _) => format!("{name} IS NOT NULL"),
        (Cond::Exists(false), _) => format!("{name} IS NULL"),

        (Cond::Prefix(prefix), Type::Text) => format!("{name} LIKE {}", like_prefix(prefix)),
        (Cond::Prefix(prefix), Type::TextArray) => {
            any_element(name, &format!("LIKE {}", like_prefix(prefix)))
        }
        // The engine also requires the value itself to be a well-formed code.
        (Cond::Industry(code), Type::Text) => format!(
            "({name} LIKE {} AND {name} ~ '^[A-T]([0-9]{{2,4}})?$')",
            like_prefix(code)
        ),
        // Prefix operators never match numbers.
        (Cond::Prefix(_) | Cond::Industry(_), Type::Int | Type::Float) => "FALSE".into(),

        // Only strings and numbers count, so a NULL (absent) value does not match.
        (Cond::AnythingBut(excluded), Type::TextArray) => {
            let excluded = literals(Type::Text, &excluded.iter().collect::<Vec<_>>());
            if excluded.is_empty() {
                format!("cardinality({name}) > 0")
            } else {
                any_element(name, &format!("NOT IN ({})", excluded.join(", ")))
            }
        }
        (Cond::AnythingBut(excluded), ty) => {
            let excluded = literals(ty, &excluded.iter().collect::<Vec<_>>());
            if excluded.is_empty() {
                format!("{name} IS NOT NULL")
            } else {
                format!("{name} NOT IN ({})", excluded.join(", "))
            }
        }

        (Cond::Numeric(range), Type::Int | Type::Float) => between(name, range, rule::number_text),
        (Cond::Numeric(_), Type::Text | Type::TextArray) => "FALSE".into(),
        (Cond::Date(range), Type::Date) => {
            between(name, range, |d| format!("DATE '{}'", rule::date_text(d)))
        }
        (Cond::Date(_), Type::Int | Type::Float) => "FALSE".into(),

        // `field` gathers these into one `one_of`.
        (Cond::Equals(value), _) => one_of(column, &[value]),
        _ => {
            return Err(format!(
                "{cond:?} on {} ({}) is not translated",
                column.path,
                column.ty.sql()
            ));
        }
    })
}

/// `lower <(=) name AND name <(=) upper`, bounds written by `literal`.
fn between(name: &str, range: &Range, literal: impl Fn(i64) -> String) -> String {
    let side = |bound: Option<Bound>, strict: &str, inclusive: &str| {
        bound.map(|b| {
            let operator = if b.inclusive { inclusive } else { strict };
            format!("{name} {operator} {}", literal(b.value))
        })
    };
    let parts: Vec<String> = [side(range.lower, ">", ">="), side(range.upper, "<", "<=")]
        .into_iter()
        .flatten()
        .collect();
    match parts.len() {
        1 => parts.concat(),
        _ => format!("({})", parts.join(" AND ")),
    }
}

/// Some element of the array `name` satisfies `test` (written after the element).
fn any_element(name: &str, test: &str) -> String {
    format!("EXISTS (SELECT FROM unnest({name}) AS element WHERE element {test})")
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `'abc%'`, with the prefix's own `%`, `_` and `\` escaped (`\` is LIKE's escape).
fn like_prefix(prefix: &str) -> String {
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    quote(&format!("{escaped}%"))
}
