//! The publisher: departments release policies through `PolicyService`; each accepted
//! policy becomes one `PolicyPublished` event on `policy.events`, keyed by policy id.
//!
//! Publishing is idempotent per `request_id`: the policy id is derived from it, so a client
//! that retries after a timeout gets the same id, and any duplicate event it causes carries
//! the same CloudEvents id and is absorbed by the downstream dedup.
//!
//! Policies are checked against the district's [`Catalogue`] (their tags, and the
//! industries their audience rules name), which `ListTags` also serves.

mod error;
mod policy;

use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use zhida_bus::Producer;
use zhida_catalogue::Catalogue;
use zhida_proto::{
    events::v1::PolicyPublished,
    policy::v1::{
        ListTagsRequest, ListTagsResponse, PublishPolicyRequest, PublishPolicyResponse, Tag,
        policy_service_server::{PolicyService, PolicyServiceServer},
    },
};
use zhida_runtime::{Component, Config, Shutdown};

use error::Error;
pub use policy::NewPolicy;

/// The publisher's gRPC routes (it has no background tasks).
pub async fn component(config: &Config, _shutdown: &Shutdown) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/publisher")?;
    Ok(
        Component::new("publisher").grpc(PolicyServiceServer::new(Publisher {
            producer,
            catalogue: Catalogue::yangpu(),
        })),
    )
}

/// Runs the publisher alone on `listener` until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let component = component(&config, &shutdown).await?;
    zhida_runtime::serve(vec![component], listener, shutdown).await
}

struct Publisher {
    producer: Producer,
    /// What policies are checked against; its tags are what `ListTags` serves.
    catalogue: Catalogue,
}

#[tonic::async_trait]
impl PolicyService for Publisher {
    async fn list_tags(
        &self,
        _request: Request<ListTagsRequest>,
    ) -> Result<Response<ListTagsResponse>, Status> {
        Ok(Response::new(ListTagsResponse {
            tags: self
                .catalogue
                .tags
                .iter()
                .map(|t| Tag {
                    tag: t.tag.clone(),
                    name: t.name.clone(),
                })
                .collect(),
        }))
    }

    async fn publish_policy(
        &self,
        request: Request<PublishPolicyRequest>,
    ) -> Result<Response<PublishPolicyResponse>, Status> {
        let policy =
            NewPolicy::parse(request.into_inner(), &self.catalogue).map_err(Error::from)?;
        let event = PolicyPublished {
            policy_id: policy.id.clone(),
            title: policy.title,
            body: policy.body,
            tags: policy.tags,
            department: policy.department,
            published_at: Some(now()),
            service_url: policy.service_url,
            audience: policy.audience,
        };
        let delivered = self
            .producer
            .emit_with_id(&policy.id, &policy.id, &event)
            .await
            .map_err(Error::from)?;
        tracing::info!(
            policy_id = policy.id,
            partition = delivered.partition,
            offset = delivered.offset,
            "policy published"
        );
        Ok(Response::new(PublishPolicyResponse {
            policy_id: policy.id,
            partition: delivered.partition,
            offset: delivered.offset,
        }))
    }
}

fn now() -> zhida_proto::Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    zhida_proto::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}
