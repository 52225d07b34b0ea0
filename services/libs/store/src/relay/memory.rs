//! The relay's stores in process memory, for the embedded default (`zhida demo`,
//! single-process `serve`): each lives in its handle, so the relay opens each once
//! (except [`MemoryFeedSignals::shared`], which every component of the process shares).

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{
    Enqueued, FeedSignals, OutboxMessage, OutboxStats, Queued, ReachMark, RelayReach, StoredReach,
    SubscriberRegistry, WebhookOutbox,
};
use crate::Result;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`SubscriberRegistry`] in a map ordered by id, with a counter for the generation.
#[derive(Default)]
pub struct MemorySubscriberRegistry {
    inner: Mutex<(BTreeMap<String, Vec<u8>>, u64)>,
}

#[async_trait]
impl SubscriberRegistry for MemorySubscriberRegistry {
    async fn put(&self, id: &str, record: &[u8]) -> Result<()> {
        let mut inner = lock(&self.inner);
        inner.0.insert(id.to_string(), record.to_vec());
        inner.1 += 1;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(lock(&self.inner).0.get(id).cloned())
    }

    async fn all(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(lock(&self.inner)
            .0
            .iter()
            .map(|(id, record)| (id.clone(), record.clone()))
            .collect())
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let mut inner = lock(&self.inner);
        inner.1 += 1;
        Ok(inner.0.remove(id).is_some())
    }

    async fn generation(&self) -> Result<u64> {
        Ok(lock(&self.inner).1)
    }
}

/// One endpoint's queue and what is remembered about it.
#[derive(Default)]
struct Queue {
    messages: VecDeque<Queued>,
    seen: HashSet<String>,
    paused: bool,
    overflowed: u64,
    /// When its head is due; `None` while it is unscheduled (empty or paused).
    due: Option<SystemTime>,
}

impl Queue {
    fn is_head(&self, id: &str) -> bool {
        self.messages.front().is_some_and(|q| q.message.id == id)
    }

    /// Due at `at` when it has messages and is not paused, unscheduled otherwise.
    fn schedule(&mut self, at: SystemTime) {
        self.due = (!self.messages.is_empty() && !self.paused).then_some(at);
    }
}

/// [`WebhookOutbox`] in a map of queues.
#[derive(Default)]
pub struct MemoryWebhookOutbox {
    queues: Mutex<HashMap<String, Queue>>,
}

#[async_trait]
impl WebhookOutbox for MemoryWebhookOutbox {
    async fn enqueue(
        &self,
        endpoint: &str,
        message: &OutboxMessage,
        capacity: usize,
    ) -> Result<Enqueued> {
        let mut queues = lock(&self.queues);
        let queue = queues.entry(endpoint.to_string()).or_default();
        if queue.seen.contains(&message.id) {
            return Ok(Enqueued::Duplicate);
        }
        if queue.messages.len() >= capacity {
            queue.overflowed += 1;
            return Ok(Enqueued::Full);
        }
        queue.seen.insert(message.id.clone());
        let now = SystemTime::now();
        queue.messages.push_back(Queued {
            message: message.clone(),
            attempts: 0,
            queued_at: now,
        });
        if queue.messages.len() == 1 {
            queue.schedule(now);
        }
        Ok(Enqueued::Added)
    }

    async fn claim_due(
        &self,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut queues = lock(&self.queues);
        let mut due: Vec<(SystemTime, &String)> = queues
            .iter()
            .filter_map(|(endpoint, queue)| {
                queue.due.filter(|at| *at <= now).map(|at| (at, endpoint))
            })
            .collect();
        due.sort();
        let claimed: Vec<String> = due
            .into_iter()
            .take(limit)
            .map(|(_, endpoint)| endpoint.clone())
            .collect();
        for endpoint in &claimed {
            if let Some(queue) = queues.get_mut(endpoint) {
                queue.due = Some(now + lease);
            }
        }
        Ok(claimed)
    }

    async fn head(&self, endpoint: &str) -> Result<Option<Queued>> {
        Ok(lock(&self.queues)
            .get(endpoint)
            .and_then(|queue| queue.messages.front().cloned()))
    }

    async fn pop(&self, endpoint: &str, id: &str, next_at: SystemTime) -> Result<()> {
        let mut queues = lock(&self.queues);
        if let Some(queue) = queues.get_mut(endpoint)
            && queue.is_head(id)
        {
            queue.messages.pop_front();
            queue.schedule(next_at);
        }
        Ok(())
    }

    async fn retry(&self, endpoint: &str, id: &str, at: SystemTime) -> Result<u32> {
        let mut queues = lock(&self.queues);
        let Some(queue) = queues.get_mut(endpoint).filter(|queue| queue.is_head(id)) else {
            return Ok(0);
        };
        let attempts = match queue.messages.front_mut() {
            Some(head) => {
                head.attempts += 1;
                head.attempts
            }
            None => 0,
        };
        queue.schedule(at);
        Ok(attempts)
    }

    async fn pause(&self, endpoint: &str) -> Result<()> {
        let mut queues = lock(&self.queues);
        let queue = queues.entry(endpoint.to_string()).or_default();
        queue.paused = true;
        queue.due = None;
        Ok(())
    }

    async fn resume(&self, endpoint: &str, at: SystemTime) -> Result<()> {
        if let Some(queue) = lock(&self.queues).get_mut(endpoint) {
            queue.paused = false;
            queue.schedule(at);
        }
        Ok(())
    }

    async fn clear(&self, endpoint: &str) -> Result<u64> {
        Ok(lock(&self.queues)
            .remove(endpoint)
            .map_or(0, |queue| queue.messages.len() as u64))
    }

    async fn stats(&self, endpoint: &str) -> Result<OutboxStats> {
        Ok(lock(&self.queues)
            .get(endpoint)
            .map(|queue| OutboxStats {
                pending: queue.messages.len() as u64,
                overflowed: queue.overflowed,
            })
            .unwrap_or_default())
    }
}

/// A subscriber's reach of one policy: what is listed, and whether it forwarded (only
/// forwarders' members take delivery states).
#[derive(Default)]
struct Reach {
    reached: bool,
    listed: StoredReach,
    members: BTreeMap<String, u32>,
}

/// [`RelayReach`] in a map per policy, ordered by subscriber.
#[derive(Default)]
pub struct MemoryRelayReach {
    policies: Mutex<HashMap<String, BTreeMap<String, Reach>>>,
}

#[async_trait]
impl RelayReach for MemoryRelayReach {
    async fn mark(&self, subscriber: &str, policies: &[String], mark: ReachMark) -> Result<()> {
        let mut all = lock(&self.policies);
        for policy in policies {
            let reach = all
                .entry(policy.clone())
                .or_default()
                .entry(subscriber.to_string())
                .or_default();
            let listed = &mut reach.listed;
            match mark {
                ReachMark::Reached { tier, by } => {
                    if !reach.reached {
                        reach.reached = true;
                        listed.tier = tier;
                        listed.by = by;
                    }
                }
                ReachMark::WebhookDelivered => listed.webhook_delivered = true,
                ReachMark::WebhookFailed => listed.webhook_failed = true,
                ReachMark::Pulled => listed.pulled = true,
                ReachMark::Streamed => listed.streamed = true,
            }
        }
        Ok(())
    }

    async fn forwarded(&self, policy: &str, subscriber: &str, members: &[String]) -> Result<()> {
        let mut all = lock(&self.policies);
        let reach = all
            .entry(policy.to_string())
            .or_default()
            .entry(subscriber.to_string())
            .or_default();
        for member in members {
            reach.members.entry(member.clone()).or_insert(0);
        }
        Ok(())
    }

    async fn member_state(&self, policy: &str, member: &str, state: u32) -> Result<usize> {
        let mut all = lock(&self.policies);
        let Some(subscribers) = all.get_mut(policy) else {
            return Ok(0);
        };
        let mut forwarders = 0;
        for reach in subscribers.values_mut() {
            if let Some(mask) = reach.members.get_mut(member) {
                *mask |= state_bit(state);
                forwarders += 1;
            }
        }
        Ok(forwarders)
    }

    async fn reach(&self, policy: &str) -> Result<Vec<StoredReach>> {
        let all = lock(&self.policies);
        Ok(all
            .get(policy)
            .into_iter()
            .flatten()
            .map(|(subscriber, reach)| StoredReach {
                subscriber_id: subscriber.clone(),
                members: reach
                    .members
                    .iter()
                    .map(|(member, mask)| (member.clone(), *mask))
                    .collect(),
                ..reach.listed.clone()
            })
            .collect())
    }

    async fn remove_subscriber(&self, subscriber: &str) -> Result<()> {
        let mut all = lock(&self.policies);
        for subscribers in all.values_mut() {
            subscribers.remove(subscriber);
        }
        all.retain(|_, subscribers| !subscribers.is_empty());
        Ok(())
    }
}

/// Bit `1 << state` of a member's mask; none for a state beyond the mask.
pub(crate) fn state_bit(state: u32) -> u32 {
    1u32.checked_shl(state).unwrap_or(0)
}

/// How many signals a receiver may fall behind before it skips ahead.
pub(crate) const SIGNAL_CAPACITY: usize = 1024;

/// [`FeedSignals`] on a broadcast channel: only this process hears them.
pub struct MemoryFeedSignals {
    sender: broadcast::Sender<String>,
}

impl Default for MemoryFeedSignals {
    fn default() -> Self {
        Self {
            sender: broadcast::Sender::new(SIGNAL_CAPACITY),
        }
    }
}

impl MemoryFeedSignals {
    /// The process's signals under `prefix`: the components of one process that write feeds
    /// and those that stream them share them, as they share Redis in a deployment.
    pub fn shared(prefix: &str) -> Arc<Self> {
        static SHARED: OnceLock<Mutex<HashMap<String, Arc<MemoryFeedSignals>>>> = OnceLock::new();
        lock(SHARED.get_or_init(Mutex::default))
            .entry(prefix.to_string())
            .or_default()
            .clone()
    }
}

#[async_trait]
impl FeedSignals for MemoryFeedSignals {
    async fn notify(&self, feed: &str) -> Result<()> {
        // No receiver is not an error: nobody is streaming.
        let _ = self.sender.send(feed.to_string());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.sender.subscribe()
    }
}
