//! What reaching a subscriber means, in one place: an entry appended to its own feed
//! (idempotent per entry id), the reach recorded, the entry queued for its webhook (under a
//! `webhook-id` derived from the subscriber and the entry, so a redelivered event queues
//! nothing new), and its streams woken. Every step is idempotent, so a handler that failed
//! half way is simply run again.
//!
//! Entry ids, per subscriber feed: `<policy>` (relayed by scope), `<policy>#v<n>` (revised,
//! or relayed as version n to a scope only that version matches),
//! `<policy>#withdrawn`, `<policy>#expired`, `<policy>#from:<parent>` (forwarded by the parent
//! tier), `notice:<id>`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use prost::Message;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zhida_proto::{
    events::v1::PolicyStatus,
    relay::v1::{FeedEvent, FeedItem},
};
use zhida_store::{
    Enqueued, Feed, FeedSignals, OutboxMessage, ReachMark, RelayReach, StoreError, Stores,
    WebhookOutbox,
};

use crate::subscriber::Entry;

/// The feed of each subscriber, opened once (an in-memory feed lives in its handle).
pub struct Feeds {
    stores: Stores,
    open: Mutex<HashMap<String, Arc<dyn Feed>>>,
}

impl Feeds {
    pub fn new(stores: Stores) -> Self {
        Self {
            stores,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn of(&self, subscriber: &str) -> Arc<dyn Feed> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.entry(subscriber.to_string())
            .or_insert_with(|| self.stores.feed(&format!("subscriber:{subscriber}")))
            .clone()
    }

    /// Deletes `subscriber`'s feed.
    pub async fn remove(&self, subscriber: &str) -> Result<(), StoreError> {
        self.of(subscriber).clear().await?;
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(subscriber);
        Ok(())
    }
}

/// The stores a delivery touches.
pub struct Delivery {
    pub feeds: Feeds,
    pub outbox: Arc<dyn WebhookOutbox>,
    pub reach: Arc<dyn RelayReach>,
    pub signals: Arc<dyn FeedSignals>,
    /// Most deliveries waiting per endpoint.
    pub capacity: usize,
}

/// An entry ready to go to any number of subscribers: encoded for the feed and as the
/// webhook body once, not once per subscriber.
pub struct Prepared<'a> {
    pub item: &'a FeedItem,
    encoded: Vec<u8>,
    payload: Vec<u8>,
}

impl<'a> Prepared<'a> {
    pub fn new(item: &'a FeedItem) -> Self {
        Self {
            item,
            encoded: item.encode_to_vec(),
            payload: payload(item),
        }
    }
}

impl Delivery {
    /// Puts the entry into `to`'s feed as `entry_id`, records the reach and queues the
    /// webhook. True when the entry is new.
    pub async fn deliver(
        &self,
        to: &Entry,
        entry_id: &str,
        entry: &Prepared<'_>,
    ) -> Result<bool, StoreError> {
        let id = to.stored.id();
        let item = entry.item;
        let appended = self.feeds.of(id).append(entry_id, &entry.encoded).await?;
        if !item.policy_id.is_empty() {
            let mark = match FeedEvent::try_from(item.event) {
                Ok(FeedEvent::Relayed) | Ok(FeedEvent::Forwarded) => Some(ReachMark::Reached {
                    tier: to.tier,
                    by: item.event,
                }),
                _ => None,
            };
            if let Some(mark) = mark {
                self.reach
                    .mark(id, std::slice::from_ref(&item.policy_id), mark)
                    .await?;
            }
        }
        if to.stored.webhook().is_some_and(|w| !w.url.is_empty()) {
            let message = OutboxMessage {
                id: message_id(id, entry_id),
                payload: entry.payload.clone(),
            };
            if self.outbox.enqueue(id, &message, self.capacity).await? == Enqueued::Full {
                tracing::warn!(
                    subscriber = id,
                    entry_id,
                    "webhook queue full: delivery recorded as overflowed (the entry stays in the feed)"
                );
            }
        }
        if appended && let Err(error) = self.signals.notify(id).await {
            // Streams poll as well; a lost signal only delays them.
            tracing::debug!(%error, subscriber = id, "feed signal not sent");
        }
        Ok(appended)
    }
}

/// The `webhook-id` of an entry at a subscriber: the same for every attempt and every
/// redelivery of the event behind it.
pub fn message_id(subscriber: &str, entry_id: &str) -> String {
    let digest = Sha256::digest(format!("{subscriber}\n{entry_id}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// The webhook `type` of an entry.
pub fn webhook_type(event: i32) -> &'static str {
    match FeedEvent::try_from(event) {
        Ok(FeedEvent::Revised) => "policy.revised",
        Ok(FeedEvent::Withdrawn) => "policy.withdrawn",
        Ok(FeedEvent::Expired) => "policy.expired",
        Ok(FeedEvent::Forwarded) => "policy.forwarded",
        Ok(FeedEvent::Notice) => "relay.notice",
        _ => "policy.relayed",
    }
}

/// The webhook body: `{"type", "timestamp", "data"}` with `data` the feed item in the proto3
/// JSON mapping (lowerCamelCase names, enum names, RFC 3339 times; empty fields left out).
pub fn payload(item: &FeedItem) -> Vec<u8> {
    let mut data = Map::new();
    let mut put = |key: &str, value: Value| {
        let empty = match &value {
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Number(n) => n.as_u64() == Some(0),
            Value::Null => true,
            _ => false,
        };
        if !empty {
            data.insert(key.into(), value);
        }
    };
    put("policyId", json!(item.policy_id));
    put("title", json!(item.title));
    put("tags", json!(item.tags));
    put("department", json!(item.department));
    put("serviceUrl", json!(item.service_url));
    put(
        "publishedAt",
        item.published_at
            .as_ref()
            .map_or(Value::Null, |t| json!(t.to_string())),
    );
    let status = PolicyStatus::try_from(item.status).unwrap_or(PolicyStatus::Unspecified);
    if status != PolicyStatus::Unspecified {
        put("status", json!(status.as_str_name()));
    }
    put("version", json!(item.version));
    put("summary", json!(item.summary));
    put("withdrawalReason", json!(item.withdrawal_reason));
    let event = FeedEvent::try_from(item.event).unwrap_or(FeedEvent::Unspecified);
    put("event", json!(event.as_str_name()));
    put("forwardedBy", json!(item.forwarded_by));
    put("forwardNote", json!(item.forward_note));
    put("notice", json!(item.notice));
    let at = item
        .at
        .unwrap_or_else(|| prost_types::Timestamp::from(SystemTime::now()));
    put("at", json!(at.to_string()));
    serde_json::to_vec(&json!({
        "type": webhook_type(item.event),
        "timestamp": at.to_string(),
        "data": Value::Object(data),
    }))
    .unwrap_or_default()
}

/// The policy id a webhook body is about (for its reach), if any.
pub fn payload_policy(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value["data"]["policyId"].as_str().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_proto_json_of_the_item_under_its_type() {
        let item = FeedItem {
            policy_id: "p-1".into(),
            title: "软件企业扶持".into(),
            tags: vec!["数字经济".into()],
            status: PolicyStatus::Published as i32,
            version: 2,
            event: FeedEvent::Revised as i32,
            at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..FeedItem::default()
        };
        let body: Value = serde_json::from_slice(&payload(&item)).expect("json");
        assert_eq!(body["type"], "policy.revised");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(body["data"]["policyId"], "p-1");
        assert_eq!(body["data"]["status"], "POLICY_STATUS_PUBLISHED");
        assert_eq!(body["data"]["event"], "FEED_EVENT_REVISED");
        assert_eq!(body["data"]["version"], 2);
        assert!(body["data"].get("summary").is_none());
        assert_eq!(payload_policy(&payload(&item)).as_deref(), Some("p-1"));
    }

    #[test]
    fn message_ids_are_stable_per_subscriber_and_entry() {
        assert_eq!(message_id("a", "p-1"), message_id("a", "p-1"));
        assert_ne!(message_id("a", "p-1"), message_id("b", "p-1"));
        assert_ne!(message_id("a", "p-1"), message_id("a", "p-1#v2"));
        assert!(message_id("a", "p-1").starts_with("msg_"));
    }
}
