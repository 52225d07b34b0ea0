//! Receipts and reach. The `delivery.status` handler records, for each member a subscriber
//! forwarded a policy to, the delivery states the notifier reports: those of the forward's
//! own deliveries (`forward` set: sent, already received, failed, …) and the member's later
//! read mark (an inbox item is read whichever path brought it). Everything else on the
//! topic is passed over.
//!
//! [`report`] turns what the reach store holds into `GetRelayReach`: per subscriber and
//! per tier, reached → forwarded → delivered → read. Pure.

use std::{collections::BTreeMap, sync::Arc};

use zhida_bus::{HandleError, Handler, Record};
use zhida_proto::{
    events::v1::{DeliveryState, DeliveryStatusChanged},
    relay::v1::{FeedEvent, MemberReach, SubscriberReach, TierReach},
};
use zhida_store::{RelayReach, StoredReach};

use crate::registry::Snapshot;

pub(crate) struct Receipts {
    pub reach: Arc<dyn RelayReach>,
}

#[async_trait::async_trait]
impl Handler for Receipts {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let status: DeliveryStatusChanged = record.decode()?;
        let state = u32::try_from(status.state).unwrap_or(0);
        if status.policy_id.is_empty() || status.recipient_id.is_empty() || state >= 32 {
            return Ok(());
        }
        if let Some(forward) = &status.forward {
            // The forward's own delivery: the member counts as forwarded even when the
            // profiler found it through its profile rather than the registered list.
            self.reach
                .forwarded(
                    &status.policy_id,
                    &forward.subscriber_id,
                    std::slice::from_ref(&status.recipient_id),
                )
                .await
                .map_err(HandleError::transient)?;
        } else if status.state != DeliveryState::Read as i32 {
            return Ok(());
        }
        let forwarders = self
            .reach
            .member_state(&status.policy_id, &status.recipient_id, state)
            .await
            .map_err(HandleError::transient)?;
        tracing::debug!(
            policy_id = status.policy_id,
            state = status.state,
            forwarders,
            "member receipt"
        );
        Ok(())
    }
}

fn has(mask: u32, state: DeliveryState) -> bool {
    mask & (1 << state as u32) != 0
}

/// A member's furthest state from the states seen.
pub fn furthest(mask: u32) -> DeliveryState {
    [
        DeliveryState::Read,
        DeliveryState::Delivered,
        DeliveryState::Sent,
        DeliveryState::AlreadyReceived,
        DeliveryState::Undeliverable,
        DeliveryState::Failed,
        DeliveryState::Cancelled,
    ]
    .into_iter()
    .find(|s| has(mask, *s))
    .unwrap_or(DeliveryState::Unspecified)
}

/// `GetRelayReach` from the stored reach: subscribers still registered, by tier then id.
pub fn report(
    stored: Vec<StoredReach>,
    registry: &Snapshot,
) -> (Vec<SubscriberReach>, Vec<TierReach>) {
    let mut subscribers: Vec<SubscriberReach> = stored
        .into_iter()
        .filter_map(|r| {
            let entry = registry.get(&r.subscriber_id)?;
            let sub = entry.subscriber();
            let count = |f: &dyn Fn(u32) -> bool| {
                u32::try_from(r.members.iter().filter(|(_, m)| f(*m)).count()).unwrap_or(u32::MAX)
            };
            Some(SubscriberReach {
                subscriber_id: r.subscriber_id.clone(),
                display_name: sub.display_name.clone(),
                kind: sub.kind,
                tier: entry.tier,
                parent_id: sub.parent_id.clone(),
                reached_by: if r.tier > 0 {
                    r.by
                } else {
                    FeedEvent::Unspecified as i32
                },
                webhook_delivered: r.webhook_delivered,
                pulled: r.pulled,
                streamed: r.streamed,
                webhook_failed: r.webhook_failed,
                members_forwarded: u32::try_from(r.members.len()).unwrap_or(u32::MAX),
                members_already_reached: count(&|m| has(m, DeliveryState::AlreadyReceived)),
                members_delivered: count(&|m| {
                    has(m, DeliveryState::Sent)
                        || has(m, DeliveryState::Delivered)
                        || has(m, DeliveryState::Read)
                }),
                members_read: count(&|m| has(m, DeliveryState::Read)),
                members: r
                    .members
                    .iter()
                    .map(|(member, mask)| MemberReach {
                        member_id: member.clone(),
                        state: furthest(*mask) as i32,
                    })
                    .collect(),
            })
        })
        .collect();
    subscribers.sort_by(|a, b| (a.tier, &a.subscriber_id).cmp(&(b.tier, &b.subscriber_id)));
    let mut tiers: BTreeMap<u32, TierReach> = BTreeMap::new();
    for s in &subscribers {
        let tier = tiers.entry(s.tier).or_insert_with(|| TierReach {
            tier: s.tier,
            ..TierReach::default()
        });
        if s.reached_by != FeedEvent::Unspecified as i32 {
            tier.subscribers_reached += 1;
        }
        tier.members_forwarded += s.members_forwarded;
        tier.members_already_reached += s.members_already_reached;
        tier.members_delivered += s.members_delivered;
        tier.members_read += s.members_read;
    }
    (subscribers, tiers.into_values().collect())
}

#[cfg(test)]
mod tests {
    use zhida_catalogue::Industries;
    use zhida_proto::relay::v1::Subscriber;

    use super::*;
    use crate::subscriber::{Stored, entries};

    fn bit(state: DeliveryState) -> u32 {
        1 << state as u32
    }

    #[test]
    fn members_count_by_their_furthest_state_and_tiers_add_up() {
        let stored = |id: &str, parent: &str| Stored {
            subscriber: Some(Subscriber {
                id: id.into(),
                parent_id: parent.into(),
                display_name: id.into(),
                ..Subscriber::default()
            }),
            ..Stored::default()
        };
        let registry = entries(
            vec![stored("assoc", ""), stored("branch", "assoc")],
            &Industries::gbt4754_2017(),
        );
        let reach = vec![
            StoredReach {
                subscriber_id: "branch".into(),
                tier: 2,
                by: FeedEvent::Forwarded as i32,
                members: vec![(
                    "e-3".into(),
                    bit(DeliveryState::Sent) | bit(DeliveryState::Read),
                )],
                ..StoredReach::default()
            },
            StoredReach {
                subscriber_id: "assoc".into(),
                tier: 1,
                by: FeedEvent::Relayed as i32,
                webhook_delivered: true,
                members: vec![
                    ("e-1".into(), bit(DeliveryState::AlreadyReceived)),
                    ("e-2".into(), bit(DeliveryState::Sent)),
                    ("e-4".into(), 0),
                ],
                ..StoredReach::default()
            },
            StoredReach {
                subscriber_id: "removed".into(),
                tier: 1,
                ..StoredReach::default()
            },
        ];
        let (subscribers, tiers) = report(reach, &registry);
        assert_eq!(
            subscribers
                .iter()
                .map(|s| s.subscriber_id.as_str())
                .collect::<Vec<_>>(),
            ["assoc", "branch"]
        );
        let assoc = &subscribers[0];
        assert_eq!(
            (
                assoc.members_forwarded,
                assoc.members_already_reached,
                assoc.members_delivered,
                assoc.members_read
            ),
            (3, 1, 1, 0)
        );
        assert_eq!(assoc.members[2].state, DeliveryState::Unspecified as i32);
        assert_eq!(subscribers[1].members[0].state, DeliveryState::Read as i32);
        assert_eq!(tiers.len(), 2);
        assert_eq!(
            (
                tiers[1].tier,
                tiers[1].members_read,
                tiers[1].subscribers_reached
            ),
            (2, 1, 1)
        );
    }
}
