//! Replays a compacted topic from the beginning into memory and keeps following it:
//! the latest value per key, with an empty value meaning "deleted". Every replica reads all
//! partitions, so a restarted process rebuilds its state from the log of record.

use std::{collections::HashSet, time::Duration};

use rdkafka::{
    ClientContext, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer},
    error::KafkaError,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zhida_runtime::config::KafkaConfig;

use crate::{
    envelope::EventMeta,
    topics::{Topic, Topics},
};

/// One record of a table topic.
#[derive(Debug)]
pub struct TableRecord {
    pub key: String,
    /// `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    pub meta: EventMeta,
    pub partition: i32,
    pub offset: i64,
}

/// Follows one compacted topic; see the module docs.
pub struct TableReader {
    config: KafkaConfig,
    topic: Topic,
}

impl TableReader {
    pub fn new(config: &KafkaConfig, topic: Topic) -> Self {
        Self {
            config: config.clone(),
            topic,
        }
    }

    /// Calls `apply` for every record in offset order per partition. `caught_up` turns true
    /// once every partition has been read to the end that existed at start.
    pub async fn run(
        self,
        mut apply: impl FnMut(TableRecord) + Send,
        caught_up: watch::Sender<bool>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let topic = Topics::new(&self.config).name(self.topic);
        let partitions = partitions_of(&self.config, &topic).await?;
        // Never joins the group: partitions are assigned explicitly and nothing is committed.
        let consumer: StreamConsumer<TableContext> = crate::client_config(&self.config)
            .set("group.id", format!("zhida-table-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            // A write that waits to read itself back (the publisher's changes, the
            // profiler's leases, a tag) waits for this reader's next fetch: tansu holds an
            // empty fetch for the whole wait (500 ms by default).
            .set("fetch.wait.max.ms", "50")
            .create_with_context(TableContext)?;
        let mut assignment = TopicPartitionList::new();
        for partition in &partitions {
            assignment.add_partition_offset(&topic, *partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut pending: HashSet<i32> = partitions.iter().copied().collect();
        loop {
            let message = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                message = consumer.recv() => message,
            };
            match message {
                Ok(message) => {
                    let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                        tracing::warn!(
                            topic,
                            offset = message.offset(),
                            "table record without a UTF-8 key skipped"
                        );
                        continue;
                    };
                    apply(TableRecord {
                        key: key.to_string(),
                        value: message.payload().map(<[u8]>::to_vec),
                        meta: EventMeta::from_headers(message.headers()),
                        partition: message.partition(),
                        offset: message.offset(),
                    });
                }
                Err(KafkaError::PartitionEOF(partition)) => {
                    if pending.remove(&partition) && pending.is_empty() {
                        tracing::info!(topic, "table caught up");
                        caught_up.send_replace(true);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, topic, "table reader error");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }
}

/// Reaching the end of a partition is how the reader knows it caught up, not an error.
struct TableContext;

impl ClientContext for TableContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::warn!(%error, reason, "table reader client error");
        }
    }
}

impl ConsumerContext for TableContext {}

/// The topic's partition ids, from broker metadata (a blocking call, off the runtime).
async fn partitions_of(config: &KafkaConfig, topic: &str) -> anyhow::Result<Vec<i32>> {
    let client: BaseConsumer = crate::client_config(config).create()?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let metadata = client.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(
            !partitions.is_empty(),
            "topic {topic} has no partitions (does it exist?)"
        );
        Ok(partitions)
    })
    .await?
}
