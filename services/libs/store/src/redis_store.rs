//! Redis stores for deployments: every replica shares them. Multi-step updates are Lua
//! scripts, so each is atomic.

use std::{sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager, streams::StreamRangeReply};

use crate::{
    Result, millis,
    digest::{DigestKey, DigestStore},
    feed::{Feed, FeedEntry, FeedReadError},
    ledger::{self, Begin, DeliveryKey, DeliveryLedger, IN_FLIGHT, Outcome, Status},
};

/// Returns the current value, or takes the lease and returns nil.
static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local v = redis.call('GET', KEYS[1])
              if v then return v end
              redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
              return false",
    )
});

/// Records an outcome unless one is recorded already.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local v = redis.call('GET', KEYS[1])
              if v and string.sub(v, 1, string.len(ARGV[3])) ~= ARGV[3] then return 0 end
              redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
              return 1",
    )
});

/// Releases the lease only if the caller still holds it.
static ABANDON: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
              return 0",
    )
});

/// Appends once per id.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
              redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'payload', ARGV[2])
              return 1",
    )
});

/// [`DeliveryLedger`] on Redis strings: `<prefix>delivery:<policy>|<recipient>|<channel>`.
pub struct RedisLedger {
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

impl RedisLedger {
    pub fn new(conn: ConnectionManager, prefix: &str, ttl: Duration) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}delivery:"),
            ttl,
        }
    }

    fn key(&self, key: &DeliveryKey) -> String {
        format!("{}{}", self.prefix, key.encoded())
    }
}

#[async_trait]
impl DeliveryLedger for RedisLedger {
    async fn begin(&self, key: &DeliveryKey, lease: Duration) -> Result<Begin> {
        let token = uuid::Uuid::new_v4().to_string();
        let existing: Option<String> = BEGIN
            .key(self.key(key))
            .arg(format!("{IN_FLIGHT}{token}"))
            .arg(millis(lease))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match existing.map(|v| ledger::parse(&v)) {
            None => Begin::Acquired(token),
            Some(Status::InFlight) => Begin::InFlight,
            Some(Status::Done(outcome)) => Begin::Done(outcome),
        })
    }

    async fn finish(&self, key: &DeliveryKey, outcome: &Outcome) -> Result<()> {
        let _: i64 = FINISH
            .key(self.key(key))
            .arg(ledger::render(outcome))
            .arg(millis(self.ttl))
            .arg(IN_FLIGHT)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn abandon(&self, key: &DeliveryKey, token: &str) -> Result<()> {
        let _: i64 = ABANDON
            .key(self.key(key))
            .arg(format!("{IN_FLIGHT}{token}"))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn status(&self, key: &DeliveryKey) -> Result<Option<Status>> {
        let value: Option<String> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(value.map(|v| ledger::parse(&v)))
    }
}

/// [`Feed`] on a Redis Stream (`<key>`) with a set of appended ids (`<key>:ids`);
/// the cursor is the stream entry id.
pub struct RedisFeed {
    conn: ConnectionManager,
    key: String,
}

impl RedisFeed {
    pub fn new(conn: ConnectionManager, key: &str) -> Self {
        Self {
            conn,
            key: key.to_string(),
        }
    }
}

fn is_stream_id(cursor: &str) -> bool {
    cursor
        .split_once('-')
        .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok())
}

#[async_trait]
impl Feed for RedisFeed {
    async fn append(&self, id: &str, payload: &[u8]) -> Result<bool> {
        let appended: i64 = APPEND
            .key(&self.key)
            .key(format!("{}:ids", self.key))
            .arg(id)
            .arg(payload)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(appended == 1)
    }

    async fn read(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FeedEntry>, FeedReadError> {
        let start = match after {
            None => "-".to_string(),
            Some(cursor) if is_stream_id(cursor) => format!("({cursor}"),
            Some(cursor) => return Err(FeedReadError::InvalidCursor(cursor.to_string())),
        };
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(crate::StoreError::from)?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| FeedEntry {
                id: entry.get::<String>("id").unwrap_or_default(),
                payload: entry.get::<Vec<u8>>("payload").unwrap_or_default(),
                cursor: entry.id,
            })
            .collect())
    }
}

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
}
