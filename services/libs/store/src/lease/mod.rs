//! Write leases: one writer at a time per key across every replica, and the log position
//! of the key's last write handed from each writer to the next.
//!
//! A replica that wants to read-modify-write a record of a compacted topic (the profiler's
//! `profiles`) first [`acquire`](WriteLeases::acquire)s the key's lease, waits until its own
//! replay has reached the [`LogPosition`] the lease hands over (so it reads what the
//! previous writer wrote, whichever replica that was), appends the new value, and
//! [`release`](WriteLeases::release)s the lease with the position of its append.
//!
//! A lease expires after its `ttl`, so a writer that dies does not block the key for
//! longer; a writer must finish appending well within the ttl (the caller bounds its
//! append by the producer's timeout). A release that finds the lease gone reports it, so
//! the caller can tell its client the write may have raced another.
//!
//! A bulk writer (the profiler's import) takes and releases the leases of many keys at
//! once, in one round trip each ([`acquire_many`](WriteLeases::acquire_many),
//! [`release_many`](WriteLeases::release_many)): each key's lease behaves exactly as if it
//! had been taken or released alone.

pub mod contract;
mod memory;
mod redis;

use std::{fmt, str::FromStr, time::Duration};

use async_trait::async_trait;

pub use self::{memory::MemoryWriteLeases, redis::RedisWriteLeases};
use crate::Result;

/// Where a record landed in its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

impl FromStr for LogPosition {
    type Err = ();

    /// `partition:offset`, as [`Display`](fmt::Display) writes it.
    fn from_str(s: &str) -> Result<Self, ()> {
        let (partition, offset) = s.split_once(':').ok_or(())?;
        Ok(Self {
            partition: partition.parse().map_err(|_| ())?,
            offset: offset.parse().map_err(|_| ())?,
        })
    }
}

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Proves the holder on release.
    pub token: String,
    /// Where the key's last released write landed, if one was recorded.
    pub last_write: Option<LogPosition>,
}

/// How long a key's last write position is remembered: far longer than any replica may lag
/// its log and still serve.
pub const LAST_WRITE_TTL: Duration = Duration::from_secs(24 * 3600);

#[async_trait]
pub trait WriteLeases: Send + Sync {
    /// Takes `key`'s lease for `ttl` if nobody holds it; `None` if somebody does.
    async fn acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>>;

    /// Releases the lease if `token` still holds it, recording `written` (when given) as
    /// the key's last write; a release without a write keeps the previous position.
    /// Returns false, and records nothing, if the lease had expired.
    async fn release(&self, key: &str, token: &str, written: Option<LogPosition>) -> Result<bool>;

    /// [`acquire`](Self::acquire) for each of `keys`, in one round trip: one answer per
    /// key, in order (`None` where somebody holds it). A key named twice is taken once:
    /// its second answer is `None`.
    async fn acquire_many(&self, keys: &[&str], ttl: Duration) -> Result<Vec<Option<Lease>>>;

    /// [`release`](Self::release) for each of `releases`, in one round trip: one answer
    /// per release, in order.
    async fn release_many(&self, releases: &[Release<'_>]) -> Result<Vec<bool>>;
}

/// One release of [`WriteLeases::release_many`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release<'a> {
    pub key: &'a str,
    pub token: &'a str,
    pub written: Option<LogPosition>,
}
