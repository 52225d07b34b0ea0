//! The `policy.events` handler: every published policy becomes one feed item, at most
//! once per policy however often the event is redelivered.

use std::sync::Arc;

use prost::Message;
use zhida_bus::{HandleError, Handler, Record};
use zhida_proto::{events::v1::PolicyPublished, relay::v1::FeedItem};
use zhida_store::Feed;

pub(crate) struct FeedWriter {
    pub feed: Arc<dyn Feed>,
}

#[async_trait::async_trait]
impl Handler for FeedWriter {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let policy: PolicyPublished = record.decode()?;
        if policy.policy_id.is_empty() {
            return Err(HandleError::permanent("policy without id"));
        }
        let item = FeedItem {
            cursor: String::new(),
            policy_id: policy.policy_id.clone(),
            title: policy.title,
            tags: policy.tags,
            department: policy.department,
            service_url: policy.service_url,
            published_at: policy.published_at,
            status: zhida_proto::events::v1::PolicyStatus::Published as i32,
            version: policy.version.max(1),
            summary: policy.summary,
            withdrawal_reason: String::new(),
        };
        let appended = self
            .feed
            .append(&policy.policy_id, &item.encode_to_vec())
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(policy_id = policy.policy_id, appended, "relayed");
        Ok(())
    }
}
