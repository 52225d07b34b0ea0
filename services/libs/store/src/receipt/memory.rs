//! [`ReceiptIndex`] in process memory, for the embedded default.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{ReceiptIndex, ReceiptTarget};
use crate::Result;

/// [`ReceiptIndex`] in a mutex-guarded map; expired entries are dropped as others are added.
#[derive(Default)]
pub struct MemoryReceiptIndex {
    entries: Mutex<HashMap<(String, String), (ReceiptTarget, Instant)>>,
}

#[async_trait]
impl ReceiptIndex for MemoryReceiptIndex {
    async fn remember(
        &self,
        provider: &str,
        message_id: &str,
        target: &ReceiptTarget,
        ttl: Duration,
    ) -> Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        entries.retain(|_, (_, until)| *until > now);
        entries.insert(
            (provider.to_string(), message_id.to_string()),
            (target.clone(), now + ttl),
        );
        Ok(())
    }

    async fn take(&self, provider: &str, message_id: &str) -> Result<Option<ReceiptTarget>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Ok(entries
            .remove(&(provider.to_string(), message_id.to_string()))
            .filter(|(_, until)| *until > Instant::now())
            .map(|(target, _)| target))
    }
}
