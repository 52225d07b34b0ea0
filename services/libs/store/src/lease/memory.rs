//! [`WriteLeases`] in process memory, for the embedded default (one process, so the leases
//! only need to exclude its own concurrent requests).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{LAST_WRITE_TTL, Lease, LogPosition, Release, WriteLeases};
use crate::Result;

#[derive(Default)]
struct Entry {
    /// Holder's token and when the lease expires.
    holder: Option<(String, Instant)>,
    /// The last recorded write and when that record expires.
    last_write: Option<(LogPosition, Instant)>,
}

/// [`WriteLeases`] in a mutex-guarded map.
#[derive(Default)]
pub struct MemoryWriteLeases {
    entries: Mutex<HashMap<String, Entry>>,
}

#[async_trait]
impl WriteLeases for MemoryWriteLeases {
    async fn acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let entry = entries.entry(key.to_string()).or_default();
        if entry.holder.as_ref().is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        let token = uuid::Uuid::new_v4().to_string();
        entry.holder = Some((token.clone(), now + ttl));
        Ok(Some(Lease {
            token,
            last_write: entry
                .last_write
                .filter(|(_, until)| *until > now)
                .map(|(position, _)| position),
        }))
    }

    async fn release(&self, key: &str, token: &str, written: Option<LogPosition>) -> Result<bool> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let Some(entry) = entries.get_mut(key) else {
            return Ok(false);
        };
        let held = entry
            .holder
            .as_ref()
            .is_some_and(|(holder, until)| holder == token && *until > now);
        if !held {
            return Ok(false);
        }
        entry.holder = None;
        if let Some(position) = written {
            entry.last_write = Some((position, now + LAST_WRITE_TTL));
        }
        Ok(true)
    }

    async fn acquire_many(&self, keys: &[&str], ttl: Duration) -> Result<Vec<Option<Lease>>> {
        let mut leases = Vec::with_capacity(keys.len());
        for key in keys {
            leases.push(self.acquire(key, ttl).await?);
        }
        Ok(leases)
    }

    async fn release_many(&self, releases: &[Release<'_>]) -> Result<Vec<bool>> {
        let mut released = Vec::with_capacity(releases.len());
        for release in releases {
            released.push(
                self.release(release.key, release.token, release.written)
                    .await?,
            );
        }
        Ok(released)
    }
}
