//! `just bench-sms`: SMS submitted per second to the SMSC simulator by one `zhida serve
//! notifier` process (real tansu, Redis and simulator, started by `deploy/servers.sh`),
//! with one provider and with two, each without a rate limit and under a contracted rate
//! (`BENCH_SMS_RATE` per provider, default 100/s: below what one notifier submits, so the
//! contract is the limit; the first second's burst counts too); beside them, in the same
//! run, the raw rate of one SMPP session of `zhida-smpp` pipelining submits (window 10) to
//! the same simulator: the baseline the notifier's rates are a share of.
//!
//! Each notifier run gets its own topics, keys and system_ids; its `BENCH_SMS` requests
//! (default 2000, one-segment urgent notices, so quiet hours do not hold them) are produced
//! first, then the notifier starts, and the rate is the count over the span between the
//! first and the last submit the simulator recorded (its dump's `received_at`), so
//! start-up is not counted.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use zhida_bus::Producer;
use zhida_proto::events::v1::{Channel, DeliveryRequested};
use zhida_runtime::config::KafkaConfig;
use zhida_smpp::{Address, Config as SmppConfig, DATA_CODING_UCS2, Session, Submit, encode_ucs2};

mod support;
use support::{number, var};

/// Seconds of the day of an ISO-8601 UTC time the simulator wrote (`…T11:54:54.266Z`).
fn seconds_of_day(iso: &str) -> Option<f64> {
    let time = iso.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let (h, m, s): (f64, f64, f64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Submits at `ports` by `system_ids`, as the simulator dumped them: their count and
/// the span between the first and the last.
fn recorded(ports: &[String], system_ids: &[String]) -> (usize, f64) {
    let dump = PathBuf::from(var("ZHIDA_TEST_SMS_DUMP"));
    let (mut count, mut first, mut last) = (0, f64::MAX, f64::MIN);
    for port in ports {
        let text = std::fs::read_to_string(dump.join(format!("{port}.jsonl"))).unwrap_or_default();
        for line in text.lines() {
            if !system_ids
                .iter()
                .any(|id| line.contains(&format!("\"{id}\"")))
            {
                continue;
            }
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(t) = value["received_at"].as_str().and_then(seconds_of_day) {
                count += 1;
                first = first.min(t);
                last = last.max(t);
            }
        }
    }
    let mut span = last - first;
    if span < 0.0 {
        span += 86_400.0; // across midnight
    }
    (count, span.max(1e-3))
}

/// The raw rate: one session, window 10, twenty callers, `count` one-segment submits.
async fn raw_smpp(addr: &str, count: usize, system_id: &str) -> f64 {
    let mut config = SmppConfig::new(addr, system_id, "secret".into());
    config.window = 10;
    let (session, _receipts) = Session::connect(config).await.expect("bind");
    let message = encode_ucs2(
        "【杨浦区政务】区民政局发布了《长者食堂运营补贴》，详情：https://y.example/p/1",
    );
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..20 {
        let (session, message) = (session.clone(), message.clone());
        workers.spawn(async move {
            for i in (w..count).step_by(20) {
                let submit = Submit {
                    source: Address::alphanumeric("10690000"),
                    destination: Address::international(format!("86139{:08}", i + 1)),
                    data_coding: DATA_CODING_UCS2,
                    esm_class: 0,
                    registered_delivery: 0,
                    short_message: message.clone(),
                };
                session.submit(&submit).await.expect("accepted");
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("worker");
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = session.close().await;
    rate
}

/// One notifier run: `count` SMS requests through `providers` SMSCs at `rate` each.
async fn notifier(run: &str, providers: usize, rate: usize, count: usize) -> f64 {
    let id = format!("{run}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let prefix = format!("bench-{id}.");
    let kafka = KafkaConfig {
        brokers: var("ZHIDA_TEST_KAFKA"),
        topic_prefix: prefix.clone(),
        group_prefix: prefix.clone(),
        ..KafkaConfig::default()
    };
    zhida_bus::ensure_topics(&kafka).await.expect("topics");
    let producer = Producer::new(&kafka, "/bench").expect("producer");
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let sends = chunk.iter().map(|i| {
            let request = DeliveryRequested {
                policy_id: format!("pol-{id}"),
                recipient_id: format!("r{i:06}"),
                channel: Channel::Sms as i32,
                address: format!("1391{:07}", i + 1000),
                title: "长者食堂运营补贴".into(),
                department: "区民政局".into(),
                urgent: true,
                ..DeliveryRequested::default()
            };
            let producer = producer.clone();
            async move { producer.emit(&request.recipient_id, &request).await }
        });
        for result in futures::future::join_all(sends).await {
            result.expect("produced");
        }
    }

    let addrs: Vec<String> = var("ZHIDA_TEST_SMPP")
        .split(',')
        .map(|a| a.trim().to_string())
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    // A short link base keeps every notice in one segment.
    let mut toml = "[sms]\nlink_base = \"https://y.example/p/\"\n".to_string();
    let mut ports = Vec::new();
    let mut system_ids = Vec::new();
    for (n, addr) in addrs.iter().take(providers).enumerate() {
        let system_id = format!("b{n}-{}", &id[id.len() - 6..]);
        toml.push_str(&format!(
            "[[sms.providers]]\nname = \"smsc-{n}\"\naddress = \"{addr}\"\nsystem_id = \"{system_id}\"\n\
             password = \"secret\"\nrate_per_second = {rate}\nsource_addr = \"10690000{n}\"\n"
        ));
        ports.push(addr.rsplit(':').next().unwrap_or_default().to_string());
        system_ids.push(system_id);
    }
    let config = dir.path().join("zhida.toml");
    std::fs::write(&config, toml).expect("config");
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_zhida"))
        .args(["serve", "notifier"])
        .env("ZHIDA_CONFIG", &config)
        .env("ZHIDA_KAFKA__BROKERS", &kafka.brokers)
        .env("ZHIDA_KAFKA__TOPIC_PREFIX", &prefix)
        .env("ZHIDA_KAFKA__GROUP_PREFIX", &prefix)
        .env("ZHIDA_STORE__REDIS_URL", var("ZHIDA_TEST_REDIS"))
        .env("ZHIDA_STORE__KEY_PREFIX", format!("bench:{id}:"))
        .env("ZHIDA_GRPC__LISTEN", "127.0.0.1:0")
        .env("ZHIDA_TELEMETRY__LOG_FILTER", "warn")
        // The notifier signs email unsubscribe links: it needs a key to start.
        .env(
            "ZHIDA_UNSUBSCRIBE__KEYS",
            r#"[{id="bench",secret="zhida-bench-unsubscribe-secret-0123456789"}]"#,
        )
        .stdin(Stdio::null())
        .spawn()
        .expect("zhida serve notifier");
    let deadline = Instant::now() + Duration::from_secs(600);
    let result = loop {
        let (done, span) = recorded(&ports, &system_ids);
        if done >= count {
            break done as f64 / span;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("zhida serve notifier exited early: {status}");
        }
        if Instant::now() > deadline {
            break f64::NAN;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

#[tokio::main]
async fn main() {
    let count = number("BENCH_SMS", 2000);
    let rate = number("BENCH_SMS_RATE", 100);
    let first = var("ZHIDA_TEST_SMPP")
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    println!("SMS to the SMSC simulator, {count} one-segment notices per run");
    let baseline = raw_smpp(
        &first,
        count,
        &format!("braw-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]),
    )
    .await;
    let runs = [
        ("1 provider, no limit", 1, 100_000),
        ("2 providers, no limit", 2, 100_000),
        ("1 provider, limited", 1, rate),
        ("2 providers, limited", 2, rate),
    ];
    let mut rows = vec![("raw SMPP, one session (baseline)".to_string(), baseline)];
    for (name, providers, rate) in runs {
        let label = if rate < 100_000 {
            format!("notifier, {name} to {rate}/s each")
        } else {
            format!("notifier, {name}")
        };
        rows.push((label, notifier("sms", providers, rate, count).await));
    }
    println!("{:<48} {:>10} {:>12}", "", "SMS/s", "vs baseline");
    for (name, per_second) in rows {
        println!(
            "{name:<48} {per_second:>10.0} {:>11.1}%",
            100.0 * per_second / baseline
        );
    }
}
