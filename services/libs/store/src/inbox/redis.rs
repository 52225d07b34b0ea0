//! [`Inbox`] on Redis, shared by every replica: a Stream per recipient with a set of its
//! item ids and a set of the ids read. Every step that reads or writes more than one of
//! them is a Lua script, so it is atomic.
//!
//! [`wait`](Inbox::wait) blocks in `XREAD BLOCK`, which holds its connection until it
//! returns, so it never runs on the shared [`ConnectionManager`] (it would stall every other
//! store behind it): each wait takes a connection of its own from a small pool of idle ones
//! (opening one when the pool is empty), and returns it when the read answered. One waiting
//! stream therefore holds one Redis connection; `XREAD` only wakes the wait, and the items
//! are read with their read marks by the same script as [`list`](Inbox::list). A wait
//! dropped while blocked (its client went away) drops its connection with it.

use std::{
    sync::{LazyLock, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use redis::{
    Client, Script,
    aio::{ConnectionManager, MultiplexedConnection},
};

use super::{Inbox, InboxItem, InboxPage, InboxReadError, MarkRead, WAIT_BATCH};
use crate::{Result, StoreError, millis};

/// Adds an item unless its id is there, trimming the oldest (with their ids and read marks)
/// to keep at most the bound. KEYS: stream, ids, read. ARGV: item id, payload, bound.
/// Entries hold their fields in the order `XADD` wrote them: `id`, `payload`.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
          local excess = redis.call('XLEN', KEYS[1]) + 1 - tonumber(ARGV[3])
          if excess > 0 then
            for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do
              redis.call('SREM', KEYS[2], entry[2][2])
              redis.call('SREM', KEYS[3], entry[2][2])
            end
          end
          redis.call('XADD', KEYS[1], 'MAXLEN', '=', ARGV[3], '*', 'id', ARGV[1], 'payload', ARGV[2])
          redis.call('SADD', KEYS[2], ARGV[1])
          return 1",
    )
});

/// A range of items with their read marks, the newest item's cursor ('' when empty) and
/// the unread count, as one snapshot. KEYS: stream, read.
/// ARGV: 'XRANGE' or 'XREVRANGE', its two bounds, count.
static RANGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local items = {}
          for i, entry in ipairs(redis.call(ARGV[1], KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])) do
            local id = entry[2][2]
            items[i] = {entry[1], id, entry[2][4], redis.call('SISMEMBER', KEYS[2], id)}
          end
          local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
          return {newest and newest[1] or '', redis.call('XLEN', KEYS[1]) - redis.call('SCARD', KEYS[2]), items}",
    )
});

/// Marks an item read: 0 no such item, 1 read already, 2 marked now. KEYS: ids, read.
static MARK_READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
          return 1 + redis.call('SADD', KEYS[2], ARGV[1])",
    )
});

/// Idle connections kept for waits; more concurrent waits open (and then close) more.
const IDLE_WAIT_CONNECTIONS: usize = 32;

/// How much longer than its `BLOCK` a wait's connection gives Redis to answer.
const WAIT_RESPONSE_MARGIN: Duration = Duration::from_secs(2);

/// `(newest cursor or '', unread, [(cursor, id, payload, read 0/1)])`, as [`RANGE`] answers.
type RangeReply = (String, i64, Vec<(String, String, Vec<u8>, i64)>);

/// [`Inbox`] on Redis: `<prefix>inbox:<recipient>` is a Stream (fields `id`, `payload`)
/// whose entry id is the cursor (its milliseconds are the item's `added_at_ms`, Redis's
/// clock); `<prefix>inbox-ids:<recipient>` and `<prefix>inbox-read:<recipient>` are sets of
/// the item ids present and read. The three kinds of key never collide, whatever the
/// recipient id holds. The scripts take their keys as arguments, but all three of one
/// recipient must be in one slot: a single Redis (not a cluster), like the digests.
pub struct RedisInbox {
    conn: ConnectionManager,
    client: Client,
    idle: Mutex<Vec<MultiplexedConnection>>,
    prefix: String,
}

impl RedisInbox {
    /// `conn` serves everything but waits, which open their own connections with `client`
    /// (the same server).
    pub fn new(client: Client, conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            client,
            idle: Mutex::default(),
            prefix: prefix.to_string(),
        }
    }

    /// Stream, ids and read keys of `recipient`.
    fn keys(&self, recipient: &str) -> [String; 3] {
        [
            format!("{}inbox:{recipient}", self.prefix),
            format!("{}inbox-ids:{recipient}", self.prefix),
            format!("{}inbox-read:{recipient}", self.prefix),
        ]
    }

    /// Runs [`RANGE`]; an `at` cursor beyond the newest item is invalid (not issued here).
    async fn range(
        &self,
        recipient: &str,
        command: &str,
        bounds: [&str; 2],
        count: usize,
        at: Option<(&str, StreamId)>,
    ) -> Result<(u64, Vec<InboxItem>), InboxReadError> {
        let [stream, _, read] = self.keys(recipient);
        let (newest, unread, entries): RangeReply = RANGE
            .key(stream)
            .key(read)
            .arg(command)
            .arg(&bounds)
            .arg(count)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::from)?;
        if let Some((cursor, at)) = at
            && StreamId::parse(&newest).is_none_or(|newest| at > newest)
        {
            return Err(InboxReadError::InvalidCursor(cursor.to_string()));
        }
        let items = entries
            .into_iter()
            .map(|(cursor, id, payload, read)| InboxItem {
                added_at_ms: StreamId::parse(&cursor).map_or(0, |at| at.0),
                cursor,
                id,
                payload,
                read: read == 1,
            })
            .collect();
        Ok((u64::try_from(unread).unwrap_or(0), items))
    }

    /// Blocks until `stream` has an entry after `after` or `timeout` passed.
    async fn block_for_newer(&self, stream: &str, after: &str, timeout: Duration) -> Result<()> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.client.get_multiplexed_async_connection().await?,
        };
        conn.set_response_timeout(timeout + WAIT_RESPONSE_MARGIN);
        let _: redis::Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(millis(timeout))
            .arg("STREAMS")
            .arg(stream)
            .arg(after)
            .query_async(&mut conn)
            .await?;
        // Only a connection whose read answered is idle; one that failed is dropped.
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_WAIT_CONNECTIONS {
            idle.push(conn);
        }
        Ok(())
    }
}

/// A stream entry id `ms-seq`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId(u64, u64);

impl StreamId {
    /// An id `XADD *` can issue: not `0-0`, and with a successor (so `(id` is a valid bound).
    fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        let id = Self(ms.parse().ok()?, seq.parse().ok()?);
        (id != Self(0, 0) && id != Self(u64::MAX, u64::MAX)).then_some(id)
    }
}

fn cursor(text: &str) -> Result<(&str, StreamId), InboxReadError> {
    StreamId::parse(text)
        .map(|at| (text, at))
        .ok_or_else(|| InboxReadError::InvalidCursor(text.to_string()))
}

#[async_trait]
impl Inbox for RedisInbox {
    async fn add(
        &self,
        recipient: &str,
        item_id: &str,
        payload: &[u8],
        max_items: usize,
    ) -> Result<bool> {
        let added: i64 = ADD
            .key(&self.keys(recipient))
            .arg(item_id)
            .arg(payload)
            .arg(max_items.max(1))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(added == 1)
    }

    async fn list(
        &self,
        recipient: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<InboxPage, InboxReadError> {
        let before = before.map(cursor).transpose()?;
        let end = before.map_or_else(|| "+".to_string(), |(text, _)| format!("({text}"));
        let limit = limit.max(1);
        // One more than the page, to know whether an older page follows.
        let (unread, mut items) = self
            .range(recipient, "XREVRANGE", [&end, "-"], limit + 1, before)
            .await?;
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(InboxPage {
            next_cursor: more
                .then(|| items.last().map(|item| item.cursor.clone()))
                .flatten(),
            items,
            unread,
        })
    }

    async fn mark_read(&self, recipient: &str, item_id: &str) -> Result<MarkRead> {
        let [_, ids, read] = self.keys(recipient);
        let marked: i64 = MARK_READ
            .key(ids)
            .key(read)
            .arg(item_id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match marked {
            2 => MarkRead::Marked,
            1 => MarkRead::AlreadyRead,
            _ => MarkRead::NotFound,
        })
    }

    async fn wait(
        &self,
        recipient: &str,
        after: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<InboxItem>, InboxReadError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let after = after.map(cursor).transpose()?;
        let start = after.map_or_else(|| "-".to_string(), |(text, _)| format!("({text}"));
        let stream = &self.keys(recipient)[0];
        loop {
            let (_, items) = self
                .range(recipient, "XRANGE", [&start, "+"], WAIT_BATCH, after)
                .await?;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !items.is_empty() || remaining.is_zero() {
                return Ok(items);
            }
            // `XREAD` from the cursor itself (not `$`), so an item added since the range
            // above wakes it at once. Whether it woke or timed out, the loop looks again:
            // `BLOCK` counts whole milliseconds, and the deadline is what ends a wait.
            let from = after.map_or("0-0", |(text, _)| text);
            self.block_for_newer(stream, from, remaining).await?;
        }
    }

    async fn remove_recipient(&self, recipient: &str) -> Result<()> {
        let _: i64 = redis::cmd("DEL")
            .arg(&self.keys(recipient))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
