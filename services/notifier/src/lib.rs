//! The notifier: sends each `DeliveryRequested` at most once per (policy, recipient,
//! channel) and reports the outcome on `delivery.status`. Requests marked DAILY_DIGEST wait
//! in the [`DigestStore`](zhida_store::DigestStore) and go out together at the next digest run (`digest.send_at`,
//! every `digest.period`), as one message per recipient, under the same ledger.
//!
//! Exactly-once in effect, over an at-least-once log: the [`DeliveryLedger`](zhida_store::DeliveryLedger) lease makes one
//! replica the sender; the outcome is recorded before the status event goes out, and a
//! redelivered request finds the outcome and only repeats the (idempotent) status event.
//! The one window left is a crash after the SMTP server accepted a message and before the
//! outcome was recorded; the request is then sent again once the lease expires. The
//! deterministic Message-ID lets the receiving side recognise that duplicate.
//!
//! The map:
//! - [`sender`]: the `delivery.requests` handler: ledger, digests, status events;
//! - [`address`]: sealed addresses opened at send time (a deleted profile's no longer open);
//! - [`digest`]: the daily digest runs;
//! - [`held`]: notices a channel holds back (SMS in quiet hours) go out when it allows;
//! - [`erasure`]: a deleted profile's inbox, waiting digests and recipient records go with
//!   it;
//! - [`notice`]: what a delivery carries (the policy, a revision or withdrawal notice) and
//!   its ledger key;
//! - [`policies`]: the `policy.events` consumer: revisions and withdrawals reach earlier
//!   recipients, and a withdrawal stops what was not sent yet;
//! - [`channel`]: the ways of reaching a person behind one trait, one module each (email,
//!   SMS, the inbox);
//! - [`sms`]: the SMS rules as pure decisions (templates, quiet hours, providers, rates);
//! - [`grpc`] and [`inbox_api`]: the `NotificationService` and `InboxService` handlers;
//! - [`config`]: the notifier's own sections (`[smtp]`, `[sms]`, `[digest]`, `[inbox]`);
//! - [`error`]: the notifier's errors and their one mapping to gRPC statuses.

mod address;
mod channel;
mod config;
mod digest;
mod erasure;
mod error;
mod grpc;
mod held;
mod inbox_api;
mod notice;
mod policies;
mod sender;
mod sms;
pub mod templates;

use std::sync::Arc;

use tokio::net::TcpListener;
use zhida_bus::{ConsumerSpec, Group, Producer, Topic};
use zhida_proto::notification::v1::{
    inbox_service_server::InboxServiceServer,
    notification_service_server::NotificationServiceServer,
};
use zhida_runtime::{Component, Config, Shutdown};
use zhida_store::Stores;

pub use channel::email::Email;
pub use channel::email::dkim::{Dkim, generate_ed25519_pem};
pub use channel::email::mailer::from_config as mailer;
pub use channel::email::mailer::{MailError, Mailer, redact};
pub use channel::sms::mask as mask_mobile;
pub use channel::{Attempt, Channel};
pub use config::{DigestConfig, DkimConfig, InboxConfig, NotifierConfig, SmtpConfig, SmtpMode};
pub use sms::{HealthConfig, ProviderConfig, QuietHoursConfig, SmsConfig, SmsMode, TemplateConfig};

/// The notifier's gRPC routes, its `delivery.requests` consumer and its digest runs; `own`
/// holds the notifier's own sections (`[smtp]`, `[digest]`, `[inbox]`).
pub async fn component(
    config: &Config,
    own: &NotifierConfig,
    shutdown: &Shutdown,
) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/notifier")?;
    let stores = Stores::open(&config.store).await?;
    let ledger = stores.ledger();
    // One inbox store for the channel that fills it and the service that reads it.
    let inbox = stores.inbox();
    let digest_store = stores.digests();
    let channels = channel::Channels::from_config(
        own,
        channel::Resources {
            inbox: inbox.clone(),
            receipts: stores.receipts(),
            producer: producer.clone(),
            shutdown: shutdown.token.clone(),
            unsubscribe: Arc::new(
                config
                    .unsubscribe
                    .keyring()
                    .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?,
            ),
        },
    )?;
    let held_store = stores.batches("held-");
    let recipients = stores.policy_recipients();
    let sender = sender::Sender {
        ledger: ledger.clone(),
        digests: digest_store.clone(),
        held: held_store.clone(),
        channels,
        producer: producer.clone(),
        lease: config.store.delivery_lease,
        keys: stores.subject_keys(),
        recipients: recipients.clone(),
    };
    let digests = digest::run(sender.clone(), own.digest.clone(), shutdown.token.clone());
    let held = held::run(sender.clone(), shutdown.token.clone());
    let consumer = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec::new(Group::Notifier, Topic::DeliveryRequests)
            .in_flight(config.kafka.max_in_flight),
        sender,
        producer.clone(),
        shutdown.token.clone(),
    );
    let erasure = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec::new(Group::NotifierErasure, Topic::Profiles),
        erasure::Erasure {
            inbox: inbox.clone(),
            batches: vec![digest_store, held_store],
            recipients: recipients.clone(),
        },
        producer.clone(),
        shutdown.token.clone(),
    );
    let policies = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec::new(Group::NotifierPolicies, Topic::PolicyEvents),
        policies::PolicyNotices {
            recipients,
            producer: producer.clone(),
        },
        producer.clone(),
        shutdown.token.clone(),
    );
    Ok(Component::new("notifier")
        .grpc(NotificationServiceServer::new(grpc::Notifications {
            ledger,
        }))
        .grpc(InboxServiceServer::new(inbox_api::InboxApi {
            inbox,
            producer,
            shutdown: shutdown.token.clone(),
        }))
        .task("delivery-sender", consumer)
        .task("digest-sender", digests)
        .task("held-sender", held)
        .task("erasure", erasure)
        .task("policy-notices", policies))
}

/// Runs the notifier alone on `listener` until `shutdown`.
pub async fn run(
    config: Config,
    own: NotifierConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let component = component(&config, &own, &shutdown).await?;
    zhida_runtime::serve(
        vec![component],
        listener,
        shutdown,
        zhida_runtime::Host::from_config(&config),
    )
    .await
}
