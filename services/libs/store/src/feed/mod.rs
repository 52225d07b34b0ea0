//! An append-only feed with cursor paging, idempotent per entry id.

pub mod contract;
mod memory;
mod redis;

use async_trait::async_trait;

pub use self::{memory::MemoryFeed, redis::RedisFeed};
use crate::Result;

/// One item in a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Opaque, increasing; pass back to [`Feed::read`] to continue after this entry.
    pub cursor: String,
    pub id: String,
    pub payload: Vec<u8>,
}

#[async_trait]
pub trait Feed: Send + Sync {
    /// Appends `payload` unless an entry with `id` exists. Returns true when appended.
    async fn append(&self, id: &str, payload: &[u8]) -> Result<bool>;
    /// Up to `limit` entries after `after` (from the start when `None`), oldest first.
    /// An unknown or malformed cursor is an error, not an empty page.
    async fn read(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FeedEntry>, FeedReadError>;
}

#[derive(Debug, thiserror::Error)]
pub enum FeedReadError {
    #[error("invalid cursor {0:?}")]
    InvalidCursor(String),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}
