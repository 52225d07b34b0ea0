//! The `policy.events` handler of the notifier: a policy's later life reaches whoever
//! received it ([`PolicyRecipients`]).
//!
//! - `PolicyRevised`: the revision is kept as the policy's latest (what still waits, in a
//!   digest or through quiet hours, goes out as it); then each earlier recipient of the
//!   policy (one who received a version before this one) gets a revision notice
//!   ("政策已更新：…" with what changed) on each channel they received it on; the new
//!   audience is the profiler's.
//! - `PolicyWithdrawn`: the policy is marked withdrawn first, so from then on nothing of
//!   it goes out (requests still arriving, held digest entries, SMS held through quiet
//!   hours end CANCELLED where they are: see [`sender`](crate::sender)); then each
//!   earlier recipient gets a withdrawal notice with the reason.
//! - Every other type (`PolicyPublished`, `PolicyExpired`, the publisher's own
//!   `PolicyRecorded`, …) is not the notifier's business and is passed over.
//!
//! Notices travel as `DeliveryRequested` on `delivery.requests` (keyed by recipient, with
//! the notice's ledger key as event id) and go through the same sender as any delivery,
//! so a redelivered event repeats them and the ledger sends each once.

use std::sync::Arc;

use zhida_bus::{Event as _, HandleError, Handler, Producer, Record};
use zhida_proto::events::v1::{Channel, DeliveryRequested, Notice, PolicyRevised, PolicyWithdrawn};
use zhida_store::{PolicyRecipients, Recipient};

use crate::notice::delivery_key;

pub(crate) struct PolicyNotices {
    pub recipients: Arc<dyn PolicyRecipients>,
    pub producer: Producer,
}

/// What a notice says about its policy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct About<'a> {
    pub version: u32,
    pub title: &'a str,
    pub department: &'a str,
    pub service_url: &'a str,
    /// What changed (a revision), the reason (a withdrawal).
    pub change_summary: &'a str,
}

/// The request for `notice` about `policy_id` to `recipient` on the channel they received
/// the policy on.
pub(crate) fn notice_request(
    recipient: &Recipient,
    policy_id: &str,
    notice: Notice,
    about: About<'_>,
) -> DeliveryRequested {
    let reason = match notice {
        Notice::Withdrawal => "您此前收到过此政策，现已撤回",
        _ => "您此前收到过此政策的上一版本",
    };
    DeliveryRequested {
        policy_id: policy_id.to_string(),
        recipient_id: recipient.recipient_id.clone(),
        channel: recipient.channel as i32,
        sealed_address: recipient.sealed_address.clone(),
        recipient_name: recipient.display_name.clone(),
        language: recipient.language.clone(),
        subscription_id: recipient.subscription_id.clone(),
        title: about.title.to_string(),
        department: about.department.to_string(),
        service_url: about.service_url.to_string(),
        reason: reason.into(),
        notice: notice as i32,
        version: about.version.max(1),
        change_summary: about.change_summary.to_string(),
        ..DeliveryRequested::default()
    }
}

/// Emits `request` on `delivery.requests`, its ledger key as event id.
pub(crate) async fn emit_notice(
    producer: &Producer,
    request: &DeliveryRequested,
) -> Result<(), HandleError> {
    let channel = Channel::try_from(request.channel).unwrap_or_default();
    let notice = Notice::try_from(request.notice).unwrap_or_default();
    let id = delivery_key(request, notice, channel).encoded();
    producer
        .emit_with_id(&request.recipient_id, &id, request)
        .await
        .map_err(HandleError::transient)?;
    Ok(())
}

/// The recipients a revision to `version` notifies: those who received an earlier one.
pub(crate) fn earlier(recipients: Vec<Recipient>, version: u32) -> Vec<Recipient> {
    recipients
        .into_iter()
        .filter(|r| r.version.max(1) < version)
        .collect()
}

#[async_trait::async_trait]
impl Handler for PolicyNotices {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let ty = record.meta.ty.as_str();
        if ty == PolicyRevised::TYPE {
            let revised: PolicyRevised = record.decode()?;
            self.revised(&revised).await
        } else if ty == PolicyWithdrawn::TYPE {
            let withdrawn: PolicyWithdrawn = record.decode()?;
            self.withdrawn(&withdrawn).await
        } else {
            tracing::debug!(ty, "not the notifier's event; passed over");
            Ok(())
        }
    }
}

impl PolicyNotices {
    async fn revised(&self, revised: &PolicyRevised) -> Result<(), HandleError> {
        let Some(policy) = revised.policy.as_ref().filter(|p| !p.policy_id.is_empty()) else {
            return Err(HandleError::permanent("PolicyRevised without its policy"));
        };
        let version = policy.version.max(1);
        if version < 2 {
            return Err(HandleError::permanent(format!(
                "PolicyRevised of {} with version {version}: a revision is version 2 or later",
                policy.policy_id
            )));
        }
        // First: from here on what still waits goes out as this version, and a send that
        // races this listing sends its own notice (see `Sender::delivered`).
        self.recipients
            .revise(
                &policy.policy_id,
                version,
                &prost::Message::encode_to_vec(revised),
            )
            .await
            .map_err(HandleError::transient)?;
        let recipients = self
            .recipients
            .list(&policy.policy_id)
            .await
            .map_err(HandleError::transient)?;
        let earlier = earlier(recipients, version);
        let about = About {
            version,
            title: &policy.title,
            department: &policy.department,
            service_url: &policy.service_url,
            change_summary: &revised.change_summary,
        };
        for recipient in &earlier {
            let request = notice_request(recipient, &policy.policy_id, Notice::Revision, about);
            emit_notice(&self.producer, &request).await?;
        }
        tracing::info!(
            policy_id = policy.policy_id,
            version,
            notices = earlier.len(),
            "revision notices requested"
        );
        Ok(())
    }

    async fn withdrawn(&self, withdrawn: &PolicyWithdrawn) -> Result<(), HandleError> {
        if withdrawn.policy_id.is_empty() {
            return Err(HandleError::permanent(
                "PolicyWithdrawn without a policy id",
            ));
        }
        // First: from here on nothing of it is sent (see `Sender::delivered` for a send
        // in flight right now).
        self.recipients
            .withdraw(&withdrawn.policy_id)
            .await
            .map_err(HandleError::transient)?;
        let recipients = self
            .recipients
            .list(&withdrawn.policy_id)
            .await
            .map_err(HandleError::transient)?;
        let about = About {
            version: withdrawn.version.max(1),
            title: &withdrawn.title,
            department: &withdrawn.department,
            service_url: "",
            change_summary: &withdrawn.reason,
        };
        for recipient in &recipients {
            let request =
                notice_request(recipient, &withdrawn.policy_id, Notice::Withdrawal, about);
            emit_notice(&self.producer, &request).await?;
        }
        tracing::info!(
            policy_id = withdrawn.policy_id,
            notices = recipients.len(),
            "policy withdrawn; withdrawal notices requested"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use zhida_bus::Topic;
    use zhida_proto::events::v1::{PolicyExpired, PolicyPublished, PolicyRecorded};
    use zhida_runtime::config::KafkaConfig;
    use zhida_store::MemoryPolicyRecipients;

    use super::*;

    fn recipient(id: &str, channel: Channel, version: u32) -> Recipient {
        Recipient {
            recipient_id: id.into(),
            channel,
            sealed_address: vec![1, 2, 3],
            display_name: "王芳".into(),
            language: "zh".into(),
            subscription_id: "s-1".into(),
            version,
        }
    }

    fn record(ty: &str, payload: Vec<u8>) -> Record {
        Record::typed(Topic::PolicyEvents, ty, "p-1", payload)
    }

    fn notices(store: Arc<MemoryPolicyRecipients>) -> PolicyNotices {
        PolicyNotices {
            recipients: store,
            // Never reached by these tests: nothing is emitted.
            producer: Producer::new(&KafkaConfig::default(), "/test").expect("producer"),
        }
    }

    #[test]
    fn a_revision_notifies_only_those_who_received_an_earlier_version() {
        let all = vec![
            recipient("c-1", Channel::Email, 1),
            recipient("c-2", Channel::Sms, 2),
            recipient("c-3", Channel::Inbox, 0),
        ];
        let ids: Vec<String> = earlier(all, 2)
            .into_iter()
            .map(|r| r.recipient_id)
            .collect();
        assert_eq!(ids, ["c-1", "c-3"], "c-2 received version 2 itself");
    }

    #[test]
    fn a_notice_request_carries_the_recipient_and_what_changed() {
        let request = notice_request(
            &recipient("c-1", Channel::Sms, 1),
            "p-1",
            Notice::Revision,
            About {
                version: 2,
                title: "就业补贴",
                department: "区人社局",
                service_url: "https://example.cn/a",
                change_summary: "补贴标准提高",
            },
        );
        assert_eq!(request.notice, Notice::Revision as i32);
        assert_eq!(request.channel, Channel::Sms as i32);
        assert_eq!(request.sealed_address, vec![1, 2, 3]);
        assert_eq!(request.version, 2);
        assert_eq!(request.change_summary, "补贴标准提高");
        assert_eq!(
            delivery_key(&request, Notice::Revision, Channel::Sms).encoded(),
            "p-1#rev2|c-1|sms"
        );
    }

    #[tokio::test]
    async fn other_types_are_passed_over_and_a_withdrawal_marks_the_policy_first() {
        let store = Arc::new(MemoryPolicyRecipients::default());
        let handler = notices(store.clone());
        for (ty, payload) in [
            (
                PolicyPublished::TYPE,
                prost::Message::encode_to_vec(&PolicyPublished::default()),
            ),
            (
                PolicyExpired::TYPE,
                prost::Message::encode_to_vec(&PolicyExpired::default()),
            ),
            (
                PolicyRecorded::TYPE,
                prost::Message::encode_to_vec(&PolicyRecorded::default()),
            ),
            ("zhida.events.v1.SomethingNew", b"\xff".to_vec()),
        ] {
            handler
                .handle(&record(ty, payload))
                .await
                .unwrap_or_else(|e| panic!("{ty} must be passed over, not {e:?}"));
        }
        // Nobody received it: marked withdrawn, no notice to emit.
        let withdrawn = PolicyWithdrawn {
            policy_id: "p-1".into(),
            version: 1,
            reason: "上位政策废止".into(),
            ..PolicyWithdrawn::default()
        };
        handler
            .handle(&record(
                PolicyWithdrawn::TYPE,
                prost::Message::encode_to_vec(&withdrawn),
            ))
            .await
            .expect("handled");
        assert!(store.is_withdrawn("p-1").await.expect("read"));
        assert!(!store.is_withdrawn("p-2").await.expect("read"));
        // A revision of version 1 is malformed: dead-lettered, not retried.
        let bad = PolicyRevised {
            policy: Some(PolicyPublished {
                policy_id: "p-1".into(),
                version: 1,
                ..PolicyPublished::default()
            }),
            ..PolicyRevised::default()
        };
        assert!(matches!(
            handler
                .handle(&record(
                    PolicyRevised::TYPE,
                    prost::Message::encode_to_vec(&bad)
                ))
                .await,
            Err(HandleError::Permanent(_))
        ));
    }
}
