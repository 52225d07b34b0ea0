//! [`SubjectKeys`] in process memory, for the embedded default.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use async_trait::async_trait;
use zhida_seal::DataKey;

use super::SubjectKeys;
use crate::Result;

/// [`SubjectKeys`] in a mutex-guarded map.
#[derive(Default)]
pub struct MemorySubjectKeys {
    keys: Mutex<HashMap<String, DataKey>>,
}

impl MemorySubjectKeys {
    /// The process's keys under `prefix`: the profiler (which seals) and the notifier
    /// (which opens) of one process share them, as they share Redis in a deployment.
    pub fn shared(prefix: &str) -> Arc<Self> {
        static SHARED: OnceLock<Mutex<HashMap<String, Arc<MemorySubjectKeys>>>> = OnceLock::new();
        let mut shared = SHARED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shared.entry(prefix.to_string()).or_default().clone()
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, DataKey>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SubjectKeys for MemorySubjectKeys {
    async fn create(&self, subject: &str) -> Result<DataKey> {
        Ok(self
            .keys()
            .entry(subject.to_string())
            .or_insert_with(DataKey::generate)
            .clone())
    }

    async fn find(&self, subject: &str) -> Result<Option<DataKey>> {
        Ok(self.keys().get(subject).cloned())
    }

    async fn destroy(&self, subject: &str) -> Result<()> {
        self.keys().remove(subject);
        Ok(())
    }
}
