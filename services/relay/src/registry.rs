//! The registered subscribers, as every replica of the relay sees them: the registry store
//! (shared), and a parsed copy here that is reloaded only when the store's generation moved
//! (one small read per use instead of reading and parsing every record for each policy).

use std::{collections::BTreeMap, sync::Arc};

use prost::Message;
use tokio::sync::Mutex;
use zhida_catalogue::Industries;
use zhida_store::{StoreError, SubscriberRegistry};

use crate::subscriber::{Entry, Stored, entries};

/// Every subscriber by id.
pub type Snapshot = BTreeMap<String, Entry>;

pub struct Registry {
    store: Arc<dyn SubscriberRegistry>,
    industries: Industries,
    cache: Mutex<Option<(u64, Arc<Snapshot>)>>,
}

impl Registry {
    pub fn new(store: Arc<dyn SubscriberRegistry>, industries: Industries) -> Self {
        Self {
            store,
            industries,
            cache: Mutex::new(None),
        }
    }

    pub fn industries(&self) -> &Industries {
        &self.industries
    }

    /// The registry now.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        let generation = self.store.generation().await?;
        let mut cache = self.cache.lock().await;
        if let Some((seen, snapshot)) = cache.as_ref()
            && *seen == generation
        {
            return Ok(snapshot.clone());
        }
        let mut records = Vec::new();
        for (id, bytes) in self.store.all().await? {
            match Stored::decode(bytes.as_slice()) {
                Ok(stored) if stored.id() == id => records.push(stored),
                Ok(_) | Err(_) => tracing::error!(id, "subscriber record does not decode; skipped"),
            }
        }
        let snapshot = Arc::new(entries(records, &self.industries));
        *cache = Some((generation, snapshot.clone()));
        Ok(snapshot)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        Ok(self.snapshot().await?.get(id).cloned())
    }

    pub async fn put(&self, stored: &Stored) -> Result<(), StoreError> {
        self.store.put(stored.id(), &stored.encode_to_vec()).await
    }

    pub async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.store.remove(id).await
    }
}
