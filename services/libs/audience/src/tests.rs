//! Conformance: each operator, with the edge cases the AWS SNS filter-policy documentation
//! calls out, on profile-shaped documents.

use serde_json::{Value, json};

use super::*;

fn rule(text: &str) -> Rule {
    Rule::parse(text).unwrap_or_else(|e| panic!("{text} must parse: {e}"))
}

fn rejected(text: &str) -> RuleError {
    Rule::parse(text).expect_err(text)
}

/// `rule` against each `(document, expected)`.
fn check(text: &str, cases: &[(Value, bool)]) {
    let rule = rule(text);
    for (document, expected) in cases {
        assert_eq!(
            rule.matches(document),
            *expected,
            "rule {text} on {document}"
        );
    }
}

#[test]
fn exact_strings_and_or_within_a_key_and_across_keys() {
    check(
        r#"{"street": ["五角场街道", "殷行街道"], "kind": ["citizen"]}"#,
        &[
            (json!({"street": "五角场街道", "kind": "citizen"}), true),
            (json!({"street": "殷行街道", "kind": "citizen"}), true),
            (json!({"street": "五角场街道", "kind": "enterprise"}), false),
            (json!({"street": "五角场街道"}), false),
            (json!({"street": "五角场", "kind": "citizen"}), false),
        ],
    );
}

#[test]
fn an_array_attribute_matches_when_any_element_does() {
    check(
        r#"{"groups": ["退役军人"]}"#,
        &[
            (json!({"groups": ["高校毕业生", "退役军人"]}), true),
            (json!({"groups": ["高校毕业生"]}), false),
            (json!({"groups": []}), false),
        ],
    );
}

#[test]
fn numbers_match_by_value_at_five_decimals_and_never_match_strings() {
    check(
        r#"{"employees": [100]}"#,
        &[
            (json!({"employees": 100}), true),
            (json!({"employees": 100.0}), true),
            (json!({"employees": 100.000001}), true),
            (json!({"employees": 100.0001}), false),
            (json!({"employees": "100"}), false),
        ],
    );
    check(
        r#"{"code": ["100"]}"#,
        &[
            (json!({"code": 100}), false),
            (json!({"code": "100"}), true),
        ],
    );
}

#[test]
fn numeric_ranges_with_open_and_closed_bounds() {
    let text = r#"{"age": [{"numeric": [">=", 16, "<", 60]}]}"#;
    check(
        text,
        &[
            (json!({"age": 16}), true),
            (json!({"age": 59.99999}), true),
            (json!({"age": 60}), false),
            (json!({"age": 15}), false),
            (json!({"age": "30"}), false),
            (json!({}), false),
        ],
    );
    check(
        r#"{"capital": [{"numeric": ["=", 5000000]}]}"#,
        &[
            (json!({"capital": 5e6}), true),
            (json!({"capital": 5000001}), false),
        ],
    );
    check(
        r#"{"x": [{"numeric": ["<=", -1.5]}]}"#,
        &[(json!({"x": -1.5}), true), (json!({"x": -1.4}), false)],
    );
    assert!(
        rejected(r#"{"age": [{"numeric": ["<", 60, ">", 16]}]}"#)
            .at
            .starts_with("$.age[0].numeric")
    );
    assert!(
        rejected(r#"{"age": [{"numeric": [">", 60, "<", 16]}]}"#)
            .message
            .contains("lower bound")
    );
    assert!(
        rejected(r#"{"age": [{"numeric": [">", 1e10]}]}"#)
            .message
            .contains("within")
    );
    assert!(
        rejected(r#"{"age": [{"numeric": ["~", 1]}]}"#)
            .message
            .contains("operators")
    );
}

#[test]
fn prefix_suffix_and_equals_ignore_case_apply_to_strings_only() {
    check(
        r#"{"email_domain": [{"suffix": ".edu.cn"}], "name": [{"prefix": "上海"}]}"#,
        &[
            (
                json!({"email_domain": "fudan.edu.cn", "name": "上海杨浦智造"}),
                true,
            ),
            (
                json!({"email_domain": "fudan.edu.cn", "name": "杨浦上海"}),
                false,
            ),
            (json!({"email_domain": 1, "name": "上海"}), false),
        ],
    );
    check(
        r#"{"language": [{"equals-ignore-case": "EN"}]}"#,
        &[
            (json!({"language": "en"}), true),
            (json!({"language": "En"}), true),
            (json!({"language": "eng"}), false),
        ],
    );
}

#[test]
fn anything_but_needs_the_key_and_supports_lists_prefix_and_suffix() {
    check(
        r#"{"size": [{"anything-but": ["大", "中"]}]}"#,
        &[
            (json!({"size": "小"}), true),
            (json!({"size": "大"}), false),
            (json!({}), false),
            (json!({"size": ["大", "微"]}), true),
        ],
    );
    check(
        r#"{"employees": [{"anything-but": 0}]}"#,
        &[
            (json!({"employees": 3}), true),
            (json!({"employees": 0}), false),
        ],
    );
    check(
        r#"{"street": [{"anything-but": {"prefix": "五角场"}}]}"#,
        &[
            (json!({"street": "殷行街道"}), true),
            (json!({"street": "五角场街道"}), false),
            (json!({}), false),
        ],
    );
    check(
        r#"{"credit_code": [{"anything-but": {"suffix": "X"}}]}"#,
        &[
            (json!({"credit_code": "91310110MA1G8XXX0Y"}), true),
            (json!({"credit_code": "9131X"}), false),
        ],
    );
}

#[test]
fn exists_is_about_the_key_not_its_value() {
    check(
        r#"{"retired_at": [{"exists": true}]}"#,
        &[
            (json!({"retired_at": "2020-01-01"}), true),
            (json!({"retired_at": null}), true),
            (json!({}), false),
        ],
    );
    check(
        r#"{"park": [{"exists": false}]}"#,
        &[(json!({}), true), (json!({"park": "长阳创谷"}), false)],
    );
    check(
        r#"{"a": {"b": [{"exists": false}]}}"#,
        &[
            (json!({"a": {}}), true),
            (json!({}), true),
            (json!({"a": {"b": 1}}), false),
        ],
    );
}

#[test]
fn nested_keys_follow_objects_and_arrays_of_objects() {
    check(
        r#"{"enterprise": {"qualifications": ["高新技术企业"], "size": ["小", "微"]}}"#,
        &[
            (
                json!({"enterprise": {"qualifications": ["专精特新", "高新技术企业"], "size": "小"}}),
                true,
            ),
            (
                json!({"enterprise": {"qualifications": ["专精特新"], "size": "小"}}),
                false,
            ),
            (json!({"enterprise": "小"}), false),
        ],
    );
    check(
        r#"{"contacts": {"channel": ["email"]}}"#,
        &[
            (
                json!({"contacts": [{"channel": "sms"}, {"channel": "email"}]}),
                true,
            ),
            (json!({"contacts": [{"channel": "sms"}]}), false),
        ],
    );
}

#[test]
fn or_combines_whole_sub_rules_and_nests() {
    let text = r#"{
        "street": ["五角场街道"],
        "$or": [
            {"groups": ["高校毕业生"]},
            {"age": [{"numeric": [">=", 60]}], "$or": [{"hukou": ["上海"]}, {"residence_years": [{"numeric": [">=", 5]}]}]}
        ]
    }"#;
    check(
        text,
        &[
            (
                json!({"street": "五角场街道", "groups": ["高校毕业生"]}),
                true,
            ),
            (
                json!({"street": "五角场街道", "age": 70, "hukou": "上海"}),
                true,
            ),
            (
                json!({"street": "五角场街道", "age": 70, "residence_years": 6}),
                true,
            ),
            (json!({"street": "五角场街道", "age": 70}), false),
            (
                json!({"street": "殷行街道", "groups": ["高校毕业生"]}),
                false,
            ),
        ],
    );
    assert!(
        rejected(r#"{"$or": [{"a": ["x"]}]}"#)
            .message
            .contains("at least two")
    );
    assert!(rejected(r#"{"$or": {"a": ["x"]}}"#).at == "$.$or");
}

#[test]
fn dates_compare_as_calendar_dates() {
    check(
        r#"{"registered_on": [{"date": [">=", "2020-01-01", "<", "2024-01-01"]}]}"#,
        &[
            (json!({"registered_on": "2020-01-01"}), true),
            (json!({"registered_on": "2023-12-31"}), true),
            (json!({"registered_on": "2024-01-01"}), false),
            (json!({"registered_on": "2023-02-30"}), false),
            (json!({"registered_on": 20200101}), false),
        ],
    );
    assert!(
        rejected(r#"{"d": [{"date": [">", "2023-2-1"]}]}"#)
            .message
            .contains("YYYY-MM-DD")
    );
}

#[test]
fn an_industry_code_covers_the_codes_below_it() {
    check(
        r#"{"industry": [{"industry": "C39"}]}"#,
        &[
            (json!({"industry": "C39"}), true),
            (json!({"industry": "C391"}), true),
            (json!({"industry": "C3911"}), true),
            (json!({"industry": "C3811"}), false),
            (json!({"industry": "I65"}), false),
        ],
    );
    check(
        r#"{"industry": [{"industry": "M"}]}"#,
        &[
            (json!({"industry": "M7320"}), true),
            (json!({"industry": "I6510"}), false),
        ],
    );
    assert!(
        rejected(r#"{"industry": [{"industry": "C3"}]}"#)
            .message
            .contains("GB/T 4754")
    );
    assert!(
        rejected(r#"{"industry": [{"industry": "Z10"}]}"#)
            .message
            .contains("GB/T 4754")
    );
}

#[test]
fn invalid_rules_say_where() {
    let cases = [
        (r#"[]"#, "$"),
        (r#"{}"#, "$"),
        (r#"{"street": "五角场街道"}"#, "$.street"),
        (r#"{"street": []}"#, "$.street"),
        (r#"{"street": [["x"]]}"#, "$.street[0]"),
        (r#"{"a": {"b": [{"prefix": ""}]}}"#, "$.a.b[0].prefix"),
        (r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#, "$.a[0]"),
        (r#"{"a": [{"regex": ".*"}]}"#, "$.a[0].regex"),
        (r#"{"a": [{"exists": "yes"}]}"#, "$.a[0].exists"),
        (
            r#"{"a": [{"anything-but": [true]}]}"#,
            "$.a[0].anything-but[0]",
        ),
        (r#"{"a": [1, 2,]}"#, "$"),
    ];
    for (text, at) in cases {
        let e = rejected(text);
        assert_eq!(e.at, at, "{text}: {e}");
        assert!(!e.message.is_empty());
    }
}

#[test]
fn limits_on_combinations_depth_and_size_are_enforced() {
    // 10 × 10 × 2 = 200 combinations.
    let ten: Vec<String> = (0..10).map(|i| format!("\"v{i}\"")).collect();
    let text = format!(
        r#"{{"a": [{0}], "b": [{0}], "c": ["x", "y"]}}"#,
        ten.join(",")
    );
    assert!(rejected(&text).message.contains("200 value combinations"));
    // 10 × 10 = 100 is fine, and $or branches add up rather than multiply.
    rule(&format!(r#"{{"a": [{0}], "b": [{0}]}}"#, ten.join(",")));
    rule(&format!(
        r#"{{"$or": [{{"a": [{0}], "b": [{0}]}}, {{"c": ["x"]}}]}}"#,
        ten.join(",")
    ));

    rule(r#"{"a": {"b": {"c": {"d": {"e": {"f": ["x"]}}}}}}"#);
    assert!(
        rejected(r#"{"a": {"b": {"c": {"d": {"e": {"f": {"g": ["x"]}}}}}}}"#)
            .message
            .contains("deeper")
    );
    assert!(
        rejected(&format!(r#"{{"a": ["{}"]}}"#, "x".repeat(MAX_RULE_BYTES)))
            .message
            .contains("bytes")
    );
}

#[test]
fn explain_names_the_conditions_that_matched() {
    let rule = rule(
        r#"{"street": ["五角场街道"], "$or": [{"groups": ["退役军人"]}, {"age": [{"numeric": [">=", 60]}]}]}"#,
    );
    let reasons = rule
        .explain(&json!({"street": "五角场街道", "age": 65}))
        .expect("matches");
    // In key order (`$or` sorts before letters).
    assert_eq!(reasons, ["age >= 60", "street = \"五角场街道\""]);
    assert_eq!(rule.explain(&json!({"street": "五角场街道"})), None);
}
