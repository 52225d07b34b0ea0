//! `just bench-broker`: what `kafka.one_record_per_batch` costs on the running broker
//! (`ZHIDA_TEST_KAFKA`, tansu from `deploy/servers.sh`). Side by side in one run, for
//! `zhida_bus::Producer` with one record per batch (`batch.num.messages=1`, the tansu 0.6
//! default) and with batching (`10000`):
//!
//! - produce: `BENCH_BROKER_RECORDS` (default 20,000) `DeliveryRequested` events of about
//!   400 bytes, all emitted at once (the producer's settings: idempotent, acks=all, lz4,
//!   linger 5 ms) and every acknowledgement awaited; records/s from the first emit to the
//!   last acknowledgement;
//! - consume: the same records read back by a plain librdkafka consumer assigned to every
//!   partition from the beginning; records/s from the first record to the last.
//!
//! Each mode writes to its own topics (a fresh prefix), so the runs do not see each other.

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use zhida_bus::{Event, Producer, Topics};
use zhida_proto::events::v1::{Channel, DeliveryRequested};
use zhida_runtime::config::KafkaConfig;

fn records() -> usize {
    std::env::var("BENCH_BROKER_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// A delivery request the size the profiler fans out (the policy's text is in the notice,
/// not in every request's body at full length).
fn request(n: usize) -> DeliveryRequested {
    DeliveryRequested {
        policy_id: "0193f6a2-7c1e-7b9a-9f00-5d2c8e4b1a77".into(),
        recipient_id: format!("resident-{n:08}"),
        channel: Channel::Email.into(),
        recipient_name: "张三".into(),
        title: "关于2026年度稳岗返还政策的通知 / Employment retention refund 2026".into(),
        body: "符合条件的企业可于12月31日前通过政务服务网申请稳岗返还，详见附件。".into(),
        department: "区人力资源和社会保障局".into(),
        service_url: "https://zhida.example.gov.cn/policies/0193f6a2-7c1e-7b9a".into(),
        reason: "您订阅了“就业创业”".into(),
        language: "zh".into(),
        subscription_id: format!("sub-{n:08}"),
        sealed_address: vec![0x5a; 10],
        ..DeliveryRequested::default()
    }
}

struct Rates {
    produce: f64,
    consume: f64,
}

async fn run(brokers: &str, one_record_per_batch: bool, n: usize) -> anyhow::Result<Rates> {
    let prefix = format!(
        "bench-broker-{}-{}.",
        if one_record_per_batch { "b1" } else { "b10000" },
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let kafka = KafkaConfig {
        brokers: brokers.into(),
        topic_prefix: prefix.clone(),
        group_prefix: prefix,
        one_record_per_batch,
        ..KafkaConfig::default()
    };
    zhida_bus::ensure_topics(&kafka).await?;
    let producer = Producer::new(&kafka, "/zhida/bench")?;

    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..n {
        let producer = producer.clone();
        sends.spawn(async move {
            producer
                .emit(&format!("resident-{i:08}"), &request(i))
                .await
        });
    }
    while let Some(sent) = sends.join_next().await {
        sent??;
    }
    let produce = n as f64 / started.elapsed().as_secs_f64();

    let topic = Topics::new(&kafka).name(DeliveryRequested::TOPIC);
    let consume = tokio::task::spawn_blocking({
        let brokers = brokers.to_string();
        move || consume(&brokers, &topic, kafka.partitions, n)
    })
    .await??;
    Ok(Rates { produce, consume })
}

/// Reads `n` records of `topic` from the beginning; records/s from the first to the last.
fn consume(brokers: &str, topic: &str, partitions: i32, n: usize) -> anyhow::Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-bench"))
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut received, mut first) = (0, None);
    while received < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "consumed {received} of {n} records in 300 s"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            message?;
            first.get_or_insert_with(Instant::now);
            received += 1;
        }
    }
    let span = first.map_or(Duration::ZERO, |first| first.elapsed());
    Ok((n - 1) as f64 / span.as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let brokers = std::env::var("ZHIDA_TEST_KAFKA").unwrap_or_else(|_| {
        panic!("ZHIDA_TEST_KAFKA is not set: run `just bench-broker` (it starts the servers)")
    });
    let n = records();
    let size = prost::Message::encoded_len(&request(0));
    println!(
        "{n} DeliveryRequested records ({size} bytes of payload each, plus CloudEvents \
         headers) through zhida_bus::Producer on {brokers}"
    );
    let one = run(&brokers, true, n).await?;
    let batched = run(&brokers, false, n).await?;
    println!(
        "{:<26} {:>16} {:>16} {:>8}",
        "", "batch.num=1", "batch.num=10000", "ratio"
    );
    for (what, a, b) in [
        ("produce (records/s)", one.produce, batched.produce),
        ("consume (records/s)", one.consume, batched.consume),
    ] {
        println!("{what:<26} {a:>16.0} {b:>16.0} {:>7.1}×", b / a);
    }
    Ok(())
}
