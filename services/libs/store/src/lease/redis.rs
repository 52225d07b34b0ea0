//! [`WriteLeases`] on Redis, shared by every replica: `<prefix>lease:<key>` holds the
//! holder's token with the lease's expiry, `<prefix>written:<key>` the last write's
//! `partition:offset`. Every step is a Lua script, so each is atomic; the batch steps
//! (`acquire_many`, `release_many`) are one script call for all their keys.

use std::{sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager};

use super::{LAST_WRITE_TTL, Lease, LogPosition, Release, WriteLeases};
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

/// [`ACQUIRE`] for each key pair (`KEYS[2i-1]`, `KEYS[2i]`) with token `ARGV[i+1]` and ttl
/// `ARGV[1]`: per key `'-'` if held by somebody, else its last write or `''`.
static ACQUIRE_MANY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local out = {}
          for i = 1, #KEYS / 2 do
            if redis.call('SET', KEYS[2*i-1], ARGV[i+1], 'NX', 'PX', ARGV[1]) then
              out[i] = redis.call('GET', KEYS[2*i]) or ''
            else
              out[i] = '-'
            end
          end
          return out",
    )
});

/// [`RELEASE`] for each key pair with token `ARGV[2i]` and write `ARGV[2i+1]`, the last
/// write's ttl `ARGV[1]`: per key 1 if released, else 0.
static RELEASE_MANY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local out = {}
          for i = 1, #KEYS / 2 do
            if redis.call('GET', KEYS[2*i-1]) ~= ARGV[2*i] then
              out[i] = 0
            else
              if ARGV[2*i+1] ~= '' then
                redis.call('SET', KEYS[2*i], ARGV[2*i+1], 'PX', ARGV[1])
              end
              redis.call('DEL', KEYS[2*i-1])
              out[i] = 1
            end
          end
          return out",
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

    async fn acquire_many(&self, keys: &[&str], ttl: Duration) -> Result<Vec<Option<Lease>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let tokens: Vec<String> = keys
            .iter()
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let mut invocation = ACQUIRE_MANY.prepare_invoke();
        invocation.arg(millis(ttl));
        for (key, token) in keys.iter().zip(&tokens) {
            invocation.key(&self.keys(key)).arg(token);
        }
        let replies: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(tokens
            .into_iter()
            .zip(replies)
            .map(|(token, reply)| {
                (reply != "-").then(|| Lease {
                    token,
                    last_write: reply.parse().ok(),
                })
            })
            .collect())
    }

    async fn release_many(&self, releases: &[Release<'_>]) -> Result<Vec<bool>> {
        if releases.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = RELEASE_MANY.prepare_invoke();
        invocation.arg(millis(LAST_WRITE_TTL));
        for release in releases {
            invocation
                .key(&self.keys(release.key))
                .arg(release.token)
                .arg(release.written.map(|p| p.to_string()).unwrap_or_default());
        }
        let replies: Vec<i64> = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(replies.into_iter().map(|r| r == 1).collect())
    }
}
