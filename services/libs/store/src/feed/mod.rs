//! An append-only feed with cursor paging, idempotent per entry id, and a current state
//! per entry that may change after it was appended (a relayed policy withdrawn).

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
    /// Replaces the current state of entry `id` (the feed itself stays append-only: a
    /// reader overlays the state on the entry). Allowed before the entry is appended.
    async fn set_state(&self, id: &str, state: &[u8]) -> Result<()>;
    /// The current state of each of `ids`, in order; `None` where none was set.
    async fn states(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Deletes the whole feed: its entries, the ids appended and the states (the relay
    /// deletes a removed subscriber's feed). A cursor issued before means nothing after.
    async fn clear(&self) -> Result<()>;
}

#[derive(Debug, thiserror::Error)]
pub enum FeedReadError {
    #[error("invalid cursor {0:?}")]
    InvalidCursor(String),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}
