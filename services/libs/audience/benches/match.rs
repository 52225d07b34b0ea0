//! `just bench-match`: the bitmap index against a linear scan evaluating the same rules
//! profile by profile, on synthetic Yangpu profiles generated with a fixed seed.
//!
//! Prints, per rule: matches, median and p99 time to the materialised id list for each
//! engine, and the ratio; then index build time and index memory per profile (RSS growth
//! while building). `BENCH_PROFILES` (default 1,000,000) and `BENCH_ROUNDS` (default 15)
//! scale it down for a quick look.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde_json::{Map, Value, json};
use zhida_audience::{Index, Rule};

/// Streets weighted roughly by population.
const STREETS: [(&str, u32); 12] = [
    ("五角场街道", 14),
    ("殷行街道", 13),
    ("长白新村街道", 8),
    ("延吉新村街道", 8),
    ("控江路街道", 9),
    ("四平路街道", 8),
    ("平凉路街道", 7),
    ("江浦路街道", 7),
    ("定海路街道", 8),
    ("大桥街道", 8),
    ("长海路街道", 6),
    ("新江湾城街道", 4),
];
const GROUPS: [&str; 6] = [
    "高校毕业生",
    "失业人员",
    "退役军人",
    "农民工",
    "老年人",
    "残疾人",
];
const INDUSTRIES: [(&str, u32); 10] = [
    ("I6510", 18),
    ("I6520", 8),
    ("M7320", 10),
    ("M7520", 8),
    ("F5191", 15),
    ("L7212", 9),
    ("C3911", 5),
    ("C3914", 4),
    ("K7010", 8),
    ("E4813", 15),
];
const SIZES: [(&str, u32); 4] = [("微", 60), ("小", 25), ("中", 10), ("大", 5)];
const QUALIFICATIONS: [&str; 3] = ["高新技术企业", "专精特新", "科技型中小企业"];

fn weighted<'a>(rng: &mut StdRng, table: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (value, weight) in table {
        if pick < *weight {
            return value;
        }
        pick -= weight;
    }
    table[0].0
}

fn profile(rng: &mut StdRng) -> Value {
    let mut doc = Map::new();
    doc.insert("street".into(), json!(weighted(rng, &STREETS)));
    if rng.random_bool(0.75) {
        doc.insert("kind".into(), json!("citizen"));
        doc.insert("age".into(), json!(rng.random_range(16..95)));
        // Most citizens have no recorded group: the key is then absent.
        if rng.random_bool(0.3) {
            let n = rng.random_range(1..3);
            let groups: Vec<&str> = GROUPS.choose_multiple(rng, n).copied().collect();
            doc.insert("groups".into(), json!(groups));
        }
        doc.insert(
            "hukou".into(),
            json!(if rng.random_bool(0.6) {
                "上海"
            } else {
                "外省市"
            }),
        );
    } else {
        doc.insert("kind".into(), json!("enterprise"));
        let mut e = Map::new();
        e.insert("industry".into(), json!(weighted(rng, &INDUSTRIES)));
        e.insert("size".into(), json!(weighted(rng, &SIZES)));
        let year = rng.random_range(2000..2024);
        e.insert(
            "registered_on".into(),
            json!(format!(
                "{year}-{:02}-{:02}",
                rng.random_range(1..13),
                rng.random_range(1..29)
            )),
        );
        e.insert(
            "capital".into(),
            json!(rng.random_range(10..100_000) as f64 * 1000.0),
        );
        e.insert("employees".into(), json!(rng.random_range(1..2000)));
        let n = if rng.random_bool(0.85) {
            0
        } else {
            rng.random_range(1..3)
        };
        let q: Vec<&str> = QUALIFICATIONS.choose_multiple(rng, n).copied().collect();
        e.insert("qualifications".into(), json!(q));
        doc.insert("enterprise".into(), Value::Object(e));
    }
    Value::Object(doc)
}

const RULES: [(&str, &str); 20] = [
    ("one street", r#"{"street": ["新江湾城街道"]}"#),
    ("graduates", r#"{"groups": ["高校毕业生"]}"#),
    (
        "graduates in two streets",
        r#"{"groups": ["高校毕业生"], "street": ["五角场街道", "殷行街道"]}"#,
    ),
    (
        "veterans or unemployed",
        r#"{"groups": ["退役军人", "失业人员"]}"#,
    ),
    (
        "elderly by age",
        r#"{"kind": ["citizen"], "age": [{"numeric": [">=", 80]}]}"#,
    ),
    (
        "elderly locals in 五角场",
        r#"{"age": [{"numeric": [">=", 70]}], "hukou": ["上海"], "street": ["五角场街道"]}"#,
    ),
    (
        "young non-locals",
        r#"{"age": [{"numeric": [">=", 18, "<", 25]}], "hukou": [{"anything-but": "上海"}]}"#,
    ),
    (
        "software firms",
        r#"{"enterprise": {"industry": [{"industry": "I65"}]}}"#,
    ),
    (
        "manufacturing C39",
        r#"{"enterprise": {"industry": [{"industry": "C39"}]}}"#,
    ),
    (
        "small and micro tech",
        r#"{"enterprise": {"size": ["小", "微"], "industry": [{"industry": "I"}, {"industry": "M"}]}}"#,
    ),
    (
        "high-tech enterprises",
        r#"{"enterprise": {"qualifications": ["高新技术企业"]}}"#,
    ),
    (
        "专精特新 medium",
        r#"{"enterprise": {"qualifications": ["专精特新"], "size": ["中"]}}"#,
    ),
    (
        "new since 2022",
        r#"{"enterprise": {"registered_on": [{"date": [">=", "2022-01-01"]}]}}"#,
    ),
    (
        "new small firms in 杨浦 north",
        r#"{"street": ["殷行街道", "新江湾城街道", "长海路街道"], "enterprise": {"registered_on": [{"date": [">=", "2021-01-01"]}], "size": ["小", "微"]}}"#,
    ),
    (
        "capital over 50M",
        r#"{"enterprise": {"capital": [{"numeric": [">", 50000000]}]}}"#,
    ),
    (
        "employers 100+",
        r#"{"enterprise": {"employees": [{"numeric": [">=", 100]}], "size": [{"anything-but": "大"}]}}"#,
    ),
    ("streets by prefix", r#"{"street": [{"prefix": "长"}]}"#),
    (
        "graduates or young firms",
        r#"{"$or": [{"groups": ["高校毕业生"]}, {"enterprise": {"registered_on": [{"date": [">=", "2023-01-01"]}]}}]}"#,
    ),
    (
        "no groups recorded",
        r#"{"kind": ["citizen"], "groups": [{"exists": false}], "street": ["大桥街道"]}"#,
    ),
    (
        "disabled or elderly in 3 streets",
        r#"{"$or": [{"groups": ["残疾人"]}, {"age": [{"numeric": [">=", 85]}]}], "street": ["定海路街道", "平凉路街道", "江浦路街道"]}"#,
    ),
];

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut samples = Vec::with_capacity(rounds);
    let mut last = None;
    for _ in 0..rounds {
        let start = Instant::now();
        let out = f();
        samples.push(start.elapsed());
        last = Some(out);
    }
    samples.sort();
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        last.expect("at least one round"),
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let profiles: usize = std::env::var("BENCH_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut rng = StdRng::seed_from_u64(20_231_118);
    let started = Instant::now();
    let docs: Vec<(String, Value)> = (0..profiles)
        .map(|i| (format!("s{i:07}"), profile(&mut rng)))
        .collect();
    println!(
        "generated {profiles} profiles (seed 20231118) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let before = rss_bytes();
    let started = Instant::now();
    let mut index = Index::default();
    for (id, doc) in &docs {
        index.upsert(id, doc, None);
    }
    let build = started.elapsed();
    let index_bytes = rss_bytes().saturating_sub(before);
    println!(
        "index build {:.2} s; index memory {} MiB = {} bytes/profile (RSS growth)\n",
        build.as_secs_f64(),
        index_bytes / (1 << 20),
        index_bytes / profiles as u64
    );

    println!(
        "{:<34} {:>8} {:>6} | {:>10} {:>10} | {:>10} {:>10} | {:>7}",
        "rule", "matches", "%", "index p50", "index p99", "scan p50", "scan p99", "speedup"
    );
    let mut speedups = Vec::new();
    for (name, text) in RULES {
        let rule = Rule::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (i50, i99, ids) = time(rounds, || index.matching(&rule));
        let scan_rounds = rounds.clamp(1, 5);
        let (s50, s99, scanned) = time(scan_rounds, || {
            docs.iter()
                .filter(|(_, d)| rule.matches(d))
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
        });
        assert_eq!(ids.len(), scanned.len(), "{name}: index and scan disagree");
        let speedup = s50.as_secs_f64() / i50.as_secs_f64().max(1e-9);
        speedups.push(speedup);
        println!(
            "{:<34} {:>8} {:>5.1}% | {:>10} {:>10} | {:>10} {:>10} | {:>6.0}×",
            name,
            ids.len(),
            100.0 * ids.len() as f64 / profiles as f64,
            ms(i50),
            ms(i99),
            ms(s50),
            ms(s99),
            speedup
        );
    }
    speedups.sort_by(f64::total_cmp);
    println!(
        "\nmedian speedup over the linear scan: {:.0}× (times in ms; {rounds} index rounds, up to 5 scan rounds per rule)",
        speedups[speedups.len() / 2]
    );
}
