//! Webhook deliveries: one loop per replica claims endpoints whose next delivery is due
//! (the outbox leases each claimed endpoint to this replica, so one attempt at a time per
//! endpoint across replicas: deliveries to an endpoint go in order) and makes one attempt
//! per claim, at most `concurrency` endpoints at once. A slow or failing endpoint holds up
//! only its own queue.
//!
//! An attempt is signed afresh (Standard Webhooks: `webhook-id` the same on every attempt,
//! `webhook-timestamp` the attempt's, `webhook-signature` by every secret valid now) and
//! sent through the SSRF-guarded sender, which resolves the endpoint again and refuses a
//! forbidden address at connect time. Then:
//! - 2xx: delivered; the next is due after the endpoint's rate interval;
//! - anything else: due again after the next delay of the retry schedule; after the last,
//!   the delivery is given up, the endpoint disabled, and a notice appended to the
//!   subscriber's feed (pull and stream still work);
//! - the subscriber was removed: its queue is dropped; its webhook disabled: the queue waits.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use zhida_proto::relay::v1::{FeedEvent, FeedItem, WebhookState};
use zhida_store::{Queued, ReachMark, StoreError};
use zhida_webhook::{Attempt, RetrySchedule, Sender};

use crate::{
    delivery::{Delivery, Prepared},
    registry::Registry,
    subscriber::Entry,
};

/// How often an idle dispatcher looks for due deliveries.
const IDLE_POLL: Duration = Duration::from_millis(50);

pub(crate) struct Dispatcher {
    pub registry: Arc<Registry>,
    pub delivery: Arc<Delivery>,
    pub sender: Sender,
    /// The delay before each attempt.
    pub schedule: RetrySchedule,
    /// Deliveries per second to an endpoint that sets none.
    pub default_rate: u32,
    pub concurrency: usize,
    /// An attempt's own limit; an endpoint's claim lasts longer.
    pub timeout: Duration,
}

impl Dispatcher {
    /// Runs until `shutdown`, then lets attempts in flight finish.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let lease = self.timeout + Duration::from_secs(30);
        while !shutdown.is_cancelled() {
            let free = permits.available_permits();
            if free == 0 {
                // Every endpoint slot is busy: wait for one. Looping without an await here
                // would hold this worker thread and starve the attempts that free a slot.
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = permits.clone().acquire_owned() => drop(permit?),
                }
                continue;
            }
            let claimed = match self
                .delivery
                .outbox
                .claim_due(SystemTime::now(), lease, free)
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "webhook outbox unavailable; retrying");
                    Vec::new()
                }
            };
            let idle = claimed.len() < free;
            for endpoint in claimed {
                let permit = permits.clone().acquire_owned().await?;
                let this = self.clone();
                tokio::spawn(async move {
                    if let Err(error) = this.attempt(&endpoint).await {
                        // The claim lapses and the delivery is tried again.
                        tracing::warn!(%error, subscriber = endpoint, "webhook attempt not recorded");
                    }
                    drop(permit);
                });
            }
            if idle {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
        }
        let all = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(self.timeout, permits.acquire_many(all)).await;
        Ok(())
    }

    /// One attempt at `endpoint`'s next delivery.
    async fn attempt(&self, endpoint: &str) -> Result<(), StoreError> {
        let outbox = &self.delivery.outbox;
        let Some(entry) = self.registry.get(endpoint).await? else {
            let dropped = outbox.clear(endpoint).await?;
            tracing::info!(
                subscriber = endpoint,
                dropped,
                "subscriber removed: its pending webhook deliveries dropped"
            );
            return Ok(());
        };
        if !entry.stored.webhook_enabled() {
            return outbox.pause(endpoint).await;
        }
        let Some(head) = outbox.head(endpoint).await? else {
            return Ok(());
        };
        let now = SystemTime::now();
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let timestamp = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
        let now_ms = i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX);
        let secrets = entry.stored.signing_secrets(now_ms);
        let url = entry
            .stored
            .webhook()
            .map(|w| w.url.clone())
            .unwrap_or_default();
        let id = head.message.id.clone();
        let attempt = if secrets.is_empty() {
            Attempt::Refused {
                reason: "no signing secret".into(),
            }
        } else {
            let signature = zhida_webhook::sign(&secrets, &id, timestamp, &head.message.payload);
            self.sender
                .send(
                    &url,
                    &id,
                    timestamp,
                    &signature,
                    head.message.payload.clone(),
                )
                .await
        };
        let detail = match attempt {
            Attempt::Delivered { status } => {
                if let Some(policy) = crate::delivery::payload_policy(&head.message.payload) {
                    self.delivery
                        .reach
                        .mark(endpoint, &[policy], ReachMark::WebhookDelivered)
                        .await?;
                }
                let rate = entry
                    .stored
                    .webhook()
                    .map(|w| w.max_per_second)
                    .filter(|r| *r > 0)
                    .unwrap_or(self.default_rate)
                    .max(1);
                let next = now + Duration::from_secs(1) / rate;
                outbox.pop(endpoint, &id, next).await?;
                tracing::debug!(
                    subscriber = endpoint,
                    webhook_id = id,
                    status,
                    "webhook delivered"
                );
                return Ok(());
            }
            Attempt::Failed { detail } => detail,
            Attempt::Refused { reason } => format!("refused: {reason}"),
        };
        let made = head.attempts + 1;
        match self.schedule.delay_before(made) {
            Some(delay) => {
                outbox.retry(endpoint, &id, now + delay).await?;
                tracing::info!(
                    subscriber = endpoint,
                    webhook_id = id,
                    attempt = made,
                    detail,
                    retry_in = ?delay,
                    "webhook attempt failed"
                );
                Ok(())
            }
            None => self.give_up(&entry, &head, made, &detail).await,
        }
    }

    /// The last attempt failed: the delivery is dropped, the endpoint disabled, the
    /// subscriber told through its feed.
    async fn give_up(
        &self,
        entry: &Entry,
        head: &Queued,
        attempts: u32,
        detail: &str,
    ) -> Result<(), StoreError> {
        let endpoint = entry.stored.id();
        let outbox = &self.delivery.outbox;
        // Dropped from the queue, then unscheduled: the rest waits for re-registration.
        outbox
            .pop(endpoint, &head.message.id, SystemTime::now())
            .await?;
        outbox.pause(endpoint).await?;
        if let Some(policy) = crate::delivery::payload_policy(&head.message.payload) {
            self.delivery
                .reach
                .mark(endpoint, &[policy], ReachMark::WebhookFailed)
                .await?;
        }
        let reason = format!("{attempts} attempts failed; the last: {detail}");
        // Disable on the latest record (an operator may have changed it meanwhile).
        if let Some(mut latest) = self.registry.get(endpoint).await? {
            if let Some(webhook) = latest
                .stored
                .subscriber
                .as_mut()
                .and_then(|s| s.webhook.as_mut())
            {
                webhook.state = WebhookState::Disabled as i32;
                webhook.disabled_reason.clone_from(&reason);
            }
            self.registry.put(&latest.stored).await?;
        }
        let notice = FeedItem {
            event: FeedEvent::Notice as i32,
            notice: format!(
                "Webhook disabled: delivery {} was not accepted ({reason}). Deliveries are kept \
                 and resume when the endpoint is registered again; PullFeed and StreamFeed work meanwhile.",
                head.message.id
            ),
            at: Some(zhida_proto::timestamp_now()),
            ..FeedItem::default()
        };
        // In the feed (pull, stream), not queued for the endpoint that just failed.
        let mut feed_only = entry.clone();
        if let Some(s) = feed_only.stored.subscriber.as_mut() {
            s.webhook = None;
        }
        self.delivery
            .deliver(
                &feed_only,
                &format!("notice:disabled:{}", head.message.id),
                &Prepared::new(&notice),
            )
            .await?;
        tracing::warn!(
            subscriber = endpoint,
            webhook_id = head.message.id,
            reason,
            "webhook endpoint disabled"
        );
        Ok(())
    }
}
