//! [`DeliveryLedger`] on Redis, shared by every replica: one string per delivery, updated
//! by Lua scripts so each step is atomic.

use std::{sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager};

use super::{Begin, DeliveryKey, DeliveryLedger, IN_FLIGHT, Outcome, Status, parse, render};
use crate::{Result, millis};

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
        Ok(match existing.map(|v| parse(&v)) {
            None => Begin::Acquired(token),
            Some(Status::InFlight) => Begin::InFlight,
            Some(Status::Done(outcome)) => Begin::Done(outcome),
        })
    }

    async fn finish(&self, key: &DeliveryKey, outcome: &Outcome) -> Result<()> {
        let _: i64 = FINISH
            .key(self.key(key))
            .arg(render(outcome))
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
        Ok(value.map(|v| parse(&v)))
    }
}
