//! The delivery path: each `DeliveryRequested` is sent at most once per (policy,
//! recipient, channel) under the [`DeliveryLedger`], or held for the recipient's daily
//! digest, and its outcome is reported on `delivery.status`.

use std::{sync::Arc, time::Duration};

use zhida_bus::{HandleError, Handler, Producer, Record};
use zhida_proto::events::v1::{
    Channel, DeliveryRequested, DeliveryState, DeliveryStatusChanged, Frequency,
};
use zhida_store::{
    Begin, DeliveryKey, DeliveryLedger, DigestKey, DigestStore, Outcome, OutcomeState,
};

use crate::{
    mailer::{MailError, Mailer},
    render,
};

/// Policy and recipient ids as their producers define them (up to 128 characters).
pub(crate) fn is_id(id: &str) -> bool {
    zhida_runtime::ids::is_identifier(id, 128)
}

#[derive(Clone)]
pub(crate) struct Sender {
    pub ledger: Arc<dyn DeliveryLedger>,
    pub digests: Arc<dyn DigestStore>,
    pub mailer: Arc<dyn Mailer>,
    pub producer: Producer,
    /// The From: of every notice.
    pub from: String,
    /// How long a sender may hold a delivery before another replica may retry it.
    pub lease: Duration,
}

#[async_trait::async_trait]
impl Handler for Sender {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let request: DeliveryRequested = record.decode()?;
        if !is_id(&request.policy_id) || !is_id(&request.recipient_id) {
            return Err(HandleError::permanent(
                "policy_id and recipient_id must be 1–128 of A-Z a-z 0-9 _ . : -",
            ));
        }
        let channel = Channel::try_from(request.channel)
            .map_err(|_| HandleError::permanent(format!("unknown channel {}", request.channel)))?;
        if channel != Channel::Email {
            return Err(HandleError::permanent(format!(
                "channel {} is not delivered by this notifier",
                zhida_store::channel_segment(channel)
            )));
        }
        let key = DeliveryKey {
            policy_id: request.policy_id.clone(),
            recipient_id: request.recipient_id.clone(),
            channel,
        };
        if request.frequency == Frequency::DailyDigest as i32 {
            return self.hold_for_digest(&key, &request).await;
        }
        let outcome = self
            .once(&key, || render::email(&request, &self.from))
            .await?;
        self.report(&key, outcome).await
    }
}

impl Sender {
    /// Sends the message `render` builds at most once for `key`: only the ledger lease
    /// holder sends, the outcome is recorded before anything else happens, and a delivery
    /// found done returns its recorded outcome without sending. A message that cannot be
    /// built is a failed delivery.
    pub(crate) async fn once(
        &self,
        key: &DeliveryKey,
        render: impl FnOnce() -> Result<lettre::Message, render::RenderError>,
    ) -> Result<Outcome, HandleError> {
        let token = match self
            .ledger
            .begin(key, self.lease)
            .await
            .map_err(HandleError::transient)?
        {
            Begin::Done(outcome) => {
                tracing::debug!(
                    policy_id = key.policy_id,
                    recipient_id = key.recipient_id,
                    "already delivered; status repeated"
                );
                return Ok(outcome);
            }
            Begin::InFlight => {
                return Err(HandleError::transient("another sender holds this delivery"));
            }
            Begin::Acquired(token) => token,
        };
        // A message that cannot be built (an address the mail library refuses) is a failed
        // delivery, recorded like a refusal by the server: retrying cannot help.
        let sent = match render() {
            Ok(message) => {
                self.transmit(message, &key.policy_id, &key.recipient_id)
                    .await
            }
            Err(error) => Ok(Outcome {
                state: OutcomeState::Failed,
                detail: error.to_string(),
            }),
        };
        let outcome = match sent {
            Ok(outcome) => outcome,
            Err(error) => {
                if let Err(e) = self.ledger.abandon(key, &token).await {
                    tracing::warn!(error = %e, "lease not released; it expires by itself");
                }
                return Err(error);
            }
        };
        self.record(key, &outcome).await?;
        Ok(outcome)
    }

    /// A digest request: already delivered (in an earlier digest) only repeats its status;
    /// otherwise it waits in the recipient's open digest.
    async fn hold_for_digest(
        &self,
        key: &DeliveryKey,
        request: &DeliveryRequested,
    ) -> Result<(), HandleError> {
        if let Some(zhida_store::Status::Done(outcome)) = self
            .ledger
            .status(key)
            .await
            .map_err(HandleError::transient)?
        {
            return self.report(key, outcome).await;
        }
        let digest = DigestKey {
            recipient_id: key.recipient_id.clone(),
            channel: key.channel,
        };
        self.digests
            .add(
                &digest,
                &key.policy_id,
                &prost::Message::encode_to_vec(request),
            )
            .await
            .map_err(HandleError::transient)?;
        tracing::debug!(
            policy_id = key.policy_id,
            recipient_id = key.recipient_id,
            "held for the daily digest"
        );
        Ok(())
    }

    /// Emits the outcome on `delivery.status` (idempotent: the event id is the outcome's).
    pub(crate) async fn report(
        &self,
        key: &DeliveryKey,
        outcome: Outcome,
    ) -> Result<(), HandleError> {
        let status = DeliveryStatusChanged {
            policy_id: key.policy_id.clone(),
            recipient_id: key.recipient_id.clone(),
            channel: key.channel as i32,
            state: match outcome.state {
                OutcomeState::Sent => DeliveryState::Sent,
                OutcomeState::Failed => DeliveryState::Failed,
            } as i32,
            detail: outcome.detail,
            at: None,
        };
        let id = format!("{}|{}", key.encoded(), status.state);
        self.producer
            .emit_with_id(&key.recipient_id, &id, &status)
            .await
            .map_err(HandleError::transient)?;
        Ok(())
    }

    /// Sends; a refusal by the server is an outcome, not an error.
    async fn transmit(
        &self,
        message: lettre::Message,
        policy_id: &str,
        recipient_id: &str,
    ) -> Result<Outcome, HandleError> {
        let started = std::time::Instant::now();
        match self.mailer.send(message).await {
            Ok(answer) => {
                tracing::info!(
                    policy_id,
                    recipient_id,
                    smtp_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "email sent"
                );
                Ok(Outcome {
                    state: OutcomeState::Sent,
                    detail: answer,
                })
            }
            Err(MailError::Permanent(reason)) => {
                tracing::warn!(policy_id, recipient_id, reason, "email rejected");
                Ok(Outcome {
                    state: OutcomeState::Failed,
                    detail: reason,
                })
            }
            Err(MailError::Transient(reason)) => Err(HandleError::Transient(reason)),
        }
    }

    /// Records the outcome, retrying in place: giving up here would let the lease expire
    /// and the message go out twice.
    pub(crate) async fn record(
        &self,
        key: &DeliveryKey,
        outcome: &Outcome,
    ) -> Result<(), HandleError> {
        let mut delay = Duration::from_millis(50);
        for _ in 0..8 {
            match self.ledger.finish(key, outcome).await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    tracing::warn!(%error, "recording the outcome failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.lease / 4);
                }
            }
        }
        Err(HandleError::transient("outcome could not be recorded"))
    }
}
