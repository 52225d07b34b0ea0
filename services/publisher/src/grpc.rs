//! `PolicyService`: `PublishPolicy` answers only once the broker acknowledged the event;
//! `ListTags` serves the catalogue's tags.

use tonic::{Request, Response, Status};
use zhida_bus::Producer;
use zhida_catalogue::Catalogue;
use zhida_proto::{
    events::v1::PolicyPublished,
    policy::v1::{
        ListTagsRequest, ListTagsResponse, PublishPolicyRequest, PublishPolicyResponse, Tag,
        policy_service_server::PolicyService,
    },
};

use crate::{error::Error, policy::NewPolicy};

pub(crate) struct Publisher {
    pub producer: Producer,
    /// What policies are checked against; its tags are what `ListTags` serves.
    pub catalogue: Catalogue,
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
        // The department comes from the caller's token: named as another, it is refused.
        let department =
            zhida_runtime::auth::acting_department(&request, &request.get_ref().department)?;
        let mut request = request.into_inner();
        request.department = department;
        let policy = NewPolicy::parse(request, &self.catalogue).map_err(Error::from)?;
        let event = PolicyPublished {
            policy_id: policy.id.clone(),
            title: policy.title,
            body: policy.body,
            tags: policy.tags,
            department: policy.department,
            published_at: Some(zhida_proto::timestamp_now()),
            service_url: policy.service_url,
            audience: policy.audience,
            urgent: policy.urgent,
            version: 1,
            ..PolicyPublished::default()
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
