//! Which delivery an SMS provider's message id belongs to, so that a delivery receipt
//! (`deliver_sm`, minutes or hours after the submit) can become a `DELIVERED` or
//! `UNDELIVERABLE` status of the right (policy, recipient, channel).
//!
//! The sender [`remember`](ReceiptIndex::remember)s each accepted segment's message id;
//! the receipt handler [`take`](ReceiptIndex::take)s it. A message id is taken at most
//! once, so a receipt the SMSC sends again (it does, when our answer was lost) reports
//! nothing twice. Entries expire after `ttl`: a receipt that never comes leaves nothing
//! behind.

pub mod contract;
mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use self::{memory::MemoryReceiptIndex, redis::RedisReceiptIndex};
use crate::{DeliveryKey, Result};

/// Where a receipt belongs: the delivery and the segment it reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTarget {
    pub key: DeliveryKey,
    /// 1-based segment number of a concatenated message.
    pub segment: u8,
    /// How many segments the message has.
    pub segments: u8,
}

#[async_trait]
pub trait ReceiptIndex: Send + Sync {
    /// Records that `provider` accepted a segment of `target` as `message_id`, for `ttl`.
    async fn remember(
        &self,
        provider: &str,
        message_id: &str,
        target: &ReceiptTarget,
        ttl: Duration,
    ) -> Result<()>;
    /// The target of `message_id` at `provider`, once: a second take finds nothing.
    async fn take(&self, provider: &str, message_id: &str) -> Result<Option<ReceiptTarget>>;
}

/// `<segment>/<segments>|<delivery key>`.
fn encode(target: &ReceiptTarget) -> String {
    format!(
        "{}/{}|{}",
        target.segment,
        target.segments,
        target.key.encoded()
    )
}

fn decode(text: &str) -> Option<ReceiptTarget> {
    let (parts, key) = text.split_once('|')?;
    let (segment, segments) = parts.split_once('/')?;
    Some(ReceiptTarget {
        key: DeliveryKey::decode(key)?,
        segment: segment.parse().ok()?,
        segments: segments.parse().ok()?,
    })
}
