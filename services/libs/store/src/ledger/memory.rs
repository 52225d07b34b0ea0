//! [`DeliveryLedger`] in process memory, for the embedded default (`zhida demo`,
//! single-process `serve`).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{Begin, DeliveryKey, DeliveryLedger, IN_FLIGHT, Outcome, Status, parse, render};
use crate::Result;

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
        match Self::live(&entries, &key).map(|v| parse(&v)) {
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
            Self::live(&entries, &key).map(|v| parse(&v)),
            Some(Status::Done(_))
        ) {
            entries.insert(key, (render(outcome), None));
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
        Ok(Self::live(&entries, &key.encoded()).map(|v| parse(&v)))
    }
}
