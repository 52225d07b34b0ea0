//! The `policy.events` handler: every published policy becomes one feed item, at most
//! once per policy however often the event is redelivered, and its later life changes the
//! item in place.
//!
//! The feed is append-only, so what changes lives beside it as the item's *state* (a
//! `FeedItem` of the latest content, status, version and withdrawal reason), which
//! `PullFeed` overlays on the item ([`overlay`]):
//! - `PolicyRevised`: the new version's content and number (a revision of a policy not
//!   relayed yet appends it);
//! - `PolicyWithdrawn`: status withdrawn, with the reason; final;
//! - `PolicyExpired`: status expired (unless withdrawn).
//!
//! Events of a policy arrive in order (they are keyed by policy id); a redelivered older
//! one never takes a state back (a lower version, or anything after a withdrawal).
//! Every other type (the publisher's own `PolicyRecorded`, …) is passed over.

use std::sync::Arc;

use prost::Message;
use zhida_bus::{Event as _, HandleError, Handler, Record};
use zhida_proto::{
    events::v1::{PolicyExpired, PolicyPublished, PolicyRevised, PolicyStatus, PolicyWithdrawn},
    relay::v1::FeedItem,
};
use zhida_store::Feed;

pub(crate) struct FeedWriter {
    pub feed: Arc<dyn Feed>,
}

/// The feed item of a published (or revised) version.
fn item_of(policy: PolicyPublished) -> FeedItem {
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
        withdrawal_reason: String::new(),
    }
}

/// A change to an item's state.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Revised(FeedItem),
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

/// `item` as it reads now: its state (when there is one) overlaid. A state that carries
/// content (a revision's) replaces the content; status, version and reason always.
pub(crate) fn overlay(item: &mut FeedItem, state: &FeedItem) {
    if !state.title.is_empty() {
        item.title = state.title.clone();
        item.tags = state.tags.clone();
        item.department = state.department.clone();
        item.service_url = state.service_url.clone();
        item.summary = state.summary.clone();
    }
    if state.status != PolicyStatus::Unspecified as i32 {
        item.status = state.status;
    }
    item.version = item.version.max(state.version);
    item.withdrawal_reason = state.withdrawal_reason.clone();
}

#[async_trait::async_trait]
impl Handler for FeedWriter {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let ty = record.meta.ty.as_str();
        let (policy_id, change) = if ty == PolicyPublished::TYPE {
            let policy: PolicyPublished = record.decode()?;
            return self.append(item_of(policy)).await;
        } else if ty == PolicyRevised::TYPE {
            let revised: PolicyRevised = record.decode()?;
            let Some(policy) = revised.policy else {
                return Err(HandleError::permanent("PolicyRevised without its policy"));
            };
            let item = item_of(policy);
            // Not relayed yet (published before the relay ran, or its record lost):
            // the revision is its first item.
            self.append(item.clone()).await?;
            (item.policy_id.clone(), Change::Revised(item))
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
        let current = self
            .feed
            .states(std::slice::from_ref(&policy_id))
            .await
            .map_err(HandleError::transient)?
            .pop()
            .flatten()
            .and_then(|bytes| FeedItem::decode(bytes.as_slice()).ok());
        let Some(next) = apply(current, change) else {
            tracing::debug!(policy_id, ty, "feed item unchanged");
            return Ok(());
        };
        self.feed
            .set_state(&policy_id, &next.encode_to_vec())
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(
            policy_id,
            status = next.status,
            version = next.version,
            "feed item changed"
        );
        Ok(())
    }
}

impl FeedWriter {
    async fn append(&self, item: FeedItem) -> Result<(), HandleError> {
        if item.policy_id.is_empty() {
            return Err(HandleError::permanent("policy without id"));
        }
        let appended = self
            .feed
            .append(&item.policy_id, &item.encode_to_vec())
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(policy_id = item.policy_id, appended, "relayed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use zhida_bus::Topic;
    use zhida_proto::events::v1::PolicyRecorded;
    use zhida_store::MemoryFeed;

    use super::*;

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
        let entries = feed.read(None, 10).await.expect("read");
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let states = feed.states(&ids).await.expect("states");
        entries
            .iter()
            .zip(states)
            .map(|(entry, state)| {
                let mut item = FeedItem::decode(entry.payload.as_slice()).expect("item");
                if let Some(state) = state {
                    overlay(
                        &mut item,
                        &FeedItem::decode(state.as_slice()).expect("state"),
                    );
                }
                item
            })
            .collect()
    }

    #[tokio::test]
    async fn an_item_is_revised_then_withdrawn_in_place_and_stays_withdrawn() {
        let feed = Arc::new(MemoryFeed::default());
        let writer = FeedWriter { feed: feed.clone() };
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
        let writer = FeedWriter { feed: feed.clone() };
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

    #[test]
    fn an_older_revision_changes_nothing() {
        let current = item_of(policy(3, "第三版"));
        assert!(
            apply(
                Some(current.clone()),
                Change::Revised(item_of(policy(2, "第二版")))
            )
            .is_none()
        );
        assert!(apply(Some(current), Change::Revised(item_of(policy(3, "第三版")))).is_none());
    }
}
