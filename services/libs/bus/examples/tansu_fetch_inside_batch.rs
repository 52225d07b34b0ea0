//! Reproduces why `kafka.one_record_per_batch` exists: a consumer whose fetch offset falls
//! inside a multi-record batch. Run against any Kafka-protocol broker:
//!
//! ```sh
//! deploy/servers.sh up
//! cargo run -p zhida-bus --example tansu_fetch_inside_batch [-- 127.0.0.1:9092]
//! ```
//!
//! The broker is the first argument, else `ZHIDA_TEST_KAFKA`, else `127.0.0.1:9092`;
//! `REPRO_DEBUG=fetch` shows librdkafka's view of each fetch on stderr.
//! On a fresh one-partition topic it produces two batches of ten records (offsets 0‥9 and
//! 10‥19, each sent as one batch by `linger.ms` and a flush between them), then, for each
//! case, commits an offset for a fresh consumer group and lets a fresh consumer in that
//! group read what it gets within a few seconds. Kafka returns the batch containing the
//! fetch offset whole and librdkafka drops the records below the fetch offset, so every
//! case must receive exactly the committed offset up to 19. tansu 0.6.0 (`memory://`)
//! returns only batches whose base offset is at or after the fetch offset: from 5 it
//! serves 10‥19 (5‥9 are skipped silently) and from 15 nothing at all.
//!
//! The `seek back` cases try a consumer-side workaround that keeps multi-record batches:
//! position the fetch at `committed − (max records per batch − 1)`, which is at or before
//! the base of the batch holding the committed offset, and drop below the committed offset
//! in the application. Exit status 1 when any case gets other records than expected.

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    producer::{BaseRecord, Producer, ThreadedProducer},
};

/// Records per batch; the producer's `batch.num.messages` bounds it in a real deployment.
const BATCH: i64 = 10;
const BATCHES: i64 = 2;
/// How long a consumer may take to receive what it expects (group join included).
const WAIT: Duration = Duration::from_secs(12);

fn main() -> anyhow::Result<()> {
    if std::env::var_os("REPRO_DEBUG").is_some() {
        // librdkafka's log lines reach the `log` crate; this prints them.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }
    let brokers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZHIDA_TEST_KAFKA").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = format!("repro-fetch-inside-batch-{}", uuid::Uuid::new_v4().simple());
    println!("broker {brokers}, topic {topic}");

    create_topic(&brokers, &topic)?;
    let offsets = produce(&brokers, &topic)?;
    println!("produced offsets {offsets:?} as {BATCHES} batches of {BATCH}");
    let end = BATCH * BATCHES;
    anyhow::ensure!(
        offsets == (0..end).collect::<Vec<_>>(),
        "unexpected produce offsets"
    );

    let mut failed = 0;
    println!(
        "{:<34} {:>9} {:>11}  {:<20} {:<20}",
        "case", "committed", "fetch from", "expected", "received"
    );
    for (case, committed, seek_back) in [
        ("batch base (first batch)", 0, false),
        ("batch base (second batch)", BATCH, false),
        ("inside a batch, more follow", BATCH / 2, false),
        ("inside the last batch", BATCH + BATCH / 2, false),
        ("inside a batch, seek back", BATCH / 2, true),
        ("inside the last batch, seek back", BATCH + BATCH / 2, true),
    ] {
        let group = format!("{topic}-{committed}-{seek_back}");
        commit(&brokers, &group, &topic, committed)?;
        let (from, received) = if seek_back {
            consume_seeking_back(&brokers, &group, &topic, end)?
        } else {
            (committed, consume_in_group(&brokers, &group, &topic, end)?)
        };
        let expected: Vec<i64> = (committed..end).collect();
        let ok = received == expected;
        failed += usize::from(!ok);
        println!(
            "{case:<34} {committed:>9} {from:>11}  {:<20} {:<20} {}",
            span(&expected),
            span(&received),
            if ok { "ok" } else { "WRONG" }
        );
    }
    if failed > 0 {
        println!("{failed} case(s) received other records than a Kafka broker serves");
        std::process::exit(1);
    }
    println!("every case received what a Kafka broker serves");
    Ok(())
}

/// `a‥b` for a contiguous run, else the list.
fn span(offsets: &[i64]) -> String {
    match offsets {
        [] => "nothing".into(),
        [first, .., last] if offsets.windows(2).all(|w| w[1] == w[0] + 1) => {
            format!("{first}‥{last}")
        }
        _ => format!("{offsets:?}"),
    }
}

/// `REPRO_DEBUG=fetch` turns on librdkafka's debug contexts (what each fetch returned).
fn config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    match std::env::var("REPRO_DEBUG") {
        Ok(contexts) => config.set("debug", contexts),
        Err(_) => config.set("log_level", "3"),
    };
    config
}

fn create_topic(brokers: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = config(brokers).create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for result in runtime.block_on(admin.create_topics([&new], &options))? {
        result.map_err(|(name, code)| anyhow::anyhow!("creating {name}: {code}"))?;
    }
    Ok(())
}

/// Produces `BATCHES` batches of `BATCH` records with the settings of `zhida_bus::Producer`
/// (idempotent, acks=all, lz4) but batching on; returns the offsets in produce order.
fn produce(brokers: &str, topic: &str) -> anyhow::Result<Vec<i64>> {
    let delivered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let producer: ThreadedProducer<Reports> = config(brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "200")
        .set("batch.num.messages", "10000")
        .create_with_context(Reports(delivered.clone()))?;
    for b in 0..BATCHES {
        for i in 0..BATCH {
            let n = b * BATCH + i;
            let payload = format!("record {n}");
            producer
                .send(
                    BaseRecord::<str, str>::to(topic)
                        .partition(0)
                        .key("k")
                        .payload(&payload),
                )
                .map_err(|(e, _)| e)?;
        }
        producer.flush(Duration::from_secs(10))?;
    }
    let mut offsets = delivered.lock().expect("delivery reports").clone();
    offsets.sort_unstable();
    Ok(offsets)
}

struct Reports(std::sync::Arc<std::sync::Mutex<Vec<i64>>>);

impl rdkafka::ClientContext for Reports {}

impl rdkafka::producer::ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let Ok(message) = result {
            self.0
                .lock()
                .expect("delivery reports")
                .push(message.offset());
        }
    }
}

/// Commits `offset` on partition 0 of `topic` for `group`, as a consumer that stopped there
/// would have.
fn commit(brokers: &str, group: &str, topic: &str, offset: i64) -> anyhow::Result<()> {
    let consumer: BaseConsumer = config(brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(offset))?;
    consumer.commit(&list, rdkafka::consumer::CommitMode::Sync)?;
    Ok(())
}

fn group_consumer(brokers: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    Ok(config(brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?)
}

/// A fresh member of `group` subscribing to `topic`: the offsets it receives within `WAIT`
/// (stops early once it has offset `end - 1`).
fn consume_in_group(brokers: &str, group: &str, topic: &str, end: i64) -> anyhow::Result<Vec<i64>> {
    let consumer = group_consumer(brokers, group)?;
    consumer.subscribe(&[topic])?;
    collect(&consumer, end, 0)
}

/// The workaround: reads the group's committed offset, fetches from `BATCH − 1` records
/// before it, and keeps only what is at or after it. Returns where the fetch started.
fn consume_seeking_back(
    brokers: &str,
    group: &str,
    topic: &str,
    end: i64,
) -> anyhow::Result<(i64, Vec<i64>)> {
    let consumer = group_consumer(brokers, group)?;
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, 0);
    let committed = match consumer
        .committed_offsets(list, Duration::from_secs(10))?
        .find_partition(topic, 0)
        .map(|p| p.offset())
    {
        Some(Offset::Offset(offset)) => offset,
        other => anyhow::bail!("no committed offset for {group}: {other:?}"),
    };
    let (low, _) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
    let from = (committed - (BATCH - 1)).max(low);
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(from))?;
    consumer.assign(&list)?;
    Ok((from, collect(&consumer, end, committed)?))
}

fn collect(consumer: &BaseConsumer, end: i64, keep_from: i64) -> anyhow::Result<Vec<i64>> {
    let deadline = Instant::now() + WAIT;
    let mut received = Vec::new();
    while Instant::now() < deadline && received.last() != Some(&(end - 1)) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) if message.offset() >= keep_from => received.push(message.offset()),
            Some(Ok(_)) => {}
            Some(Err(e)) => println!("  consumer error: {e}"),
            None => {}
        }
    }
    Ok(received)
}
