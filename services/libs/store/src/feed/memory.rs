//! [`Feed`] in process memory, for the embedded default (`zhida demo`, single-process
//! `serve`).

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use async_trait::async_trait;

use super::{Feed, FeedEntry, FeedReadError};
use crate::Result;

/// [`Feed`] in a vector; the cursor is the 1-based position of an entry.
#[derive(Default)]
pub struct MemoryFeed {
    inner: Mutex<(Vec<FeedEntry>, HashSet<String>)>,
    states: Mutex<HashMap<String, Vec<u8>>>,
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

    async fn set_state(&self, id: &str, state: &[u8]) -> Result<()> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.insert(id.to_string(), state.to_vec());
        Ok(())
    }

    async fn states(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ids.iter().map(|id| states.get(id).cloned()).collect())
    }

    async fn clear(&self) -> Result<()> {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }
}
