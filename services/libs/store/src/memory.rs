//! In-memory stores: the embedded default (`zhida demo`, single-process `serve`).
//! Same semantics as the Redis ones, checked by the same contract tests.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use crate::{
    Result,
    digest::{DigestKey, DigestStore},
    feed::{Feed, FeedEntry, FeedReadError},
    ledger::{self, Begin, DeliveryKey, DeliveryLedger, IN_FLIGHT, Outcome, Status},
};

/// [`DeliveryLedger`] in a mutex-guarded map. Finished entries are kept for the process's life.
#[derive(Default)]
pub struct MemoryLedger {
    entries: Mutex<HashMap<String, (String, Option<Instant>)>>,
}

impl MemoryLedger {
    fn live(entries: &HashMap<String, (String, Option<Instant>)>, key: &str) -> Option<String> {
        entries
            .get(key)
            .filter(|(_, expires)| expires.is_none_or(|at| at > Instant::now()))
            .map(|(value, _)| value.clone())
    }
}

#[async_trait]
impl DeliveryLedger for MemoryLedger {
    async fn begin(&self, key: &DeliveryKey, lease: Duration) -> Result<Begin> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = key.encoded();
        match Self::live(&entries, &key).map(|v| ledger::parse(&v)) {
            Some(Status::InFlight) => Ok(Begin::InFlight),
            Some(Status::Done(outcome)) => Ok(Begin::Done(outcome)),
            None => {
                let token = uuid::Uuid::new_v4().to_string();
                entries.insert(
                    key,
                    (format!("{IN_FLIGHT}{token}"), Some(Instant::now() + lease)),
                );
                Ok(Begin::Acquired(token))
            }
        }
    }

    async fn finish(&self, key: &DeliveryKey, outcome: &Outcome) -> Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = key.encoded();
        if !matches!(
            Self::live(&entries, &key).map(|v| ledger::parse(&v)),
            Some(Status::Done(_))
        ) {
            entries.insert(key, (ledger::render(outcome), None));
        }
        Ok(())
    }

    async fn abandon(&self, key: &DeliveryKey, token: &str) -> Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = key.encoded();
        if Self::live(&entries, &key).as_deref() == Some(&format!("{IN_FLIGHT}{token}")) {
            entries.remove(&key);
        }
        Ok(())
    }

    async fn status(&self, key: &DeliveryKey) -> Result<Option<Status>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Self::live(&entries, &key.encoded()).map(|v| ledger::parse(&v)))
    }
}

/// [`Feed`] in a vector; the cursor is the 1-based position of an entry.
#[derive(Default)]
pub struct MemoryFeed {
    inner: Mutex<(Vec<FeedEntry>, HashSet<String>)>,
}

#[async_trait]
impl Feed for MemoryFeed {
    async fn append(&self, id: &str, payload: &[u8]) -> Result<bool> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, ids) = &mut *inner;
        if !ids.insert(id.to_string()) {
            return Ok(false);
        }
        let cursor = (entries.len() + 1).to_string();
        entries.push(FeedEntry {
            cursor,
            id: id.to_string(),
            payload: payload.to_vec(),
        });
        Ok(true)
    }

    async fn read(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FeedEntry>, FeedReadError> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let start = match after {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= inner.0.len())
                .ok_or_else(|| FeedReadError::InvalidCursor(cursor.to_string()))?,
        };
        Ok(inner.0.iter().skip(start).take(limit).cloned().collect())
    }
}

type Digest = BTreeMap<String, Vec<u8>>;

/// [`DigestStore`] in two mutex-guarded maps.
#[derive(Default)]
pub struct MemoryDigests {
    digests: Mutex<(BTreeMap<DigestKey, Digest>, BTreeMap<DigestKey, Digest>)>,
}

#[async_trait]
impl DigestStore for MemoryDigests {
    async fn add(&self, key: &DigestKey, policy_id: &str, item: &[u8]) -> Result<()> {
        let mut guard = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        let (open, closed) = &mut *guard;
        if closed.get(key).is_some_and(|d| d.contains_key(policy_id)) {
            return Ok(());
        }
        open.entry(key.clone())
            .or_default()
            .insert(policy_id.to_string(), item.to_vec());
        Ok(())
    }

    async fn close(&self) -> Result<Vec<DigestKey>> {
        let mut guard = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        let (open, closed) = &mut *guard;
        let ready: Vec<DigestKey> = open
            .keys()
            .filter(|key| !closed.contains_key(*key))
            .cloned()
            .collect();
        for key in ready {
            if let Some(digest) = open.remove(&key) {
                closed.insert(key, digest);
            }
        }
        Ok(closed.keys().cloned().collect())
    }

    async fn items(&self, key: &DigestKey) -> Result<Vec<(String, Vec<u8>)>> {
        let guard = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guard
            .1
            .get(key)
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn complete(&self, key: &DigestKey, policy_ids: &[String]) -> Result<()> {
        let mut guard = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        let holds_exactly = guard.1.get(key).is_some_and(|digest| {
            digest.len() == policy_ids.len() && policy_ids.iter().all(|id| digest.contains_key(id))
        });
        if holds_exactly {
            guard.1.remove(key);
        }
        Ok(())
    }
}
