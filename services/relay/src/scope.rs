//! What a subscriber's scope is matched against: the *policy document*. A scope is an
//! audience rule (the SNS filter-policy language of `zhida-audience`, parsed by the same
//! parser, so its errors are located the same way) over
//!
//! ```json
//! {"policy_id": "…", "title": "…", "tags": ["数字经济"], "department": "区科委",
//!  "service_url": "https://…",
//!  "audience": {"industries": ["I65"], "streets": ["五角场街道"], "kinds": ["SUBJECT_KIND_ENTERPRISE"],
//!               "parks": ["park-…"], "associations": ["assoc-…"]}}
//! ```
//!
//! `audience` lists what the policy's own audience rule names: an association for software
//! firms scopes itself by `{"audience": {"industries": [{"industry": "I65"}]}}` and gets
//! every policy whose audience names a software industry code (the `industry` operator
//! matches a code and every code below it). Values are collected wherever the audience rule
//! names them (also inside `$or`), from exact values, `prefix` and `industry`; what a rule
//! only excludes (`anything-but`) names nothing.

use serde_json::{Map, Value, json};
use zhida_audience::{Rule, RuleError};
use zhida_catalogue::Industries;
use zhida_proto::events::v1::PolicyPublished;

/// Parses a scope; empty text is no scope (only what a parent forwards).
pub fn parse(text: &str, industries: &Industries) -> Result<Option<Rule>, RuleError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Rule::parse(text, industries).map(Some)
}

/// The document scopes are matched against.
pub fn document(policy: &PolicyPublished) -> Value {
    let mut doc = Map::new();
    put_str(&mut doc, "policy_id", &policy.policy_id);
    put_str(&mut doc, "title", &policy.title);
    if !policy.tags.is_empty() {
        doc.insert("tags".into(), json!(policy.tags));
    }
    put_str(&mut doc, "department", &policy.department);
    put_str(&mut doc, "service_url", &policy.service_url);
    let audience = audience_names(&policy.audience);
    if !audience.is_empty() {
        doc.insert("audience".into(), Value::Object(audience));
    }
    Value::Object(doc)
}

fn put_str(doc: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        doc.insert(key.into(), json!(value));
    }
}

/// Where in a profile document each `audience` list is named.
const NAMED: [(&[&str], &str); 5] = [
    (&["enterprise", "industry"], "industries"),
    (&["street"], "streets"),
    (&["kind"], "kinds"),
    (&["enterprise", "parks"], "parks"),
    (&["enterprise", "associations"], "associations"),
];

/// What an audience rule (JSON text) names, by list; nothing for an empty or unreadable
/// one (the publisher validated it).
fn audience_names(rule: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let Ok(rule) = serde_json::from_str::<Value>(rule) else {
        return out;
    };
    for (path, list) in NAMED {
        let mut values = Vec::new();
        collect(&rule, path, &mut values);
        values.sort();
        values.dedup();
        if !values.is_empty() {
            out.insert(list.into(), json!(values));
        }
    }
    out
}

/// Values named at `path` in `rule`, also inside `$or` alternatives.
fn collect(rule: &Value, path: &[&str], out: &mut Vec<String>) {
    let Value::Object(map) = rule else {
        return;
    };
    if let Some(Value::Array(alternatives)) = map.get("$or") {
        for alternative in alternatives {
            collect(alternative, path, out);
        }
    }
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (map.get(*first), rest.is_empty()) {
        (Some(Value::Array(values)), true) => values.iter().for_each(|v| named(v, out)),
        (Some(nested), false) => collect(nested, rest, out),
        _ => {}
    }
}

/// The value one entry of a rule's value list names, if any.
fn named(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Object(op) => {
            for key in ["prefix", "industry", "equals-ignore-case"] {
                if let Some(Value::String(text)) = op.get(key) {
                    out.push(text.clone());
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn industries() -> Industries {
        Industries::gbt4754_2017()
    }

    fn policy(tags: &[&str], department: &str, audience: &str) -> PolicyPublished {
        PolicyPublished {
            policy_id: "p-1".into(),
            title: "软件企业扶持".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            department: department.into(),
            audience: audience.into(),
            ..PolicyPublished::default()
        }
    }

    #[test]
    fn the_document_lists_what_the_audience_names_also_inside_or() {
        let p = policy(
            &["数字经济"],
            "区科委",
            r#"{"kind": ["SUBJECT_KIND_ENTERPRISE"], "$or": [
                {"enterprise": {"industry": [{"industry": "I65"}, "I6510"]}},
                {"enterprise": {"parks": ["park-chuangzhi"], "size": ["small"]}},
                {"street": [{"prefix": "五角场"}, {"anything-but": ["殷行街道"]}]}
            ]}"#,
        );
        let doc = document(&p);
        assert_eq!(
            doc["audience"],
            json!({
                "industries": ["I65", "I6510"],
                "kinds": ["SUBJECT_KIND_ENTERPRISE"],
                "parks": ["park-chuangzhi"],
                "streets": ["五角场"],
            })
        );
        assert_eq!(doc["department"], json!("区科委"));
        assert!(doc.get("body").is_none());
    }

    #[test]
    fn scopes_match_by_tag_department_or_industry_below_a_division() {
        let software = parse(
            r#"{"audience": {"industries": [{"industry": "I"}]}}"#,
            &industries(),
        )
        .expect("valid")
        .expect("a scope");
        let either = parse(
            r#"{"$or": [{"tags": ["数字经济"]}, {"department": ["区商务委"]}]}"#,
            &industries(),
        )
        .expect("valid")
        .expect("a scope");
        let for_software = policy(
            &["人才"],
            "区科委",
            r#"{"enterprise": {"industry": [{"industry": "I65"}]}}"#,
        );
        let for_shops = policy(
            &["消费"],
            "区商务委",
            r#"{"enterprise": {"industry": [{"industry": "F52"}]}}"#,
        );
        let untargeted = policy(&["数字经济"], "区科委", "");
        assert!(software.matches(&document(&for_software)));
        assert!(!software.matches(&document(&for_shops)));
        assert!(!software.matches(&document(&untargeted)));
        assert!(!either.matches(&document(&for_software)));
        assert!(either.matches(&document(&for_shops)));
        assert!(either.matches(&document(&untargeted)));
    }

    #[test]
    fn a_bad_scope_says_where_and_an_empty_one_is_none() {
        let error = parse(r#"{"tags": [{"prefix": 5}]}"#, &industries()).expect_err("bad");
        assert!(error.at.starts_with("$.tags"), "{error}");
        assert!(parse("  ", &industries()).expect("empty").is_none());
        assert!(parse("{", &industries()).is_err());
    }
}
