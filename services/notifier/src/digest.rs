//! The digest run: at `digest.send_at` (UTC+8) and every `digest.period` after, every
//! recipient's open digest is closed and sent as one message.
//!
//! Exactly once, as for single notices: the digest message has its own ledger entry
//! (`digest-<hash of its policy ids>`), so a run that crashed after sending finds it done
//! and does not send again; only then is each policy recorded as delivered, its status
//! emitted, and the closed digest removed. A redelivered request for a policy in a closed
//! digest is not added again (the store refuses it) and, once recorded, only repeats its
//! status. A closed digest a crashed run left behind goes out at the next run. A policy
//! withdrawn since it was held is left out of the message and ends CANCELLED; a digest
//! left with nothing to send sends nothing.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zhida_bus::HandleError;
use zhida_proto::events::v1::DeliveryRequested;
use zhida_store::{DeliveryKey, DigestKey};

use crate::{config::DigestConfig, sender::Sender};

const DAY: i64 = 24 * 3600;

/// The first digest run at or after `now` (Unix seconds): runs fall on today's `send_at`
/// in the district plus whole multiples of `period`.
pub fn next_run(now: i64, send_at: i64, period: i64) -> i64 {
    let offset = i64::from(zhida_runtime::district::UTC_OFFSET_SECONDS);
    let local = now + offset;
    let anchor = local - local.rem_euclid(DAY) + send_at - offset;
    let period = period.max(1);
    let mut run = anchor + (now - anchor).div_euclid(period) * period;
    if run < now {
        run += period;
    }
    run
}

/// The digest task: sleeps until each run, sends, until `token` is cancelled.
pub async fn run(
    sender: Sender,
    config: DigestConfig,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let send_at = config.send_at_seconds().unwrap_or(8 * 3600) as i64;
    let period = i64::try_from(config.period.as_secs()).unwrap_or(DAY).max(1);
    // The last run's time: a run that ends within its own second must not run again.
    let mut last = i64::MIN;
    loop {
        let now = zhida_runtime::district::unix_now();
        let at = next_run(now.max(last.saturating_add(1)), send_at, period);
        let wait = Duration::from_secs((at - now).max(0) as u64);
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        last = at;
        match sender.digests.close().await {
            Ok(keys) => {
                tracing::info!(digests = keys.len(), "digest run");
                for key in keys {
                    // A run cut short leaves the rest closed for the next one.
                    if token.is_cancelled() {
                        return Ok(());
                    }
                    if let Err(error) = sender.send_digest(&key).await {
                        tracing::warn!(
                            recipient_id = key.recipient_id,
                            %error,
                            "digest not sent; it is retried at the next run"
                        );
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "digest store unavailable; retried at the next run")
            }
        }
    }
}

/// `digest-` and a stable hash (FNV-1a) of the policy ids it carries.
fn digest_id(policy_ids: &[&str]) -> String {
    let hash =
        zhida_runtime::ids::stable_hash(policy_ids.iter().flat_map(|id| id.bytes().chain([b'|'])));
    format!("digest-{hash:016x}")
}

impl Sender {
    /// Sends the closed digest of `key` (once), records each policy in it, and removes it.
    /// Policies already delivered (in an earlier digest, or at once because a subscription
    /// changed) are left out of the message.
    pub(crate) async fn send_digest(&self, key: &DigestKey) -> Result<(), HandleError> {
        let items = self
            .digests
            .items(key)
            .await
            .map_err(HandleError::transient)?;
        let all: Vec<String> = items
            .iter()
            .map(|(policy_id, _)| policy_id.clone())
            .collect();
        let mut pending: Vec<DeliveryRequested> = Vec::new();
        for (policy_id, bytes) in &items {
            let request: DeliveryRequested = match prost::Message::decode(bytes.as_slice()) {
                Ok(request) => request,
                Err(e) => {
                    tracing::error!(policy_id, error = %e, "undecodable digest item dropped");
                    continue;
                }
            };
            // Withdrawn since it was held: never sent, and left out of the message.
            if self.cancelled(&request).await? {
                self.cancel(&delivery(key, policy_id), request.forward.as_ref())
                    .await?;
                continue;
            }
            let status = self
                .ledger
                .status(&delivery(key, policy_id))
                .await
                .map_err(HandleError::transient)?;
            if !matches!(status, Some(zhida_store::Status::Done(_))) {
                // Revised since it was held: the digest carries the latest version.
                pending.push(self.current(request).await?);
            }
        }
        if !pending.is_empty() {
            // Named after every policy the closed digest holds, so a retry after a crash
            // part-way through recording finds the same, finished, digest.
            let ids: Vec<&str> = all.iter().map(String::as_str).collect();
            let digest = delivery(key, &digest_id(&ids));
            let Some(channel) = self.channels.get(key.channel).cloned() else {
                return Err(HandleError::permanent(format!(
                    "digest for channel {} which this notifier does not deliver",
                    zhida_store::channel_segment(key.channel)
                )));
            };
            let outcome = self
                .once(&digest, || {
                    self.send_digest_opened(&*channel, &digest.policy_id, &pending)
                })
                .await?;
            for request in &pending {
                let policy = delivery(key, &request.policy_id);
                self.record(&policy, &outcome).await?;
                self.delivered(request, key.channel, &outcome).await?;
                self.report(&policy, outcome.clone(), request.forward.as_ref())
                    .await?;
            }
        }
        self.digests
            .complete(key, &all)
            .await
            .map_err(HandleError::transient)
    }
}

/// The ledger key of `policy_id` for the recipient and channel of `key`.
fn delivery(key: &DigestKey, policy_id: &str) -> DeliveryKey {
    DeliveryKey {
        policy_id: policy_id.to_string(),
        recipient_id: key.recipient_id.clone(),
        channel: key.channel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_fall_on_send_at_in_the_district_then_every_period() {
        // 2026-11-27 23:30 UTC = 2026-11-28 07:30 in the district.
        let now = 1_795_822_200;
        let eight = 8 * 3600;
        // Daily at 08:00 district time: half an hour from now.
        assert_eq!(next_run(now, eight, DAY), now + 1800);
        // Just after the run: the next day's.
        assert_eq!(next_run(now + 1801, eight, DAY), now + 1800 + DAY);
        // Exactly at a run: that run.
        assert_eq!(next_run(now + 1800, eight, DAY), now + 1800);
        // Every 10 s, aligned on 08:00.
        assert_eq!(next_run(now, eight, 10), now);
        assert_eq!(next_run(now + 3, eight, 10), now + 10);
    }

    #[test]
    fn digest_ids_depend_on_every_policy() {
        assert_eq!(digest_id(&["p-1", "p-2"]), digest_id(&["p-1", "p-2"]));
        assert_ne!(digest_id(&["p-1", "p-2"]), digest_id(&["p-1"]));
        assert_ne!(digest_id(&["p-1", "p-2"]), digest_id(&["p-1p-2"]));
    }
}
