//! The relay ("政府+"): industry associations and industrial parks pull a feed of released
//! policies and forward them to their member enterprises. Every `PolicyPublished` becomes
//! one feed item, at most once per policy however often the event is redelivered; a
//! revision, withdrawal or expiry changes its item's content, version and status in place.
//!
//! The map: [`feed_writer`] (the `policy.events` handler), [`grpc`] (`RelayService`),
//! [`error`] (the relay's errors and their one mapping to gRPC statuses).

mod error;
mod feed_writer;
mod grpc;

use tokio::net::TcpListener;
use zhida_bus::{ConsumerSpec, Group, Producer, Topic};
use zhida_proto::relay::v1::relay_service_server::RelayServiceServer;
use zhida_runtime::{Component, Config, Shutdown};
use zhida_store::Stores;

/// The district-wide feed; per-scope feeds (by industry, by park) come with scopes.
const FEED: &str = "all";

/// The relay's gRPC routes and its `policy.events` consumer.
pub async fn component(config: &Config, shutdown: &Shutdown) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/relay")?;
    let feed = Stores::open(&config.store).await?.feed(FEED);
    let consumer = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec::new(Group::Relay, Topic::PolicyEvents),
        feed_writer::FeedWriter { feed: feed.clone() },
        producer,
        shutdown.token.clone(),
    );
    Ok(Component::new("relay")
        .grpc(RelayServiceServer::new(grpc::Relay { feed }))
        .task("feed-writer", consumer))
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
