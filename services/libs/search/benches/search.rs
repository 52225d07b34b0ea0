//! `just bench-search`: the policy library's search (issue #10 point 5) over
//! `ZHIDA_BENCH_POLICIES` (default 100,000) generated policies of Chinese text (seeded, from
//! the district's departments, streets and policy areas; bodies of a few hundred characters),
//! each beside a baseline measured in the same run:
//!
//! 1. rebuild: the policies are produced as `PolicyPublished` to a fresh `policy.events`
//!    topic on the running broker (`ZHIDA_TEST_KAFKA`, tansu from `deploy/servers.sh`) with
//!    `zhida_bus::Producer`, then read back from the beginning with `zhida_bus::TableReader`
//!    as the publisher does at start, each decoded and upserted, with one commit at the end.
//!    Baseline: the same read with nothing done per record but decoding.
//! 2. search latency: `ZHIDA_BENCH_QUERIES` (default 2,000) queries of 1–3 words from the
//!    same vocabulary (common and rare words, some found nowhere; a quarter filtered by
//!    validity), limit 10 with highlights, one thread, after 200 warm-up queries.
//!    Baseline: `str::contains` of every word over every policy's text, for the first
//!    `ZHIDA_BENCH_SCAN_QUERIES` (default 200) of the same queries (a scan takes tens of ms).
//! 3. live updates: 50 revisions, each upserted and committed on its own (as the publisher
//!    does per event), timed, and each searched for right after its commit.
//! 4. memory: RSS growth of the process over the rebuild (the index, the dictionary, the
//!    writer's buffers; the policies' own copy is dropped first).
//!
//! The topics are deleted at the end (best effort: tansu keeps them in memory).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use prost::Message as _;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use rdkafka::admin::{AdminClient, AdminOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zhida_bus::{Event, Producer, TableReader, Topic, Topics};
use zhida_proto::events::v1::{Faq, Interpretation, PolicyPublished};
use zhida_runtime::config::KafkaConfig;
use zhida_search::{Library, PolicyDoc, Query};

const SEED: u64 = 20_231_107;
/// Revisions upserted and committed one by one after the rebuild.
const LIVE_UPDATES: usize = 50;
const PUBLISHED: i32 = 4;
/// Unix seconds of 2024-01-01: validity periods are spread around it.
const EPOCH: i64 = 1_704_067_200;
const YEAR: i64 = 365 * 86_400;

const DEPARTMENTS: [&str; 20] = [
    "区科委",
    "区人力资源社会保障局",
    "区商务委",
    "区发展改革委",
    "区住房保障房屋管理局",
    "区民政局",
    "区教育局",
    "区卫生健康委",
    "区市场监管局",
    "区建设管理委",
    "区绿化市容局",
    "区生态环境局",
    "区规划资源局",
    "区退役军人局",
    "区财政局",
    "区医保局",
    "区应急管理局",
    "区文化旅游局",
    "区司法局",
    "区国资委",
];

const STREETS: [&str; 12] = [
    "五角场街道",
    "殷行街道",
    "长白新村街道",
    "新江湾城街道",
    "定海路街道",
    "平凉路街道",
    "江浦路街道",
    "四平路街道",
    "控江路街道",
    "延吉新村街道",
    "大桥街道",
    "长海路街道",
];

const AREAS: [&str; 40] = [
    "人才公寓",
    "稳岗补贴",
    "专精特新",
    "高校毕业生就业见习",
    "创业担保贷款",
    "以工代训",
    "养老服务",
    "托育服务",
    "旧住房更新改造",
    "既有多层住宅加装电梯",
    "垃圾分类",
    "营商环境",
    "集成电路",
    "生物医药",
    "人工智能",
    "数字经济",
    "科技创新券",
    "职业技能培训",
    "退役军人就业",
    "最低生活保障",
    "医保报销",
    "社区长者食堂",
    "绿色消费",
    "碳普惠",
    "防汛防台",
    "老旧小区改造",
    "廉租住房",
    "共有产权保障住房",
    "义务教育招生",
    "公共文化服务",
    "美丽街区",
    "燃气安全",
    "食品药品安全",
    "首店经济",
    "夜间经济",
    "双创载体",
    "知识产权保护",
    "科技成果转化",
    "企业研发投入",
    "残疾人就业",
];

const GROUPS: [&str; 10] = [
    "高校毕业生",
    "失业人员",
    "农民工",
    "退役军人",
    "中小企业",
    "科技型企业",
    "老年人",
    "残疾人",
    "灵活就业人员",
    "新就业形态劳动者",
];

const KINDS: [&str; 8] = [
    "实施意见",
    "管理办法",
    "实施细则",
    "工作方案",
    "申报指南",
    "若干措施",
    "通知",
    "操作规程",
];

const VERBS: [&str; 6] = ["加强", "推进", "做好", "支持", "促进", "规范"];

/// Sentences of a body, summary or interpretation; `{a}` area, `{d}` department, `{s}`
/// street, `{g}` group, `{n}` a number.
const SENTENCES: [&str; 16] = [
    "为进一步{v}本区{a}工作，根据有关法律法规和市政府相关文件精神，结合本区实际，制定本{k}。",
    "本{k}适用于在杨浦区注册登记、依法经营的{g}及相关单位。",
    "对符合条件的{g}，按规定给予最高{n}万元的一次性补贴。",
    "申请人可通过“一网通办”平台在线提交申请材料，也可至{s}社区事务受理服务中心现场办理。",
    "{d}负责本{k}的组织实施和监督管理，各街道做好政策宣传和申请辅导。",
    "补贴资金由区财政专项资金列支，实行专款专用，不得挤占挪用。",
    "申请单位应当对所提交材料的真实性负责，对弄虚作假骗取补贴的，依法追回资金并纳入信用记录。",
    "{s}将结合{a}工作开展专项服务，每月组织不少于{n}场政策宣讲活动。",
    "鼓励{g}参与{a}项目，优先支持带动就业效果明显的项目。",
    "每年{n}月底前，{d}会同区财政局对上一年度资金使用情况开展绩效评价。",
    "符合条件的{g}在{a}方面发生的费用，可按实际支出的{n}%给予补助。",
    "本{k}自发布之日起施行，有效期{n}年，由{d}负责解释。",
    "对在{a}工作中成效显著的单位，给予通报表扬并在评优评先中优先考虑。",
    "{d}将建立{a}工作联席会议制度，统筹协调重大事项。",
    "市民企业可拨打12345市民服务热线咨询{a}相关政策。",
    "各相关部门要加强信息共享，推动{a}政策直达快享、免申即享。",
];

const QUESTIONS: [&str; 4] = [
    "{g}如何申请{a}相关补贴？",
    "{a}补贴的申请材料有哪些？",
    "在{s}可以现场办理吗？",
    "{a}政策的有效期到什么时候？",
];

const ANSWERS: [&str; 4] = [
    "可通过一网通办平台在线申请，{d}将在{n}个工作日内完成审核。",
    "需提供营业执照、申请表及相关证明材料，具体以{d}公布的清单为准。",
    "可以，{s}社区事务受理服务中心提供现场受理和申请辅导。",
    "本政策有效期{n}年，到期后将根据实施情况评估修订。",
];

/// Query words found nowhere in the generated text.
const ABSENT: [&str; 6] = [
    "元宇宙",
    "跨境电商",
    "低空经济",
    "区块链",
    "冰雪运动",
    "海洋渔业",
];
/// Words in nearly every policy.
const COMMON: [&str; 8] = [
    "补贴",
    "申请",
    "企业",
    "杨浦区",
    "政策",
    "资金",
    "办理",
    "街道",
];

struct Slots<'a> {
    area: &'a str,
    department: &'a str,
    street: &'a str,
    group: &'a str,
    kind: &'a str,
    verb: &'a str,
}

fn fill(rng: &mut StdRng, template: &str, slots: &Slots) -> String {
    let number = rng.random_range(2..=50).to_string();
    template
        .replace("{a}", slots.area)
        .replace("{d}", slots.department)
        .replace("{s}", slots.street)
        .replace("{g}", slots.group)
        .replace("{k}", slots.kind)
        .replace("{v}", slots.verb)
        .replace("{n}", &number)
}

fn pick<'a>(rng: &mut StdRng, words: &[&'a str]) -> &'a str {
    words.choose(rng).copied().unwrap_or_default()
}

fn sentences(rng: &mut StdRng, count: usize, slots: &Slots) -> String {
    (0..count)
        .map(|_| {
            let template = pick(rng, &SENTENCES);
            fill(rng, template, slots)
        })
        .collect()
}

/// Policy `i`: about 700 characters over title, summary, body (~400), interpretation and
/// two FAQs; a second area is mentioned in the body so areas co-occur.
fn policy(rng: &mut StdRng, run: &str, i: usize) -> PolicyPublished {
    let slots = Slots {
        area: pick(rng, &AREAS),
        department: pick(rng, &DEPARTMENTS),
        street: pick(rng, &STREETS),
        group: pick(rng, &GROUPS),
        kind: pick(rng, &KINDS),
        verb: pick(rng, &VERBS),
    };
    let title = match rng.random_range(0..4) {
        0 => format!("关于{}杨浦区{}工作的{}", slots.verb, slots.area, slots.kind),
        1 => format!(
            "杨浦区{}{}（{}年版）",
            slots.area,
            slots.kind,
            rng.random_range(2019..=2026)
        ),
        2 => format!(
            "{}关于{}{}的{}",
            slots.department, slots.verb, slots.area, slots.kind
        ),
        _ => format!("{}{}{}", slots.street, slots.area, slots.kind),
    };
    let other = Slots {
        area: pick(rng, &AREAS),
        ..slots
    };
    let mut body = sentences(rng, 5, &slots);
    body.push_str(&sentences(rng, 3, &other));
    let summary = sentences(rng, 2, &slots);
    let interpretation = format!("政策解读：{}", sentences(rng, 3, &slots));
    let faqs = (0..2)
        .map(|_| {
            let k = rng.random_range(0..QUESTIONS.len());
            Faq {
                question: fill(rng, QUESTIONS[k], &slots),
                answer: fill(rng, ANSWERS[k], &slots),
            }
        })
        .collect();
    let valid_from = EPOCH + rng.random_range(-3 * YEAR..YEAR);
    let valid_until = rng
        .random_bool(0.6)
        .then(|| valid_from + rng.random_range(1..=5) * YEAR);
    let policy_id = format!("{run}-pol-{i:06}");
    PolicyPublished {
        interpretation: Some(Interpretation {
            interpretation_id: format!("{policy_id}.jd"),
            policy_id: policy_id.clone(),
            title: format!("《{title}》政策解读"),
            text: interpretation,
        }),
        policy_id,
        title,
        body,
        summary,
        faqs,
        tags: vec!["employment".into()],
        department: slots.department.into(),
        version: 1,
        valid_from: Some(prost_types::Timestamp {
            seconds: valid_from,
            nanos: 0,
        }),
        valid_until: valid_until.map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
        ..PolicyPublished::default()
    }
}

/// What the publisher indexes of a `PolicyPublished`.
fn doc_of(event: PolicyPublished) -> PolicyDoc {
    PolicyDoc {
        policy_id: event.policy_id,
        version: event.version.max(1),
        title: event.title,
        summary: event.summary,
        body: event.body,
        interpretation: event.interpretation.map(|i| i.text).unwrap_or_default(),
        faqs: event
            .faqs
            .into_iter()
            .map(|f| (f.question, f.answer))
            .collect(),
        department: event.department,
        tags: event.tags,
        status: PUBLISHED,
        valid_from: event.valid_from.map(|t| t.seconds),
        valid_until: event.valid_until.map(|t| t.seconds),
    }
}

fn query(rng: &mut StdRng) -> Query {
    let words: Vec<&str> = match rng.random_range(0..20) {
        // One policy area: each is the main area of ~2.5% of the policies.
        0..=6 => vec![pick(rng, &AREAS)],
        // An area in a street.
        7..=9 => vec![pick(rng, &AREAS), pick(rng, &STREETS)],
        // A common word and a group: thousands of hits.
        10..=12 => vec![pick(rng, &COMMON), pick(rng, &GROUPS)],
        // A department and an area.
        13..=14 => vec![pick(rng, &DEPARTMENTS), pick(rng, &AREAS)],
        // Three words.
        15..=16 => vec![pick(rng, &AREAS), pick(rng, &GROUPS), pick(rng, &STREETS)],
        // One common word: most policies match.
        17 => vec![pick(rng, &COMMON)],
        // Nothing matches.
        _ => vec![pick(rng, &ABSENT), pick(rng, &COMMON)],
    };
    Query {
        text: words.join(" "),
        limit: 10,
        valid_at: rng
            .random_bool(0.25)
            .then(|| EPOCH + rng.random_range(-YEAR..YEAR)),
    }
}

fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// p50, p99, max of `samples` (sorted here).
fn percentiles(samples: &mut [Duration]) -> [Duration; 3] {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    [at(0.50), at(0.99), samples[samples.len() - 1]]
}

/// Reads `policy.events` from the beginning to its end, calling `apply` per record.
async fn replay(kafka: &KafkaConfig, mut apply: impl FnMut(Vec<u8>) + Send) -> Duration {
    let started = Instant::now();
    let (caught_up, mut watch_caught_up) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let reader = TableReader::new(kafka, Topic::PolicyEvents).run(
        |record| {
            if record.meta.ty == PolicyPublished::TYPE
                && let Some(value) = record.value
            {
                apply(value);
            }
        },
        caught_up,
        shutdown.clone(),
    );
    let stop = async {
        let _ = watch_caught_up.wait_for(|done| *done).await;
        shutdown.cancel();
    };
    let (read, ()) = tokio::join!(reader, stop);
    read.expect("replay policy.events");
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count = number("ZHIDA_BENCH_POLICIES", 100_000);
    let query_count = number("ZHIDA_BENCH_QUERIES", 2_000).max(1);
    let scan_count = number("ZHIDA_BENCH_SCAN_QUERIES", 200).clamp(1, query_count);
    let brokers = std::env::var("ZHIDA_TEST_KAFKA").unwrap_or_else(|_| {
        panic!("ZHIDA_TEST_KAFKA is not set: run the bench with `just bench-search`")
    });
    let run = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let prefix = format!("bench-search-{run}.");
    let kafka = KafkaConfig {
        brokers: brokers.clone(),
        topic_prefix: prefix.clone(),
        group_prefix: prefix,
        ..KafkaConfig::default()
    };
    println!(
        "Policy library search: {count} generated policies (seed {SEED}), {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    // The policies, produced to a fresh topic.
    let mut rng = StdRng::seed_from_u64(SEED);
    let events: Vec<PolicyPublished> = (0..count).map(|i| policy(&mut rng, &run, i)).collect();
    let encoded: usize = events.iter().map(|e| e.encoded_len()).sum();
    let chars: usize = events
        .iter()
        .map(|e| {
            e.title.chars().count()
                + e.summary.chars().count()
                + e.body.chars().count()
                + e.interpretation
                    .as_ref()
                    .map_or(0, |i| i.text.chars().count())
                + e.faqs
                    .iter()
                    .map(|f| f.question.chars().count() + f.answer.chars().count())
                    .sum::<usize>()
        })
        .sum();
    zhida_bus::ensure_topics(&kafka).await.expect("topics");
    let producer = Producer::new(&kafka, "/zhida/bench-search").expect("producer");
    let started = Instant::now();
    for chunk in events.chunks(1_000) {
        let sends = chunk.iter().map(|e| producer.emit(&e.policy_id, e));
        for sent in futures::future::join_all(sends).await {
            sent.expect("produce");
        }
    }
    let produced = started.elapsed();
    println!(
        "{count} PolicyPublished on {}: {} MiB encoded, {} characters of text per policy; \
         produced in {:.1} s",
        Topics::new(&kafka).name(Topic::PolicyEvents),
        encoded >> 20,
        chars / count.max(1),
        produced.as_secs_f64()
    );

    // The naive scan's copy of the text (kept aside from the index's RSS measurement).
    let texts: Vec<String> = events
        .iter()
        .map(|e| {
            let mut text = format!("{}\n{}\n{}\n", e.title, e.summary, e.body);
            if let Some(i) = &e.interpretation {
                text.push_str(&i.text);
            }
            for faq in &e.faqs {
                text.push_str(&faq.question);
                text.push_str(&faq.answer);
            }
            text
        })
        .collect();
    drop(events);

    // 1. Rebuild from the topic, beside reading it alone.
    let mut read_records = 0usize;
    let read_only = replay(&kafka, |value| {
        if PolicyPublished::decode(value.as_slice()).is_ok() {
            read_records += 1;
        }
    })
    .await;
    assert_eq!(read_records, count, "read back every record");

    let rss_before = rss_bytes();
    let library = Library::new().expect("library");
    let mut indexed = 0usize;
    let started = Instant::now();
    let read_and_upsert = replay(&kafka, |value| {
        let event = PolicyPublished::decode(value.as_slice()).expect("PolicyPublished");
        library.upsert(doc_of(event)).expect("upsert");
        indexed += 1;
    })
    .await;
    library.commit().expect("commit");
    let rebuild = started.elapsed();
    let rss_after = rss_bytes();
    assert_eq!(library.len(), count as u64, "every policy searchable");
    assert_eq!(indexed, count);

    println!();
    println!(
        "{:<44} {:>14} {:>14} {:>8}",
        "", "library index", "read only", "ratio"
    );
    println!(
        "{:<44} {:>14} {:>14} {:>8}",
        "rebuild from policy.events (s)",
        format!("{:.2}", rebuild.as_secs_f64()),
        format!("{:.2}", read_only.as_secs_f64()),
        format!("{:.1}×", rebuild.as_secs_f64() / read_only.as_secs_f64())
    );
    println!(
        "{:<44} {:>14} {:>14}",
        "  of which reading + upserting, commit (s)",
        format!("{:.2}", read_and_upsert.as_secs_f64()),
        format!("{:.2}", (rebuild - read_and_upsert).as_secs_f64()),
    );
    println!(
        "{:<44} {:>14} {:>14}",
        "policies/s",
        format!("{:.0}", count as f64 / rebuild.as_secs_f64()),
        format!("{:.0}", count as f64 / read_only.as_secs_f64()),
    );
    println!(
        "{:<44} {:>14} {:>14}",
        "RSS growth over the rebuild (MiB)",
        (rss_after.saturating_sub(rss_before)) >> 20,
        format!(
            "text {}",
            texts.iter().map(String::len).sum::<usize>() >> 20
        ),
    );

    // 2. Search latency, beside a scan.
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let queries: Vec<Query> = (0..query_count).map(|_| query(&mut rng)).collect();
    for q in queries.iter().cycle().take(200) {
        library.search(q).expect("warm-up search");
    }
    let segments_before = library.segment_count();
    let mut latencies = Vec::with_capacity(queries.len());
    let mut with_hits = 0usize;
    let mut totals = 0u64;
    let mut highlights = 0usize;
    for q in &queries {
        let started = Instant::now();
        let found = library.search(q).expect("search");
        latencies.push(started.elapsed());
        with_hits += usize::from(!found.hits.is_empty());
        totals += found.total;
        highlights += found.hits.iter().map(|h| h.highlights.len()).sum::<usize>();
    }
    let mut scan_latencies = Vec::with_capacity(scan_count);
    let mut index_on_scanned = latencies[..scan_count].to_vec();
    let mut scan_totals = 0u64;
    let mut index_totals = 0u64;
    for q in &queries[..scan_count] {
        // The scan does not filter by validity: compare its totals only where the index
        // did not either.
        let words: Vec<&str> = q.text.split_whitespace().collect();
        let started = Instant::now();
        let mut first = Vec::with_capacity(10);
        let mut total = 0u64;
        for (i, text) in texts.iter().enumerate() {
            if words.iter().all(|w| text.contains(w)) {
                total += 1;
                if first.len() < 10 {
                    first.push(i);
                }
            }
        }
        scan_latencies.push(started.elapsed());
        std::hint::black_box(first);
        if q.valid_at.is_none() {
            scan_totals += total;
            index_totals += library
                .search(&Query {
                    valid_at: None,
                    ..q.clone()
                })
                .expect("search")
                .total;
        }
    }
    let [p50, p99, max] = percentiles(&mut latencies);
    let [i50, i99, imax] = percentiles(&mut index_on_scanned);
    let [s50, s99, smax] = percentiles(&mut scan_latencies);
    println!();
    println!(
        "{:<44} {:>14} {:>14} {:>14} {:>8}",
        "search, 1 thread, limit 10 + highlights",
        format!("{query_count} queries"),
        format!("first {scan_count}"),
        "scan (contains)",
        "p50 ratio"
    );
    for (label, all, first, scan) in [
        ("p50 ms", p50, i50, s50),
        ("p99 ms", p99, i99, s99),
        ("max ms", max, imax, smax),
    ] {
        println!(
            "{:<44} {:>14} {:>14} {:>14} {:>8}",
            label,
            ms(all),
            ms(first),
            ms(scan),
            if label == "p50 ms" {
                format!("{:.0}×", s50.as_secs_f64() / i50.as_secs_f64())
            } else {
                String::new()
            }
        );
    }
    println!(
        "\n{with_hits} of {query_count} queries found something; {:.0} matches per query on \
         average; {:.1} highlighted fields per query; {segments_before} segments searched \
         ({} at the end).",
        totals as f64 / query_count as f64,
        highlights as f64 / query_count as f64,
        library.segment_count(),
    );
    println!(
        "Matches over the scanned queries without a validity filter: index {index_totals}, \
         scan {scan_totals} (the scan matches substrings, the index words)."
    );
    println!("Goal (issue #10): p50 <= 10 ms, p99 <= 50 ms on 2 cores.");

    // 3. Live updates as the publisher makes them: one upsert and one commit per event, and
    // the change searchable as soon as the commit returns.
    let mut rng = StdRng::seed_from_u64(SEED + 2);
    let mut live = Vec::new();
    for i in 0..LIVE_UPDATES {
        let mut doc = doc_of(policy(&mut rng, &run, i));
        doc.version = 2;
        doc.title = format!("{}（修订 LIVE{i:03}）", doc.title);
        let started = Instant::now();
        library.upsert(doc).expect("upsert");
        library.commit().expect("commit");
        live.push(started.elapsed());
        let found = library
            .search(&Query {
                text: format!("LIVE{i:03}"),
                ..Query::default()
            })
            .expect("search");
        assert_eq!(found.total, 1, "a committed revision is searchable at once");
        assert_eq!(found.hits[0].version, 2);
    }
    assert_eq!(library.len(), count as u64, "revisions replace");
    let [l50, _, lmax] = percentiles(&mut live);
    println!(
        "Live update (upsert + commit of one policy), {LIVE_UPDATES} in a row: p50 {} ms, max {} ms; \
         each searchable as soon as its commit returned.",
        ms(l50),
        ms(lmax)
    );

    let admin: Result<AdminClient<_>, _> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create();
    if let Ok(admin) = admin {
        let topics = Topics::new(&kafka);
        let names: Vec<String> = Topic::ALL.iter().map(|t| topics.name(*t)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let deleted = admin
            .delete_topics(&names, &AdminOptions::new())
            .await
            .map(|results| results.iter().filter(|r| r.is_ok()).count());
        let unique: HashSet<&str> = names.iter().copied().collect();
        eprintln!("deleted {deleted:?} of {} bench topics", unique.len());
    }
}
