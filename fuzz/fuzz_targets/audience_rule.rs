//! Audience rules as a department (CreateDraft, PreviewAudience) or a subscriber (a
//! subscription's filter) writes them: any text must parse or be refused with an error,
//! never panic, hang or blow the stack. A rule that parses must agree with itself: the
//! bitmap index (what the profiler serves audiences from) finds and counts exactly the
//! documents that rule evaluation (`Rule::matches`) matches.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use zhida_audience::{Index, Rule};
use zhida_catalogue::Industries;

static INDUSTRIES: LazyLock<Industries> = LazyLock::new(Industries::gbt4754_2017);

/// Profile- and policy-shaped documents (what rules and filters are matched against), with
/// the value kinds the operators treat differently: strings, numbers, dates, arrays,
/// booleans, null, nesting, and absent keys.
static DOCUMENTS: LazyLock<Vec<(String, Value)>> = LazyLock::new(|| {
    let documents = [
        json!({"kind": "SUBJECT_KIND_CITIZEN", "street": "五角场街道",
               "citizen": {"birth_year": 1999, "groups": ["高校毕业生", "退役军人"],
                           "hukou": "本区", "language": "zh"}}),
        json!({"kind": "SUBJECT_KIND_CITIZEN", "street": "殷行街道",
               "citizen": {"birth_year": 1950, "groups": ["老年人"], "hukou": "外省市"}}),
        json!({"kind": "SUBJECT_KIND_ENTERPRISE", "street": "长白新村街道",
               "enterprise": {"industry": "I6513", "size": "小", "registered_on": "2022-03-01",
                              "registered_capital": 500.5, "employees": 42,
                              "qualifications": ["高新技术企业", "专精特新"],
                              "parks": ["park-yangpu-chuangzhi"], "associations": []}}),
        json!({"kind": "SUBJECT_KIND_ENTERPRISE", "street": "五角场街道",
               "enterprise": {"industry": "C3911", "size": "大", "registered_on": "1998-12-31",
                              "registered_capital": 0.00001, "employees": 0}}),
        json!({"kind": "SUBJECT_KIND_CITIZEN"}),
        json!({}),
        json!({"policy_id": "pol-1", "title": "稳岗补贴", "tags": ["就业创业", "人才"],
               "department": "区人社局", "published_at": "2026-11-27T08:00:00Z",
               "service_url": "https://zwdt.sh.gov.cn/x"}),
        json!({"street": null, "flag": true, "n": -1000000000, "nested": {"a": {"b": [1, "1", null]}}}),
    ];
    documents
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("d{i}"), d))
        .collect()
});

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut index = Index::default();
    for (id, document) in DOCUMENTS.iter() {
        index.upsert(id, document, None);
    }
    index
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rule) = Rule::parse(text, &INDUSTRIES) else {
        return;
    };
    let mut expected = Vec::new();
    for (id, document) in DOCUMENTS.iter() {
        if rule.matches(document) {
            expected.push(id.as_str());
        }
    }
    let mut found = INDEX.matching(&rule);
    found.sort_unstable();
    assert_eq!(found, expected, "index and evaluation disagree for {text}");
    assert_eq!(INDEX.count(&rule), expected.len() as u64);
});
