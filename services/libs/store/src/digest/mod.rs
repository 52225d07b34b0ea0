//! Daily digests: policies a recipient asked to receive once a day wait here until the
//! notifier's digest run sends them as one message.
//!
//! Per (recipient, channel) there is an *open* digest that [`add`](DigestStore::add) fills
//! (once per policy), and at most one *closed* digest being sent. [`close`](DigestStore::close)
//! turns every open digest into a closed one, unless that recipient still has a closed
//! one, and returns all closed digests, including those a crashed run left behind.
//! A closed digest is read with [`items`](DigestStore::items) and removed by
//! [`complete`](DigestStore::complete) once it was sent and recorded. A policy already in
//! the closed digest is not added to the open one again, so a redelivered request cannot
//! put it into a second digest.

pub mod contract;
mod memory;
mod redis;

use async_trait::async_trait;
use zhida_proto::events::v1::Channel;

pub use self::{memory::MemoryDigests, redis::RedisDigests};
use crate::{Result, channel_segment, parse_channel_segment};

/// Whose digest. Components must not contain `|`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DigestKey {
    pub recipient_id: String,
    pub channel: Channel,
}

impl DigestKey {
    /// `recipient|channel` with the channel as [`channel_segment`] spells it (`c-1|email`).
    pub fn encoded(&self) -> String {
        format!("{}|{}", self.recipient_id, channel_segment(self.channel))
    }

    /// The key [`encoded`](Self::encoded) wrote; `None` for any other text.
    fn decode(text: &str) -> Option<Self> {
        let (recipient_id, channel) = text.split_once('|')?;
        Some(Self {
            recipient_id: recipient_id.into(),
            channel: parse_channel_segment(channel)?,
        })
    }
}

#[async_trait]
pub trait DigestStore: Send + Sync {
    /// Adds `item` for `policy_id` to the open digest of `key`. Idempotent; a no-op when
    /// the closed digest of `key` holds `policy_id` already.
    async fn add(&self, key: &DigestKey, policy_id: &str, item: &[u8]) -> Result<()>;
    /// Closes the open digests (each recipient's, unless it has a closed one still) and
    /// returns every closed digest.
    async fn close(&self) -> Result<Vec<DigestKey>>;
    /// The closed digest of `key`: `(policy_id, item)` ordered by policy id.
    async fn items(&self, key: &DigestKey) -> Result<Vec<(String, Vec<u8>)>>;
    /// Removes the closed digest of `key` if it holds exactly `policy_ids` (the ones just
    /// sent), so a run that was overtaken cannot remove a newer closed digest.
    async fn complete(&self, key: &DigestKey, policy_ids: &[String]) -> Result<()>;
    /// Forgets the open and the closed digest of `key` (the recipient's profile was
    /// deleted: what waits for them, addresses included, goes with it).
    async fn remove(&self, key: &DigestKey) -> Result<()>;
}
