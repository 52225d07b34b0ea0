//! Notices a channel held back (SMS between 21:00 and 08:00 district time, unless
//! urgent) go out when the channel allows again, once.
//!
//! The sender keeps a held request in the recipient's open batch of the held store (the
//! same [`DigestStore`](zhida_store::DigestStore) as daily digests, under its own keys). This task sleeps
//! until the first channel's quiet hours end, or [`POLL`] at most, and then closes the
//! batches and sends each request of a channel that is no longer holding as its own
//! notice, through the same ledger as any other (so a request both held and redelivered,
//! or a drain that two replicas run at once, still goes out once). A batch is removed only
//! once every request in it is recorded; one cut short by a crash or a failing channel is
//! still closed and goes out at the next pass, which also runs right after a start. A
//! held notice of a policy withdrawn since then is not sent: it ends CANCELLED.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zhida_bus::HandleError;
use zhida_proto::events::v1::DeliveryRequested;
use zhida_store::{DeliveryKey, DigestKey};

use crate::sender::Sender;

/// The longest sleep between two passes.
const POLL: Duration = Duration::from_secs(30);

/// The task: a pass at start, then at each end of quiet hours (and every [`POLL`]),
/// until `token` is cancelled.
pub async fn run(sender: Sender, token: CancellationToken) -> anyhow::Result<()> {
    loop {
        let now = zhida_runtime::district::unix_now();
        // Nothing to send while every holding channel still holds.
        let holding: Vec<i64> = sender
            .channels
            .iter()
            .filter_map(|c| c.held_until(now))
            .collect();
        if holding.len() < sender.channels.iter().count() {
            match sender.held.close().await {
                Ok(keys) => {
                    for key in keys {
                        if token.is_cancelled() {
                            return Ok(());
                        }
                        if let Err(error) = sender.send_held(&key, now).await {
                            tracing::warn!(
                                recipient_id = key.recipient_id,
                                %error,
                                "held notices not sent yet; retried at the next pass"
                            );
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "held store unavailable; retried at the next pass")
                }
            }
        }
        let wait = holding
            .iter()
            .map(|until| Duration::from_secs(until.saturating_sub(now).max(0) as u64))
            .min()
            .unwrap_or(POLL)
            .min(POLL);
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl Sender {
    /// Sends each request of the closed held batch of `key` on its own, once, if its
    /// channel no longer holds at `now`; removes the batch when all are recorded.
    pub(crate) async fn send_held(&self, key: &DigestKey, now: i64) -> Result<(), HandleError> {
        let Some(channel) = self.channels.get(key.channel).cloned() else {
            return Err(HandleError::permanent(format!(
                "held notices for channel {} which this notifier does not deliver",
                zhida_store::channel_segment(key.channel)
            )));
        };
        if channel.held_until(now).is_some() {
            return Ok(());
        }
        let items = self.held.items(key).await.map_err(HandleError::transient)?;
        let all: Vec<String> = items
            .iter()
            .map(|(policy_id, _)| policy_id.clone())
            .collect();
        for (policy_id, bytes) in &items {
            let request: DeliveryRequested = match prost::Message::decode(bytes.as_slice()) {
                Ok(request) => request,
                Err(e) => {
                    tracing::error!(policy_id, error = %e, "undecodable held notice dropped");
                    continue;
                }
            };
            // The batch's item id is the request's ledger policy id (a notice's included).
            let delivery = DeliveryKey {
                policy_id: policy_id.clone(),
                recipient_id: key.recipient_id.clone(),
                channel: key.channel,
            };
            if self.cancelled(&request).await? {
                self.cancel(&delivery, request.forward.as_ref()).await?;
                continue;
            }
            self.send(&delivery, &*channel, request).await?;
        }
        tracing::info!(
            recipient_id = key.recipient_id,
            notices = all.len(),
            "held notices sent"
        );
        self.held
            .complete(key, &all)
            .await
            .map_err(HandleError::transient)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    };

    use async_trait::async_trait;
    use zhida_bus::Producer;
    use zhida_proto::events::v1::Channel as Kind;
    use zhida_runtime::config::KafkaConfig;
    use zhida_store::{DigestStore, MemoryDigests, MemoryLedger};

    use super::*;
    use crate::channel::{Attempt, Channel, Channels};

    /// A channel quiet until `quiet_until` (0: not quiet), counting its sends.
    struct Night {
        quiet_until: Arc<AtomicI64>,
        sent: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl Channel for Night {
        fn kind(&self) -> Kind {
            Kind::Sms
        }

        fn held_until(&self, now: i64) -> Option<i64> {
            let until = self.quiet_until.load(Ordering::SeqCst);
            (until > now).then_some(until)
        }

        async fn send(&self, request: &DeliveryRequested) -> Attempt {
            self.sent
                .lock()
                .expect("lock")
                .push(request.policy_id.clone());
            Attempt::Sent {
                detail: "ok".into(),
            }
        }

        async fn send_digest(&self, _: &str, _: &[DeliveryRequested]) -> Attempt {
            unreachable!("no digests here")
        }
    }

    #[tokio::test]
    async fn held_notices_wait_while_quiet_then_go_out_once_each() {
        let quiet_until = Arc::new(AtomicI64::new(i64::MAX));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut channels = Channels::default();
        channels.register(Night {
            quiet_until: quiet_until.clone(),
            sent: sent.clone(),
        });
        let held: Arc<dyn DigestStore> = Arc::new(MemoryDigests::default());
        let sender = Sender {
            ledger: Arc::new(MemoryLedger::default()),
            digests: Arc::new(MemoryDigests::default()),
            held: held.clone(),
            channels,
            // Never reached: nothing is sent, so nothing is reported.
            producer: Producer::new(&KafkaConfig::default(), "/test").expect("producer"),
            lease: Duration::from_secs(30),
            keys: Arc::new(zhida_store::MemorySubjectKeys::default()),
            recipients: Arc::new(zhida_store::MemoryPolicyRecipients::default()),
        };
        let key = DigestKey {
            recipient_id: "c-1".into(),
            channel: Kind::Sms,
        };
        for policy in ["p-1", "p-2"] {
            let request = DeliveryRequested {
                policy_id: policy.into(),
                recipient_id: "c-1".into(),
                channel: Kind::Sms as i32,
                ..DeliveryRequested::default()
            };
            held.add(&key, policy, &prost::Message::encode_to_vec(&request))
                .await
                .expect("held");
        }
        let now = 1_000;
        assert_eq!(
            held.close().await.expect("close"),
            std::slice::from_ref(&key)
        );
        sender.send_held(&key, now).await.expect("still quiet");
        assert!(sent.lock().expect("lock").is_empty(), "nothing while quiet");
        assert_eq!(
            held.close().await.expect("close"),
            std::slice::from_ref(&key),
            "the batch waits, closed, for the next pass"
        );
        assert_eq!(held.items(&key).await.expect("items").len(), 2);
        // (The morning pass, sending each once through the ledger, runs against real
        // servers in tests/it/sms.rs: it reports on `delivery.status`.)
        quiet_until.store(0, Ordering::SeqCst);
        assert_eq!(
            sender
                .channels
                .iter()
                .filter(|c| c.held_until(now).is_some())
                .count(),
            0
        );
    }
}
