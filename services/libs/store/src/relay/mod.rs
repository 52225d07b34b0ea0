//! The relay's ("政府+") serving state, shared by its replicas:
//!
//! - [`SubscriberRegistry`]: the registered associations and parks (their record, encoded
//!   by the relay, secrets included), with a generation that changes on every write so a
//!   replica can keep a parsed copy and reload only when it moved;
//! - [`WebhookOutbox`]: per endpoint, a bounded FIFO of webhook deliveries, each sent in
//!   order with its attempts counted; endpoints are claimed with a lease, so one replica at
//!   a time works an endpoint's head and a crashed one's claim lapses;
//! - [`RelayReach`]: per policy, how far it went through each subscriber (reached, taken
//!   by webhook, pull or stream, forwarded members and what became of them);
//! - [`FeedSignals`]: "this feed has something new", so streams wait without polling.

pub mod contract;
mod memory;
mod redis;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use self::{
    memory::{MemoryFeedSignals, MemoryRelayReach, MemorySubscriberRegistry, MemoryWebhookOutbox},
    redis::{RedisFeedSignals, RedisRelayReach, RedisSubscriberRegistry, RedisWebhookOutbox},
};
use crate::Result;

/// The registered subscribers, as opaque records keyed by subscriber id.
#[async_trait]
pub trait SubscriberRegistry: Send + Sync {
    /// Creates or replaces `id`'s record.
    async fn put(&self, id: &str, record: &[u8]) -> Result<()>;
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// Every record, in id order.
    async fn all(&self) -> Result<Vec<(String, Vec<u8>)>>;
    /// Removes `id`; true when it was there.
    async fn remove(&self, id: &str) -> Result<bool>;
    /// Changes (to a value never seen before) on every put and remove.
    async fn generation(&self) -> Result<u64>;
}

/// One webhook delivery waiting in an endpoint's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The `webhook-id`: the same on every attempt; unique per endpoint.
    pub id: String,
    /// The JSON body.
    pub payload: Vec<u8>,
}

/// The head of an endpoint's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub message: OutboxMessage,
    /// Attempts made so far (0 before the first).
    pub attempts: u32,
    /// When it was queued.
    pub queued_at: SystemTime,
}

/// What [`WebhookOutbox::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// At the back of the queue.
    Added,
    /// A message with this id was queued before (it may have been sent since): nothing done.
    Duplicate,
    /// The queue holds `capacity` messages: not queued; counted in [`OutboxStats::overflowed`].
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    pub pending: u64,
    pub overflowed: u64,
}

/// Per-endpoint FIFO queues of webhook deliveries, scheduled by when each endpoint's head
/// is due. An endpoint is *scheduled* (has a due time) while it has messages and is not
/// paused; [`claim_due`](WebhookOutbox::claim_due) pushes the due time of what it returns
/// `lease` ahead, so concurrent dispatchers never work the same endpoint at once.
#[async_trait]
pub trait WebhookOutbox: Send + Sync {
    /// Appends `message` to `endpoint`'s queue unless its id was ever queued there (ids are
    /// remembered until [`clear`](WebhookOutbox::clear)) or the queue holds `capacity`.
    /// A queue that was empty (and is not paused) becomes due now.
    async fn enqueue(
        &self,
        endpoint: &str,
        message: &OutboxMessage,
        capacity: usize,
    ) -> Result<Enqueued>;
    /// Up to `limit` endpoints whose head is due at `now`, earliest first; each is then due
    /// at `now + lease` unless [`pop`](WebhookOutbox::pop) or
    /// [`retry`](WebhookOutbox::retry) sets it first.
    async fn claim_due(
        &self,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<String>>;
    /// The head of `endpoint`'s queue.
    async fn head(&self, endpoint: &str) -> Result<Option<Queued>>;
    /// Removes the head if its id is `id` (delivered, or given up on); the next message, if
    /// any, is due at `next_at` (the endpoint's rate limit). Another id at the head: nothing.
    async fn pop(&self, endpoint: &str, id: &str, next_at: SystemTime) -> Result<()>;
    /// The head `id` failed an attempt: counts it and makes the endpoint due at `at`.
    /// Returns the attempts made; 0 when `id` is not the head (nothing changed).
    async fn retry(&self, endpoint: &str, id: &str, at: SystemTime) -> Result<u32>;
    /// Unschedules `endpoint` (its webhook was disabled); the queue stays, and
    /// [`enqueue`](WebhookOutbox::enqueue) still appends (up to capacity) without scheduling.
    async fn pause(&self, endpoint: &str) -> Result<()>;
    /// Undoes [`pause`](WebhookOutbox::pause): due at `at` if it has messages.
    async fn resume(&self, endpoint: &str, at: SystemTime) -> Result<()>;
    /// Drops `endpoint`'s queue, remembered ids, pause and counters; returns how many
    /// messages were pending.
    async fn clear(&self, endpoint: &str) -> Result<u64>;
    async fn stats(&self, endpoint: &str) -> Result<OutboxStats>;
}

/// What happened to a policy at one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReachMark {
    /// The policy entered its feed, at `tier`, by `by` (the relay's `FeedEvent` number:
    /// relayed by scope or forwarded by the parent). The first mark of a subscriber stays.
    Reached {
        tier: u32,
        by: i32,
    },
    WebhookDelivered,
    WebhookFailed,
    Pulled,
    Streamed,
}

/// How far a policy went through one subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredReach {
    pub subscriber_id: String,
    /// From the first [`ReachMark::Reached`]; 0 and 0 when never marked reached.
    pub tier: u32,
    pub by: i32,
    pub webhook_delivered: bool,
    pub webhook_failed: bool,
    pub pulled: bool,
    pub streamed: bool,
    /// Each member it forwarded the policy to, with the delivery states seen for it: bit
    /// `1 << state` for each `DeliveryState` number reported (0: forwarded, nothing yet).
    /// In member id order.
    pub members: Vec<(String, u32)>,
}

/// Per policy, how far it went through each subscriber.
#[async_trait]
pub trait RelayReach: Send + Sync {
    /// Records `mark` for `subscriber` on each of `policies` (idempotent).
    async fn mark(&self, subscriber: &str, policies: &[String], mark: ReachMark) -> Result<()>;
    /// Records that `subscriber` forwarded `policy` to `members` (each keeps what it had).
    async fn forwarded(&self, policy: &str, subscriber: &str, members: &[String]) -> Result<()>;
    /// Sets bit `1 << state` (a `DeliveryState` number, < 32) of `member` at every
    /// subscriber that forwarded `policy` to it; returns how many there were (0: the member
    /// was not forwarded this policy, nothing recorded).
    async fn member_state(&self, policy: &str, member: &str, state: u32) -> Result<usize>;
    /// Every subscriber marked for `policy` (reached, or forwarded), in id order.
    async fn reach(&self, policy: &str) -> Result<Vec<StoredReach>>;
    /// Forgets `subscriber` in every policy (it was removed). May be lazy (e.g. the reach of a
    /// removed subscriber kept but no longer listed) as long as `reach` no longer lists it.
    async fn remove_subscriber(&self, subscriber: &str) -> Result<()>;
}

/// "Feed `name` has new entries", across replicas; best effort (a missed signal only delays
/// a stream until its next poll).
#[async_trait]
pub trait FeedSignals: Send + Sync {
    async fn notify(&self, feed: &str) -> Result<()>;
    /// A receiver of the names of feeds notified from now on (by any replica). Lagging
    /// receivers skip ahead (`RecvError::Lagged`), they do not block senders.
    fn subscribe(&self) -> broadcast::Receiver<String>;
}
