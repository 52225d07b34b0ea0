//! [`DigestStore`] on Redis, shared by every replica: a hash per open and per closed
//! digest, and a set naming each kind. Every step that touches more than one key is a Lua
//! script, so it is atomic.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager};

use super::{DigestKey, DigestStore};
use crate::Result;

/// Adds to the open digest unless the closed one holds the policy.
/// KEYS: open hash, closed hash, open set. ARGV: policy id, item, member.
static DIGEST_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
              redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
              redis.call('SADD', KEYS[3], ARGV[3])
              return 1",
    )
});

/// Closes every open digest whose recipient has no closed one; returns the closed members.
/// KEYS: open set, closed set. ARGV: key prefix of the open hashes, of the closed hashes.
static DIGEST_CLOSE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
                local open = ARGV[1] .. member
                local closed = ARGV[2] .. member
                if redis.call('EXISTS', closed) == 0 then
                    if redis.call('EXISTS', open) == 1 then
                        redis.call('RENAME', open, closed)
                        redis.call('SADD', KEYS[2], member)
                    end
                    redis.call('SREM', KEYS[1], member)
                end
              end
              return redis.call('SMEMBERS', KEYS[2])",
    )
});

/// Removes a closed digest if it holds exactly the given policy ids.
/// KEYS: closed hash, closed set. ARGV: member, policy ids….
static DIGEST_COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HLEN', KEYS[1]) ~= #ARGV - 1 then return 0 end
              for i = 2, #ARGV do
                if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then return 0 end
              end
              redis.call('DEL', KEYS[1])
              redis.call('SREM', KEYS[2], ARGV[1])
              return 1",
    )
});

/// KEYS: open hash, closed hash, open set, closed set. ARGV: member.
static DIGEST_REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('DEL', KEYS[1], KEYS[2])
              redis.call('SREM', KEYS[3], ARGV[1])
              redis.call('SREM', KEYS[4], ARGV[1])
              return 1",
    )
});

/// [`DigestStore`] on Redis hashes: `<prefix>digest:open:<recipient>|<channel>` and
/// `<prefix>digest:closed:…` (policy id → item), with the sets `<prefix>digest:open` and
/// `<prefix>digest:closed` naming them. The close script touches keys it computes, so it
/// needs a single Redis (not a cluster).
pub struct RedisDigests {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisDigests {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}digest:"),
        }
    }
}

#[async_trait]
impl DigestStore for RedisDigests {
    async fn add(&self, key: &DigestKey, policy_id: &str, item: &[u8]) -> Result<()> {
        let member = key.encoded();
        let _: i64 = DIGEST_ADD
            .key(format!("{}open:{member}", self.prefix))
            .key(format!("{}closed:{member}", self.prefix))
            .key(format!("{}open", self.prefix))
            .arg(policy_id)
            .arg(item)
            .arg(&member)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn close(&self) -> Result<Vec<DigestKey>> {
        let members: Vec<String> = DIGEST_CLOSE
            .key(format!("{}open", self.prefix))
            .key(format!("{}closed", self.prefix))
            .arg(format!("{}open:", self.prefix))
            .arg(format!("{}closed:", self.prefix))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let mut keys: Vec<DigestKey> = members
            .iter()
            .filter_map(|m| DigestKey::decode(m))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn items(&self, key: &DigestKey) -> Result<Vec<(String, Vec<u8>)>> {
        let mut items: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(format!("{}closed:{}", self.prefix, key.encoded()))
            .query_async(&mut self.conn.clone())
            .await?;
        items.sort();
        Ok(items)
    }

    async fn complete(&self, key: &DigestKey, policy_ids: &[String]) -> Result<()> {
        let member = key.encoded();
        let _: i64 = DIGEST_COMPLETE
            .key(format!("{}closed:{member}", self.prefix))
            .key(format!("{}closed", self.prefix))
            .arg(&member)
            .arg(policy_ids)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn remove(&self, key: &DigestKey) -> Result<()> {
        let member = key.encoded();
        let _: i64 = DIGEST_REMOVE
            .key(format!("{}open:{member}", self.prefix))
            .key(format!("{}closed:{member}", self.prefix))
            .key(format!("{}open", self.prefix))
            .key(format!("{}closed", self.prefix))
            .arg(&member)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
