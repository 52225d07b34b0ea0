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
//!
//! A forwarded request (`forward` set: an association or park forwarded the policy to its
//! member, "政府+") takes the same path under the same key, so it is deduplicated against
//! every earlier delivery of the policy to the recipient on the channel (a direct push,
//! another forward): when that one is done the forward sends nothing and ends
//! ALREADY_RECEIVED. The forward's own outcome is recorded as well, under its own ledger
//! key ([`forward_key`]), so a redelivered forward repeats what became of it (SENT, or
//! ALREADY_RECEIVED) rather than mistaking its own send for an earlier one. Every status of
//! a forwarded request carries its `forward`.

use std::{future::Future, sync::Arc, time::Duration};

use zhida_bus::{HandleError, Handler, Producer, Record};
use zhida_proto::events::v1::{
    Channel, DeliveryRequested, DeliveryState, DeliveryStatusChanged, Frequency, Notice,
    PolicyRevised, RelayForward,
};
use zhida_store::{
    Begin, DeliveryKey, DeliveryLedger, DigestKey, DigestStore, Outcome, OutcomeState,
    PolicyRecipients, Recipient, SubjectKeys,
};

use crate::{
    channel::{Attempt, Channel as ChannelSender, Channels},
    notice::{delivery_key, notice_of},
};

/// The detail of a delivery that was not made because its policy was withdrawn.
pub(crate) const WITHDRAWN: &str = "policy withdrawn";

/// The detail of a forward not sent because the recipient already had the policy there.
pub(crate) const ALREADY_RECEIVED: &str = "already received";

/// The state a recorded outcome is reported as.
pub(crate) fn delivery_state(state: OutcomeState) -> DeliveryState {
    match state {
        OutcomeState::Sent => DeliveryState::Sent,
        OutcomeState::Failed => DeliveryState::Failed,
        OutcomeState::Undeliverable => DeliveryState::Undeliverable,
        OutcomeState::Cancelled => DeliveryState::Cancelled,
        OutcomeState::AlreadyReceived => DeliveryState::AlreadyReceived,
    }
}

/// The `delivery.status` event reporting `outcome` of `key`, and its id: the outcome's,
/// and the forward's when the delivery was forwarded (each forward's status is its own).
pub(crate) fn status_event(
    key: &DeliveryKey,
    outcome: Outcome,
    forward: Option<&RelayForward>,
) -> (String, DeliveryStatusChanged) {
    let status = DeliveryStatusChanged {
        policy_id: key.policy_id.clone(),
        recipient_id: key.recipient_id.clone(),
        channel: key.channel as i32,
        state: delivery_state(outcome.state) as i32,
        detail: outcome.detail,
        at: None,
        forward: forward.cloned(),
    };
    let id = match forward {
        None => format!("{}|{}", key.encoded(), status.state),
        Some(f) => format!("{}|{}|{}", key.encoded(), status.state, f.forward_id),
    };
    (id, status)
}

/// The ledger key of `forward`'s own outcome for the delivery `key`: `<key's policy
/// id>#forward:<forward id>`, never a policy's or a notice's (`#forward:` is neither).
pub(crate) fn forward_key(key: &DeliveryKey, forward: &RelayForward) -> DeliveryKey {
    DeliveryKey {
        policy_id: format!("{}#forward:{}", key.policy_id, forward.forward_id),
        ..key.clone()
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
        if let Some(forward) = &request.forward
            && !is_id(&forward.forward_id)
        {
            return Err(HandleError::permanent(
                "forward_id must be 1–128 of A-Z a-z 0-9 _ . : -",
            ));
        }
        let key = delivery_key(&request, notice, channel);
        let forward = request.forward.as_ref();
        if self.cancelled(&request).await? {
            return self.cancel(&key, forward).await;
        }
        // A forward the recipient already had (or this one, redelivered) ends here, before
        // it could wait in a batch.
        if let Some(forward) = forward
            && let Some(outcome) = self
                .forward_settled(&key, &forward_key(&key, forward))
                .await?
        {
            return self.report(&key, outcome, Some(forward)).await;
        }
        // A notice goes out at once: it is about something the recipient already has; so
        // does a forward (a digest is one message under its own ledger entry).
        if notice == Notice::PolicyUnspecified
            && forward.is_none()
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
        self.send(&key, &*sender, request).await
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
        match self.begin(key).await? {
            Ok(outcome) => Ok(outcome),
            Err(token) => self.attempt(key, &token, None, send).await,
        }
    }

    /// Takes the lease of `key`: `Err(token)` when this sender holds it now, `Ok(outcome)`
    /// when the delivery is done; retried later while another sender holds it.
    async fn begin(&self, key: &DeliveryKey) -> Result<Result<Outcome, String>, HandleError> {
        match self
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
                Ok(Ok(outcome))
            }
            Begin::InFlight => Err(HandleError::transient("another sender holds this delivery")),
            Begin::Acquired(token) => Ok(Err(token)),
        }
    }

    /// Sends under the lease `token` of `key` and records the outcome: first under `own`
    /// (a forward's own key), when given, then under `key`. In that order, a crash between
    /// the two leaves the forward knowing it sent, and [`forward_settled`](Self::forward_settled)
    /// finishes `key` on the redelivery.
    async fn attempt<F>(
        &self,
        key: &DeliveryKey,
        token: &str,
        own: Option<&DeliveryKey>,
        send: impl FnOnce() -> F,
    ) -> Result<Outcome, HandleError>
    where
        F: Future<Output = Attempt>,
    {
        let (state, detail) = match send().await {
            Attempt::Sent { detail } => (OutcomeState::Sent, detail),
            Attempt::Refused { detail } => (OutcomeState::Failed, detail),
            Attempt::Undeliverable { detail } => (OutcomeState::Undeliverable, detail),
            Attempt::Retry { detail } => {
                if let Err(e) = self.ledger.abandon(key, token).await {
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
        if let Some(own) = own {
            self.record(own, &outcome).await?;
        }
        self.record(key, &outcome).await?;
        Ok(outcome)
    }

    /// Sends `request` (as its latest revision) on `channel` at most once under `key`,
    /// records its recipient and reports the outcome; a forwarded request only when its
    /// recipient has not had the policy there yet (see the module's documentation).
    pub(crate) async fn send(
        &self,
        key: &DeliveryKey,
        channel: &dyn ChannelSender,
        request: DeliveryRequested,
    ) -> Result<(), HandleError> {
        let request = self.current(request).await?;
        let outcome = self.send_once(key, channel, &request).await?;
        self.delivered(&request, key.channel, &outcome).await?;
        self.report(key, outcome, request.forward.as_ref()).await
    }

    /// The outcome of `request` under `key`: sent now at most once, or what it came to
    /// before; a forward's is ALREADY_RECEIVED when the delivery was made before it.
    async fn send_once(
        &self,
        key: &DeliveryKey,
        channel: &dyn ChannelSender,
        request: &DeliveryRequested,
    ) -> Result<Outcome, HandleError> {
        let send = || self.send_opened(channel, request);
        let Some(forward) = &request.forward else {
            return self.once(key, send).await;
        };
        let own = forward_key(key, forward);
        if let Some(outcome) = self.forward_settled(key, &own).await? {
            return Ok(outcome);
        }
        match self.begin(key).await? {
            Ok(earlier) => self.settle_forward(&own, earlier).await,
            Err(token) => self.attempt(key, &token, Some(&own), send).await,
        }
    }

    /// What became of a forward's delivery `key` without sending, if anything did: its own
    /// recorded outcome (`own`: a redelivered forward), or the delivery's when that is done
    /// already (directly, or by another forward); `None` while it is still to be made.
    pub(crate) async fn forward_settled(
        &self,
        key: &DeliveryKey,
        own: &DeliveryKey,
    ) -> Result<Option<Outcome>, HandleError> {
        let status = |key| async move {
            self.ledger
                .status(key)
                .await
                .map_err(HandleError::transient)
        };
        if let Some(zhida_store::Status::Done(outcome)) = status(own).await? {
            if outcome.state != OutcomeState::AlreadyReceived {
                // This forward made the delivery: `key` may have missed its record in a
                // crash (first record wins: a no-op otherwise).
                self.record(key, &outcome).await?;
            }
            return Ok(Some(outcome));
        }
        match status(key).await? {
            Some(zhida_store::Status::Done(earlier)) => {
                Ok(Some(self.settle_forward(own, earlier).await?))
            }
            _ => Ok(None),
        }
    }

    /// Records under `own` what a forward's delivery comes to when the delivery was done
    /// before it with `earlier`: ALREADY_RECEIVED when that was sent, the same outcome
    /// otherwise (a failure, a withdrawal). The first record wins, and is returned.
    async fn settle_forward(
        &self,
        own: &DeliveryKey,
        earlier: Outcome,
    ) -> Result<Outcome, HandleError> {
        let outcome = if earlier.state == OutcomeState::Sent {
            Outcome {
                state: OutcomeState::AlreadyReceived,
                detail: ALREADY_RECEIVED.into(),
            }
        } else {
            earlier
        };
        self.record(own, &outcome).await?;
        tracing::info!(
            policy_id = own.policy_id,
            recipient_id = own.recipient_id,
            outcome = ?outcome.state,
            "forward not sent: the recipient's delivery was made before it"
        );
        match self
            .ledger
            .status(own)
            .await
            .map_err(HandleError::transient)?
        {
            Some(zhida_store::Status::Done(recorded)) => Ok(recorded),
            _ => Ok(outcome),
        }
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
    pub(crate) async fn cancel(
        &self,
        key: &DeliveryKey,
        forward: Option<&RelayForward>,
    ) -> Result<(), HandleError> {
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
        self.report(key, outcome, forward).await
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
            return self.report(key, outcome, request.forward.as_ref()).await;
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

    /// Emits the outcome on `delivery.status` (idempotent: the event id is the outcome's,
    /// and the forward's when the delivery was forwarded).
    pub(crate) async fn report(
        &self,
        key: &DeliveryKey,
        outcome: Outcome,
        forward: Option<&RelayForward>,
    ) -> Result<(), HandleError> {
        let (id, status) = status_event(key, outcome, forward);
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

    fn forwarded(policy: &str, forward_id: &str) -> DeliveryRequested {
        DeliveryRequested {
            policy_id: policy.into(),
            recipient_id: "c-1".into(),
            channel: Channel::Inbox as i32,
            reason: "经 杨浦区软件行业协会 转发".into(),
            forward: Some(RelayForward {
                forward_id: forward_id.into(),
                subscriber_id: "assoc-soft".into(),
                subscriber_name: "杨浦区软件行业协会".into(),
                note: String::new(),
            }),
            ..DeliveryRequested::default()
        }
    }

    async fn forward(sender: &Sender, request: &DeliveryRequested) -> Outcome {
        let channel = sender
            .channels
            .get(Channel::Inbox)
            .cloned()
            .expect("registered");
        sender
            .send_once(&key(&request.policy_id), &*channel, request)
            .await
            .expect("settled")
    }

    #[tokio::test]
    async fn a_forward_of_a_policy_already_received_sends_nothing_and_says_so() {
        let (sender, sends) = sender(vec![Attempt::Sent {
            detail: "ok".into(),
        }]);
        // Received directly first.
        attempt(&sender, &key("p-1")).await.expect("sent");
        let f1 = forwarded("p-1", "f-1");
        let outcome = forward(&sender, &f1).await;
        assert_eq!(outcome.state, OutcomeState::AlreadyReceived);
        assert_eq!(sends.load(Ordering::SeqCst), 1, "nothing more sent");
        // Redelivered: the same, still nothing sent; another forward: the same.
        assert_eq!(forward(&sender, &f1).await, outcome);
        assert_eq!(forward(&sender, &forwarded("p-1", "f-2")).await, outcome);
        assert_eq!(sends.load(Ordering::SeqCst), 1);
        let (id, status) = status_event(&key("p-1"), outcome, f1.forward.as_ref());
        assert_eq!(status.state, DeliveryState::AlreadyReceived as i32);
        assert_eq!(status.forward, f1.forward);
        assert_eq!(
            id, "p-1|c-1|inbox|7|f-1",
            "each forward's status is its own"
        );
        // The policy's own delivery keeps its outcome.
        assert_eq!(
            sender.ledger.status(&key("p-1")).await.expect("status"),
            Some(zhida_store::Status::Done(Outcome {
                state: OutcomeState::Sent,
                detail: "ok".into()
            }))
        );
    }

    #[tokio::test]
    async fn a_forward_sends_once_then_direct_requests_and_other_forwards_are_duplicates() {
        let (sender, sends) = sender(vec![Attempt::Sent {
            detail: "ok".into(),
        }]);
        let f1 = forwarded("p-2", "f-1");
        let sent = forward(&sender, &f1).await;
        assert_eq!(sent.state, OutcomeState::Sent);
        let (id, status) = status_event(&key("p-2"), sent.clone(), f1.forward.as_ref());
        assert_eq!(status.state, DeliveryState::Sent as i32);
        assert_eq!(status.forward, f1.forward, "the status names the forward");
        assert_eq!(id, "p-2|c-1|inbox|1|f-1");
        // Redelivered: its own outcome again (not "already received"), nothing sent.
        assert_eq!(forward(&sender, &f1).await, sent);
        // Another forward: already received; a direct request: the recorded send.
        assert_eq!(
            forward(&sender, &forwarded("p-2", "f-2")).await.state,
            OutcomeState::AlreadyReceived
        );
        assert_eq!(attempt(&sender, &key("p-2")).await.expect("recorded"), sent);
        assert_eq!(sends.load(Ordering::SeqCst), 1, "sent once");
        let (id, status) = status_event(&key("p-2"), sent, None);
        assert_eq!((id.as_str(), status.forward), ("p-2|c-1|inbox|1", None));
    }

    #[tokio::test]
    async fn a_forward_whose_send_was_recorded_only_as_its_own_finishes_the_delivery() {
        let (sender, sends) = sender(vec![]);
        let f1 = forwarded("p-3", "f-1");
        let sent = Outcome {
            state: OutcomeState::Sent,
            detail: "ok".into(),
        };
        // A crash between the two records of a forward's send.
        sender
            .ledger
            .finish(
                &forward_key(&key("p-3"), f1.forward.as_ref().expect("set")),
                &sent,
            )
            .await
            .expect("recorded");
        assert_eq!(forward(&sender, &f1).await, sent, "its own outcome");
        assert_eq!(
            sender.ledger.status(&key("p-3")).await.expect("status"),
            Some(zhida_store::Status::Done(sent)),
            "and a direct request now finds it done"
        );
        assert_eq!(sends.load(Ordering::SeqCst), 0);
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
