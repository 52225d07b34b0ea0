//! [`PolicyRecipients`] on Redis, shared by every replica: a hash per policy, a set per
//! recipient naming the policies they are in (so erasure finds them), and a set of
//! withdrawn policies. Steps touching more than one key are Lua scripts.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager};

use super::{PolicyRecipients, Recipient};
use crate::Result;

/// Records an entry once; returns whether the policy is withdrawn.
/// KEYS: policy hash, recipient's set, withdrawn set. ARGV: member, entry, policy.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
              redis.call('SADD', KEYS[2], ARGV[3])
              return redis.call('SISMEMBER', KEYS[3], ARGV[3])",
    )
});

/// Forgets a recipient's entries in every policy they are in.
/// KEYS: recipient's set. ARGV: prefix of policy hashes, members of the recipient (one per
/// channel).
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"for _, policy in ipairs(redis.call('SMEMBERS', KEYS[1])) do
                for i = 2, #ARGV do
                  redis.call('HDEL', ARGV[1] .. policy, ARGV[i])
                end
              end
              redis.call('DEL', KEYS[1])
              return 1",
    )
});

/// Keeps a revision if its version is higher. KEYS: revision hash. ARGV: version, revision.
static REVISE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local kept = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
              if tonumber(ARGV[1]) <= kept then return 0 end
              redis.call('HSET', KEYS[1], 'version', ARGV[1], 'revision', ARGV[2])
              return 1",
    )
});

/// [`PolicyRecipients`] under `<prefix>recipients:<policy>` (hash `recipient|channel` →
/// entry), `<prefix>recipient-policies:<recipient>` (set of policy ids) and
/// `<prefix>withdrawn` (set of policy ids) and `<prefix>revision:<policy>` (hash: version,
/// revision). The erasure script touches keys it computes,
/// so it needs a single Redis (not a cluster).
pub struct RedisPolicyRecipients {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisPolicyRecipients {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
        }
    }

    fn policy(&self, policy_id: &str) -> String {
        format!("{}recipients:{policy_id}", self.prefix)
    }

    fn withdrawn(&self) -> String {
        format!("{}withdrawn", self.prefix)
    }

    fn of_recipient(&self, recipient_id: &str) -> String {
        format!("{}recipient-policies:{recipient_id}", self.prefix)
    }
}

#[async_trait]
impl PolicyRecipients for RedisPolicyRecipients {
    async fn add(&self, policy_id: &str, recipient: &Recipient) -> Result<bool> {
        let withdrawn: i64 = ADD
            .key(self.policy(policy_id))
            .key(self.of_recipient(&recipient.recipient_id))
            .key(self.withdrawn())
            .arg(recipient.member())
            .arg(recipient.encode())
            .arg(policy_id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(withdrawn == 1)
    }

    async fn list(&self, policy_id: &str) -> Result<Vec<Recipient>> {
        let entries: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(self.policy(policy_id))
            .query_async(&mut self.conn.clone())
            .await?;
        // Only `add` writes entries; one that does not decode (written by something else)
        // names nobody and is passed over.
        let mut recipients: Vec<(String, Recipient)> = entries
            .into_iter()
            .filter_map(|(member, bytes)| Some((member, Recipient::decode(&bytes)?)))
            .collect();
        recipients.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(recipients.into_iter().map(|(_, r)| r).collect())
    }

    async fn remove_recipient(&self, recipient_id: &str) -> Result<()> {
        use zhida_proto::events::v1::Channel;
        let members: Vec<String> = [Channel::Email, Channel::Sms, Channel::Inbox]
            .into_iter()
            .map(|channel| super::member(recipient_id, channel))
            .collect();
        let _: i64 = REMOVE
            .key(self.of_recipient(recipient_id))
            .arg(format!("{}recipients:", self.prefix))
            .arg(members)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn withdraw(&self, policy_id: &str) -> Result<()> {
        let _: i64 = redis::cmd("SADD")
            .arg(self.withdrawn())
            .arg(policy_id)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn is_withdrawn(&self, policy_id: &str) -> Result<bool> {
        Ok(redis::cmd("SISMEMBER")
            .arg(self.withdrawn())
            .arg(policy_id)
            .query_async(&mut self.conn.clone())
            .await?)
    }

    async fn revise(&self, policy_id: &str, version: u32, revision: &[u8]) -> Result<()> {
        let _: i64 = REVISE
            .key(format!("{}revision:{policy_id}", self.prefix))
            .arg(version)
            .arg(revision)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn latest(&self, policy_id: &str) -> Result<Option<(u32, Vec<u8>)>> {
        let (version, revision): (Option<u32>, Option<Vec<u8>>) = redis::cmd("HMGET")
            .arg(format!("{}revision:{policy_id}", self.prefix))
            .arg("version")
            .arg("revision")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(version.zip(revision))
    }
}
