//! The `audit` topic: the gRPC host's [`AuditEntry`]s become `AuditRecorded` events, and
//! `zhida audit` reads them back.

use std::time::Duration;

use rdkafka::{
    ClientConfig, Message,
    consumer::{BaseConsumer, Consumer},
};
use tokio::sync::mpsc;
use zhida_proto::{Timestamp, events::v1::AuditRecorded};
use zhida_runtime::{audit::AuditEntry, config::KafkaConfig};

use crate::{Producer, Topic, Topics};

/// Produces every entry of `entries` to `audit` until its senders are gone (the server
/// stopped), retrying each a few times; an entry that cannot be produced is logged.
pub async fn record(mut entries: mpsc::Receiver<AuditEntry>, producer: Producer) {
    while let Some(entry) = entries.recv().await {
        let event = AuditRecorded {
            principal: entry.principal,
            rpc: entry.rpc,
            code: entry.code,
            at: Some(Timestamp {
                seconds: entry.at_millis.div_euclid(1000),
                nanos: (entry.at_millis.rem_euclid(1000) * 1_000_000) as i32,
            }),
            trace_id: entry.trace_id,
        };
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=5 {
            match producer.emit(&event.principal, &event).await {
                Ok(_) => break,
                Err(error) if attempt == 5 => {
                    tracing::error!(%error, rpc = event.rpc, "audit record lost");
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}

/// Every `AuditRecorded` on the audit topic answered at or after `since_millis`, in
/// partition order, reading each partition from its start to its end at the time of the
/// call (blocking: run it off the async workers).
pub fn read(kafka: &KafkaConfig, since_millis: i64) -> anyhow::Result<Vec<AuditRecorded>> {
    let topic = Topics::new(kafka).name(Topic::Audit);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set(
            "group.id",
            format!("zhida-audit-reader-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
    let mut ends = Vec::new();
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, _) = consumer.fetch_watermarks(&topic, partition.id(), timeout)?;
        let high = crate::log_end(&kafka.brokers, &topic, partition.id())?;
        if high > low {
            assignment.add_partition_offset(
                &topic,
                partition.id(),
                rdkafka::Offset::Offset(low),
            )?;
            ends.push((partition.id(), high));
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut done = std::collections::HashSet::new();
    while done.len() < ends.len() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the audit topic did not read to its end within 60 s"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message?;
        if let Some((_, high)) = ends.iter().find(|(p, _)| *p == message.partition())
            && message.offset() + 1 >= *high
        {
            done.insert(message.partition());
        }
        let Some(payload) = message.payload() else {
            continue;
        };
        let Ok(record) = <AuditRecorded as prost::Message>::decode(payload) else {
            tracing::warn!(
                offset = message.offset(),
                "undecodable audit record skipped"
            );
            continue;
        };
        let at = record
            .at
            .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
        if at >= since_millis {
            records.push(record);
        }
    }
    Ok(records)
}
