//! Serving state behind small traits, each with two implementations that pass the same
//! contract tests ([`contract`]): Redis for deployments, memory for the embedded default.
//!
//! - [`DeliveryLedger`]: the notifier's exactly-once gate per (policy, recipient, channel);
//! - [`Feed`]: an append-only, idempotent, cursor-paged feed (the relay's "政府+" feed);
//! - [`DigestStore`]: policies waiting for a recipient's daily digest;
//! - [`Inbox`]: each recipient's bounded inbox of notices ("两页"), newest first, with read
//!   marks and a wait for new items that serves a stream;
//! - [`WriteLeases`]: one writer at a time per key, handing on where its last write landed;
//! - [`ReceiptIndex`]: which delivery an SMS provider's message id belongs to, taken once
//!   when its delivery receipt arrives;
//! - [`SubjectKeys`]: each subject's data key, which seals its contact addresses and which
//!   deleting the profile destroys;
//! - [`PolicyRecipients`]: who received each policy on which channel (for its revision and
//!   withdrawal notices), and which policies were withdrawn;
//! - [`SubscriberRegistry`], [`WebhookOutbox`], [`RelayReach`] and [`FeedSignals`]: the
//!   relay's subscribers, their webhook queues, how far each policy went through them, and
//!   the signal that a subscriber's feed has something new.
//!
//! The crate is organised by store, not by backend: each store is one folder, `mod.rs`
//! with its trait, key and value types, `redis.rs` and `memory.rs` with its two
//! implementations, and `contract.rs` with the tests both must pass. Adding a store is one
//! new folder plus its contract tests (run against both in `tests/it`), its re-exports
//! below and its opener on [`Stores`]. What stores share (errors, the channel's spelling in
//! keys, `millis`) stays here.

pub mod contract;
mod digest;
mod feed;
mod inbox;
mod keys;
mod lease;
mod ledger;
mod receipt;
mod recipients;
mod relay;

use std::{sync::Arc, time::Duration};

pub use digest::{DigestKey, DigestStore, MemoryDigests, RedisDigests};
pub use feed::{Feed, FeedEntry, FeedReadError, MemoryFeed, RedisFeed};
pub use inbox::{
    Inbox, InboxItem, InboxPage, InboxReadError, MarkRead, MemoryInbox, RedisInbox, WAIT_BATCH,
};
pub use keys::{MemorySubjectKeys, RedisSubjectKeys, SubjectKeys};
pub use lease::{
    LAST_WRITE_TTL, Lease, LogPosition, MemoryWriteLeases, RedisWriteLeases, Release, WriteLeases,
};
pub use ledger::{
    Begin, DeliveryKey, DeliveryLedger, MemoryLedger, Outcome, OutcomeState, RedisLedger, Status,
};
pub use receipt::{MemoryReceiptIndex, ReceiptIndex, ReceiptTarget, RedisReceiptIndex};
pub use recipients::{MemoryPolicyRecipients, PolicyRecipients, Recipient, RedisPolicyRecipients};
pub use relay::{
    Enqueued, FeedSignals, MemoryFeedSignals, MemoryRelayReach, MemorySubscriberRegistry,
    MemoryWebhookOutbox, OutboxMessage, OutboxStats, Queued, ReachMark, RedisFeedSignals,
    RedisRelayReach, RedisSubscriberRegistry, RedisWebhookOutbox, RelayReach, StoredReach,
    SubscriberRegistry, WebhookOutbox,
};
use zhida_proto::events::v1::Channel;
use zhida_runtime::config::{StoreBackend, StoreConfig};

/// A store that could not answer. Always worth retrying: callers treat it as transient.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(String);

impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> Self {
        Self(error.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens the stores the configuration asks for.
#[derive(Clone)]
pub struct Stores {
    config: StoreConfig,
    /// The client opens connections of a store's own (the inbox's blocking reads); the
    /// manager is shared by everything else.
    redis: Option<(redis::Client, redis::aio::ConnectionManager)>,
}

impl Stores {
    /// Connects to Redis when `store.backend = "redis"` (fails if it cannot).
    pub async fn open(config: &StoreConfig) -> Result<Self> {
        let redis = match config.backend {
            StoreBackend::Memory => None,
            StoreBackend::Redis => {
                let client = redis::Client::open(config.redis_url.as_str())?;
                let conn = redis::aio::ConnectionManager::new(client.clone()).await?;
                Some((client, conn))
            }
        };
        Ok(Self {
            config: config.clone(),
            redis,
        })
    }

    pub fn ledger(&self) -> Arc<dyn DeliveryLedger> {
        match &self.redis {
            Some((_, conn)) => Arc::new(RedisLedger::new(
                conn.clone(),
                &self.config.key_prefix,
                self.config.dedup_ttl,
            )),
            None => Arc::new(MemoryLedger::default()),
        }
    }

    pub fn digests(&self) -> Arc<dyn DigestStore> {
        self.batches("")
    }

    /// Another set of batches like the daily digests, under `<key_prefix><name>`: e.g. the
    /// SMS held through quiet hours (`held-`).
    pub fn batches(&self, name: &str) -> Arc<dyn DigestStore> {
        match &self.redis {
            Some((_, conn)) => Arc::new(RedisDigests::new(
                conn.clone(),
                &format!("{}{name}", self.config.key_prefix),
            )),
            None => Arc::new(MemoryDigests::default()),
        }
    }

    /// SMS message ids awaiting their receipts, under `<key_prefix>sms-receipt:`.
    pub fn receipts(&self) -> Arc<dyn ReceiptIndex> {
        match &self.redis {
            Some((_, conn)) => Arc::new(RedisReceiptIndex::new(
                conn.clone(),
                &self.config.key_prefix,
            )),
            None => Arc::new(MemoryReceiptIndex::default()),
        }
    }

    /// Subjects' data keys under `<key_prefix>subject-key:`. In memory, every component of
    /// the process shares them (the profiler seals, the notifier opens).
    pub fn subject_keys(&self) -> Arc<dyn SubjectKeys> {
        match &self.redis {
            Some((_, conn)) => {
                Arc::new(RedisSubjectKeys::new(conn.clone(), &self.config.key_prefix))
            }
            None => MemorySubjectKeys::shared(&self.config.key_prefix),
        }
    }

    /// Who received which policy, and the withdrawn policies, under `<key_prefix>recipients:`,
    /// `<key_prefix>recipient-policies:` and `<key_prefix>withdrawn`.
    pub fn policy_recipients(&self) -> Arc<dyn PolicyRecipients> {
        match &self.redis {
            Some((_, conn)) => Arc::new(RedisPolicyRecipients::new(
                conn.clone(),
                &self.config.key_prefix,
            )),
            None => Arc::new(MemoryPolicyRecipients::default()),
        }
    }

    /// Write leases under `<key_prefix><name>:`.
    pub fn write_leases(&self, name: &str) -> Arc<dyn WriteLeases> {
        match &self.redis {
            Some((_, conn)) => Arc::new(RedisWriteLeases::new(
                conn.clone(),
                &format!("{}{name}:", self.config.key_prefix),
            )),
            None => Arc::new(MemoryWriteLeases::default()),
        }
    }

    /// Inboxes under `<key_prefix>inbox:` (and `inbox-ids:`, `inbox-read:`).
    pub fn inbox(&self) -> Arc<dyn Inbox> {
        match &self.redis {
            Some((client, conn)) => Arc::new(RedisInbox::new(
                client.clone(),
                conn.clone(),
                &self.config.key_prefix,
            )),
            None => Arc::new(MemoryInbox::default()),
        }
    }

    /// The relay's subscribers under `<key_prefix>relay-subscribers`. In memory they live in
    /// the handle: open it once.
    pub fn subscriber_registry(&self) -> Arc<dyn SubscriberRegistry> {
        match &self.redis {
            Some((_, conn)) => Arc::new(RedisSubscriberRegistry::new(
                conn.clone(),
                &self.config.key_prefix,
            )),
            None => Arc::new(MemorySubscriberRegistry::default()),
        }
    }

    /// The relay's webhook queues under `<key_prefix>outbox…`. In memory they live in the
    /// handle: open it once.
    pub fn webhook_outbox(&self) -> Arc<dyn WebhookOutbox> {
        match &self.redis {
            Some((_, conn)) => Arc::new(RedisWebhookOutbox::new(
                conn.clone(),
                &self.config.key_prefix,
            )),
            None => Arc::new(MemoryWebhookOutbox::default()),
        }
    }

    /// The relay's reach under `<key_prefix>reach…`. In memory it lives in the handle: open
    /// it once.
    pub fn relay_reach(&self) -> Arc<dyn RelayReach> {
        match &self.redis {
            Some((_, conn)) => {
                Arc::new(RedisRelayReach::new(conn.clone(), &self.config.key_prefix))
            }
            None => Arc::new(MemoryRelayReach::default()),
        }
    }

    /// Feed signals on the pub/sub channel `<key_prefix>feed-signals`. On Redis each handle
    /// holds a pub/sub connection and a task (so call it inside a tokio runtime, once per
    /// process); in memory, every component of the process shares them.
    pub fn feed_signals(&self) -> Arc<dyn FeedSignals> {
        match &self.redis {
            Some((client, conn)) => Arc::new(RedisFeedSignals::new(
                client.clone(),
                conn.clone(),
                &format!("{}feed-signals", self.config.key_prefix),
            )),
            None => MemoryFeedSignals::shared(&self.config.key_prefix),
        }
    }

    pub fn feed(&self, name: &str) -> Arc<dyn Feed> {
        match &self.redis {
            Some((_, conn)) => Arc::new(RedisFeed::new(
                conn.clone(),
                &format!("{}feed:{name}", self.config.key_prefix),
            )),
            None => Arc::new(MemoryFeed::default()),
        }
    }
}

/// A duration in whole milliseconds for Redis `PX`, at least 1.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// How store keys spell a channel: its proto name without `CHANNEL_`, in lower case
/// (`CHANNEL_EMAIL` is `email`). Deployed ledgers and digests hold keys in this form, so it
/// must not change; it is the one mapping from [`Channel`] to text in the stores.
pub fn channel_segment(channel: Channel) -> String {
    let name = channel.as_str_name();
    name.strip_prefix("CHANNEL_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// The channel `segment` spells, as [`channel_segment`] writes it (and only so).
pub(crate) fn parse_channel_segment(segment: &str) -> Option<Channel> {
    let channel = Channel::from_str_name(&format!("CHANNEL_{}", segment.to_ascii_uppercase()))?;
    (channel_segment(channel) == segment).then_some(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spell_channels_as_deployed_ledgers_hold_them() {
        let key = DeliveryKey {
            policy_id: "p-1".into(),
            recipient_id: "c-1".into(),
            channel: Channel::Email,
        };
        assert_eq!(key.encoded(), "p-1|c-1|email");
        let digest = DigestKey {
            recipient_id: "c-1".into(),
            channel: Channel::Email,
        };
        assert_eq!(digest.encoded(), "c-1|email");
        for channel in [
            Channel::Unspecified,
            Channel::Email,
            Channel::Sms,
            Channel::Inbox,
        ] {
            let segment = channel_segment(channel);
            assert_eq!(parse_channel_segment(&segment), Some(channel), "{segment}");
        }
        assert_eq!(channel_segment(Channel::Sms), "sms");
        assert_eq!(parse_channel_segment("EMAIL"), None, "one spelling only");
        assert_eq!(
            parse_channel_segment("CHANNEL_EMAIL"),
            None,
            "one spelling only"
        );
        assert_eq!(parse_channel_segment("fax"), None);
    }
}
