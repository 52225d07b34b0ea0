//! The delivery path: each `DeliveryRequested` is sent at most once per (policy,
//! recipient, channel) under the [`DeliveryLedger`] (a notice about a policy once per its
//! own key, see [`notice`](crate::notice)), or held for the recipient's daily digest, and
//! its outcome is reported on `delivery.status`.
//!
//! Who received a policy is recorded ([`PolicyRecipients`]) once it went out, for its
//! later revision and withdrawal notices; a policy revised since it was requested goes
//! out as its latest version. Nothing of a withdrawn policy goes out any more
//! but its withdrawal notice: a request, held digest entry or held SMS of it ends
//! CANCELLED ("policy withdrawn"), nothing sent.

use std::{future::Future, sync::Arc, time::Duration};

use zhida_bus::{HandleError, Handler, Producer, Record};
use zhida_proto::events::v1::{
    Channel, DeliveryRequested, DeliveryState, DeliveryStatusChanged, Frequency, Notice,
    PolicyRevised,
};
use zhida_store::{
    Begin, DeliveryKey, DeliveryLedger, DigestKey, DigestStore, Outcome, OutcomeState,
    PolicyRecipients, Recipient, SubjectKeys,
};

use crate::{
    channel::{Attempt, Channels},
    notice::{delivery_key, notice_of},
};

/// The detail of a delivery that was not made because its policy was withdrawn.
pub(crate) const WITHDRAWN: &str = "policy withdrawn";

/// The state a recorded outcome is reported as.
pub(crate) fn delivery_state(state: OutcomeState) -> DeliveryState {
    match state {
        OutcomeState::Sent => DeliveryState::Sent,
        OutcomeState::Failed => DeliveryState::Failed,
        OutcomeState::Undeliverable => DeliveryState::Undeliverable,
        OutcomeState::Cancelled => DeliveryState::Cancelled,
    }
}

/// Policy and recipient ids as their producers define them (up to 128 characters).
pub(crate) fn is_id(id: &str) -> bool {
    zhida_runtime::ids::is_identifier(id, 128)
}

#[derive(Clone)]
pub(crate) struct Sender {
    pub ledger: Arc<dyn DeliveryLedger>,
    pub digests: Arc<dyn DigestStore>,
    /// Notices a channel holds back for now (SMS in quiet hours), per recipient.
    pub held: Arc<dyn DigestStore>,
    /// The channels this notifier delivers.
    pub channels: Channels,
    pub producer: Producer,
    /// How long a sender may hold a delivery before another replica may retry it.
    pub lease: Duration,
    /// Recipients' data keys, which open sealed addresses at send time.
    pub keys: Arc<dyn SubjectKeys>,
    /// Who received each policy, and the withdrawn policies.
    pub recipients: Arc<dyn PolicyRecipients>,
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
        let Some(sender) = self.channels.get(channel).cloned() else {
            return Err(HandleError::permanent(format!(
                "channel {} is not delivered by this notifier",
                zhida_store::channel_segment(channel)
            )));
        };
        let notice = notice_of(&request)
            .ok_or_else(|| HandleError::permanent(format!("unknown notice {}", request.notice)))?;
        let key = delivery_key(&request, notice, channel);
        if self.cancelled(&request).await? {
            return self.cancel(&key).await;
        }
        // A notice goes out at once: it is about something the recipient already has.
        if notice == Notice::PolicyUnspecified
            && request.frequency == Frequency::DailyDigest as i32
            && sender.has_digest()
        {
            return self.hold(&self.digests, &key, &request).await;
        }
        if !request.urgent
            && let Some(until) = sender.held_until(zhida_runtime::district::unix_now())
        {
            tracing::debug!(until, "held until the channel's quiet hours end");
            return self.hold(&self.held, &key, &request).await;
        }
        let request = self.current(request).await?;
        let outcome = self
            .once(&key, || self.send_opened(&*sender, &request))
            .await?;
        self.delivered(&request, channel, &outcome).await?;
        self.report(&key, outcome).await
    }
}

/// `request` for the policy with the content of `revised` instead, when that is a later
/// version than the request's (it was requested, or held, before the revision).
pub(crate) fn revised_request(
    request: DeliveryRequested,
    revised: &PolicyRevised,
) -> DeliveryRequested {
    let Some(policy) = revised.policy.as_ref() else {
        return request;
    };
    if request.notice != Notice::PolicyUnspecified as i32
        || policy.version.max(1) <= request.version.max(1)
    {
        return request;
    }
    DeliveryRequested {
        title: policy.title.clone(),
        body: policy.body.clone(),
        department: policy.department.clone(),
        service_url: policy.service_url.clone(),
        urgent: policy.urgent,
        version: policy.version.max(1),
        ..request
    }
}

impl Sender {
    /// Makes the attempt `send` starts at most once for `key`: only the ledger lease holder
    /// sends, the outcome is recorded before anything else happens, and a delivery found
    /// done returns its recorded outcome without sending. A refusal (including a message
    /// that cannot be built) is a failed delivery; a retryable attempt releases the lease.
    pub(crate) async fn once<F>(
        &self,
        key: &DeliveryKey,
        send: impl FnOnce() -> F,
    ) -> Result<Outcome, HandleError>
    where
        F: Future<Output = Attempt>,
    {
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
        let (state, detail) = match send().await {
            Attempt::Sent { detail } => (OutcomeState::Sent, detail),
            Attempt::Refused { detail } => (OutcomeState::Failed, detail),
            Attempt::Undeliverable { detail } => (OutcomeState::Undeliverable, detail),
            Attempt::Retry { detail } => {
                if let Err(e) = self.ledger.abandon(key, &token).await {
                    tracing::warn!(error = %e, "lease not released; it expires by itself");
                }
                return Err(HandleError::Transient(detail));
            }
        };
        if state != OutcomeState::Sent {
            tracing::warn!(
                policy_id = key.policy_id,
                recipient_id = key.recipient_id,
                detail,
                outcome = ?state,
                "delivery not possible; recorded, not retried"
            );
        }
        let outcome = Outcome { state, detail };
        self.record(key, &outcome).await?;
        Ok(outcome)
    }

    /// The latest revision kept for `policy_id`, if any.
    async fn latest_revision(&self, policy_id: &str) -> Result<Option<PolicyRevised>, HandleError> {
        let latest = self
            .recipients
            .latest(policy_id)
            .await
            .map_err(HandleError::transient)?;
        Ok(latest.and_then(|(_, bytes)| prost::Message::decode(bytes.as_slice()).ok()))
    }

    /// `request` as it goes out now: a policy revised since it was requested (or held for
    /// a digest or through quiet hours) goes out as its latest version.
    pub(crate) async fn current(
        &self,
        request: DeliveryRequested,
    ) -> Result<DeliveryRequested, HandleError> {
        if request.notice != Notice::PolicyUnspecified as i32 {
            return Ok(request);
        }
        Ok(match self.latest_revision(&request.policy_id).await? {
            Some(revised) => revised_request(request, &revised),
            None => request,
        })
    }

    /// Whether `request` must not go out because its policy was withdrawn: everything of
    /// a withdrawn policy but its withdrawal notice.
    pub(crate) async fn cancelled(&self, request: &DeliveryRequested) -> Result<bool, HandleError> {
        if request.notice == Notice::Withdrawal as i32 {
            return Ok(false);
        }
        self.recipients
            .is_withdrawn(&request.policy_id)
            .await
            .map_err(HandleError::transient)
    }

    /// Ends the delivery `key` of a withdrawn policy CANCELLED, nothing sent, and reports
    /// it, under the ledger lease like a send; one already done (sent before the
    /// withdrawal) keeps and reports its outcome, one being sent right now is retried.
    pub(crate) async fn cancel(&self, key: &DeliveryKey) -> Result<(), HandleError> {
        let outcome = match self
            .ledger
            .begin(key, self.lease)
            .await
            .map_err(HandleError::transient)?
        {
            Begin::Done(outcome) => outcome,
            Begin::InFlight => {
                return Err(HandleError::transient("another sender holds this delivery"));
            }
            Begin::Acquired(_) => {
                let outcome = Outcome {
                    state: OutcomeState::Cancelled,
                    detail: WITHDRAWN.into(),
                };
                self.record(key, &outcome).await?;
                tracing::info!(
                    policy_id = key.policy_id,
                    recipient_id = key.recipient_id,
                    "not sent: the policy was withdrawn"
                );
                outcome
            }
        };
        self.report(key, outcome).await
    }

    /// After `request` went out with `outcome`: a policy that was sent records its
    /// recipient, with what a later notice needs. One withdrawn while it was being sent
    /// also gets its withdrawal notice here, since the withdrawal may have listed the
    /// recipients before this one was recorded (same event id and ledger key: once).
    pub(crate) async fn delivered(
        &self,
        request: &DeliveryRequested,
        channel: Channel,
        outcome: &Outcome,
    ) -> Result<(), HandleError> {
        if outcome.state != OutcomeState::Sent || request.notice != Notice::PolicyUnspecified as i32
        {
            return Ok(());
        }
        let recipient = Recipient {
            recipient_id: request.recipient_id.clone(),
            channel,
            sealed_address: request.sealed_address.clone(),
            display_name: request.recipient_name.clone(),
            language: request.language.clone(),
            subscription_id: request.subscription_id.clone(),
            version: request.version.max(1),
        };
        let withdrawn = self
            .recipients
            .add(&request.policy_id, &recipient)
            .await
            .map_err(HandleError::transient)?;
        if withdrawn {
            let notice = crate::policies::notice_request(
                &recipient,
                &request.policy_id,
                Notice::Withdrawal,
                crate::policies::About {
                    version: request.version.max(1),
                    title: &request.title,
                    department: &request.department,
                    service_url: "",
                    change_summary: "",
                },
            );
            crate::policies::emit_notice(&self.producer, &notice).await?;
        }
        // Likewise a revision that listed the recipients before this one was recorded, with
        // an older version than it sent: the revision's notice.
        if let Some(revised) = self.latest_revision(&request.policy_id).await?
            && let Some(policy) = revised.policy.as_ref()
            && policy.version.max(1) > recipient.version
        {
            let notice = crate::policies::notice_request(
                &recipient,
                &request.policy_id,
                Notice::Revision,
                crate::policies::About {
                    version: policy.version.max(1),
                    title: &policy.title,
                    department: &policy.department,
                    service_url: &policy.service_url,
                    change_summary: &revised.change_summary,
                },
            );
            crate::policies::emit_notice(&self.producer, &notice).await?;
        }
        Ok(())
    }

    /// A request that waits (for the daily digest, or for the end of quiet hours) in
    /// `batches`: already delivered only repeats its status; otherwise it waits in the
    /// recipient's open batch there.
    async fn hold(
        &self,
        batches: &Arc<dyn DigestStore>,
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
        batches
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
            "held"
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
            state: delivery_state(outcome.state) as i32,
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

#[cfg(test)]
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use async_trait::async_trait;
    use zhida_runtime::config::KafkaConfig;
    use zhida_store::{MemoryDigests, MemoryLedger};

    use super::*;
    use crate::channel::Channel as ChannelTrait;

    /// A channel that answers with scripted attempts and counts what it was asked to send.
    struct Scripted {
        answers: Mutex<Vec<Attempt>>,
        sends: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl ChannelTrait for Scripted {
        fn kind(&self) -> Channel {
            Channel::Inbox
        }

        async fn send(&self, _: &DeliveryRequested) -> Attempt {
            self.sends.fetch_add(1, Ordering::SeqCst);
            self.answers.lock().expect("lock").remove(0)
        }

        async fn send_digest(&self, _: &str, _: &[DeliveryRequested]) -> Attempt {
            unreachable!("no digests here")
        }
    }

    fn sender(answers: Vec<Attempt>) -> (Sender, Arc<AtomicUsize>) {
        let sends = Arc::new(AtomicUsize::new(0));
        let mut channels = Channels::default();
        channels.register(Scripted {
            answers: Mutex::new(answers),
            sends: sends.clone(),
        });
        let sender = Sender {
            ledger: Arc::new(MemoryLedger::default()),
            digests: Arc::new(MemoryDigests::default()),
            held: Arc::new(MemoryDigests::default()),
            channels,
            // Never reached: these tests do not report.
            producer: Producer::new(&KafkaConfig::default(), "/test").expect("producer"),
            lease: Duration::from_secs(30),
            keys: Arc::new(zhida_store::MemorySubjectKeys::default()),
            recipients: Arc::new(zhida_store::MemoryPolicyRecipients::default()),
        };
        (sender, sends)
    }

    fn key(policy: &str) -> DeliveryKey {
        DeliveryKey {
            policy_id: policy.into(),
            recipient_id: "c-1".into(),
            channel: Channel::Inbox,
        }
    }

    async fn attempt(sender: &Sender, key: &DeliveryKey) -> Result<Outcome, HandleError> {
        let channel = sender
            .channels
            .get(key.channel)
            .cloned()
            .expect("registered");
        let request = DeliveryRequested::default();
        sender.once(key, || channel.send(&request)).await
    }

    #[test]
    fn a_policy_held_before_its_revision_goes_out_as_the_revision_and_a_notice_never_does() {
        let held = DeliveryRequested {
            policy_id: "p-1".into(),
            recipient_id: "c-1".into(),
            title: "第一版".into(),
            body: "旧正文".into(),
            reason: "您订阅了政策标签“housing”".into(),
            version: 1,
            ..DeliveryRequested::default()
        };
        let revised = |version| PolicyRevised {
            policy: Some(zhida_proto::events::v1::PolicyPublished {
                policy_id: "p-1".into(),
                title: "第二版".into(),
                body: "新正文".into(),
                department: "区房管局".into(),
                version,
                ..Default::default()
            }),
            previous_version: 1,
            change_summary: "标准提高".into(),
            audience_changed: false,
        };
        let now = revised_request(held.clone(), &revised(2));
        assert_eq!(
            (now.title.as_str(), now.body.as_str(), now.version),
            ("第二版", "新正文", 2)
        );
        assert_eq!(now.reason, held.reason, "who it is for and why stay");
        assert_eq!(now.recipient_id, "c-1");
        let current = DeliveryRequested {
            version: 2,
            ..held.clone()
        };
        assert_eq!(revised_request(current.clone(), &revised(2)), current);
        let notice = DeliveryRequested {
            notice: Notice::Withdrawal as i32,
            ..held
        };
        assert_eq!(revised_request(notice.clone(), &revised(3)), notice);
    }

    #[tokio::test]
    async fn any_registered_channel_sends_once_and_a_redelivery_repeats_the_outcome() {
        let (sender, sends) = sender(vec![Attempt::Sent {
            detail: "ok".into(),
        }]);
        let first = attempt(&sender, &key("p-1")).await.expect("sent");
        assert_eq!(first.state, OutcomeState::Sent);
        let again = attempt(&sender, &key("p-1")).await.expect("recorded");
        assert_eq!(again, first);
        assert_eq!(sends.load(Ordering::SeqCst), 1, "sent once");
    }

    #[tokio::test]
    async fn a_retry_releases_the_delivery_and_a_refusal_is_a_recorded_failure() {
        let (sender, sends) = sender(vec![
            Attempt::Retry {
                detail: "busy".into(),
            },
            Attempt::Refused {
                detail: "no such number".into(),
            },
        ]);
        let retry = attempt(&sender, &key("p-2")).await;
        assert!(matches!(retry, Err(HandleError::Transient(_))), "{retry:?}");
        let refused = attempt(&sender, &key("p-2")).await.expect("recorded");
        assert_eq!(refused.state, OutcomeState::Failed);
        assert_eq!(refused.detail, "no such number");
        let again = attempt(&sender, &key("p-2")).await.expect("recorded");
        assert_eq!(again, refused, "a refusal is not retried");
        assert_eq!(sends.load(Ordering::SeqCst), 2);
    }
}
