//! The publisher: departments release policies through `PolicyService`; each accepted
//! policy becomes one `PolicyPublished` event on `policy.events`, keyed by policy id.
//!
//! Publishing is idempotent per `request_id`: the policy id is derived from it, so a client
//! that retries after a timeout gets the same id, and any duplicate event it causes carries
//! the same CloudEvents id and is absorbed by the downstream dedup.
//!
//! Policies are checked against the district's [`Catalogue`] (their tags, and the
//! industries their audience rules name), which `ListTags` also serves.

//!
//! The map: [`policy`] (a request checked into a policy, pure), [`grpc`] (`PolicyService`),
//! [`error`] (the publisher's errors and their one mapping to gRPC statuses).

mod error;
mod grpc;
mod policy;

use tokio::net::TcpListener;
use zhida_bus::Producer;
use zhida_catalogue::Catalogue;
use zhida_proto::policy::v1::policy_service_server::PolicyServiceServer;
use zhida_runtime::{Component, Config, Shutdown};

pub use policy::NewPolicy;

/// The publisher's gRPC routes (it has no background tasks).
pub async fn component(config: &Config, _shutdown: &Shutdown) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/publisher")?;
    Ok(
        Component::new("publisher").grpc(PolicyServiceServer::new(grpc::Publisher {
            producer,
            catalogue: Catalogue::yangpu(),
        })),
    )
}

/// Runs the publisher alone on `listener` until `shutdown`.
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
