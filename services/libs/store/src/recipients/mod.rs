//! Who received what: per policy, each (recipient, channel) the notifier sent it to, with
//! what a later notice about it needs (a revision's "政策已更新", a withdrawal's
//! "政策已撤回"), which policies were withdrawn, so nothing of theirs goes out any more,
//! and each policy's latest revision, so what is still waiting goes out as revised.
//!
//! The address is kept only sealed (as the profiler sealed it under the subject's data
//! key): deleting the profile makes it unreadable at once, and
//! [`remove_recipient`](PolicyRecipients::remove_recipient) forgets the entries too.

pub mod contract;
mod memory;
mod redis;

use async_trait::async_trait;
use zhida_proto::events::v1::Channel;

pub use self::{memory::MemoryPolicyRecipients, redis::RedisPolicyRecipients};
use crate::{Result, channel_segment, parse_channel_segment};

/// One recipient of a policy on one channel. Ids must not contain `|`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipient {
    pub recipient_id: String,
    pub channel: Channel,
    /// The contact's sealed address, as the delivery carried it (empty for the inbox).
    pub sealed_address: Vec<u8>,
    pub display_name: String,
    /// BCP 47; empty: the default.
    pub language: String,
    /// The subscription that asked for the policy; empty for the audience alone.
    pub subscription_id: String,
    /// The version of the policy they received first.
    pub version: u32,
}

impl Recipient {
    /// `recipient|channel`, the entry's name within its policy.
    pub fn member(&self) -> String {
        member(&self.recipient_id, self.channel)
    }

    /// The stored form: every field length-prefixed, so none can be read as another.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let version = self.version.to_string();
        for field in [
            self.recipient_id.as_bytes(),
            channel_segment(self.channel).as_bytes(),
            &self.sealed_address,
            self.display_name.as_bytes(),
            self.language.as_bytes(),
            self.subscription_id.as_bytes(),
            version.as_bytes(),
        ] {
            out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(field);
        }
        out
    }

    /// What [`encode`](Self::encode) wrote; `None` for anything else.
    pub(crate) fn decode(mut bytes: &[u8]) -> Option<Self> {
        let mut fields: Vec<&[u8]> = Vec::with_capacity(7);
        while !bytes.is_empty() {
            let (len, rest) = bytes.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            if rest.len() < len {
                return None;
            }
            let (field, rest) = rest.split_at(len);
            fields.push(field);
            bytes = rest;
        }
        let [
            recipient,
            channel,
            sealed,
            name,
            language,
            subscription,
            version,
        ] = fields.as_slice()
        else {
            return None;
        };
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
        Some(Self {
            recipient_id: text(recipient)?,
            channel: parse_channel_segment(&text(channel)?)?,
            sealed_address: sealed.to_vec(),
            display_name: text(name)?,
            language: text(language)?,
            subscription_id: text(subscription)?,
            version: text(version)?.parse().ok()?,
        })
    }
}

/// `recipient|channel` with the channel as [`channel_segment`] spells it.
pub(crate) fn member(recipient_id: &str, channel: Channel) -> String {
    format!("{recipient_id}|{}", channel_segment(channel))
}

#[async_trait]
pub trait PolicyRecipients: Send + Sync {
    /// Records that `recipient` received `policy_id` on its channel. Idempotent: the first
    /// record of a (recipient, channel) stays (with the version they received first).
    /// Returns whether `policy_id` is withdrawn, read in the same step: a withdrawal
    /// [`withdraw`](Self::withdraw)s before it [`list`](Self::list)s, so either its list
    /// holds this recipient or this answer is true (and the caller sends the withdrawal
    /// notice itself).
    async fn add(&self, policy_id: &str, recipient: &Recipient) -> Result<bool>;
    /// Every recipient of `policy_id`, ordered by (recipient id, channel).
    async fn list(&self, policy_id: &str) -> Result<Vec<Recipient>>;
    /// Forgets every entry of `recipient_id`, in every policy (the profile was deleted).
    async fn remove_recipient(&self, recipient_id: &str) -> Result<()>;
    /// Marks `policy_id` withdrawn, for good. Idempotent.
    async fn withdraw(&self, policy_id: &str) -> Result<()>;
    async fn is_withdrawn(&self, policy_id: &str) -> Result<bool>;
    /// Keeps `revision` (opaque: the notifier's encoded `PolicyRevised`) as the latest of
    /// `policy_id` if `version` is higher than the one kept. Idempotent.
    async fn revise(&self, policy_id: &str, version: u32, revision: &[u8]) -> Result<()>;
    /// The latest revision kept for `policy_id`: `(version, revision)`.
    async fn latest(&self, policy_id: &str) -> Result<Option<(u32, Vec<u8>)>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_as_written_and_nothing_else_reads() {
        let recipient = Recipient {
            recipient_id: "c-1".into(),
            channel: Channel::Sms,
            sealed_address: vec![0, 1, 2, 255, b'|'],
            display_name: "王芳".into(),
            language: "zh".into(),
            subscription_id: "s-1".into(),
            version: 3,
        };
        let bytes = recipient.encode();
        assert_eq!(Recipient::decode(&bytes), Some(recipient.clone()));
        assert_eq!(recipient.member(), "c-1|sms");
        for cut in 0..bytes.len() {
            assert_eq!(Recipient::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Recipient::decode(&extra), None, "one field too many");
        assert_eq!(Recipient::decode(b"\xff\xff\xff\xffx"), None);
    }
}
