//! Creates the topics (and their dead-letter topics) a deployment needs.

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    error::{KafkaError, KafkaResult},
    types::RDKafkaErrorCode,
};
use zhida_runtime::config::KafkaConfig;

use crate::topics::{Topic, Topics};

/// Creates every [`Topic`] and its `.dlq` when missing; existing topics are left as they are.
pub async fn ensure_topics(config: &KafkaConfig) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = crate::client_config(config).create()?;
    let topics = Topics::new(config);
    let names: Vec<(String, bool)> = Topic::ALL
        .iter()
        .flat_map(|t| {
            [
                (topics.name(*t), t.compacted()),
                (topics.dead_letter(*t), false),
            ]
        })
        .collect();
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|(name, compacted)| {
            let topic = NewTopic::new(
                name,
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            if *compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// One past the last offset of `partition` of `topic` (blocking: run it off the async
/// workers). Not the high watermark as the broker reports it: tansu 0.6 reports one past
/// the first offset of the partition's last batch, which falls short by the rest of that
/// batch when producers batch. Reading from the reported mark's record (the start of the
/// last batch there; the last record on Apache Kafka) to the partition's end gives the
/// true end on both.
pub fn log_end(brokers: &str, topic: &str, partition: i32) -> KafkaResult<i64> {
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("zhida-log-end-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
    if high <= low {
        return Ok(high);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(high - 1))?;
    consumer.assign(&assignment)?;
    let (mut end, deadline) = (high, Instant::now() + timeout);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => end = end.max(message.offset() + 1),
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(end),
            Some(Err(error)) => return Err(error),
            None => {}
        }
    }
    Err(KafkaError::MessageConsumption(
        RDKafkaErrorCode::OperationTimedOut,
    ))
}
