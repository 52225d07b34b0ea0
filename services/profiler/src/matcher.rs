//! The `policy.events` handler: turns each published policy into delivery requests, one
//! per (recipient, channel) with its reason, for the profiles its audience rule matches and
//! the subscriptions its tags and their filters match.
//!
//! A revision whose tags or audience changed (`PolicyRevised.audience_changed`) fans out
//! its new version exactly like a publication, under the same policy id: the notifier's
//! ledger (policy, recipient, channel) gives nothing more to whoever already received the
//! policy on that channel, and the new audience receives it. The earlier recipients' notice
//! of the revision is the notifier's. Every other event on the topic (withdrawals,
//! expiries, the publisher's own records) is passed over.

use std::sync::Arc;

use futures::{StreamExt as _, stream::FuturesUnordered};
use tokio::sync::watch;
use zhida_audience::Rule;
use zhida_bus::{Event as _, HandleError, Handler, Producer, Record};
use zhida_catalogue::Industries;
use zhida_proto::events::v1::{DeliveryRequested, PolicyPublished, PolicyRevised};
use zhida_store::DeliveryKey;

use crate::{
    directory::{Recipient, Target},
    document,
    replica::Replica,
};

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
        let Some(policy) = to_fan_out(record)? else {
            tracing::debug!(ty = record.meta.ty, "nothing to match; passed over");
            return Ok(());
        };
        if !*self.caught_up.borrow() {
            return Err(HandleError::transient(
                "profile index is still replaying the profiles topic",
            ));
        }
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
        request_all(
            &self.producer,
            resolution.recipients.iter().map(|r| {
                // The event id is the delivery's one key, as the notifier's ledger spells it.
                let id = DeliveryKey {
                    policy_id: policy.policy_id.clone(),
                    recipient_id: r.subject_id.clone(),
                    channel: r.channel,
                }
                .encoded();
                (id, delivery_request(&policy, r))
            }),
        )
        .await
    }
}

/// The request that delivers `policy` to `recipient` on its channel.
pub(crate) fn delivery_request(policy: &PolicyPublished, r: &Recipient) -> DeliveryRequested {
    DeliveryRequested {
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
    }
}

/// Emits each (event id, request) on `delivery.requests`, keyed by recipient, and returns
/// once every one was acknowledged. A bounded window keeps a city-wide audience from
/// filling the producer queue at once, and slides (no stall at batch boundaries), so
/// librdkafka's queue stays full enough to batch.
pub(crate) async fn request_all(
    producer: &Producer,
    requests: impl Iterator<Item = (String, DeliveryRequested)>,
) -> Result<(), HandleError> {
    let mut sending = FuturesUnordered::new();
    for (id, event) in requests {
        sending.push(async move {
            producer
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

/// The policy version `record` asks to fan out: a publication, or a revision whose
/// audience changed; `None` for every other event (nothing to match).
pub(crate) fn to_fan_out(record: &Record) -> Result<Option<PolicyPublished>, HandleError> {
    let ty = record.meta.ty.as_str();
    if ty == PolicyPublished::TYPE {
        return record.decode().map(Some);
    }
    if ty == PolicyRevised::TYPE {
        let revised: PolicyRevised = record.decode()?;
        if !revised.audience_changed {
            return Ok(None);
        }
        return revised
            .policy
            .map(Some)
            .ok_or_else(|| HandleError::permanent("PolicyRevised without its policy"));
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use zhida_bus::Topic;
    use zhida_proto::events::v1::{PolicyExpired, PolicyRecorded, PolicyWithdrawn};

    use super::*;

    fn record(ty: &str, payload: Vec<u8>) -> Record {
        Record::typed(Topic::PolicyEvents, ty, "p-1", payload)
    }

    fn policy(version: u32) -> PolicyPublished {
        PolicyPublished {
            policy_id: "p-1".into(),
            tags: vec!["employment".into()],
            version,
            ..PolicyPublished::default()
        }
    }

    #[test]
    fn publications_and_revisions_of_the_audience_fan_out_and_nothing_else_does() {
        let published =
            to_fan_out(&record(PolicyPublished::TYPE, policy(1).encode_to_vec())).expect("decodes");
        assert_eq!(published.map(|p| p.version), Some(1));
        let revised = |audience_changed| PolicyRevised {
            policy: Some(policy(2)),
            previous_version: 1,
            change_summary: "新增适用对象".into(),
            audience_changed,
        };
        let wider = to_fan_out(&record(PolicyRevised::TYPE, revised(true).encode_to_vec()))
            .expect("decodes");
        assert_eq!(
            wider.map(|p| (p.policy_id, p.version)),
            Some(("p-1".into(), 2))
        );
        let same = to_fan_out(&record(PolicyRevised::TYPE, revised(false).encode_to_vec()))
            .expect("decodes");
        assert!(same.is_none(), "same audience: the notifier's notices only");
        for (ty, payload) in [
            (
                PolicyWithdrawn::TYPE,
                PolicyWithdrawn::default().encode_to_vec(),
            ),
            (
                PolicyExpired::TYPE,
                PolicyExpired::default().encode_to_vec(),
            ),
            (
                PolicyRecorded::TYPE,
                PolicyRecorded::default().encode_to_vec(),
            ),
            ("zhida.events.v1.SomethingNew", vec![0xff]),
        ] {
            assert!(
                to_fan_out(&record(ty, payload))
                    .expect("passed over")
                    .is_none(),
                "{ty}"
            );
        }
        let broken = PolicyRevised {
            audience_changed: true,
            ..PolicyRevised::default()
        };
        assert!(matches!(
            to_fan_out(&record(PolicyRevised::TYPE, broken.encode_to_vec())),
            Err(HandleError::Permanent(_))
        ));
    }
}
