//! The `policy.events` handler. Each published policy goes to every subscriber whose scope
//! matches it ([`crate::delivery`]: its feed, reach and webhook), and its later life to
//! every subscriber that holds it: a revision (and to those the new version's scope now
//! matches), a withdrawal, an expiry, each as an entry of its own.
//!
//! Beside the subscribers' feeds the relay keeps each policy's *state* (a `FeedItem` of the
//! latest content, status, version and withdrawal reason): the status every feed overlays
//! on its entries and the content a forward sends:
//! - `PolicyPublished`: the published version;
//! - `PolicyRevised`: the new version's content and number;
//! - `PolicyWithdrawn`: status withdrawn, with the reason; final;
//! - `PolicyExpired`: status expired (unless withdrawn).
//!
//! Events of a policy arrive in order (they are keyed by policy id); a redelivered older
//! one never takes a state back (a lower version, or anything after a withdrawal).
//! Every other type (the publisher's own `PolicyRecorded`, …) is passed over.

use std::sync::Arc;

use futures::{StreamExt, stream::FuturesUnordered};
use prost::Message;
use zhida_bus::{Event as _, HandleError, Handler, Record};
use zhida_proto::{
    events::v1::{PolicyExpired, PolicyPublished, PolicyRevised, PolicyStatus, PolicyWithdrawn},
    relay::v1::{FeedEvent, FeedItem},
};
use zhida_store::Feed;

use crate::{
    delivery::{Delivery, Prepared},
    registry::Registry,
    subscriber::Entry,
};

/// Subscribers reached at once for one policy.
const FAN_OUT: usize = 32;

pub(crate) struct FeedWriter {
    /// Each relayed policy's current state (its content, status and version), the overlay
    /// of every subscriber's entries and what a forward sends.
    pub feed: Arc<dyn Feed>,
    pub registry: Arc<Registry>,
    pub delivery: Arc<Delivery>,
}

/// The feed item of a published (or revised) version.
pub(crate) fn item_of(policy: PolicyPublished) -> FeedItem {
    FeedItem {
        cursor: String::new(),
        policy_id: policy.policy_id,
        title: policy.title,
        tags: policy.tags,
        department: policy.department,
        service_url: policy.service_url,
        published_at: policy.published_at,
        status: PolicyStatus::Published as i32,
        version: policy.version.max(1),
        summary: policy.summary,
        event: FeedEvent::Relayed as i32,
        at: Some(zhida_proto::timestamp_now()),
        ..FeedItem::default()
    }
}

/// A change to an item's state.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Revised(Box<FeedItem>),
    Withdrawn { version: u32, reason: String },
    Expired { version: u32 },
}

/// The state after `change`, or `None` when it changes nothing (a redelivered or
/// overtaken event). `current` is the state so far, `None` before any change.
pub(crate) fn apply(current: Option<FeedItem>, change: Change) -> Option<FeedItem> {
    let withdrawn = current
        .as_ref()
        .is_some_and(|c| c.status == PolicyStatus::Withdrawn as i32);
    if withdrawn {
        return None;
    }
    match change {
        Change::Revised(item) => {
            let item = *item;
            if current.as_ref().is_some_and(|c| c.version >= item.version) {
                return None;
            }
            Some(item)
        }
        Change::Withdrawn { version, reason } => {
            let mut next = current.unwrap_or_default();
            next.status = PolicyStatus::Withdrawn as i32;
            next.version = next.version.max(version);
            next.withdrawal_reason = reason;
            Some(next)
        }
        Change::Expired { version } => {
            let mut next = current.unwrap_or_default();
            if next.status == PolicyStatus::Expired as i32 {
                return None;
            }
            next.status = PolicyStatus::Expired as i32;
            next.version = next.version.max(version);
            Some(next)
        }
    }
}

fn check_id(item: &FeedItem) -> Result<(), HandleError> {
    if item.policy_id.is_empty() {
        return Err(HandleError::permanent("policy without id"));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Handler for FeedWriter {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let ty = record.meta.ty.as_str();
        let (policy_id, change) = if ty == PolicyPublished::TYPE {
            let policy: PolicyPublished = record.decode()?;
            let item = item_of(policy.clone());
            check_id(&item)?;
            // The state holds the live version from the start (what a forward sends).
            self.change(&item.policy_id, Change::Revised(Box::new(item.clone())))
                .await?;
            let matching = self.matching(&policy).await?;
            return self.fan_out(&matching, &item.policy_id, &item).await;
        } else if ty == PolicyRevised::TYPE {
            let revised: PolicyRevised = record.decode()?;
            let Some(policy) = revised.policy else {
                return Err(HandleError::permanent("PolicyRevised without its policy"));
            };
            let item = item_of(policy.clone());
            check_id(&item)?;
            // Also for a policy not relayed yet (published before the relay ran): the
            // revision is its first state.
            self.change(&item.policy_id, Change::Revised(Box::new(item.clone())))
                .await?;
            // Those holding it get the new version; those whose scope only the new
            // version matches get it as relayed.
            let holders = self.holders(&item.policy_id).await?;
            let revision = FeedItem {
                event: FeedEvent::Revised as i32,
                ..item.clone()
            };
            // One entry id for both, so a redelivery, which finds the newly matched among
            // the holders, appends nothing more.
            let entry = format!("{}#v{}", item.policy_id, item.version);
            self.fan_out(&holders, &entry, &revision).await?;
            let newly: Vec<Entry> = self
                .matching(&policy)
                .await?
                .into_iter()
                .filter(|e| !holders.iter().any(|h| h.stored.id() == e.stored.id()))
                .collect();
            return self.fan_out(&newly, &entry, &item).await;
        } else if ty == PolicyWithdrawn::TYPE {
            let withdrawn: PolicyWithdrawn = record.decode()?;
            let change = Change::Withdrawn {
                version: withdrawn.version,
                reason: withdrawn.reason,
            };
            (withdrawn.policy_id, change)
        } else if ty == PolicyExpired::TYPE {
            let expired: PolicyExpired = record.decode()?;
            (
                expired.policy_id,
                Change::Expired {
                    version: expired.version,
                },
            )
        } else {
            tracing::debug!(ty, "not relayed; passed over");
            return Ok(());
        };
        if policy_id.is_empty() {
            return Err(HandleError::permanent("policy without id"));
        }
        let (event, suffix) = match change {
            Change::Withdrawn { .. } => (FeedEvent::Withdrawn, "withdrawn"),
            _ => (FeedEvent::Expired, "expired"),
        };
        let state = self.change(&policy_id, change).await?;
        // Also when the state did not change (a redelivery): the entries are idempotent,
        // and a first attempt may have failed before reaching every holder.
        let mut item = state.unwrap_or_default();
        item.policy_id.clone_from(&policy_id);
        item.event = event as i32;
        item.at = Some(zhida_proto::timestamp_now());
        let holders = self.holders(&policy_id).await?;
        self.fan_out(&holders, &format!("{policy_id}#{suffix}"), &item)
            .await
    }
}

impl FeedWriter {
    /// Applies `change` to the policy's state; returns the state after it (changed or not).
    async fn change(
        &self,
        policy_id: &str,
        change: Change,
    ) -> Result<Option<FeedItem>, HandleError> {
        let current = self
            .feed
            .states(&[policy_id.to_string()])
            .await
            .map_err(HandleError::transient)?
            .pop()
            .flatten()
            .and_then(|bytes| FeedItem::decode(bytes.as_slice()).ok());
        let Some(next) = apply(current.clone(), change) else {
            tracing::debug!(policy_id, "feed item unchanged");
            return Ok(current);
        };
        self.feed
            .set_state(policy_id, &next.encode_to_vec())
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(
            policy_id,
            status = next.status,
            version = next.version,
            "feed item changed"
        );
        Ok(Some(next))
    }

    /// The subscribers whose scope matches `policy`.
    async fn matching(&self, policy: &PolicyPublished) -> Result<Vec<Entry>, HandleError> {
        let document = crate::scope::document(policy);
        let snapshot = self
            .registry
            .snapshot()
            .await
            .map_err(HandleError::transient)?;
        Ok(snapshot
            .values()
            .filter(|e| e.scope.as_ref().is_some_and(|rule| rule.matches(&document)))
            .cloned()
            .collect())
    }

    /// The subscribers whose feed holds `policy_id` (still registered).
    async fn holders(&self, policy_id: &str) -> Result<Vec<Entry>, HandleError> {
        let reached = self
            .delivery
            .reach
            .reach(policy_id)
            .await
            .map_err(HandleError::transient)?;
        let snapshot = self
            .registry
            .snapshot()
            .await
            .map_err(HandleError::transient)?;
        Ok(reached
            .into_iter()
            .filter(|r| r.tier > 0)
            .filter_map(|r| snapshot.get(&r.subscriber_id).cloned())
            .collect())
    }

    /// Delivers `item` as `entry_id` to each of `to`, several at once.
    async fn fan_out(
        &self,
        to: &[Entry],
        entry_id: &str,
        item: &FeedItem,
    ) -> Result<(), HandleError> {
        let prepared = Prepared::new(item);
        // At most FAN_OUT at once (a plain loop: a closure here would not be `Send`).
        let mut pending = FuturesUnordered::new();
        let mut rest = to.iter();
        let mut appended = 0usize;
        loop {
            while pending.len() < FAN_OUT {
                let Some(entry) = rest.next() else { break };
                pending.push(self.delivery.deliver(entry, entry_id, &prepared));
            }
            match pending.next().await {
                Some(result) => appended += usize::from(result.map_err(HandleError::transient)?),
                None => break,
            }
        }
        if !to.is_empty() {
            tracing::info!(
                policy_id = item.policy_id,
                entry_id,
                subscribers = to.len(),
                appended,
                "relayed to subscribers"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use zhida_bus::Topic;
    use zhida_catalogue::Industries;
    use zhida_proto::{
        events::v1::{PolicyRecorded, RelaySubscriberKind},
        relay::v1::{Subscriber, Webhook},
    };
    use zhida_runtime::config::{StoreBackend, StoreConfig};
    use zhida_store::{MemoryFeed, Stores};

    use super::*;
    use crate::{
        delivery::{Delivery, Feeds},
        subscriber::Stored,
    };

    /// A writer on memory stores with `subscribers` registered.
    async fn writer(feed: Arc<MemoryFeed>, subscribers: &[Subscriber]) -> FeedWriter {
        let stores = Stores::open(&StoreConfig {
            backend: StoreBackend::Memory,
            ..StoreConfig::default()
        })
        .await
        .expect("memory stores");
        let registry = Arc::new(Registry::new(
            stores.subscriber_registry(),
            Industries::gbt4754_2017(),
        ));
        for s in subscribers {
            registry
                .put(&Stored {
                    subscriber: Some(s.clone()),
                    ..Stored::default()
                })
                .await
                .expect("put");
        }
        FeedWriter {
            feed,
            registry,
            delivery: Arc::new(Delivery {
                feeds: Feeds::new(stores.clone()),
                outbox: stores.webhook_outbox(),
                reach: stores.relay_reach(),
                signals: stores.feed_signals(),
                capacity: 10,
            }),
        }
    }

    fn record(ty: &str, payload: Vec<u8>) -> Record {
        Record::typed(Topic::PolicyEvents, ty, "p-1", payload)
    }

    fn policy(version: u32, title: &str) -> PolicyPublished {
        PolicyPublished {
            policy_id: "p-1".into(),
            title: title.into(),
            version,
            ..PolicyPublished::default()
        }
    }

    /// The feed as PullFeed shows it.
    async fn shown(feed: &MemoryFeed) -> Vec<FeedItem> {
        feed.states(&["p-1".to_string()])
            .await
            .expect("states")
            .into_iter()
            .flatten()
            .map(|state| FeedItem::decode(state.as_slice()).expect("state"))
            .collect()
    }

    #[tokio::test]
    async fn an_item_is_revised_then_withdrawn_in_place_and_stays_withdrawn() {
        let feed = Arc::new(MemoryFeed::default());
        let writer = writer(feed.clone(), &[]).await;
        let revised = PolicyRevised {
            policy: Some(policy(2, "第二版")),
            previous_version: 1,
            ..PolicyRevised::default()
        };
        let withdrawn = PolicyWithdrawn {
            policy_id: "p-1".into(),
            version: 2,
            reason: "上位政策废止".into(),
            ..PolicyWithdrawn::default()
        };
        let expired = PolicyExpired {
            policy_id: "p-1".into(),
            version: 2,
            ..PolicyExpired::default()
        };
        for (ty, payload) in [
            (PolicyPublished::TYPE, policy(1, "第一版").encode_to_vec()),
            (
                PolicyRecorded::TYPE,
                PolicyRecorded::default().encode_to_vec(),
            ),
            (PolicyRevised::TYPE, revised.encode_to_vec()),
        ] {
            writer.handle(&record(ty, payload)).await.expect("handled");
        }
        let items = shown(&feed).await;
        assert_eq!(items.len(), 1, "a revision changes the item in place");
        assert_eq!((items[0].title.as_str(), items[0].version), ("第二版", 2));
        assert_eq!(items[0].status, PolicyStatus::Published as i32);

        for (ty, payload) in [
            (PolicyWithdrawn::TYPE, withdrawn.encode_to_vec()),
            // Redelivered and late: neither takes the withdrawal back.
            (PolicyRevised::TYPE, revised.encode_to_vec()),
            (PolicyExpired::TYPE, expired.encode_to_vec()),
        ] {
            writer.handle(&record(ty, payload)).await.expect("handled");
        }
        let items = shown(&feed).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].status, PolicyStatus::Withdrawn as i32);
        assert_eq!(items[0].withdrawal_reason, "上位政策废止");
        assert_eq!(items[0].title, "第二版");
    }

    #[tokio::test]
    async fn a_revision_of_a_policy_not_relayed_yet_appends_it_and_expiry_marks_it() {
        let feed = Arc::new(MemoryFeed::default());
        let writer = writer(feed.clone(), &[]).await;
        let revised = PolicyRevised {
            policy: Some(policy(3, "第三版")),
            previous_version: 2,
            ..PolicyRevised::default()
        };
        writer
            .handle(&record(PolicyRevised::TYPE, revised.encode_to_vec()))
            .await
            .expect("handled");
        let expired = PolicyExpired {
            policy_id: "p-1".into(),
            version: 3,
            ..PolicyExpired::default()
        };
        writer
            .handle(&record(PolicyExpired::TYPE, expired.encode_to_vec()))
            .await
            .expect("handled");
        let items = shown(&feed).await;
        assert_eq!(items.len(), 1);
        assert_eq!((items[0].title.as_str(), items[0].version), ("第三版", 3));
        assert_eq!(items[0].status, PolicyStatus::Expired as i32);
    }

    fn park(id: &str, scope: &str, webhook: bool) -> Subscriber {
        Subscriber {
            id: id.into(),
            kind: RelaySubscriberKind::Park as i32,
            display_name: id.into(),
            scope: scope.into(),
            webhook: webhook.then(|| Webhook {
                url: "https://hooks.example.cn/zhida".into(),
                ..Webhook::default()
            }),
            ..Subscriber::default()
        }
    }

    /// `subscriber`'s feed as (entry event, version) pairs.
    async fn events(writer: &FeedWriter, subscriber: &str) -> Vec<(i32, u32)> {
        let feed = writer.delivery.feeds.of(subscriber);
        feed.read(None, 100)
            .await
            .expect("read")
            .iter()
            .map(|e| FeedItem::decode(e.payload.as_slice()).expect("item"))
            .map(|i| (i.event, i.version))
            .collect()
    }

    #[tokio::test]
    async fn each_policy_reaches_the_scopes_it_matches_and_its_later_life_its_holders_once() {
        let writer = writer(
            Arc::new(MemoryFeed::default()),
            &[
                park("park-digital", r#"{"tags": ["数字经济"]}"#, true),
                park("park-housing", r#"{"tags": ["住房"]}"#, false),
                park("park-v2", r#"{"title": ["第二版"]}"#, false),
                park("park-none", "", false),
            ],
        )
        .await;
        let mut first = policy(1, "第一版");
        first.tags = vec!["数字经济".into()];
        let mut second = policy(2, "第二版");
        second.tags = first.tags.clone();
        let revised = PolicyRevised {
            policy: Some(second),
            previous_version: 1,
            ..PolicyRevised::default()
        };
        let withdrawn = PolicyWithdrawn {
            policy_id: "p-1".into(),
            version: 2,
            reason: "上位政策废止".into(),
            ..PolicyWithdrawn::default()
        };
        // Every event twice: redelivery adds nothing.
        for (ty, payload) in [
            (PolicyPublished::TYPE, first.encode_to_vec()),
            (PolicyPublished::TYPE, first.encode_to_vec()),
            (PolicyRevised::TYPE, revised.encode_to_vec()),
            (PolicyRevised::TYPE, revised.encode_to_vec()),
            (PolicyWithdrawn::TYPE, withdrawn.encode_to_vec()),
            (PolicyWithdrawn::TYPE, withdrawn.encode_to_vec()),
        ] {
            writer.handle(&record(ty, payload)).await.expect("handled");
        }
        let (relayed, revised, withdrawn) = (
            FeedEvent::Relayed as i32,
            FeedEvent::Revised as i32,
            FeedEvent::Withdrawn as i32,
        );
        assert_eq!(
            events(&writer, "park-digital").await,
            [(relayed, 1), (revised, 2), (withdrawn, 2)]
        );
        // Matched only by version 2: relayed as version 2, then withdrawn.
        assert_eq!(
            events(&writer, "park-v2").await,
            [(relayed, 2), (withdrawn, 2)]
        );
        assert!(events(&writer, "park-housing").await.is_empty());
        assert!(events(&writer, "park-none").await.is_empty());
        // Only the subscriber with a webhook has deliveries queued: one per entry.
        let outbox = &writer.delivery.outbox;
        assert_eq!(
            outbox.stats("park-digital").await.expect("stats").pending,
            3
        );
        assert_eq!(outbox.stats("park-v2").await.expect("stats").pending, 0);
        let reach = writer.delivery.reach.reach("p-1").await.expect("reach");
        let reached: Vec<(&str, u32)> = reach
            .iter()
            .map(|r| (r.subscriber_id.as_str(), r.tier))
            .collect();
        assert_eq!(reached, [("park-digital", 1), ("park-v2", 1)]);
    }

    #[test]
    fn an_older_revision_changes_nothing() {
        let current = item_of(policy(3, "第三版"));
        assert!(
            apply(
                Some(current.clone()),
                Change::Revised(Box::new(item_of(policy(2, "第二版"))))
            )
            .is_none()
        );
        assert!(
            apply(
                Some(current),
                Change::Revised(Box::new(item_of(policy(3, "第三版"))))
            )
            .is_none()
        );
    }
}
