//! The relay's stores on Redis, shared by every replica. Every step touching more than one
//! key, or reading before it writes, is a Lua script, so it is atomic. Some scripts touch
//! keys they compute (the reach of a removed subscriber, a member's forwarders), so they
//! need a single Redis (not a cluster). Times are milliseconds since the Unix epoch.

use std::{
    collections::BTreeMap,
    sync::LazyLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use futures::StreamExt;
use redis::{Script, aio::ConnectionManager};
use tokio::{sync::broadcast, task::JoinHandle};

use super::{
    Enqueued, FeedSignals, OutboxMessage, OutboxStats, Queued, ReachMark, RelayReach, StoredReach,
    SubscriberRegistry, WebhookOutbox,
    memory::{SIGNAL_CAPACITY, state_bit},
};
use crate::{Result, StoreError};

fn epoch_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_epoch_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Writes a record and moves the generation. KEYS: records hash, generation. ARGV: id,
/// record.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
              redis.call('INCR', KEYS[2])
              return 1",
    )
});

/// Removes a record and moves the generation; returns how many were removed.
/// KEYS: records hash, generation. ARGV: id.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local removed = redis.call('HDEL', KEYS[1], ARGV[1])
              redis.call('INCR', KEYS[2])
              return removed",
    )
});

/// [`SubscriberRegistry`] in a hash `<prefix>relay-subscribers` (id → record) with its
/// generation in `<prefix>relay-subscribers:gen`, moved by the same script as each write.
pub struct RedisSubscriberRegistry {
    conn: ConnectionManager,
    key: String,
}

impl RedisSubscriberRegistry {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            key: format!("{prefix}relay-subscribers"),
        }
    }

    fn generation_key(&self) -> String {
        format!("{}:gen", self.key)
    }
}

#[async_trait]
impl SubscriberRegistry for RedisSubscriberRegistry {
    async fn put(&self, id: &str, record: &[u8]) -> Result<()> {
        let _: i64 = PUT
            .key(&self.key)
            .key(self.generation_key())
            .arg(id)
            .arg(record)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(redis::cmd("HGET")
            .arg(&self.key)
            .arg(id)
            .query_async(&mut self.conn.clone())
            .await?)
    }

    async fn all(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let records: BTreeMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(&self.key)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(records.into_iter().collect())
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let removed: i64 = REMOVE
            .key(&self.key)
            .key(self.generation_key())
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed == 1)
    }

    async fn generation(&self) -> Result<u64> {
        let generation: Option<u64> = redis::cmd("GET")
            .arg(self.generation_key())
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(generation.unwrap_or(0))
    }
}

/// Queues a message once per id, up to a capacity; a queue that was empty (and is not
/// paused) becomes due now. Returns 1 added, 2 duplicate, 3 full.
/// KEYS: queue list, messages hash, seen set, due zset, paused set, overflow hash.
/// ARGV: endpoint, id, payload, capacity, now.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then return 2 end
              local pending = redis.call('LLEN', KEYS[1])
              if pending >= tonumber(ARGV[4]) then
                redis.call('HINCRBY', KEYS[6], ARGV[1], 1)
                return 3
              end
              redis.call('SADD', KEYS[3], ARGV[2])
              redis.call('RPUSH', KEYS[1], ARGV[2])
              redis.call('HSET', KEYS[2], 'p:' .. ARGV[2], ARGV[3], 'n:' .. ARGV[2], 0,
                't:' .. ARGV[2], ARGV[5])
              if pending == 0 and redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 0 then
                redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
              end
              return 1",
    )
});

/// Up to a limit of endpoints due, earliest first, each then due at the end of its lease.
/// KEYS: due zset. ARGV: now, lease end, limit.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
              for _, endpoint in ipairs(due) do
                redis.call('ZADD', KEYS[1], ARGV[2], endpoint)
              end
              return due",
    )
});

/// The head: id, payload, attempts, queued at; nil when empty.
/// KEYS: queue list, messages hash.
static HEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local id = redis.call('LINDEX', KEYS[1], 0)
              if not id then return nil end
              local m = redis.call('HMGET', KEYS[2], 'p:' .. id, 'n:' .. id, 't:' .. id)
              return {id, m[1], m[2], m[3]}",
    )
});

/// Removes the head if it is the id; the endpoint is then due at `next_at` if it has more
/// (and is not paused), unscheduled otherwise.
/// KEYS: queue list, messages hash, due zset, paused set. ARGV: endpoint, id, next_at.
static POP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
              redis.call('LPOP', KEYS[1])
              redis.call('HDEL', KEYS[2], 'p:' .. ARGV[2], 'n:' .. ARGV[2], 't:' .. ARGV[2])
              if redis.call('LLEN', KEYS[1]) > 0
                and redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then
                redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
              else
                redis.call('ZREM', KEYS[3], ARGV[1])
              end
              return 1",
    )
});

/// Counts an attempt of the head if it is the id and makes the endpoint due at `at`
/// (unless paused); returns the attempts, 0 when the id is not the head.
/// KEYS: queue list, messages hash, due zset, paused set. ARGV: endpoint, id, at.
static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
              local attempts = redis.call('HINCRBY', KEYS[2], 'n:' .. ARGV[2], 1)
              if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then
                redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
              end
              return attempts",
    )
});

/// KEYS: due zset, paused set. ARGV: endpoint.
static PAUSE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('SADD', KEYS[2], ARGV[1])
              redis.call('ZREM', KEYS[1], ARGV[1])
              return 1",
    )
});

/// KEYS: queue list, due zset, paused set. ARGV: endpoint, at.
static RESUME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('SREM', KEYS[3], ARGV[1])
              if redis.call('LLEN', KEYS[1]) > 0 then
                redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
              end
              return 1",
    )
});

/// Forgets an endpoint; returns how many messages were pending.
/// KEYS: queue list, messages hash, seen set, due zset, paused set, overflow hash.
/// ARGV: endpoint.
static CLEAR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local pending = redis.call('LLEN', KEYS[1])
              redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
              redis.call('ZREM', KEYS[4], ARGV[1])
              redis.call('SREM', KEYS[5], ARGV[1])
              redis.call('HDEL', KEYS[6], ARGV[1])
              return pending",
    )
});

/// [`WebhookOutbox`] under `<prefix>`: per endpoint `outbox:<endpoint>` (list of message
/// ids, head first), `outbox-msg:<endpoint>` (hash: `p:<id>` payload, `n:<id>` attempts,
/// `t:<id>` queued at) and `outbox-seen:<endpoint>` (set of every id queued); for all
/// endpoints `outbox-due` (zset endpoint → due at), `outbox-paused` (set) and
/// `outbox-overflow` (hash endpoint → messages refused as full). `enqueue` takes its `now`
/// from this host's clock, as `claim_due`'s callers do.
pub struct RedisWebhookOutbox {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisWebhookOutbox {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
        }
    }

    fn queue(&self, endpoint: &str) -> String {
        format!("{}outbox:{endpoint}", self.prefix)
    }

    fn messages(&self, endpoint: &str) -> String {
        format!("{}outbox-msg:{endpoint}", self.prefix)
    }

    fn seen(&self, endpoint: &str) -> String {
        format!("{}outbox-seen:{endpoint}", self.prefix)
    }

    fn due(&self) -> String {
        format!("{}outbox-due", self.prefix)
    }

    fn paused(&self) -> String {
        format!("{}outbox-paused", self.prefix)
    }

    fn overflow(&self) -> String {
        format!("{}outbox-overflow", self.prefix)
    }
}

#[async_trait]
impl WebhookOutbox for RedisWebhookOutbox {
    async fn enqueue(
        &self,
        endpoint: &str,
        message: &OutboxMessage,
        capacity: usize,
    ) -> Result<Enqueued> {
        let outcome: i64 = ENQUEUE
            .key(self.queue(endpoint))
            .key(self.messages(endpoint))
            .key(self.seen(endpoint))
            .key(self.due())
            .key(self.paused())
            .key(self.overflow())
            .arg(endpoint)
            .arg(&message.id)
            .arg(&message.payload)
            .arg(capacity)
            .arg(epoch_millis(SystemTime::now()))
            .invoke_async(&mut self.conn.clone())
            .await?;
        match outcome {
            1 => Ok(Enqueued::Added),
            2 => Ok(Enqueued::Duplicate),
            3 => Ok(Enqueued::Full),
            other => Err(StoreError(format!("enqueue answered {other}"))),
        }
    }

    async fn claim_due(
        &self,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<String>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(CLAIM
            .key(self.due())
            .arg(epoch_millis(now))
            .arg(epoch_millis(now + lease))
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    async fn head(&self, endpoint: &str) -> Result<Option<Queued>> {
        let head: Option<(String, Vec<u8>, u32, u64)> = HEAD
            .key(self.queue(endpoint))
            .key(self.messages(endpoint))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(head.map(|(id, payload, attempts, queued_at)| Queued {
            message: OutboxMessage { id, payload },
            attempts,
            queued_at: from_epoch_millis(queued_at),
        }))
    }

    async fn pop(&self, endpoint: &str, id: &str, next_at: SystemTime) -> Result<()> {
        let _: i64 = POP
            .key(self.queue(endpoint))
            .key(self.messages(endpoint))
            .key(self.due())
            .key(self.paused())
            .arg(endpoint)
            .arg(id)
            .arg(epoch_millis(next_at))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn retry(&self, endpoint: &str, id: &str, at: SystemTime) -> Result<u32> {
        Ok(RETRY
            .key(self.queue(endpoint))
            .key(self.messages(endpoint))
            .key(self.due())
            .key(self.paused())
            .arg(endpoint)
            .arg(id)
            .arg(epoch_millis(at))
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    async fn pause(&self, endpoint: &str) -> Result<()> {
        let _: i64 = PAUSE
            .key(self.due())
            .key(self.paused())
            .arg(endpoint)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn resume(&self, endpoint: &str, at: SystemTime) -> Result<()> {
        let _: i64 = RESUME
            .key(self.queue(endpoint))
            .key(self.due())
            .key(self.paused())
            .arg(endpoint)
            .arg(epoch_millis(at))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn clear(&self, endpoint: &str) -> Result<u64> {
        Ok(CLEAR
            .key(self.queue(endpoint))
            .key(self.messages(endpoint))
            .key(self.seen(endpoint))
            .key(self.due())
            .key(self.paused())
            .key(self.overflow())
            .arg(endpoint)
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    async fn stats(&self, endpoint: &str) -> Result<OutboxStats> {
        let (pending, overflowed): (u64, Option<u64>) = redis::pipe()
            .cmd("LLEN")
            .arg(self.queue(endpoint))
            .cmd("HGET")
            .arg(self.overflow())
            .arg(endpoint)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(OutboxStats {
            pending,
            overflowed: overflowed.unwrap_or(0),
        })
    }
}

/// Records a mark of one subscriber on each policy. KEYS: the subscriber's policy set.
/// ARGV: prefix of policy hashes, field, value, whether to keep a value already there
/// (`1`), the policies.
static MARK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"for i = 5, #ARGV do
                if ARGV[4] == '1' then
                  redis.call('HSETNX', ARGV[1] .. ARGV[i], ARGV[2], ARGV[3])
                else
                  redis.call('HSET', ARGV[1] .. ARGV[i], ARGV[2], ARGV[3])
                end
                redis.call('SADD', KEYS[1], ARGV[i])
              end
              return 1",
    )
});

/// Records a forward: the subscriber as forwarder, each member (keeping its mask) and the
/// subscriber among each member's forwarders.
/// KEYS: policy hash, subscriber's policy set. ARGV: prefix of forwarder sets (ending in
/// `<policy>:`), policy, forwarder field, member field prefix, subscriber, the members.
static FORWARDED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('HSET', KEYS[1], ARGV[3], 1)
              redis.call('SADD', KEYS[2], ARGV[2])
              for i = 6, #ARGV do
                redis.call('HSETNX', KEYS[1], ARGV[4] .. ARGV[i], 0)
                redis.call('SADD', ARGV[1] .. ARGV[i], ARGV[5])
              end
              return 1",
    )
});

/// ORs a state bit into a member's mask at each of its forwarders; returns how many.
/// KEYS: policy hash, the member's forwarder set. ARGV: member, bit.
static MEMBER_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local forwarders = redis.call('SMEMBERS', KEYS[2])
              local bit = tonumber(ARGV[2])
              for _, subscriber in ipairs(forwarders) do
                local field = 'm|' .. #subscriber .. '|' .. subscriber .. ARGV[1]
                local mask = tonumber(redis.call('HGET', KEYS[1], field) or '0')
                if bit > 0 and math.floor(mask / bit) % 2 == 0 then mask = mask + bit end
                redis.call('HSET', KEYS[1], field, mask)
              end
              return #forwarders",
    )
});

/// Forgets a subscriber in every policy it is in: its marks and members in each policy
/// hash and its place among each of its members' forwarders.
/// KEYS: the subscriber's policy set. ARGV: prefix of policy hashes, prefix of forwarder
/// sets, subscriber, its member field prefix.
static REMOVE_SUBSCRIBER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local subscriber, members = ARGV[3], ARGV[4]
              for _, policy in ipairs(redis.call('SMEMBERS', KEYS[1])) do
                local hash = ARGV[1] .. policy
                for _, kind in ipairs({'r', 'wd', 'wf', 'pl', 'st', 'f'}) do
                  redis.call('HDEL', hash, kind .. '|' .. subscriber)
                end
                for _, field in ipairs(redis.call('HKEYS', hash)) do
                  if string.sub(field, 1, #members) == members then
                    redis.call('HDEL', hash, field)
                    local member = string.sub(field, #members + 1)
                    redis.call('SREM', ARGV[2] .. policy .. ':' .. member, subscriber)
                  end
                end
              end
              redis.call('DEL', KEYS[1])
              return 1",
    )
});

/// [`RelayReach`] under `<prefix>`: per policy a hash `reach:<policy>` with, per subscriber,
/// `r|<subscriber>` (`<tier> <by>` of its first reach), `wd|`, `wf|`, `pl|`, `st|` (webhook
/// delivered, failed, pulled, streamed), `f|<subscriber>` (it forwarded) and
/// `m|<len>|<subscriber><member>` (the member's state mask; the subscriber's length in
/// bytes makes the field unambiguous whatever the ids hold); per policy and member a set
/// `reach-fwd:<policy>:<member>` of the subscribers that forwarded it the policy; per
/// subscriber a set `reach-subs:<subscriber>` of the policies it is in.
pub struct RedisRelayReach {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisRelayReach {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
        }
    }

    fn policies(&self) -> String {
        format!("{}reach:", self.prefix)
    }

    fn forwarders(&self) -> String {
        format!("{}reach-fwd:", self.prefix)
    }

    fn of_subscriber(&self, subscriber: &str) -> String {
        format!("{}reach-subs:{subscriber}", self.prefix)
    }
}

fn member_field_prefix(subscriber: &str) -> String {
    format!("m|{}|{subscriber}", subscriber.len())
}

/// One field of a policy's hash, parsed.
enum Field<'a> {
    Mark(&'a str, &'a str),
    Member(&'a str, &'a str),
}

fn parse_field(field: &str) -> Option<Field<'_>> {
    let (kind, rest) = field.split_once('|')?;
    if kind != "m" {
        return Some(Field::Mark(kind, rest));
    }
    let (len, rest) = rest.split_once('|')?;
    let len: usize = len.parse().ok()?;
    let subscriber = rest.get(..len)?;
    let member = rest.get(len..)?;
    Some(Field::Member(subscriber, member))
}

#[async_trait]
impl RelayReach for RedisRelayReach {
    async fn mark(&self, subscriber: &str, policies: &[String], mark: ReachMark) -> Result<()> {
        if policies.is_empty() {
            return Ok(());
        }
        let (kind, value, keep) = match mark {
            ReachMark::Reached { tier, by } => ("r", format!("{tier} {by}"), true),
            ReachMark::WebhookDelivered => ("wd", "1".to_string(), false),
            ReachMark::WebhookFailed => ("wf", "1".to_string(), false),
            ReachMark::Pulled => ("pl", "1".to_string(), false),
            ReachMark::Streamed => ("st", "1".to_string(), false),
        };
        let _: i64 = MARK
            .key(self.of_subscriber(subscriber))
            .arg(self.policies())
            .arg(format!("{kind}|{subscriber}"))
            .arg(value)
            .arg(if keep { "1" } else { "0" })
            .arg(policies)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn forwarded(&self, policy: &str, subscriber: &str, members: &[String]) -> Result<()> {
        let _: i64 = FORWARDED
            .key(format!("{}{policy}", self.policies()))
            .key(self.of_subscriber(subscriber))
            .arg(format!("{}{policy}:", self.forwarders()))
            .arg(policy)
            .arg(format!("f|{subscriber}"))
            .arg(member_field_prefix(subscriber))
            .arg(subscriber)
            .arg(members)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn member_state(&self, policy: &str, member: &str, state: u32) -> Result<usize> {
        Ok(MEMBER_STATE
            .key(format!("{}{policy}", self.policies()))
            .key(format!("{}{policy}:{member}", self.forwarders()))
            .arg(member)
            .arg(state_bit(state))
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    async fn reach(&self, policy: &str) -> Result<Vec<StoredReach>> {
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(format!("{}{policy}", self.policies()))
            .query_async(&mut self.conn.clone())
            .await?;
        let mut reach: BTreeMap<String, (StoredReach, BTreeMap<String, u32>)> = BTreeMap::new();
        for (field, value) in &fields {
            let Some(parsed) = parse_field(field) else {
                continue;
            };
            let subscriber = match parsed {
                Field::Mark(_, subscriber) | Field::Member(subscriber, _) => subscriber,
            };
            let (stored, members) = reach.entry(subscriber.to_string()).or_default();
            match parsed {
                Field::Mark("r", _) => {
                    let mut parts = value.split(' ');
                    stored.tier = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
                    stored.by = parts.next().and_then(|b| b.parse().ok()).unwrap_or(0);
                }
                Field::Mark("wd", _) => stored.webhook_delivered = true,
                Field::Mark("wf", _) => stored.webhook_failed = true,
                Field::Mark("pl", _) => stored.pulled = true,
                Field::Mark("st", _) => stored.streamed = true,
                Field::Mark(..) => {}
                Field::Member(_, member) => {
                    members.insert(member.to_string(), value.parse().unwrap_or(0));
                }
            }
        }
        Ok(reach
            .into_iter()
            .map(|(subscriber_id, (stored, members))| StoredReach {
                subscriber_id,
                members: members.into_iter().collect(),
                ..stored
            })
            .collect())
    }

    async fn remove_subscriber(&self, subscriber: &str) -> Result<()> {
        let _: i64 = REMOVE_SUBSCRIBER
            .key(self.of_subscriber(subscriber))
            .arg(self.policies())
            .arg(self.forwarders())
            .arg(subscriber)
            .arg(member_field_prefix(subscriber))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

/// The longest wait between attempts to (re)subscribe.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// [`FeedSignals`] on a Redis pub/sub channel: `notify` publishes the feed's name on it, and
/// one background task per `RedisFeedSignals`, spawned by [`new`](RedisFeedSignals::new)
/// (so it must be called inside a tokio runtime) and stopped when it is dropped, holds a
/// pub/sub connection subscribed to it and passes what arrives to a local broadcast. A
/// dropped connection is opened again with backoff; signals published meanwhile are lost,
/// as the trait allows. Open it once per process: each holds a connection of its own.
pub struct RedisFeedSignals {
    conn: ConnectionManager,
    channel: String,
    sender: broadcast::Sender<String>,
    listener: JoinHandle<()>,
}

impl RedisFeedSignals {
    /// Publishes on and listens to `channel` (the stores use `<prefix>feed-signals`);
    /// `client` opens the pub/sub connection, `conn` publishes.
    pub fn new(client: redis::Client, conn: ConnectionManager, channel: &str) -> Self {
        let sender = broadcast::Sender::new(SIGNAL_CAPACITY);
        let listener = tokio::spawn(listen(client, channel.to_string(), sender.clone()));
        Self {
            conn,
            channel: channel.to_string(),
            sender,
            listener,
        }
    }
}

impl Drop for RedisFeedSignals {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Subscribes to `channel` and forwards each message to `sender`, reconnecting for ever.
async fn listen(client: redis::Client, channel: String, sender: broadcast::Sender<String>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(feed) = message.get_payload::<String>() {
                            // No receiver is not an error: nobody is streaming.
                            let _ = sender.send(feed);
                        }
                    }
                    tracing::debug!(channel, "feed signals: connection closed");
                }
                Err(error) => tracing::debug!(%error, channel, "feed signals: subscribe failed"),
            },
            Err(error) => tracing::debug!(%error, channel, "feed signals: connect failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[async_trait]
impl FeedSignals for RedisFeedSignals {
    async fn notify(&self, feed: &str) -> Result<()> {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(feed)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.sender.subscribe()
    }
}
