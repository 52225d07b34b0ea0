//! Each recipient's inbox ("两页": a citizen's or enterprise's page): the notices sent to
//! them, newest first, bounded, with a read mark per notice and a wait for new ones.
//!
//! Items are appended with [`add`](Inbox::add), once per item id (a redelivered request adds
//! nothing), and the oldest are trimmed beyond the bound the caller passes, together with
//! their ids and read marks (so a trimmed id can be added again). [`list`](Inbox::list)
//! pages newest first by cursor and counts the unread items;
//! [`mark_read`](Inbox::mark_read) reports the first mark of an item exactly once, so its
//! caller can report one READ receipt; [`wait`](Inbox::wait) serves a server stream: it
//! returns what is newer than the caller's cursor, oldest first, as soon as there is any.
//! [`remove_recipient`](Inbox::remove_recipient) deletes everything of one recipient.
//!
//! Cursors are opaque, increasing, and stay valid when their item is trimmed. A cursor
//! this inbox cannot have issued (malformed, or beyond its newest item) is
//! [`InboxReadError::InvalidCursor`]: an empty inbox therefore takes no cursor at all.

pub mod contract;
mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use self::{memory::MemoryInbox, redis::RedisInbox};
use crate::Result;

/// The most items one [`Inbox::wait`] returns; the caller continues after the last.
pub const WAIT_BATCH: usize = 100;

/// One notice in an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    /// Opaque, increasing; pass back to [`Inbox::list`] or [`Inbox::wait`].
    pub cursor: String,
    /// The caller's id of the item (one per inbox), e.g. the policy id.
    pub id: String,
    pub payload: Vec<u8>,
    pub read: bool,
    /// When the item was added (Unix milliseconds, the store's clock).
    pub added_at_ms: u64,
}

/// A page of an inbox, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    /// Where the next (older) page starts; `None` when this page holds the oldest item.
    pub next_cursor: Option<String>,
    /// Unread items in the whole inbox, not just this page.
    pub unread: u64,
}

/// The answer to [`Inbox::mark_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkRead {
    /// This call marked the item: report its READ receipt.
    Marked,
    /// Marked before (by this caller or a concurrent one): report nothing.
    AlreadyRead,
    /// No such item in this inbox (never added, trimmed, or removed).
    NotFound,
}

#[async_trait]
pub trait Inbox: Send + Sync {
    /// Adds `payload` as the newest item of `recipient`'s inbox unless it holds an item with
    /// `item_id` already; returns true when added. Keeps at most `max_items` (at least 1),
    /// trimming the oldest with their ids and read marks.
    async fn add(
        &self,
        recipient: &str,
        item_id: &str,
        payload: &[u8],
        max_items: usize,
    ) -> Result<bool>;

    /// Up to `limit` (at least 1) items older than `before` (from the newest when `None`),
    /// newest first, with the inbox's unread count.
    async fn list(
        &self,
        recipient: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<InboxPage, InboxReadError>;

    /// Marks `item_id` read. Atomic: of concurrent callers, exactly one gets
    /// [`MarkRead::Marked`].
    async fn mark_read(&self, recipient: &str, item_id: &str) -> Result<MarkRead>;

    /// The items newer than `after` (every item when `None`), oldest first and at most
    /// [`WAIT_BATCH`], as soon as there are any; an empty list once `timeout` has passed
    /// without any. A stream continues with the last item's cursor, so it misses nothing
    /// added between two calls.
    async fn wait(
        &self,
        recipient: &str,
        after: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<InboxItem>, InboxReadError>;

    /// Deletes `recipient`'s inbox: items, ids and read marks (the profile was deleted).
    async fn remove_recipient(&self, recipient: &str) -> Result<()>;
}

/// Why [`Inbox::list`] or [`Inbox::wait`] could not answer.
#[derive(Debug, thiserror::Error)]
pub enum InboxReadError {
    /// A cursor this inbox did not issue: the caller's mistake, not worth retrying.
    #[error("invalid cursor {0:?}")]
    InvalidCursor(String),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}
