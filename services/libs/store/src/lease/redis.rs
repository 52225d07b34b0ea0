//! [`WriteLeases`] on Redis, shared by every replica: `<prefix>lease:<key>` holds the
//! holder's token with the lease's expiry, `<prefix>written:<key>` the last write's
//! `partition:offset`. Both steps are Lua scripts, so each is atomic.

use std::{sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager};

use super::{LAST_WRITE_TTL, Lease, LogPosition, WriteLeases};
use crate::{Result, millis};

/// Takes the lease if free: `{1, last_write or ''}`, else `{0}`.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, ''} end
          return {1, redis.call('GET', KEYS[2]) or ''}",
    )
});

/// Releases the lease if the token holds it, recording the write when one is given.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
          if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
          redis.call('DEL', KEYS[1])
          return 1",
    )
});

pub struct RedisWriteLeases {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisWriteLeases {
    /// Keys are `<prefix>lease:<key>` and `<prefix>written:<key>`.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
        }
    }

    fn keys(&self, key: &str) -> [String; 2] {
        [
            format!("{}lease:{key}", self.prefix),
            format!("{}written:{key}", self.prefix),
        ]
    }
}

#[async_trait]
impl WriteLeases for RedisWriteLeases {
    async fn acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let token = uuid::Uuid::new_v4().to_string();
        let reply: (i64, Option<String>) = ACQUIRE
            .key(&self.keys(key))
            .arg(&token)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match reply {
            (1, last_write) => Some(Lease {
                token,
                // A value this module did not write reads as "no recorded write".
                last_write: last_write.and_then(|v| v.parse().ok()),
            }),
            _ => None,
        })
    }

    async fn release(&self, key: &str, token: &str, written: Option<LogPosition>) -> Result<bool> {
        let released: i64 = RELEASE
            .key(&self.keys(key))
            .arg(token)
            .arg(written.map(|p| p.to_string()).unwrap_or_default())
            .arg(millis(LAST_WRITE_TTL))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(released == 1)
    }
}
