//! The idempotent producer every service uses to emit events.

use std::time::Duration;

use rdkafka::{
    message::OwnedHeaders,
    producer::{FutureProducer, FutureRecord},
};
use zhida_runtime::config::KafkaConfig;

use crate::{
    envelope::{Event, new_headers},
    topics::{Topic, Topics},
};

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The broker did not acknowledge within `kafka.produce_timeout`, or refused the record.
    #[error("kafka did not acknowledge the record on {topic}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// Produces CloudEvents with `enable.idempotence=true` and `acks=all`: librdkafka retries
/// within `produce_timeout` without duplicating or reordering, and every send resolves only
/// when the broker has the record.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    topics: Topics,
    source: String,
    timeout: Duration,
}

impl Producer {
    /// `source` becomes the CloudEvents `ce_source`, e.g. `/zhida/publisher`.
    pub fn new(config: &KafkaConfig, source: impl Into<String>) -> anyhow::Result<Self> {
        let inner: FutureProducer = crate::client_config(config)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "batch.num.messages",
                if config.one_record_per_batch {
                    "1".to_string()
                } else {
                    crate::BATCH_RECORDS.to_string()
                },
            )
            .set("compression.type", "lz4")
            .set(
                "message.timeout.ms",
                config.produce_timeout.as_millis().to_string(),
            )
            .create()?;
        Ok(Self {
            inner,
            topics: Topics::new(config),
            source: source.into(),
            timeout: config.produce_timeout,
        })
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Emits `event` on its topic under `key`, with a fresh CloudEvents id.
    pub async fn emit<E: Event>(&self, key: &str, event: &E) -> Result<Delivered, ProduceError> {
        self.emit_with_id(key, &uuid::Uuid::now_v7().to_string(), event)
            .await
    }

    /// Emits `event` with a caller-chosen CloudEvents id: a retried operation reuses its id,
    /// so consumers can recognise the duplicate.
    pub async fn emit_with_id<E: Event>(
        &self,
        key: &str,
        id: &str,
        event: &E,
    ) -> Result<Delivered, ProduceError> {
        let payload = event.encode_to_vec();
        let headers = new_headers(id, E::TYPE, &self.source);
        self.send(&self.topics.name(E::TOPIC), key, Some(&payload), headers)
            .await
    }

    /// Writes the tombstone of `key` on a compacted topic.
    pub async fn tombstone(&self, topic: Topic, key: &str) -> Result<Delivered, ProduceError> {
        self.send(&self.topics.name(topic), key, None, OwnedHeaders::new())
            .await
    }

    pub(crate) async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<Delivered, ProduceError> {
        let mut record = FutureRecord::<str, [u8]>::to(topic)
            .key(key)
            .headers(headers);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        match self.inner.send(record, self.timeout).await {
            Ok(delivery) => Ok(Delivered {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((source, _)) => Err(ProduceError::Kafka {
                topic: topic.to_string(),
                source,
            }),
        }
    }
}
