//! [`DigestStore`] in process memory, for the embedded default (`zhida demo`,
//! single-process `serve`).

use std::{collections::BTreeMap, sync::Mutex};

use async_trait::async_trait;

use super::{DigestKey, DigestStore};
use crate::Result;

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

    async fn remove(&self, key: &DigestKey) -> Result<()> {
        let mut guard = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.remove(key);
        guard.1.remove(key);
        Ok(())
    }
}
