//! The one at-least-once consumer loop of the workspace.
//!
//! Contract, for every handler plugged into [`run_consumer`]:
//! - a record's offset is committed only after the handler returned `Ok` for it, or after
//!   it was written to the dead-letter topic, and after every record before it in its
//!   partition was too: the committed position is the partition's lowest unfinished offset
//!   (stored as records finish, auto-committed within a second);
//! - [`HandleError::Transient`] is retried with capped exponential backoff, in place, so
//!   the record never overtakes an earlier record of its key;
//! - [`HandleError::Permanent`] (and a handler that panics) sends the record to
//!   `<topic>.dlq` with the reason and its original coordinates in headers, then moves on;
//! - up to [`ConsumerSpec::in_flight`] records are handled at once, each on its own task:
//!   records of one partition run concurrently when their keys differ, and in offset order
//!   when they share a key (keyless records share one order per partition). At 1 (the
//!   default) records are handled one at a time, in partition order. While it is full the
//!   loop goes on polling, holding what it reads (up to 256 records, or `in_flight`) until
//!   there is room, so a handler may run longer than `max.poll.interval.ms`;
//! - when partitions are revoked (rebalance), the revoke callback commits what is stored,
//!   i.e. only finished work, and the loop forgets them: records waiting behind a key are
//!   dropped and records still running finish but commit nothing. The next owner reads
//!   every unfinished record again;
//! - on shutdown no new record starts; running ones finish (one waiting out a backoff is
//!   left uncommitted for redelivery), then stored offsets are committed synchronously.
//!
//! Handlers must therefore be idempotent and safe to run concurrently for different keys:
//! after a crash or a rebalance, records handled since the last commit are delivered
//! again, possibly to another replica while this one still finishes them (the notifier's
//! ledger lease turns that into one send). Scale-out is by partitions: run more replicas.

mod tracker;

use std::{
    collections::{HashMap, VecDeque},
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures::FutureExt as _;
use rdkafka::{
    ClientContext, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    error::KafkaError,
    message::{Header, OwnedHeaders},
    types::{RDKafkaErrorCode, RDKafkaRespErr},
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use zhida_runtime::config::KafkaConfig;

use self::tracker::{Ticket, Tracker};
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
    /// A record on `topic` whose `ce_type` is `ty` (any text: a consumer must cope with
    /// types it does not know), keyed `key`, with `payload`, as the loop would hand it
    /// over: for handlers' tests.
    pub fn typed(topic: Topic, ty: &str, key: &str, payload: Vec<u8>) -> Self {
        Self {
            topic: topic.base_name().to_string(),
            partition: 0,
            offset: 0,
            key: Some(key.as_bytes().to_vec()),
            payload: Some(payload),
            meta: EventMeta {
                ty: ty.to_string(),
                ..EventMeta::default()
            },
        }
    }

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

/// What to consume, as which consumer group, how many records at once.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSpec {
    pub group: Group,
    pub topic: Topic,
    /// Records handled at once (at least 1); see the module docs for what runs together.
    pub in_flight: usize,
}

impl ConsumerSpec {
    /// One record at a time, in partition order.
    pub fn new(group: Group, topic: Topic) -> Self {
        Self {
            group,
            topic,
            in_flight: 1,
        }
    }

    /// Up to `n` records at once, concurrent across keys, in order within a key.
    pub fn in_flight(self, n: usize) -> Self {
        Self {
            in_flight: n.max(1),
            ..self
        }
    }
}

/// Rebalance callbacks; remembers since when this member has had no partitions, which
/// partitions were revoked since the loop last looked, and where assigned partitions resume.
#[derive(Default)]
struct LoopContext {
    unassigned_since: std::sync::Mutex<Option<Instant>>,
    revoked: std::sync::Mutex<Vec<(String, i32)>>,
    /// How many records before its committed offset an assigned partition's fetch starts
    /// (0: at the committed offset). See [`LoopContext::rewind`].
    rewind: i64,
    /// Per assigned partition, its committed offset when it was assigned: records below it
    /// were read again only because of the rewind and are skipped.
    /// Keyed by partition: the loop consumes one topic, and no topic is cloned per record.
    resume_at: std::sync::Mutex<HashMap<i32, i64>>,
}

impl LoopContext {
    fn set_unassigned(&self, since: Option<Instant>) {
        *lock(&self.unassigned_since) = since;
    }

    fn unassigned_for(&self) -> Option<Duration> {
        lock(&self.unassigned_since).map(|since| since.elapsed())
    }

    fn take_revoked(&self) -> Vec<(String, i32)> {
        std::mem::take(&mut *lock(&self.revoked))
    }

    /// True for a record the partition's committed offset had already passed.
    fn done_before(&self, record: &Record) -> bool {
        lock(&self.resume_at)
            .get(&record.partition)
            .is_some_and(|resume| record.offset < *resume)
    }

    /// tansu 0.6 answers a fetch only with the batches that start at or after the fetch
    /// offset, so a consumer resuming from a committed offset inside a multi-record batch
    /// would silently skip the rest of that batch (docs/upstream/tansu-fetch-inside-batch.md;
    /// fixed upstream after 0.6, in what is now nisshi 0.8.1). With batching producers, each
    /// assigned partition's fetch therefore starts `rewind` records earlier: the batch
    /// holding the committed offset starts there at the latest, as no batch holds more than
    /// [`crate::BATCH_RECORDS`]. The loop skips what lies below the committed offset. On a
    /// broker without the bug this re-reads at most `rewind` records per assignment.
    fn rewind(&self, consumer: &BaseConsumer<Self>, assignment: &mut TopicPartitionList) {
        let committed = match consumer
            .committed_offsets(assignment.clone(), Duration::from_secs(10))
        {
            Ok(committed) => committed,
            Err(error) => {
                tracing::warn!(%error, "committed offsets unknown; partitions resume without rewinding");
                return;
            }
        };
        let mut resume_at = lock(&self.resume_at);
        for element in committed.elements() {
            let Offset::Offset(at) = element.offset() else {
                continue; // nothing committed: read from the beginning, a batch boundary
            };
            let start = Offset::Offset((at - self.rewind).max(0));
            if let Err(error) =
                assignment.set_partition_offset(element.topic(), element.partition(), start)
            {
                tracing::warn!(%error, partition = element.partition(), "not rewound");
                continue;
            }
            resume_at.insert(element.partition(), at);
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientContext for LoopContext {}

impl ConsumerContext for LoopContext {
    /// librdkafka's eager rebalance, as rdkafka's default runs it, with the assignment's
    /// start offsets rewound first when producers batch (see [`LoopContext::rewind`]).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            if self.rewind > 0 {
                self.rewind(consumer, partitions);
            }
            if let Err(error) = consumer.assign(partitions) {
                tracing::error!(%error, "assignment failed");
            }
            self.post_rebalance(consumer, &Rebalance::Assign(partitions));
            return;
        }
        let rebalance = if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
            Rebalance::Revoke(partitions)
        } else {
            let code = RDKafkaErrorCode::from(err);
            tracing::error!(%code, "rebalance failed");
            Rebalance::Error(KafkaError::Rebalance(code))
        };
        self.pre_rebalance(consumer, &rebalance);
        if let Err(error) = consumer.unassign() {
            tracing::error!(%error, "unassigning failed");
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // Only finished work is stored (each partition's lowest unfinished offset), so
            // committing now hands over exactly what is done; records still running here
            // are read again by the next owner, and the loop forgets these partitions
            // before it finishes anything else.
            commit_stored(consumer);
            let mut resume_at = lock(&self.resume_at);
            for e in partitions.elements() {
                resume_at.remove(&e.partition());
            }
            drop(resume_at);
            lock(&self.revoked).extend(
                partitions
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition())),
            );
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
        // The loop polls while handlers run (records read ahead wait), so a long handler
        // does not count against it.
        .set("max.poll.interval.ms", "20000")
        // How long the broker may hold a fetch that finds nothing new: tansu 0.6 holds it
        // that long even when records arrive meanwhile, so this is each hop's latency
        // (librdkafka's default of 500 ms made publish → first email ~400 ms).
        .set("fetch.wait.max.ms", "50")
        .create_with_context(LoopContext {
            rewind: if config.one_record_per_batch {
                0
            } else {
                crate::BATCH_RECORDS as i64 - 1
            },
            ..LoopContext::default()
        })?;
    consumer.subscribe(&[&topic])?;
    tracing::info!(topic, group, in_flight = spec.in_flight, "consuming");

    let worker = Arc::new(Worker {
        handler,
        producer,
        dead_letter_topic: topics.dead_letter(spec.topic),
        group: group.clone(),
        max_backoff: config.max_retry_backoff,
        shutdown: shutdown.clone(),
    });
    let mut work = Work {
        consumer: &consumer,
        worker,
        tracker: Tracker::default(),
        running: JoinSet::new(),
        read_ahead: VecDeque::new(),
        draining: false,
    };
    let limit = spec.in_flight.max(1);
    // Records read while `limit` are unfinished wait here, so the loop goes on polling (a
    // long handler, such as a city-wide fan-out, must not outlive `max.poll.interval.ms`
    // and cost the partition); it stops reading only when this is full too.
    let read_ahead = limit.max(READ_AHEAD);
    let mut poll_errors = 0u32;
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    loop {
        work.forget_revoked();
        while work.has_room(limit)
            && let Some(record) = work.read_ahead.pop_front()
        {
            work.admit(record);
        }
        if !work.has_room(limit) && work.read_ahead.len() >= read_ahead {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = work.running.join_next() => {
                    if !work.finished(done)? { break }
                }
            }
            continue;
        }
        let message = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = work.running.join_next() => {
                if !work.finished(done)? { break }
                continue;
            }
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
        // A rebalance inside `recv` may have revoked partitions: forget them before the
        // record (of the new assignment) is admitted.
        work.forget_revoked();
        if consumer.context().done_before(&record) {
            continue;
        }
        if work.has_room(limit) && work.read_ahead.is_empty() {
            work.admit(record);
        } else {
            work.read_ahead.push_back(record);
        }
    }
    // Nothing new starts; what runs finishes (or, waiting out a backoff, stays unfinished).
    let in_flight = work.running.len();
    work.draining = true;
    while let Some(done) = work.running.join_next().await {
        work.finished(done)?;
    }
    commit_stored(&consumer);
    consumer.unsubscribe();
    tracing::info!(topic, group, in_flight, "consumer stopped after commit");
    Ok(())
}

/// The loop's records in flight: what runs, what waits, and what may be committed.
struct Work<'c, H> {
    consumer: &'c StreamConsumer<LoopContext>,
    worker: Arc<Worker<H>>,
    tracker: Tracker,
    running: JoinSet<(Ticket, Handled)>,
    /// Read, not admitted yet (never committed until admitted and finished).
    read_ahead: VecDeque<Record>,
    /// Shutting down: records that finish are booked, none starts.
    draining: bool,
}

impl<H: Handler> Work<'_, H> {
    fn start(&mut self, ticket: Ticket, record: Record) {
        let worker = self.worker.clone();
        self.running
            .spawn(async move { (ticket, worker.process(record).await) });
    }

    fn forget_revoked(&mut self) {
        for (topic, partition) in self.consumer.context().take_revoked() {
            self.tracker.revoke(&topic, partition);
            self.read_ahead
                .retain(|r| r.partition != partition || r.topic != topic);
        }
    }

    /// True when fewer than `limit` records are unfinished (or still running after their
    /// partition was revoked).
    fn has_room(&self, limit: usize) -> bool {
        self.tracker.unfinished().max(self.running.len()) < limit
    }

    fn admit(&mut self, record: Record) {
        if let Some((ticket, record)) = self.tracker.admit(record) {
            self.start(ticket, record);
        }
    }

    /// Books a record that ended: starts the next of its key and stores the partition's
    /// new position. False when it did not finish (shutdown came while it waited to retry).
    fn finished(
        &mut self,
        done: Result<(Ticket, Handled), tokio::task::JoinError>,
    ) -> anyhow::Result<bool> {
        // Tasks are never aborted, and a handler's panic is caught inside its task.
        let (ticket, handled) =
            done.map_err(|e| anyhow::anyhow!("consumer task ended abnormally: {e}"))?;
        if handled == Handled::Interrupted {
            return Ok(false);
        }
        self.forget_revoked();
        let finished = self.tracker.finish(&ticket);
        if let Some(position) = finished.commit {
            let mut offsets = TopicPartitionList::new();
            // The position is the next offset to read, as Kafka commits it.
            let stored = offsets
                .add_partition_offset(&ticket.topic, ticket.partition, Offset::Offset(position))
                .and_then(|()| self.consumer.store_offsets(&offsets));
            // Fails when the partition was taken away meanwhile (e.g. a handler outlived
            // `max.poll.interval.ms`); the new owner then handles the records again.
            if let Err(error) = stored {
                tracing::warn!(%error, partition = ticket.partition, position, "offset not stored; records from there will be redelivered");
            }
        }
        if let Some((ticket, record)) = finished.next.filter(|_| !self.draining) {
            self.start(ticket, record);
        }
        Ok(true)
    }
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

/// Records read ahead while a consumer is full, at least (more when `in_flight` is larger).
const READ_AHEAD: usize = 256;

/// How handling a record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// Handled, or dead-lettered: the record may be committed.
    Done,
    /// Shutdown came while it waited to retry: it stays uncommitted, for redelivery.
    Interrupted,
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
    /// Handles `record` to completion (done or dead-lettered), unless shutdown comes while
    /// it waits to retry.
    async fn process(&self, record: Record) -> Handled {
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
        self.process_in_span(&record).instrument(span).await
    }

    async fn process_in_span(&self, record: &Record) -> Handled {
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            // A handler that panics on a record would panic on every redelivery of it.
            let handled = AssertUnwindSafe(self.handler.handle(record))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(HandleError::Permanent(format!("handler panicked: {what}")))
                });
            match handled {
                Ok(()) => return Handled::Done,
                Err(HandleError::Permanent(reason)) => {
                    tracing::error!(reason, "permanent failure; dead-lettering");
                    let mut backoff = Backoff::new(self.max_backoff);
                    loop {
                        match self.dead_letter(record, &reason).await {
                            Ok(()) => return Handled::Done,
                            Err(error) => {
                                tracing::warn!(%error, "dead-letter write failed; retrying");
                                if !self.pause(backoff.next()).await {
                                    return Handled::Interrupted;
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
                        return Handled::Interrupted;
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
