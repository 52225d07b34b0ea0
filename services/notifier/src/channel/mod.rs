//! The ways the notifier reaches a person. Each channel renders, sends and classifies the
//! outcome of one notice (or one daily digest) behind the [`Channel`] trait, in a module of
//! its own; the ledger, dedup per (policy, recipient, channel), digests, status events and
//! reasons sit above the trait in [`sender`](crate::sender) and are the same for every
//! channel. Adding a channel is one module plus one line in [`Channels::from_config`].

pub(crate) mod email;
pub(crate) mod inbox;
pub(crate) mod sms;

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use zhida_bus::Producer;
use zhida_proto::events::v1::{Channel as Kind, DeliveryRequested};

use crate::{config::NotifierConfig, sms::SmsMode};

/// What channels are built from besides their configuration.
pub struct Resources {
    /// The store the inbox channel fills (and `InboxService` reads).
    pub inbox: Arc<dyn zhida_store::Inbox>,
    /// Where SMS message ids wait for their receipts.
    pub receipts: Arc<dyn zhida_store::ReceiptIndex>,
    /// The notifier's one producer (receipts become status events).
    pub producer: Producer,
    /// Ends the channels' background work.
    pub shutdown: CancellationToken,
    /// Signs the one-click unsubscribe links of email.
    pub unsubscribe: Arc<zhida_unsubscribe::Keyring>,
}

/// How one attempt to reach a person ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Handed over; `detail` is for operators (never personal data).
    Sent { detail: String },
    /// Refused for good (a message that cannot be built, content the server will never
    /// take): recorded as failed, never retried.
    Refused { detail: String },
    /// The server refused the address for good (SMTP 5xx for the mailbox, an SMSC that
    /// refuses the number): recorded as undeliverable, never retried.
    Undeliverable { detail: String },
    /// Worth another try later (the server is down or busy): nothing is recorded.
    Retry { detail: String },
}

/// One way of reaching a person.
#[async_trait]
pub trait Channel: Send + Sync {
    /// The channel it delivers.
    fn kind(&self) -> Kind;

    /// When a notice that is not urgent, arriving at `now_unix` (seconds since the
    /// epoch), may go out: `None` now, `Some(t)` held until `t` (SMS quiet hours). The
    /// sender keeps held notices and sends them then, once.
    fn held_until(&self, _now_unix: i64) -> Option<i64> {
        None
    }

    /// Whether notices can wait for a daily digest on this channel; a channel without
    /// one (SMS: no template lists several policies) sends digest requests at once.
    fn has_digest(&self) -> bool {
        true
    }

    /// Sends the notice for `request`.
    async fn send(&self, request: &DeliveryRequested) -> Attempt;

    /// Sends one digest holding every request of `requests` (one recipient, at least one
    /// request), identified by `digest_id` (stable for the same set of policies).
    async fn send_digest(&self, digest_id: &str, requests: &[DeliveryRequested]) -> Attempt;
}

/// The channels this notifier delivers, by kind.
#[derive(Clone, Default)]
pub struct Channels(HashMap<Kind, Arc<dyn Channel>>);

impl Channels {
    /// Every channel the configuration sets up. SMS needs providers (or `mode = "file"`):
    /// without them it is left out, and SMS requests are dead-lettered with the reason.
    pub fn from_config(config: &NotifierConfig, resources: Resources) -> anyhow::Result<Self> {
        let mut channels = Self::default();
        channels.register(email::Email::from_config(
            &config.smtp,
            resources.unsubscribe.clone(),
        )?);
        channels.register(inbox::Inbox::new(
            resources.inbox.clone(),
            config.inbox.max_items,
        ));
        if config.sms.mode == SmsMode::Smpp && config.sms.providers.is_empty() {
            tracing::warn!(
                "no [[sms.providers]] configured: SMS requests go to the dead-letter topic"
            );
        } else {
            channels.register(sms::Sms::from_config(&config.sms, resources)?);
        }
        Ok(channels)
    }

    /// Adds (or replaces) the channel for its kind.
    pub fn register(&mut self, channel: impl Channel + 'static) {
        self.0.insert(channel.kind(), Arc::new(channel));
    }

    pub fn get(&self, kind: Kind) -> Option<&Arc<dyn Channel>> {
        self.0.get(&kind)
    }

    /// Every registered channel.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Channel>> {
        self.0.values()
    }
}
