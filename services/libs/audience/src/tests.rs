//! Conformance: each operator, with the edge cases the AWS SNS filter-policy documentation
//! calls out, on profile-shaped documents.

use serde_json::{Value, json};

use super::*;

fn industries() -> Industries {
    Industries::gbt4754_2017()
}

fn rule(text: &str) -> Rule {
    Rule::parse(text, &industries()).unwrap_or_else(|e| panic!("{text} must parse: {e}"))
}

fn rejected(text: &str) -> RuleError {
    Rule::parse(text, &industries()).expect_err(text)
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
            (json!({"registered_on": "2021-+1-+5"}), false),
        ],
    );
    assert!(!crate::is_date("+999-01-01"));
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
            (json!({"industry": "I6513"}), false),
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
    // Well shaped, but the standard has no division 99 in manufacturing.
    assert_eq!(
        rejected(r#"{"industry": [{"industry": "C99"}]}"#).at,
        "$.industry[0].industry"
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

mod property {
    //! The index must agree with `Rule::matches` on random profiles and random rules.

    use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
    use serde_json::{Map, Value, json};

    use crate::{Index, Rule};

    const STREETS: [&str; 4] = ["五角场街道", "殷行街道", "控江路街道", "大桥街道"];
    const GROUPS: [&str; 4] = ["高校毕业生", "退役军人", "老年人", "农民工"];
    const SIZES: [&str; 4] = ["大", "中", "小", "微"];
    const INDUSTRIES: [&str; 6] = ["C39", "C391", "C3911", "I65", "I6513", "M7320"];
    const DATES: [&str; 4] = ["2019-05-01", "2020-01-01", "2022-12-31", "2024-02-29"];

    fn profile(rng: &mut StdRng) -> Value {
        let mut doc = Map::new();
        if rng.random_bool(0.9) {
            doc.insert("street".into(), json!(STREETS.choose(rng)));
        }
        if rng.random_bool(0.7) {
            doc.insert("age".into(), json!(rng.random_range(16..90)));
        }
        if rng.random_bool(0.6) {
            let n = rng.random_range(0..3);
            let groups: Vec<&str> = GROUPS.choose_multiple(rng, n).copied().collect();
            doc.insert("groups".into(), json!(groups));
        }
        if rng.random_bool(0.5) {
            let mut enterprise = Map::new();
            if rng.random_bool(0.8) {
                enterprise.insert("size".into(), json!(SIZES.choose(rng)));
            }
            if rng.random_bool(0.8) {
                enterprise.insert("industry".into(), json!(INDUSTRIES.choose(rng)));
            }
            if rng.random_bool(0.7) {
                enterprise.insert("registered_on".into(), json!(DATES.choose(rng)));
            }
            if rng.random_bool(0.5) {
                enterprise.insert(
                    "capital".into(),
                    json!(rng.random_range(0..1000) as f64 * 10.5),
                );
            }
            doc.insert("enterprise".into(), Value::Object(enterprise));
        }
        if rng.random_bool(0.3) {
            doc.insert("language".into(), json!(["zh", "EN", "En"].choose(rng)));
        }
        // Several numbers or dates at one path cannot be bit-sliced: the exact-value side.
        if rng.random_bool(0.4) {
            let n = rng.random_range(1..4);
            let scores: Vec<i32> = (0..n).map(|_| rng.random_range(0..6)).collect();
            doc.insert("scores".into(), json!(scores));
        }
        if rng.random_bool(0.2) {
            let dates: Vec<&str> = DATES.choose_multiple(rng, 2).copied().collect();
            doc.insert("visits".into(), json!(dates));
        }
        Value::Object(doc)
    }

    fn condition(rng: &mut StdRng, field: &str) -> Value {
        let op = rng.random_range(0..5);
        match (field, op) {
            ("street", 0) => json!(STREETS.choose(rng)),
            ("street", 1) => json!({"prefix": (["五角", "殷", "大"].choose(rng))}),
            ("street", 2) => json!({"suffix": "街道"}),
            ("street", _) => json!({"anything-but": [STREETS.choose(rng)]}),
            ("age", 0) => json!(rng.random_range(16..90)),
            ("age", 1) => json!({"anything-but": rng.random_range(16..90)}),
            ("age", _) => {
                json!({"numeric": [">=", rng.random_range(10..60), "<", rng.random_range(60..100)]})
            }
            ("groups", 0 | 1) => json!(GROUPS.choose(rng)),
            ("groups", 2) => json!({"anything-but": {"prefix": "高"}}),
            ("groups", _) => json!({"exists": rng.random_bool(0.5)}),
            ("size", 0 | 1) => json!(SIZES.choose(rng)),
            ("size", _) => json!({"anything-but": ["大", "中"]}),
            ("industry", 0) => json!({"industry": (["C", "C39", "C391", "I", "M73"].choose(rng))}),
            ("industry", _) => json!(INDUSTRIES.choose(rng)),
            ("registered_on", _) => json!({"date": [">=", DATES.choose(rng), "<=", "2024-12-31"]}),
            ("capital", 0) => json!({"numeric": ["<", 5000]}),
            ("capital", _) => json!({"exists": rng.random_bool(0.5)}),
            ("language", 0 | 1) => json!({"equals-ignore-case": "en"}),
            ("language", _) => json!({"anything-but": {"suffix": "n"}}),
            ("scores", 0) => json!(rng.random_range(0..6)),
            ("scores", 1) => json!({"anything-but": [rng.random_range(0..6), 2]}),
            ("scores", _) => json!({"numeric": [">", rng.random_range(0..6)]}),
            ("visits", _) => json!({"date": ["<", DATES.choose(rng)]}),
            _ => json!({"exists": true}),
        }
    }

    fn rule(rng: &mut StdRng, depth: u32) -> Value {
        let mut rule = Map::new();
        for _ in 0..rng.random_range(1..3) {
            match rng.random_range(0..7) {
                0 => {
                    rule.insert(
                        "street".into(),
                        json!([condition(rng, "street"), condition(rng, "street")]),
                    );
                }
                1 => {
                    rule.insert("age".into(), json!([condition(rng, "age")]));
                }
                2 => {
                    rule.insert("groups".into(), json!([condition(rng, "groups")]));
                }
                3 => {
                    let field = *["size", "industry", "registered_on", "capital"]
                        .choose(rng)
                        .unwrap_or(&"size");
                    rule.insert("enterprise".into(), json!({field: [condition(rng, field)]}));
                }
                4 => {
                    let field = *["language", "scores", "visits"]
                        .choose(rng)
                        .unwrap_or(&"language");
                    rule.insert(field.into(), json!([condition(rng, field)]));
                }
                5 if depth < 2 => {
                    rule.insert(
                        "$or".into(),
                        json!([self::rule(rng, depth + 1), self::rule(rng, depth + 1)]),
                    );
                }
                _ => {
                    rule.insert(
                        "enterprise".into(),
                        json!([{"exists": rng.random_bool(0.5)}]),
                    );
                }
            }
        }
        Value::Object(rule)
    }

    #[test]
    fn the_index_agrees_with_evaluating_each_profile() {
        let mut rng = StdRng::seed_from_u64(20231118);
        let mut index = Index::default();
        let mut profiles: Vec<(String, Value)> = (0..400)
            .map(|i| (format!("p{i}"), profile(&mut rng)))
            .collect();
        for (id, doc) in &profiles {
            index.upsert(id, doc, None);
        }
        // Replace and delete some, so the index is tested after churn too: half of them
        // with the previous document, half by sweeping.
        for i in (0..400).step_by(7) {
            let previous = std::mem::replace(&mut profiles[i].1, profile(&mut rng));
            let hint = (i % 2 == 0).then_some(&previous);
            index.upsert(&profiles[i].0, &profiles[i].1, hint);
        }
        for i in (0..400).step_by(11) {
            let hint = (i % 2 == 1).then_some(&profiles[i].1);
            assert!(index.remove(&profiles[i].0, hint));
            assert!(!index.contains(&profiles[i].0));
        }
        let removed: Vec<usize> = (0..400).step_by(11).collect();
        let live: Vec<&(String, Value)> = profiles
            .iter()
            .enumerate()
            .filter(|(i, _)| !removed.contains(i))
            .map(|(_, p)| p)
            .collect();
        assert_eq!(index.len(), live.len());

        let mut checked = 0;
        let industries = super::industries();
        for _ in 0..600 {
            let text = rule(&mut rng, 0);
            let Ok(rule) = Rule::from_json(&text, &industries) else {
                continue;
            };
            let mut expected: Vec<&str> = live
                .iter()
                .filter(|(_, doc)| rule.matches(doc))
                .map(|(id, _)| id.as_str())
                .collect();
            let mut actual = index.matching(&rule);
            expected.sort_unstable();
            actual.sort_unstable();
            assert_eq!(actual, expected, "rule {text}");
            // Explanations from the bitmaps are the ones evaluation gives.
            for (id, reasons) in index.matching_explained(&rule) {
                let (_, doc) = live
                    .iter()
                    .find(|(live_id, _)| live_id == id)
                    .expect("a live document");
                let reasons: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                assert_eq!(Some(reasons), rule.explain(doc), "rule {text}, {id}");
            }
            checked += 1;
        }
        assert!(checked > 500, "only {checked} random rules were valid");
    }
}

#[test]
fn the_readme_example_means_what_it_says() {
    check(
        r#"{
          "street": ["五角场街道", "殷行街道"],
          "$or": [
            {"groups": ["高校毕业生"], "age": [{"numeric": [">=", 16, "<", 30]}]},
            {"enterprise": {"size": ["小", "微"], "industry": [{"industry": "I65"}],
                            "registered_on": [{"date": [">=", "2022-01-01"]}]}}
          ]
        }"#,
        &[
            (
                json!({"street": "五角场街道", "groups": ["高校毕业生"], "age": 23}),
                true,
            ),
            (
                json!({"street": "五角场街道", "groups": ["高校毕业生"], "age": 31}),
                false,
            ),
            (
                json!({"street": "殷行街道", "enterprise": {"size": "微", "industry": "I6513", "registered_on": "2023-04-01"}}),
                true,
            ),
            (
                json!({"street": "殷行街道", "enterprise": {"size": "中", "industry": "I6513", "registered_on": "2023-04-01"}}),
                false,
            ),
            (
                json!({"street": "大桥街道", "groups": ["高校毕业生"], "age": 23}),
                false,
            ),
        ],
    );
}
