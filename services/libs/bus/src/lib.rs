//! Zhida's event backbone, written once for every service:
//!
//! - [`Topic`], [`Group`]: every topic and consumer group name comes from these enums (plus
//!   a deployment prefix);
//! - [`Event`]: a protobuf payload wrapped as a CloudEvent in Kafka binary mode, with the
//!   W3C `traceparent` of the span that produced it;
//! - [`Producer`]: idempotent (`enable.idempotence`), awaits the broker's acknowledgement;
//! - [`run_consumer`]: the at-least-once loop with retries and a dead-letter topic;
//! - [`TableReader`]: replays a compacted topic into memory (the profiler's index);
//! - [`follow_tags`], [`replicate_tags`]: the operator-managed tag catalogue, replayed from
//!   the `tags` topic into a service's [`SharedTags`](zhida_catalogue::SharedTags).

mod admin;
pub mod audit;
mod consumer;
mod envelope;
mod producer;
mod table;
mod tags;
mod topics;

pub use admin::{ensure_topics, log_end};
pub use consumer::{ConsumerSpec, HandleError, Handler, Record, run_consumer};
pub use envelope::{Event, EventMeta, headers as header_names};
pub use producer::{Delivered, ProduceError, Producer};
pub use table::{TableReader, TableRecord};
pub use tags::{follow_tags, replicate_tags, seed_tags_if_empty};
pub use topics::{Group, Topic, Topics};

/// The most records a producer puts in one batch (`batch.num.messages`) when batching;
/// consumers rewind by as many on assignment to work around tansu 0.6's fetch.
pub(crate) const BATCH_RECORDS: usize = 1000;

/// librdkafka settings shared by producers and consumers.
pub(crate) fn client_config(kafka: &zhida_runtime::config::KafkaConfig) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("client.id", "zhida")
        // Fail fast on an unreachable broker in logs, but keep retrying.
        .set("reconnect.backoff.max.ms", "2000")
        .set("log_level", "4");
    config
}
