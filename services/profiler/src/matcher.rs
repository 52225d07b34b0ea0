//! The `policy.events` handler: turns each published policy into delivery requests, one
//! per (recipient, channel) with its reason, for the profiles its audience rule matches and
//! the subscriptions its tags and their filters match.

use std::sync::Arc;

use futures::{StreamExt as _, stream::FuturesUnordered};
use tokio::sync::watch;
use zhida_audience::Rule;
use zhida_bus::{HandleError, Handler, Producer, Record};
use zhida_catalogue::Industries;
use zhida_proto::events::v1::{DeliveryRequested, PolicyPublished};
use zhida_store::DeliveryKey;

use crate::{directory::Target, document, replica::Replica};

pub(crate) struct PolicyMatcher {
    pub replica: Arc<Replica>,
    pub producer: Producer,
    /// True once the `profiles` replay caught up: before, matching would miss recipients.
    pub caught_up: watch::Receiver<bool>,
    /// The codes `industry` conditions in audience rules may name.
    pub industries: Industries,
}

#[async_trait::async_trait]
impl Handler for PolicyMatcher {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        if !*self.caught_up.borrow() {
            return Err(HandleError::transient(
                "profile index is still replaying the profiles topic",
            ));
        }
        let policy: PolicyPublished = record.decode()?;
        if policy.policy_id.is_empty() || (policy.tags.is_empty() && policy.audience.is_empty()) {
            return Err(HandleError::permanent(
                "policy without id, or without tags and audience",
            ));
        }
        // The publisher validated the rule; one that does not parse here was written by
        // something else (or a newer rule language): not retryable.
        let target = target_of(&policy, &self.industries).map_err(|e| {
            HandleError::permanent(format!("policy {} audience: {e}", policy.policy_id))
        })?;
        let resolution = self
            .replica
            .resolve(target)
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(
            policy_id = policy.policy_id,
            deliveries = resolution.recipients.len(),
            audience_matches = resolution.audience_matches,
            subscription_matches = resolution.subscription_matches,
            "policy matched"
        );
        // Every request is acknowledged before the policy event counts as handled; on a
        // retry the same requests go out again, with the same ids, and the notifier dedups.
        // A bounded window keeps a city-wide audience from filling the producer queue at
        // once, and slides (no stall at batch boundaries), so librdkafka's queue stays full
        // enough to batch.
        let mut sending = FuturesUnordered::new();
        for r in &resolution.recipients {
            let event = DeliveryRequested {
                policy_id: policy.policy_id.clone(),
                recipient_id: r.subject_id.clone(),
                channel: r.channel as i32,
                address: r.address.clone(),
                sealed_address: r.sealed_address.clone(),
                recipient_name: r.display_name.clone(),
                title: policy.title.clone(),
                body: policy.body.clone(),
                department: policy.department.clone(),
                service_url: policy.service_url.clone(),
                reason: r.reason.clone(),
                frequency: r.frequency as i32,
                language: r.language.clone(),
                urgent: policy.urgent,
                subscription_id: r.subscription_id.clone(),
                version: policy.version.max(1),
                ..DeliveryRequested::default()
            };
            // The event id is the delivery's one key, as the notifier's ledger spells it.
            let id = DeliveryKey {
                policy_id: policy.policy_id.clone(),
                recipient_id: r.subject_id.clone(),
                channel: r.channel,
            }
            .encoded();
            sending.push(async move {
                self.producer
                    .emit_with_id(&event.recipient_id, &id, &event)
                    .await
            });
            if sending.len() >= SEND_WINDOW
                && let Some(sent) = sending.next().await
            {
                sent.map_err(HandleError::transient)?;
            }
        }
        while let Some(sent) = sending.next().await {
            sent.map_err(HandleError::transient)?;
        }
        Ok(())
    }
}

/// Delivery requests in flight at once per policy.
const SEND_WINDOW: usize = 1000;

/// What matching needs of a published policy.
pub(crate) fn target_of(
    policy: &PolicyPublished,
    industries: &Industries,
) -> Result<Target, zhida_audience::RuleError> {
    Ok(Target {
        tags: policy.tags.clone(),
        audience: if policy.audience.trim().is_empty() {
            None
        } else {
            Some(Rule::parse(&policy.audience, industries)?)
        },
        document: document::policy(policy),
    })
}
