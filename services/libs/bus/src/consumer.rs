//! The one at-least-once consumer loop of the workspace.
//!
//! Contract, for every handler plugged into [`run_consumer`]:
//! - a record's offset is stored (and auto-committed within a second) only after the handler
//!   returned `Ok`, or after the record was written to the dead-letter topic;
//! - [`HandleError::Transient`] is retried with capped exponential backoff, in place, so the
//!   partition's order is kept (a record never overtakes the one before it);
//! - [`HandleError::Permanent`] sends the record to `<topic>.dlq` with the reason and its
//!   original coordinates in headers, then moves on;
//! - records are handled one at a time between polls, so when partitions are revoked
//!   (rebalance) nothing is in flight: the revoke callback commits what was stored and lets go;
//! - on shutdown the record in hand is finished (or, if it is waiting out a backoff, left
//!   uncommitted for redelivery), then stored offsets are committed synchronously.
//!
//! Handlers must therefore be idempotent: after a crash, records handled since the last
//! commit are delivered again. Scale-out is by partitions: run more replicas.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::{
    ClientContext, Message, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    error::KafkaError,
    message::{Header, OwnedHeaders},
    types::RDKafkaErrorCode,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use zhida_runtime::config::KafkaConfig;

use crate::{
    envelope::{Event, EventMeta, headers},
    producer::Producer,
    topics::{Group, Topic, Topics},
};

/// One consumed record, detached from the consumer.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub meta: EventMeta,
}

impl Record {
    /// The key as UTF-8, if it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// Decodes the payload as `E`. A wrong `ce_type`, a missing payload or bytes that are not
    /// a valid `E` can never succeed on retry, so they are permanent errors.
    pub fn decode<E: Event>(&self) -> Result<E, HandleError> {
        if self.meta.ty != E::TYPE {
            return Err(HandleError::Permanent(format!(
                "ce_type is {:?}, expected {:?}",
                self.meta.ty,
                E::TYPE
            )));
        }
        let payload = self
            .payload
            .as_deref()
            .ok_or_else(|| HandleError::Permanent("record has no payload".into()))?;
        E::decode(payload)
            .map_err(|e| HandleError::Permanent(format!("payload is not a valid {}: {e}", E::TYPE)))
    }
}

/// How a handler failed, which decides what the loop does next.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Retrying cannot help (malformed event, invalid data): dead-letter it.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// A dependency is briefly unavailable: retry with backoff.
    #[error("transient failure: {0}")]
    Transient(String),
}

impl HandleError {
    pub fn permanent(error: impl std::fmt::Display) -> Self {
        Self::Permanent(error.to_string())
    }
    pub fn transient(error: impl std::fmt::Display) -> Self {
        Self::Transient(error.to_string())
    }
}

/// Handles records of one topic. Must be idempotent (see the module docs).
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, record: &Record) -> Result<(), HandleError>;
}

/// What to consume, as which consumer group.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSpec {
    pub group: Group,
    pub topic: Topic,
}

/// Rebalance callbacks; also remembers since when this member has had no partitions.
#[derive(Default)]
struct LoopContext {
    unassigned_since: std::sync::Mutex<Option<Instant>>,
}

impl LoopContext {
    fn set_unassigned(&self, since: Option<Instant>) {
        *self
            .unassigned_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = since;
    }

    fn unassigned_for(&self) -> Option<Duration> {
        self.unassigned_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|since| since.elapsed())
    }
}

impl ClientContext for LoopContext {}

impl ConsumerContext for LoopContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // Records are handled between polls and this runs inside a poll: nothing is in
            // flight, so committing the stored offsets now hands over exactly what is done.
            commit_stored(consumer);
            self.set_unassigned(None);
            tracing::info!(
                partitions = partitions.count(),
                "partitions revoked after commit"
            );
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!(partitions = ?describe(partitions), "partitions assigned");
            self.set_unassigned((partitions.count() == 0).then(Instant::now));
        }
    }
}

fn describe(partitions: &TopicPartitionList) -> Vec<String> {
    partitions
        .elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect()
}

fn commit_stored<C: ConsumerContext>(consumer: &impl Consumer<C>) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        // Nothing stored since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            tracing::warn!(%error, "commit failed; records since the last commit will be redelivered")
        }
    }
}

/// Runs the at-least-once loop for `spec` until `shutdown` is cancelled.
/// `producer` writes dead letters.
pub async fn run_consumer<H: Handler>(
    config: KafkaConfig,
    spec: ConsumerSpec,
    handler: H,
    producer: Producer,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topics = Topics::new(&config);
    let topic = topics.name(spec.topic);
    let group = topics.group(spec.group);
    let consumer: StreamConsumer<LoopContext> = crate::client_config(&config)
        .set("group.id", &group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Also tansu's rebalance timeout: how long a rebalance waits for members to rejoin.
        .set("max.poll.interval.ms", "20000")
        .create_with_context(LoopContext::default())?;
    consumer.subscribe(&[&topic])?;
    tracing::info!(topic, group, "consuming");

    let worker = Worker {
        handler,
        producer,
        dead_letter_topic: topics.dead_letter(spec.topic),
        group: group.clone(),
        max_backoff: config.max_retry_backoff,
        shutdown: shutdown.clone(),
    };
    let mut poll_errors = 0u32;
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    loop {
        let message = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = watchdog.tick() => {
                rejoin_if_stranded(&consumer, &topic, config.rejoin_unassigned_after)?;
                continue;
            }
            message = consumer.recv() => message,
        };
        let record = match message {
            Ok(message) => {
                poll_errors = 0;
                Record {
                    topic: message.topic().to_string(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                    meta: EventMeta::from_headers(message.headers()),
                }
            }
            Err(error) => {
                // Broker/transport errors: librdkafka reconnects by itself; don't spin.
                poll_errors = poll_errors.saturating_add(1);
                tracing::warn!(%error, topic, "consumer error");
                let pause = Duration::from_millis(100 * u64::from(poll_errors.min(50)));
                tokio::select! { _ = shutdown.cancelled() => break, _ = tokio::time::sleep(pause) => continue }
            }
        };
        if !worker.process(&record).await {
            // Shut down while waiting to retry: leave the record uncommitted.
            break;
        }
        // `rd_kafka_offset_store` stores offset + 1: the next record to read. It fails when
        // the partition was taken away meanwhile (e.g. a handler outlived
        // `max.poll.interval.ms`); the new owner then handles the record again, idempotently.
        if let Err(error) = consumer.store_offset(&record.topic, record.partition, record.offset) {
            tracing::warn!(%error, partition = record.partition, offset = record.offset, "offset not stored; the record will be redelivered");
        }
    }
    commit_stored(&consumer);
    consumer.unsubscribe();
    tracing::info!(topic, group, "consumer stopped after commit");
    Ok(())
}

/// tansu 0.6 can leave a member that joined while a dead member still led the group with
/// an empty assignment and no further rebalance, so the dead member's partitions stall. A
/// member that stays unassigned for `after` leaves and rejoins, which forms a new
/// generation. Zero disables this (on Apache Kafka, where extra members are legitimately
/// idle).
fn rejoin_if_stranded(
    consumer: &StreamConsumer<LoopContext>,
    topic: &str,
    after: Duration,
) -> anyhow::Result<()> {
    if after.is_zero()
        || consumer
            .context()
            .unassigned_for()
            .is_none_or(|idle| idle < after)
    {
        return Ok(());
    }
    tracing::warn!(
        topic,
        ?after,
        "no partitions assigned for too long; rejoining the group"
    );
    consumer.context().set_unassigned(None);
    consumer.unsubscribe();
    consumer.subscribe(&[topic])?;
    Ok(())
}

struct Worker<H> {
    handler: H,
    producer: Producer,
    dead_letter_topic: String,
    group: String,
    max_backoff: Duration,
    shutdown: CancellationToken,
}

impl<H: Handler> Worker<H> {
    /// Handles `record` to completion (done or dead-lettered): true. False only when shutdown
    /// came while waiting for a retry.
    async fn process(&self, record: &Record) -> bool {
        let span = tracing::info_span!(
            "consume",
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.destination.name = %record.topic,
            messaging.destination.partition.id = record.partition,
            messaging.kafka.offset = record.offset,
            messaging.consumer.group.name = %self.group,
            messaging.message.id = %record.meta.id,
            cloudevents.event_type = %record.meta.ty,
        );
        // A malformed traceparent yields an empty context: the span becomes a root.
        let _ = span.set_parent(record.meta.trace_context());
        self.process_in_span(record).instrument(span).await
    }

    async fn process_in_span(&self, record: &Record) -> bool {
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            match self.handler.handle(record).await {
                Ok(()) => return true,
                Err(HandleError::Permanent(reason)) => {
                    tracing::error!(reason, "permanent failure; dead-lettering");
                    let mut backoff = Backoff::new(self.max_backoff);
                    loop {
                        match self.dead_letter(record, &reason).await {
                            Ok(()) => return true,
                            Err(error) => {
                                tracing::warn!(%error, "dead-letter write failed; retrying");
                                if !self.pause(backoff.next()).await {
                                    return false;
                                }
                            }
                        }
                    }
                }
                Err(HandleError::Transient(reason)) => {
                    let delay = backoff.next();
                    tracing::warn!(
                        reason,
                        attempt = backoff.attempt,
                        ?delay,
                        "transient failure; retrying"
                    );
                    if !self.pause(delay).await {
                        return false;
                    }
                }
            }
        }
    }

    async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    async fn dead_letter(&self, record: &Record, reason: &str) -> Result<(), crate::ProduceError> {
        let mut out = OwnedHeaders::new_with_capacity(record.meta.headers.len() + 5);
        for (key, value) in &record.meta.headers {
            out = out.insert(Header {
                key,
                value: Some(value),
            });
        }
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        for (key, value) in [
            (headers::DLQ_REASON, reason),
            (headers::DLQ_TOPIC, record.topic.as_str()),
            (headers::DLQ_PARTITION, partition.as_str()),
            (headers::DLQ_OFFSET, offset.as_str()),
            (headers::DLQ_GROUP, self.group.as_str()),
        ] {
            out = out.insert(Header {
                key,
                value: Some(value),
            });
        }
        let key = record.key_str().unwrap_or_default();
        self.producer
            .send(&self.dead_letter_topic, key, record.payload.as_deref(), out)
            .await
            .map(|_| ())
    }
}

/// Capped exponential backoff: 100 ms, 200 ms, 400 ms, … up to `max`.
struct Backoff {
    attempt: u32,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Self { attempt: 0, max }
    }

    fn next(&mut self) -> Duration {
        let delay = Duration::from_millis(100).saturating_mul(1 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        delay.min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_stays_at_its_cap() {
        let mut backoff = Backoff::new(Duration::from_secs(1));
        let delays: Vec<_> = (0..7).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
    }

    #[test]
    fn decode_rejects_a_record_of_another_type_as_permanent() {
        use zhida_proto::events::v1::{DeliveryRequested, PolicyPublished};
        let record = Record {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key: None,
            payload: Some(prost::Message::encode_to_vec(&PolicyPublished::default())),
            meta: EventMeta {
                ty: "zhida.events.v1.PolicyPublished".into(),
                ..EventMeta::default()
            },
        };
        assert!(record.decode::<PolicyPublished>().is_ok());
        assert!(matches!(
            record.decode::<DeliveryRequested>(),
            Err(HandleError::Permanent(_))
        ));
        let garbage = Record {
            payload: Some(vec![0xff, 0xff, 0xff]),
            ..record
        };
        assert!(matches!(
            garbage.decode::<PolicyPublished>(),
            Err(HandleError::Permanent(_))
        ));
    }
}
