//! The delivery ledger: at most one successful send per (policy, recipient, channel).
//!
//! A notifier first [`begin`](DeliveryLedger::begin)s a delivery, which takes a lease; only the
//! lease holder sends. Then it [`finish`](DeliveryLedger::finish)es it (remembered for the dedup
//! TTL) or [`abandon`](DeliveryLedger::abandon)s it after a transient failure so a retry can
//! take it again. A holder that dies loses its lease after `lease`, and a redelivered
//! request takes it over.

pub mod contract;
mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use zhida_proto::events::v1::Channel;

pub use self::{memory::MemoryLedger, redis::RedisLedger};
use crate::{Result, channel_segment};

/// Identifies one delivery. Components must not contain `|`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub policy_id: String,
    pub recipient_id: String,
    pub channel: Channel,
}

impl DeliveryKey {
    /// `policy|recipient|channel` with the channel as [`channel_segment`] spells it
    /// (`p-1|c-1|email`): the key's one textual form, also used for event ids.
    pub fn encoded(&self) -> String {
        format!(
            "{}|{}|{}",
            self.policy_id,
            self.recipient_id,
            channel_segment(self.channel)
        )
    }

    /// The key [`encoded`](Self::encoded) wrote; `None` for any other text.
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '|');
        let (policy_id, recipient_id, channel) = (parts.next()?, parts.next()?, parts.next()?);
        Some(Self {
            policy_id: policy_id.into(),
            recipient_id: recipient_id.into(),
            channel: crate::parse_channel_segment(channel)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeState {
    /// Handed to the channel's server.
    Sent,
    /// Could not be sent for good (a notice that cannot be built, a refused message).
    Failed,
    /// The channel's server refused the address for good (SMTP 5xx for the mailbox, an
    /// SMSC refusing the number): the person cannot be reached there.
    Undeliverable,
    /// Not sent, and never to be: the policy was withdrawn before it went out.
    Cancelled,
    /// Not sent: a forward's delivery ("政府+") whose recipient already had the policy on
    /// this channel (directly, or through another forward). Recorded under the forward's
    /// own key, never the policy's.
    AlreadyReceived,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: OutcomeState,
    /// Free text for operators (never personal data).
    pub detail: String,
}

/// The answer to [`DeliveryLedger::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The caller holds the lease (token) and must send, then finish or abandon.
    Acquired(String),
    /// Someone else holds an unexpired lease.
    InFlight,
    /// Already done: do not send again.
    Done(Outcome),
}

/// What the ledger knows of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    InFlight,
    Done(Outcome),
}

#[async_trait]
pub trait DeliveryLedger: Send + Sync {
    async fn begin(&self, key: &DeliveryKey, lease: Duration) -> Result<Begin>;
    /// Records the outcome. Idempotent; the lease token is not needed, because an outcome
    /// is a fact and the first one recorded wins.
    async fn finish(&self, key: &DeliveryKey, outcome: &Outcome) -> Result<()>;
    /// Releases the lease `token` (no-op if it expired and someone else holds the key).
    async fn abandon(&self, key: &DeliveryKey, token: &str) -> Result<()>;
    async fn status(&self, key: &DeliveryKey) -> Result<Option<Status>>;
}

const IN_FLIGHT: &str = "inflight:";

/// Ledger values: `inflight:<token>`, `sent:<detail>`, `failed:<detail>`,
/// `undeliverable:<detail>`, `cancelled:<detail>` or `already-received:<detail>`.
fn parse(value: &str) -> Status {
    if value.starts_with(IN_FLIGHT) {
        return Status::InFlight;
    }
    let (state, detail) = value.split_once(':').unwrap_or((value, ""));
    let state = match state {
        "failed" => OutcomeState::Failed,
        "undeliverable" => OutcomeState::Undeliverable,
        "cancelled" => OutcomeState::Cancelled,
        "already-received" => OutcomeState::AlreadyReceived,
        _ => OutcomeState::Sent,
    };
    Status::Done(Outcome {
        state,
        detail: detail.to_string(),
    })
}

fn render(outcome: &Outcome) -> String {
    let state = match outcome.state {
        OutcomeState::Sent => "sent",
        OutcomeState::Failed => "failed",
        OutcomeState::Undeliverable => "undeliverable",
        OutcomeState::Cancelled => "cancelled",
        OutcomeState::AlreadyReceived => "already-received",
    };
    format!("{state}:{}", outcome.detail)
}
