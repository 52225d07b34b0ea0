//! The relay ("政府+"): industry associations and industrial parks, and their tiers, each
//! get the policies their scope matches in a feed of their own, by pull, stream or signed
//! webhook; they forward them to their member enterprises (through the profiler and the
//! notifier, deduplicated against direct pushes) and to their child tiers; the district
//! sees how far each policy went through them.
//!
//! The map:
//! - [`subscriber`]: subscribers as stored, and how a registration is checked (pure);
//! - [`scope`]: the policy document scopes are matched against (pure);
//! - [`registry`]: the registered subscribers, cached per replica;
//! - [`delivery`]: reaching one subscriber (feed entry, reach, webhook queue, stream signal);
//! - [`feed_writer`]: the `policy.events` handler that fans policies out to subscribers;
//! - [`dispatcher`]: the webhook sender loop (Standard Webhooks, retries, SSRF guard);
//! - [`reach`]: the `delivery.status` handler for forwarded members, and the reach report;
//! - [`grpc`]: `RelayService`; [`error`]: errors and their one mapping to gRPC statuses.

mod delivery;
mod dispatcher;
mod error;
mod feed_writer;
mod grpc;
mod reach;
mod registry;
mod scope;
mod subscriber;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use zhida_bus::{ConsumerSpec, Group, Producer, Topic};
use zhida_catalogue::Industries;
use zhida_proto::relay::v1::relay_service_server::RelayServiceServer;
use zhida_runtime::{Component, Config, Shutdown};
use zhida_store::Stores;
use zhida_webhook::{Guard, RetrySchedule, Sender, SenderConfig};

/// Where each relayed policy's current state is kept (the states of a feed whose entries
/// are not used; the name is that of the district-wide feed it once was, so deployed
/// states stay readable).
const POLICY_STATES: &str = "all";

/// The relay's gRPC routes, its `policy.events` and `delivery.status` consumers and its
/// webhook dispatcher.
pub async fn component(config: &Config, shutdown: &Shutdown) -> anyhow::Result<Component> {
    let hooks = &config.relay.webhooks;
    let producer = Producer::new(&config.kafka, "/zhida/relay")?;
    let stores = Stores::open(&config.store).await?;
    let registry = Arc::new(registry::Registry::new(
        stores.subscriber_registry(),
        Industries::gbt4754_2017(),
    ));
    let delivery = Arc::new(delivery::Delivery {
        feeds: delivery::Feeds::new(stores.clone()),
        outbox: stores.webhook_outbox(),
        reach: stores.relay_reach(),
        signals: stores.feed_signals(),
        capacity: hooks.queue_capacity,
    });
    let states = stores.feed(POLICY_STATES);
    let guard =
        Guard::from_config(&hooks.allow_networks).context("relay.webhooks.allow_networks")?;
    let mut extra_root_certs_pem = Vec::new();
    for path in &hooks.extra_root_certs {
        extra_root_certs_pem.push(
            std::fs::read(path)
                .with_context(|| format!("relay.webhooks.extra_root_certs: {}", path.display()))?,
        );
    }
    let sender = Sender::new(SenderConfig {
        timeout: hooks.timeout,
        extra_root_certs_pem,
        guard: guard.clone(),
    })
    .context("the webhook sender")?;
    let dispatcher = Arc::new(dispatcher::Dispatcher {
        registry: registry.clone(),
        delivery: delivery.clone(),
        sender,
        schedule: RetrySchedule::new(hooks.schedule()?).context("relay.webhooks.retry_schedule")?,
        default_rate: hooks.max_per_second,
        concurrency: hooks.concurrency,
        timeout: hooks.timeout,
    });
    let feed_writer = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec::new(Group::Relay, Topic::PolicyEvents),
        feed_writer::FeedWriter {
            feed: states.clone(),
            registry: registry.clone(),
            delivery: delivery.clone(),
        },
        producer.clone(),
        shutdown.token.clone(),
    );
    let receipts = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec::new(Group::RelayReceipts, Topic::DeliveryStatus),
        reach::Receipts {
            reach: delivery.reach.clone(),
        },
        producer.clone(),
        shutdown.token.clone(),
    );
    Ok(Component::new("relay")
        .grpc(RelayServiceServer::new(grpc::Relay {
            registry,
            delivery,
            states,
            producer,
            guard,
            rotation_grace: hooks.rotation_grace,
            shutdown: shutdown.token.clone(),
        }))
        .task("feed-writer", feed_writer)
        .task("receipts", receipts)
        .task("webhooks", dispatcher.run(shutdown.token.clone())))
}

/// Runs the relay alone on `listener` until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let component = component(&config, &shutdown).await?;
    zhida_runtime::serve(
        vec![component],
        listener,
        shutdown,
        zhida_runtime::Host::from_config(&config),
    )
    .await
}
