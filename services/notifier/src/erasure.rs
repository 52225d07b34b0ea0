//! Deleting a profile deletes what the notifier keeps of that person: the `profiles`
//! tombstone of a subject removes its inbox, its waiting digests, its SMS held through
//! quiet hours (whose requests hold the address) and the record of which policies it
//! received (with the sealed addresses their notices would go to). Upserts are not the notifier's business and are passed over.

use std::sync::Arc;

use zhida_bus::{HandleError, Handler, Record};
use zhida_proto::events::v1::Channel;
use zhida_store::{DigestKey, DigestStore, Inbox, PolicyRecipients};

pub(crate) struct Erasure {
    pub inbox: Arc<dyn Inbox>,
    /// The daily digests and the held notices: every batch of waiting requests.
    pub batches: Vec<Arc<dyn DigestStore>>,
    /// Who received which policy.
    pub recipients: Arc<dyn PolicyRecipients>,
}

/// Every channel a digest can be kept for.
const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Inbox];

#[async_trait::async_trait]
impl Handler for Erasure {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        if record.payload.is_some() {
            return Ok(());
        }
        let Some(subject) = record.key_str() else {
            return Err(HandleError::permanent(
                "profiles tombstone without a UTF-8 key",
            ));
        };
        self.inbox
            .remove_recipient(subject)
            .await
            .map_err(HandleError::transient)?;
        for batches in &self.batches {
            for channel in CHANNELS {
                let key = DigestKey {
                    recipient_id: subject.to_string(),
                    channel,
                };
                batches.remove(&key).await.map_err(HandleError::transient)?;
            }
        }
        self.recipients
            .remove_recipient(subject)
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(
            subject,
            "deleted profile's inbox, digests, held notices and recipient records removed"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use zhida_bus::EventMeta;
    use zhida_store::{MemoryDigests, MemoryInbox, MemoryPolicyRecipients, Recipient};

    use super::*;

    fn tombstone(key: &str) -> Record {
        Record {
            topic: "profiles".into(),
            partition: 0,
            offset: 7,
            key: Some(key.as_bytes().to_vec()),
            payload: None,
            meta: EventMeta::default(),
        }
    }

    #[tokio::test]
    async fn a_profile_tombstone_removes_its_inbox_and_waiting_digests_and_nothing_else() {
        let (inbox, digests, held, recipients) = (
            Arc::new(MemoryInbox::default()),
            Arc::new(MemoryDigests::default()),
            Arc::new(MemoryDigests::default()),
            Arc::new(MemoryPolicyRecipients::default()),
        );
        for subject in ["c-gone", "c-stays"] {
            let recipient = Recipient {
                recipient_id: subject.into(),
                channel: Channel::Sms,
                sealed_address: vec![1, 2, 3],
                ..Recipient::default()
            };
            recipients.add("p-0", &recipient).await.expect("add");
            inbox.add(subject, "p-1", b"item", 10).await.expect("add");
            let key = DigestKey {
                recipient_id: subject.into(),
                channel: Channel::Email,
            };
            digests.add(&key, "p-2", b"request").await.expect("add");
            let key = DigestKey {
                recipient_id: subject.into(),
                channel: Channel::Sms,
            };
            held.add(&key, "p-3", b"request").await.expect("add");
        }
        let erasure = Erasure {
            inbox: inbox.clone(),
            batches: vec![digests.clone(), held.clone()],
            recipients: recipients.clone(),
        };
        erasure.handle(&tombstone("c-gone")).await.expect("handled");
        let left: Vec<String> = recipients
            .list("p-0")
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.recipient_id)
            .collect();
        assert_eq!(
            left,
            ["c-stays"],
            "only the deleted subject's record is gone"
        );

        let page = |subject| {
            let inbox = inbox.clone();
            async move {
                inbox
                    .list(subject, None, 10)
                    .await
                    .expect("list")
                    .items
                    .len()
            }
        };
        assert_eq!(page("c-gone").await, 0);
        assert_eq!(page("c-stays").await, 1);
        for (batches, what) in [(digests, "digest"), (held, "held SMS")] {
            let left: Vec<String> = batches
                .close()
                .await
                .expect("close")
                .into_iter()
                .map(|k| k.recipient_id)
                .collect();
            assert_eq!(
                left,
                ["c-stays"],
                "only the deleted subject's {what} is gone"
            );
        }
    }
}
