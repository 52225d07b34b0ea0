//! The consumer loop against a real Kafka-protocol broker (`ZHIDA_TEST_KAFKA`, started by
//! `deploy/servers.sh`). Each test has its own topic and group prefix, so they run in parallel.

mod concurrent;
mod tags;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, StreamConsumer},
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use tokio_util::sync::CancellationToken;
use zhida_bus::{
    ConsumerSpec, Group, HandleError, Handler, Producer, Record, Topic, Topics, header_names,
};
use zhida_proto::events::v1::PolicyPublished;
use zhida_runtime::config::KafkaConfig;

fn kafka(test: &str) -> KafkaConfig {
    let brokers = std::env::var("ZHIDA_TEST_KAFKA")
        .expect("ZHIDA_TEST_KAFKA must name a Kafka broker (run the tests via deploy/test.sh)");
    let prefix = format!(
        "t-{test}-{}.",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    KafkaConfig {
        brokers,
        topic_prefix: prefix.clone(),
        group_prefix: prefix,
        partitions: 2,
        max_retry_backoff: Duration::from_millis(400),
        ..KafkaConfig::default()
    }
}

fn policy(id: &str) -> PolicyPublished {
    PolicyPublished {
        policy_id: id.into(),
        title: format!("policy {id}"),
        tags: vec!["employment".into()],
        ..PolicyPublished::default()
    }
}

/// Records every attempt; fails the listed policy ids transiently the given number of times.
#[derive(Clone, Default)]
struct Recorder {
    attempts: Arc<Mutex<Vec<String>>>,
    handled: Arc<Mutex<Vec<String>>>,
    transient_failures: Arc<Mutex<Vec<(String, u32)>>>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let policy: PolicyPublished = record.decode()?;
        self.attempts
            .lock()
            .expect("lock")
            .push(policy.policy_id.clone());
        let mut failures = self.transient_failures.lock().expect("lock");
        if let Some((_, left)) = failures
            .iter_mut()
            .find(|(id, left)| *id == policy.policy_id && *left > 0)
        {
            *left -= 1;
            return Err(HandleError::transient("dependency briefly down"));
        }
        self.handled.lock().expect("lock").push(policy.policy_id);
        Ok(())
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A test's topics, created, and a producer for them.
async fn setup(test: &str) -> (KafkaConfig, Producer) {
    let config = kafka(test);
    zhida_bus::ensure_topics(&config).await.expect("topics");
    let producer = Producer::new(&config, "/test").expect("producer");
    (config, producer)
}

/// What the tests' group (relay) has committed on `policy.events`, per partition.
fn committed(config: &KafkaConfig) -> Vec<i64> {
    let topics = Topics::new(config);
    let topic = topics.name(Topic::PolicyEvents);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", topics.group(Group::Relay))
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    for p in 0..config.partitions {
        partitions.add_partition(&topic, p);
    }
    consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("committed offsets")
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_record_is_dead_lettered_with_its_reason_and_the_loop_goes_on() {
    let (config, producer) = setup("poison").await;
    let topics = Topics::new(&config);

    // A record claiming to be a PolicyPublished whose bytes are not one, on the same key
    // (so the same partition) as a good record after it.
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .expect("raw producer");
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: header_names::TYPE,
            value: Some("zhida.events.v1.PolicyPublished"),
        })
        .insert(Header {
            key: header_names::ID,
            value: Some("poison-1"),
        });
    let poison_at = raw
        .send(
            FutureRecord::to(&topics.name(Topic::PolicyEvents))
                .key("k")
                .payload(&[0xffu8, 0xff, 0xff][..])
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .expect("poison produced");
    producer
        .emit("k", &policy("after-poison"))
        .await
        .expect("good produced");

    let handler = Recorder::default();
    let shutdown = CancellationToken::new();
    let spec = ConsumerSpec::new(Group::Relay, Topic::PolicyEvents);
    let task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        spec,
        handler.clone(),
        producer.clone(),
        shutdown.clone(),
    ));
    wait_for("the good record after the poison", || {
        handler
            .handled
            .lock()
            .expect("lock")
            .contains(&"after-poison".to_string())
    })
    .await;

    let dlq: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", format!("{}dlq-reader", config.group_prefix))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("dlq consumer");
    dlq.subscribe(&[&topics.dead_letter(Topic::PolicyEvents)])
        .expect("subscribe");
    let dead = tokio::time::timeout(Duration::from_secs(30), dlq.recv())
        .await
        .expect("a dead letter")
        .expect("record");
    let header = |name: &str| {
        dead.headers()
            .and_then(|h| h.iter().find(|x| x.key == name))
            .and_then(|x| x.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    assert!(
        header(header_names::DLQ_REASON).contains("not a valid zhida.events.v1.PolicyPublished"),
        "{}",
        header(header_names::DLQ_REASON)
    );
    assert_eq!(
        header(header_names::DLQ_TOPIC),
        topics.name(Topic::PolicyEvents)
    );
    assert_eq!(
        header(header_names::DLQ_PARTITION),
        poison_at.partition.to_string()
    );
    assert_eq!(
        header(header_names::DLQ_OFFSET),
        poison_at.offset.to_string()
    );
    assert_eq!(
        header(header_names::ID),
        "poison-1",
        "original headers travel along"
    );
    assert_eq!(
        dead.payload(),
        Some(&[0xffu8, 0xff, 0xff][..]),
        "the original bytes are kept"
    );

    shutdown.cancel();
    task.await.expect("join").expect("loop ends cleanly");
    let offsets = committed(&config);
    assert_eq!(
        offsets.iter().sum::<i64>(),
        2,
        "both records committed: {offsets:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failure_is_retried_in_order_and_committed_only_after_success() {
    let (config, producer) = setup("transient").await;
    for id in ["p1", "p2", "p3"] {
        producer
            .emit("same-key", &policy(id))
            .await
            .expect("produced");
    }
    let handler = Recorder::default();
    handler
        .transient_failures
        .lock()
        .expect("lock")
        .push(("p2".into(), 3));
    let shutdown = CancellationToken::new();
    let spec = ConsumerSpec::new(Group::Relay, Topic::PolicyEvents);
    let task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        spec,
        handler.clone(),
        producer,
        shutdown.clone(),
    ));
    wait_for("all three handled", || {
        handler.handled.lock().expect("lock").len() == 3
    })
    .await;

    assert_eq!(
        *handler.handled.lock().expect("lock"),
        ["p1", "p2", "p3"],
        "order within the partition is kept"
    );
    assert_eq!(
        *handler.attempts.lock().expect("lock"),
        ["p1", "p2", "p2", "p2", "p2", "p3"],
        "p2 retried until it succeeded"
    );
    shutdown.cancel();
    task.await.expect("join").expect("loop ends cleanly");
    let offsets = committed(&config);
    assert_eq!(
        offsets.iter().sum::<i64>(),
        3,
        "all committed at shutdown: {offsets:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_during_a_retry_leaves_the_record_for_redelivery() {
    let (config, producer) = setup("redeliver").await;
    producer
        .emit("k", &policy("flaky"))
        .await
        .expect("produced");
    let spec = ConsumerSpec::new(Group::Relay, Topic::PolicyEvents);

    let first = Recorder::default();
    first
        .transient_failures
        .lock()
        .expect("lock")
        .push(("flaky".into(), u32::MAX));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        spec,
        first.clone(),
        producer.clone(),
        shutdown.clone(),
    ));
    wait_for("a failed attempt", || {
        !first.attempts.lock().expect("lock").is_empty()
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("loop ends cleanly");
    assert!(first.handled.lock().expect("lock").is_empty());

    // Same group, new member: the record was not committed, so it comes again.
    let second = Recorder::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        spec,
        second.clone(),
        producer,
        shutdown.clone(),
    ));
    wait_for("redelivery", || {
        second
            .handled
            .lock()
            .expect("lock")
            .contains(&"flaky".to_string())
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("loop ends cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_resuming_inside_a_multi_record_batch_gets_the_rest_of_it() {
    let config = KafkaConfig {
        one_record_per_batch: false,
        partitions: 1,
        ..kafka("mid-batch")
    };
    zhida_bus::ensure_topics(&config).await.expect("topics");
    let producer = Producer::new(&config, "/test").expect("producer");
    // Produced together, so they travel in one batch (linger).
    let ids: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let events: Vec<_> = ids.iter().map(|id| policy(id)).collect();
    let sends = events.iter().map(|event| producer.emit("k", event));
    for produced in futures::future::join_all(sends).await {
        produced.expect("produced");
    }
    // The group committed offset 5: inside that batch.
    let topics = Topics::new(&config);
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", topics.group(Group::Relay))
        .create()
        .expect("consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topics.name(Topic::PolicyEvents), 0, Offset::Offset(5))
        .expect("offset");
    group
        .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
        .expect("committed");
    drop(group);

    let handler = Recorder::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        ConsumerSpec::new(Group::Relay, Topic::PolicyEvents),
        handler.clone(),
        producer,
        shutdown.clone(),
    ));
    wait_for("the rest of the batch", || {
        handler.handled.lock().expect("lock").len() >= 5
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("loop ends cleanly");
    assert_eq!(
        *handler.handled.lock().expect("lock"),
        ids[5..],
        "resumed at the committed offset, nothing before it"
    );
    assert_eq!(committed(&config), [10]);
}
