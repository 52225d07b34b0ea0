//! `cargo bench -p zhida-audience --bench match` (or `just bench-match`): the bitmap index
//! against three other ways to answer the same rules, on synthetic Yangpu profiles generated
//! with a fixed seed:
//!
//! - a linear scan evaluating `Rule::matches` profile by profile (the reference semantics);
//! - Redis set algebra over per-(path, value) sets (`match/redis.rs`);
//! - PostgreSQL, a column per field with B-tree and GIN indexes (`match/postgres.rs`).
//!
//! Prints, per rule: matches, median and p99 time to the materialised id list for each, and
//! the engine's speedup over the others; then the median speedups. Also the index build
//! time and memory per profile (RSS growth), and the load time of each baseline. Every
//! baseline must return as many ids as the engine, or the bench panics.
//!
//! Then policy → subscriptions: `BENCH_SUBSCRIPTIONS` (default 100,000) subscriptions with
//! tags and filters of their own, 20 policies, the tag index against a scan of them all.
//!
//! Environment: `BENCH_PROFILES` (default 1,000,000) and `BENCH_ROUNDS` (default 15) scale
//! it down for a quick look; `ZHIDA_BENCH_REDIS` (default `redis://127.0.0.1:6379/9`) and
//! `ZHIDA_BENCH_POSTGRES` (default `host=127.0.0.1 user=postgres dbname=test`) say where
//! the baselines run. A server that cannot be reached is reported and skipped. The bench
//! deletes what it creates there: keys `zhida-bench:*`, schema `zhida_bench`.

#[path = "match/postgres.rs"]
mod postgres_table;
#[path = "match/redis.rs"]
mod redis_sets;
#[path = "match/rule.rs"]
mod rule;

use std::{
    convert::Infallible,
    error::Error,
    str::FromStr,
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde_json::{Map, Value, json};
use zhida_audience::{Index, Rule, Subscription, Subscriptions};
use zhida_catalogue::{Catalogue, Terms};

use crate::{postgres_table::ProfileTable, redis_sets::RedisSets, rule::Expr};

const SEED: u64 = 20_231_118;

/// The catalogue's streets weighted roughly by population, in its order (定海路 … 长海路;
/// 五角场 and 殷行 the largest, 新江湾城 the smallest).
const STREET_WEIGHTS: [u32; 12] = [8, 7, 7, 8, 9, 8, 8, 13, 8, 14, 4, 6];
/// The catalogue's size classes (大 中 小 微) weighted: most firms are micro.
const SIZE_WEIGHTS: [u32; 4] = [5, 10, 25, 60];
/// Yangpu's industry mix, a sample of the standard's classes.
const INDUSTRIES: [(&str, u32); 10] = [
    ("I6513", 18),
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
const PARKS: [&str; 4] = [
    "park-yangpu-science",
    "park-changyang-valley",
    "park-fudan-tech",
    "park-tongji-design",
];
const ASSOCIATIONS: [&str; 6] = [
    "assoc-software",
    "assoc-ic-design",
    "assoc-catering",
    "assoc-logistics",
    "assoc-smes",
    "assoc-construction",
];

/// What generated profiles draw from: the catalogue's streets, groups, sizes and
/// qualifications (`zhida_catalogue`), with the weights above.
struct Draws {
    streets: Vec<(&'static str, u32)>,
    groups: &'static [&'static str],
    sizes: Vec<(&'static str, u32)>,
    qualifications: &'static [&'static str],
}

impl Draws {
    fn new(catalogue: &Catalogue) -> Self {
        for (code, _) in INDUSTRIES {
            assert!(catalogue.industries.contains(code), "{code}: no such class");
        }
        Self {
            streets: with_weights(catalogue.streets, &STREET_WEIGHTS),
            groups: catalogue.groups.as_slice(),
            sizes: with_weights(catalogue.sizes, &SIZE_WEIGHTS),
            qualifications: catalogue.qualifications.as_slice(),
        }
    }
}

fn with_weights(terms: Terms, weights: &[u32]) -> Vec<(&'static str, u32)> {
    assert_eq!(terms.len(), weights.len(), "one weight per term of {terms}");
    terms
        .as_slice()
        .iter()
        .copied()
        .zip(weights.iter().copied())
        .collect()
}

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

/// A profile document as the profiler builds it (`services/profiler/src/document.rs`): the
/// proto3 JSON mapping of `Profile` with proto field names, without the identifying and
/// contact fields. Like proto3 JSON, it omits empty repeated fields: the key is then
/// absent, which `exists: false` finds.
fn profile(rng: &mut StdRng, draws: &Draws) -> Value {
    let mut doc = Map::new();
    doc.insert("street".into(), json!(weighted(rng, &draws.streets)));
    if rng.random_bool(0.75) {
        doc.insert("kind".into(), json!("SUBJECT_KIND_CITIZEN"));
        doc.insert("citizen".into(), citizen(rng, draws));
    } else {
        doc.insert("kind".into(), json!("SUBJECT_KIND_ENTERPRISE"));
        doc.insert("enterprise".into(), enterprise(rng, draws));
    }
    Value::Object(doc)
}

fn citizen(rng: &mut StdRng, draws: &Draws) -> Value {
    let mut c = Map::new();
    c.insert("birth_year".into(), json!(rng.random_range(1931..=2010)));
    // Most citizens have no recorded group.
    let n = if rng.random_bool(0.3) {
        rng.random_range(1..=2)
    } else {
        0
    };
    insert_list(&mut c, "groups", some_of(rng, draws.groups, n));
    let hukou = if rng.random_bool(0.6) {
        "本市"
    } else {
        "外省市"
    };
    c.insert("hukou".into(), json!(hukou));
    let language = if rng.random_bool(0.95) { "zh" } else { "en" };
    c.insert("language".into(), json!(language));
    Value::Object(c)
}

fn enterprise(rng: &mut StdRng, draws: &Draws) -> Value {
    let mut e = Map::new();
    let size = weighted(rng, &draws.sizes);
    e.insert("industry".into(), json!(weighted(rng, &INDUSTRIES)));
    e.insert("size".into(), json!(size));
    let registered_on = format!(
        "{}-{:02}-{:02}",
        rng.random_range(2000..2024),
        rng.random_range(1..=12),
        rng.random_range(1..=28)
    );
    e.insert("registered_on".into(), json!(registered_on));
    // In 万元, log-uniform over 10 to 100,000: most firms are small, a few very large.
    let capital = 10f64.powf(rng.random_range(1.0..5.0)).round();
    e.insert("registered_capital".into(), json!(capital));
    // Headcount consistent with the size class (micro < 10, small < 100, medium < 300).
    let employees = match size {
        "微" => rng.random_range(1..10),
        "小" => rng.random_range(10..100),
        "中" => rng.random_range(100..300),
        _ => rng.random_range(300..3000),
    };
    e.insert("employees".into(), json!(employees));
    let n = if rng.random_bool(0.15) {
        rng.random_range(1..=2)
    } else {
        0
    };
    insert_list(
        &mut e,
        "qualifications",
        some_of(rng, draws.qualifications, n),
    );
    let n = usize::from(rng.random_bool(0.3));
    insert_list(&mut e, "parks", some_of(rng, &PARKS, n));
    let n = usize::from(rng.random_bool(0.4));
    insert_list(&mut e, "associations", some_of(rng, &ASSOCIATIONS, n));
    Value::Object(e)
}

fn some_of<'a>(rng: &mut StdRng, items: &[&'a str], n: usize) -> Vec<&'a str> {
    items.choose_multiple(rng, n).copied().collect()
}

/// Inserts a repeated field unless it is empty, as proto3 JSON does.
fn insert_list(object: &mut Map<String, Value>, key: &str, items: Vec<&str>) {
    if !items.is_empty() {
        object.insert(key.into(), json!(items));
    }
}

/// Birth years stand for ages: the bench's "now" is 2026, so 80 years old is born ≤ 1946.
const RULES: [(&str, &str); 21] = [
    ("one street", r#"{"street": ["新江湾城街道"]}"#),
    ("graduates", r#"{"citizen": {"groups": ["高校毕业生"]}}"#),
    (
        "graduates in two streets",
        r#"{"citizen": {"groups": ["高校毕业生"]}, "street": ["五角场街道", "殷行街道"]}"#,
    ),
    (
        "veterans or unemployed",
        r#"{"citizen": {"groups": ["退役军人", "失业人员"]}}"#,
    ),
    (
        "elderly (80+)",
        r#"{"kind": ["SUBJECT_KIND_CITIZEN"], "citizen": {"birth_year": [{"numeric": ["<=", 1946]}]}}"#,
    ),
    (
        "elderly (70+) locals in 五角场",
        r#"{"citizen": {"birth_year": [{"numeric": ["<=", 1956]}], "hukou": ["本市"]}, "street": ["五角场街道"]}"#,
    ),
    (
        "young (18-25) non-locals",
        r#"{"citizen": {"birth_year": [{"numeric": [">", 2000, "<=", 2008]}], "hukou": [{"anything-but": "本市"}]}}"#,
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
        "capital over 50M yuan",
        r#"{"enterprise": {"registered_capital": [{"numeric": [">", 5000]}]}}"#,
    ),
    (
        "employers 100+, not large",
        r#"{"enterprise": {"employees": [{"numeric": [">=", 100]}], "size": [{"anything-but": "大"}]}}"#,
    ),
    ("streets by prefix", r#"{"street": [{"prefix": "长"}]}"#),
    (
        "graduates or young firms",
        r#"{"$or": [{"citizen": {"groups": ["高校毕业生"]}}, {"enterprise": {"registered_on": [{"date": [">=", "2023-01-01"]}]}}]}"#,
    ),
    (
        "no groups recorded",
        r#"{"kind": ["SUBJECT_KIND_CITIZEN"], "citizen": {"groups": [{"exists": false}]}, "street": ["大桥街道"]}"#,
    ),
    (
        "disabled or elderly in 3 streets",
        r#"{"citizen": {"$or": [{"groups": ["残疾人"]}, {"birth_year": [{"numeric": ["<=", 1941]}]}]}, "street": ["定海路街道", "平凉路街道", "江浦路街道"]}"#,
    ),
    (
        "park firms in an association",
        r#"{"enterprise": {"parks": ["park-yangpu-science", "park-changyang-valley"], "associations": [{"exists": true}]}}"#,
    ),
];

const DEPARTMENTS: [&str; 8] = [
    "区人力资源社会保障局",
    "区科委",
    "区商务委",
    "区发展改革委",
    "区民政局",
    "区教育局",
    "区卫生健康委",
    "区住房保障局",
];
const SUBSCRIPTION_SEED: u64 = 20_231_119;

fn zipf<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    let total: f64 = (1..=items.len()).map(|rank| 1.0 / rank as f64).sum();
    let mut pick = rng.random_range(0.0..total);
    for (rank, item) in items.iter().enumerate() {
        let weight = 1.0 / (rank + 1) as f64;
        if pick < weight {
            return item;
        }
        pick -= weight;
    }
    items[0]
}

/// The catalogue's tags, taken as most popular first (subscriptions and policies pick them
/// with a Zipf skew: employment draws far more subscribers than the tail).
fn tags_by_popularity(catalogue: &Catalogue) -> Vec<&str> {
    catalogue.tags.iter().map(|t| t.tag.as_str()).collect()
}

/// `count` subscriptions of random profiles: 1–3 tags each; a third carry a filter of their
/// own (departments, or only policies with an online service).
fn generate_subscriptions(
    count: usize,
    profiles: usize,
    catalogue: &Catalogue,
) -> Vec<(String, Subscription)> {
    let tags_by_popularity = tags_by_popularity(catalogue);
    let mut rng = StdRng::seed_from_u64(SUBSCRIPTION_SEED);
    (0..count)
        .map(|i| {
            let owner = format!("s{:07}", rng.random_range(0..profiles.max(1)));
            let mut tags: Vec<String> = (0..rng.random_range(1..=3))
                .map(|_| zipf(&mut rng, &tags_by_popularity).to_string())
                .collect();
            tags.sort();
            tags.dedup();
            let filter = match rng.random_range(0..10) {
                0..=1 => {
                    let n = rng.random_range(1..=2);
                    let departments = some_of(&mut rng, &DEPARTMENTS, n);
                    Some(format!(r#"{{"department": {}}}"#, json!(departments)))
                }
                2 => Some(r#"{"service_url": [{"prefix": "https://"}]}"#.to_string()),
                _ => None,
            };
            let subscription = Subscription {
                id: format!("sub-{i}"),
                tags,
                filter: filter
                    .map(|f| Rule::parse(&f, &catalogue.industries).expect("a valid filter")),
            };
            (owner, subscription)
        })
        .collect()
}

/// Policies as subscription filters see them: 1–3 tags, a department, sometimes a link.
fn generate_policies(count: usize, catalogue: &Catalogue) -> Vec<(Vec<String>, Value)> {
    let tags_by_popularity = tags_by_popularity(catalogue);
    let mut rng = StdRng::seed_from_u64(SUBSCRIPTION_SEED + 1);
    (0..count)
        .map(|i| {
            let mut tags: Vec<String> = (0..rng.random_range(1..=3))
                .map(|_| zipf(&mut rng, &tags_by_popularity).to_string())
                .collect();
            tags.sort();
            tags.dedup();
            let mut doc = json!({
                "policy_id": format!("pol-{i}"),
                "tags": tags,
                "department": DEPARTMENTS.choose(&mut rng).copied().unwrap_or("区科委"),
            });
            if rng.random_bool(0.5) {
                doc["service_url"] = json!("https://zwdt.sh.gov.cn/");
            }
            (tags, doc)
        })
        .collect()
}

/// policy → subscriptions: the tag index with filters against scanning every subscription.
fn bench_subscriptions(settings: &Settings, catalogue: &Catalogue) {
    let all = generate_subscriptions(settings.subscriptions, settings.profiles, catalogue);
    let before = rss_bytes();
    let started = Instant::now();
    let mut index = Subscriptions::default();
    let mut by_owner: std::collections::BTreeMap<&str, Vec<Subscription>> = Default::default();
    for (owner, subscription) in &all {
        by_owner
            .entry(owner.as_str())
            .or_default()
            .push(subscription.clone());
    }
    for (owner, subscriptions) in by_owner {
        index.replace(owner, subscriptions);
    }
    let bytes = rss_bytes().saturating_sub(before);
    println!(
        "\n{} subscriptions (seed {SUBSCRIPTION_SEED}, {} with a filter, {} distinct filters): index built in {:.2} s; {} bytes/subscription (RSS growth)",
        all.len(),
        all.iter().filter(|(_, s)| s.filter.is_some()).count(),
        index.filters(),
        started.elapsed().as_secs_f64(),
        bytes / all.len().max(1) as u64
    );
    println!(
        "{} {:>8} | {:>8} {:>8} | {:>8} {:>8} {:>6}",
        pad("policy tags", NAME_WIDTH),
        "matches",
        "p50",
        "p99",
        "scan p50",
        "scan p99",
        "×"
    );
    let mut speedups = Vec::new();
    for (tags, policy) in generate_policies(20, catalogue) {
        let (engine, matched) = time(settings.rounds, || index.matching(&tags, &policy));
        let (scan, scanned) = time(settings.slow_rounds(), || {
            all.iter()
                .filter(|(_, s)| s.tags.iter().any(|t| tags.contains(t)))
                .filter(|(_, s)| s.filter.as_ref().is_none_or(|f| f.matches(&policy)))
                .map(|(owner, s)| (owner.as_str(), s.id.as_str()))
                .collect::<Vec<_>>()
        });
        assert_eq!(
            matched.len(),
            scanned.len(),
            "{tags:?}: index and scan disagree"
        );
        let matched = matched.len();
        speedups.push(speedup(engine, scan));
        println!(
            "{} {:>8} | {:>8} {:>8} | {}",
            pad(&tags.join(","), NAME_WIDTH),
            matched,
            ms(engine.p50),
            ms(engine.p99),
            cells(engine, Some(scan))
        );
    }
    if let Some(x) = median(speedups) {
        println!(
            "median speedup of the subscription index over scanning them all: {}",
            times(x)
        );
    }
}

struct Settings {
    profiles: usize,
    subscriptions: usize,
    rounds: usize,
    redis: String,
    postgres: String,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            profiles: env_or("BENCH_PROFILES", 1_000_000),
            subscriptions: env_or("BENCH_SUBSCRIPTIONS", 100_000),
            rounds: env_or("BENCH_ROUNDS", 15).max(1),
            redis: env_or("ZHIDA_BENCH_REDIS", "redis://127.0.0.1:6379/9".to_string()),
            postgres: env_or(
                "ZHIDA_BENCH_POSTGRES",
                "host=127.0.0.1 user=postgres dbname=test".to_string(),
            ),
        }
    }

    /// The scan and the baselines take 100 to 1000 times longer per round than the engine:
    /// a few rounds give a stable median.
    fn slow_rounds(&self) -> usize {
        self.rounds.min(5)
    }
}

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

/// CPUs, CPU model, memory and kernel, so figures can be compared across runs.
fn machine() -> String {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_kib: u64 = field(&read("/proc/meminfo"), "MemTotal")
        .trim_end_matches(" kB")
        .parse()
        .unwrap_or(0);
    format!(
        "{cpus} CPUs ({}), {:.1} GiB RAM, Linux {}",
        field(&read("/proc/cpuinfo"), "model name"),
        memory_kib as f64 / (1 << 20) as f64,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

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

#[derive(Debug, Clone, Copy)]
struct Timing {
    p50: Duration,
    p99: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `f` once unmeasured, to warm caches and connections, and returns that run's
/// result (for the cross-checks) with the timing of `rounds` more runs. A run ends when its
/// result is ready; freeing it is not timed.
fn try_time<T, E>(rounds: usize, mut f: impl FnMut() -> Result<T, E>) -> Result<(Timing, T), E> {
    let out = f()?;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let result = f()?;
        samples.push(start.elapsed());
        drop(result);
    }
    samples.sort();
    let timing = Timing {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
    };
    Ok((timing, out))
}

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Timing, T) {
    match try_time(rounds, || Ok::<_, Infallible>(f())) {
        Ok(measured) => measured,
        Err(never) => match never {},
    }
}

type BoxError = Box<dyn Error + Send + Sync>;

/// An error with its causes: the postgres client's own message is only "error connecting
/// to server", the reason is in its source.
fn describe(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some errors (redis) already repeat their cause in their own message.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Times one rule on a baseline, if it is still up, and checks it found as many profiles
/// as the engine. A server error ends that baseline for the rest of the run.
fn measure<B>(
    baseline: &mut Option<B>,
    label: &str,
    rule: &str,
    rounds: usize,
    expected: usize,
    mut run: impl FnMut(&mut B) -> Result<Vec<String>, BoxError>,
) -> Option<Timing> {
    let backend = baseline.as_mut()?;
    match try_time(rounds, || run(backend)) {
        Ok((timing, ids)) => {
            assert!(
                ids.len() == expected,
                "{rule}: {label} returned {} ids, the engine {expected}",
                ids.len()
            );
            Some(timing)
        }
        Err(e) => {
            println!(
                "{label} baseline stopped at rule {rule:?}: {}",
                describe(&*e)
            );
            *baseline = None;
            None
        }
    }
}

fn generate(profiles: usize, catalogue: &Catalogue) -> Vec<(String, Value)> {
    let started = Instant::now();
    let draws = Draws::new(catalogue);
    let mut rng = StdRng::seed_from_u64(SEED);
    let docs: Vec<(String, Value)> = (0..profiles)
        .map(|i| (format!("s{i:07}"), profile(&mut rng, &draws)))
        .collect();
    println!(
        "generated {profiles} profiles (seed {SEED}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    docs
}

fn build_index(docs: &[(String, Value)]) -> Index {
    let before = rss_bytes();
    let started = Instant::now();
    let mut index = Index::default();
    for (id, doc) in docs {
        index.upsert(id, doc, None);
    }
    let build = started.elapsed();
    let bytes = rss_bytes().saturating_sub(before);
    println!(
        "engine: index built in {:.2} s; {} MiB = {} bytes/profile (RSS growth)",
        build.as_secs_f64(),
        bytes >> 20,
        bytes / docs.len().max(1) as u64
    );
    index
}

fn load_redis(url: &str, docs: &[(String, Value)]) -> Option<RedisSets> {
    let load = || -> redis::RedisResult<RedisSets> {
        let mut sets = RedisSets::connect(url)?;
        let version = sets.server_version()?;
        let before = sets.used_memory()?;
        let started = Instant::now();
        let value_sets = sets.load(docs)?;
        let took = started.elapsed();
        let grown = sets.used_memory()?.saturating_sub(before);
        println!(
            "redis {version}: loaded in {:.1} s; {value_sets} value sets; used_memory +{} MiB = {} bytes/profile",
            took.as_secs_f64(),
            grown >> 20,
            grown / docs.len().max(1) as u64
        );
        Ok(sets)
    };
    load()
        .inspect_err(|e| println!("redis baseline not measured: {}", describe(e)))
        .ok()
}

fn load_postgres(params: &str, docs: &[(String, Value)]) -> Option<ProfileTable> {
    let load = || -> postgres_table::Result<ProfileTable> {
        let mut table = ProfileTable::connect(params)?;
        let version = table.server_version()?;
        let times = table.load(docs)?;
        let size = table.size()?;
        println!(
            "postgresql {version}: COPY {:.1} s + indexes {:.1} s + ANALYZE {:.1} s = {:.1} s; table and indexes {} MiB = {} bytes/profile",
            times.copy.as_secs_f64(),
            times.index.as_secs_f64(),
            times.analyze.as_secs_f64(),
            (times.copy + times.index + times.analyze).as_secs_f64(),
            size >> 20,
            size / docs.len().max(1) as i64
        );
        Ok(table)
    };
    load()
        .inspect_err(|e| println!("postgresql baseline not measured: {}", describe(&**e)))
        .ok()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// How many times faster the engine's median is.
fn speedup(engine: Timing, other: Timing) -> f64 {
    other.p50.as_secs_f64() / engine.p50.as_secs_f64().max(1e-9)
}

fn times(speedup: f64) -> String {
    if speedup >= 10.0 {
        format!("{speedup:.0}×")
    } else {
        format!("{speedup:.1}×")
    }
}

/// p50, p99 and the engine's speedup, or dashes for a baseline that did not run.
fn cells(engine: Timing, other: Option<Timing>) -> String {
    match other {
        Some(t) => format!(
            "{:>8} {:>8} {:>6}",
            ms(t.p50),
            ms(t.p99),
            times(speedup(engine, t))
        ),
        None => format!("{:>8} {:>8} {:>6}", "-", "-", "-"),
    }
}

/// Pads to `width` terminal columns, counting CJK characters as two.
fn pad(text: &str, width: usize) -> String {
    let used: usize = text.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum();
    format!("{text}{}", " ".repeat(width.saturating_sub(used)))
}

/// CJK symbols and ideographs, Hangul, compatibility ideographs, fullwidth forms.
fn is_wide(c: char) -> bool {
    matches!(
        u32::from(c),
        0x2e80..=0xa4cf | 0xac00..=0xd7a3 | 0xf900..=0xfaff | 0xff00..=0xff60
    )
}

const NAME_WIDTH: usize = 34;

fn print_header() {
    let group = |label: &str| format!("{label:^24}");
    println!(
        "\n{} {:>8} {:>6} | {:^17} | {} | {} | {}",
        pad("", NAME_WIDTH),
        "",
        "",
        "engine (ms)",
        group("linear scan (ms)"),
        group("redis sets (ms)"),
        group("postgresql (ms)")
    );
    let columns = format!("{:>8} {:>8} {:>6}", "p50", "p99", "×");
    println!(
        "{} {:>8} {:>6} | {:>8} {:>8} | {columns} | {columns} | {columns}",
        pad("rule", NAME_WIDTH),
        "matches",
        "%",
        "p50",
        "p99"
    );
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn main() {
    let settings = Settings::from_env();
    let (rounds, slow_rounds) = (settings.rounds, settings.slow_rounds());
    println!("machine: {}; load average {}", machine(), load_average());
    let catalogue = Catalogue::yangpu();
    let docs = generate(settings.profiles, &catalogue);
    let index = build_index(&docs);
    let mut redis = load_redis(&settings.redis, &docs);
    let mut postgres = load_postgres(&settings.postgres, &docs);

    print_header();
    let (mut over_scan, mut over_redis, mut over_postgres) = (Vec::new(), Vec::new(), Vec::new());
    for (name, text) in RULES {
        let rule =
            Rule::parse(text, &catalogue.industries).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json: Value = serde_json::from_str(text).expect("Rule::parse read it as JSON");
        let expr = Expr::parse(&json)
            .unwrap_or_else(|e| panic!("{name}: the baselines cannot read the rule: {e}"));
        let sql = postgres_table::select(&expr).unwrap_or_else(|e| panic!("{name}: {e}"));

        let (engine, ids) = time(rounds, || index.matching(&rule));
        let (scan, scanned) = time(slow_rounds, || {
            docs.iter()
                .filter(|(_, d)| rule.matches(d))
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
        });
        assert_eq!(ids.len(), scanned.len(), "{name}: index and scan disagree");
        let matched = ids.len();
        let in_redis = measure(&mut redis, "redis", name, slow_rounds, matched, |r| {
            Ok(r.matching(&expr)?)
        });
        let in_postgres = measure(
            &mut postgres,
            "postgresql",
            name,
            slow_rounds,
            matched,
            |p| p.matching(&sql),
        );

        over_scan.push(speedup(engine, scan));
        over_redis.extend(in_redis.map(|t| speedup(engine, t)));
        over_postgres.extend(in_postgres.map(|t| speedup(engine, t)));
        println!(
            "{} {:>8} {:>5.1}% | {:>8} {:>8} | {} | {} | {}",
            pad(name, NAME_WIDTH),
            matched,
            100.0 * matched as f64 / docs.len().max(1) as f64,
            ms(engine.p50),
            ms(engine.p99),
            cells(engine, Some(scan)),
            cells(engine, in_redis),
            cells(engine, in_postgres)
        );
    }

    let summary = |label: &str, speedups: Vec<f64>| match median(speedups) {
        Some(x) => format!("{} over {label}", times(x)),
        None => format!("not measured over {label}"),
    };
    println!(
        "\nmedian speedup of the engine (p50): {}, {}, {}",
        summary("the linear scan", over_scan),
        summary("redis sets", over_redis),
        summary("postgresql", over_postgres)
    );
    println!(
        "times in ms until the matching ids are a list on the client; per rule, engine: {rounds} \
         rounds, linear scan, redis and postgresql: {slow_rounds} rounds, each after one \
         unmeasured warm-up run whose ids are the ones cross-checked (under 51 rounds, p99 is \
         the slowest round)"
    );
    // Dropping the baselines deletes their keys and schema.
    drop((redis, postgres));
    bench_subscriptions(&settings, &catalogue);
    println!("load average at the end: {}", load_average());
}
