//! [`Feed`] on Redis, shared by every replica: a Stream with a set of the ids appended,
//! both written by one Lua script so an append is atomic.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager, streams::StreamRangeReply};

use super::{Feed, FeedEntry, FeedReadError};
use crate::Result;

/// Appends once per id.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
              redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'payload', ARGV[2])
              return 1",
    )
});

/// [`Feed`] on a Redis Stream (`<key>`) with a set of appended ids (`<key>:ids`) and a
/// hash of entry states (`<key>:state`); the cursor is the stream entry id.
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

    async fn set_state(&self, id: &str, state: &[u8]) -> Result<()> {
        let _: i64 = redis::cmd("HSET")
            .arg(format!("{}:state", self.key))
            .arg(id)
            .arg(state)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn states(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(redis::cmd("HMGET")
            .arg(format!("{}:state", self.key))
            .arg(ids)
            .query_async(&mut self.conn.clone())
            .await?)
    }

    async fn clear(&self) -> Result<()> {
        let _: i64 = redis::cmd("DEL")
            .arg(&self.key)
            .arg(format!("{}:ids", self.key))
            .arg(format!("{}:state", self.key))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
