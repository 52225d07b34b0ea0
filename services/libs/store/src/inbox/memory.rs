//! [`Inbox`] in process memory, for the embedded default (`zhida demo`, single-process
//! `serve`).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Inbox, InboxItem, InboxPage, InboxReadError, MarkRead, WAIT_BATCH};
use crate::Result;

struct Entry {
    seq: u64,
    id: String,
    payload: Vec<u8>,
    added_at_ms: u64,
}

/// One recipient's inbox: entries oldest first; `read` holds only ids of entries present.
#[derive(Default)]
struct Items {
    entries: VecDeque<Entry>,
    read: HashSet<String>,
}

impl Items {
    fn item(&self, entry: &Entry) -> InboxItem {
        InboxItem {
            cursor: entry.seq.to_string(),
            id: entry.id.clone(),
            payload: entry.payload.clone(),
            read: self.read.contains(&entry.id),
            added_at_ms: entry.added_at_ms,
        }
    }

    /// The position `cursor` names, if this inbox issued it (it may have been trimmed since).
    fn position(&self, cursor: &str) -> Result<u64, InboxReadError> {
        cursor
            .parse::<u64>()
            .ok()
            .filter(|seq| self.entries.back().is_some_and(|newest| *seq <= newest.seq))
            .ok_or_else(|| InboxReadError::InvalidCursor(cursor.to_string()))
    }
}

#[derive(Default)]
struct State {
    /// The last cursor issued, across recipients, so a cursor never names two items, even
    /// after a recipient's inbox was removed and filled again.
    last_seq: u64,
    inboxes: HashMap<String, Items>,
}

/// [`Inbox`] in a mutex-guarded map; the cursor is a sequence number. Every add wakes
/// every waiter, which re-checks its own inbox: cheap at one process's scale.
pub struct MemoryInbox {
    state: Mutex<State>,
    added: watch::Sender<u64>,
}

impl Default for MemoryInbox {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            added: watch::Sender::new(0),
        }
    }
}

impl MemoryInbox {
    /// Up to [`WAIT_BATCH`] items newer than `after`, oldest first.
    fn newer(
        &self,
        recipient: &str,
        after: Option<&str>,
    ) -> Result<Vec<InboxItem>, InboxReadError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let empty = Items::default();
        let items = state.inboxes.get(recipient).unwrap_or(&empty);
        let after = after.map(|c| items.position(c)).transpose()?.unwrap_or(0);
        Ok(items
            .entries
            .iter()
            .filter(|entry| entry.seq > after)
            .take(WAIT_BATCH)
            .map(|entry| items.item(entry))
            .collect())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn add(
        &self,
        recipient: &str,
        item_id: &str,
        payload: &[u8],
        max_items: usize,
    ) -> Result<bool> {
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let seq = state.last_seq + 1;
            let items = state.inboxes.entry(recipient.to_string()).or_default();
            if items.entries.iter().any(|entry| entry.id == item_id) {
                return Ok(false);
            }
            items.entries.push_back(Entry {
                seq,
                id: item_id.to_string(),
                payload: payload.to_vec(),
                added_at_ms: now_ms(),
            });
            while items.entries.len() > max_items.max(1) {
                if let Some(oldest) = items.entries.pop_front() {
                    items.read.remove(&oldest.id);
                }
            }
            state.last_seq = seq;
        }
        self.added.send_modify(|version| *version += 1);
        Ok(true)
    }

    async fn list(
        &self,
        recipient: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<InboxPage, InboxReadError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let empty = Items::default();
        let items = state.inboxes.get(recipient).unwrap_or(&empty);
        let before = before.map(|c| items.position(c)).transpose()?;
        let mut older = items
            .entries
            .iter()
            .rev()
            .filter(|entry| before.is_none_or(|before| entry.seq < before));
        let page: Vec<InboxItem> = older
            .by_ref()
            .take(limit.max(1))
            .map(|entry| items.item(entry))
            .collect();
        let more = older.next().is_some();
        Ok(InboxPage {
            next_cursor: more
                .then(|| page.last().map(|item| item.cursor.clone()))
                .flatten(),
            items: page,
            unread: (items.entries.len() - items.read.len()) as u64,
        })
    }

    async fn mark_read(&self, recipient: &str, item_id: &str) -> Result<MarkRead> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(items) = state.inboxes.get_mut(recipient) else {
            return Ok(MarkRead::NotFound);
        };
        if !items.entries.iter().any(|entry| entry.id == item_id) {
            return Ok(MarkRead::NotFound);
        }
        Ok(if items.read.insert(item_id.to_string()) {
            MarkRead::Marked
        } else {
            MarkRead::AlreadyRead
        })
    }

    async fn wait(
        &self,
        recipient: &str,
        after: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<InboxItem>, InboxReadError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before the first look, so an add right after it still wakes this wait.
        let mut added = self.added.subscribe();
        loop {
            let items = self.newer(recipient, after)?;
            if !items.is_empty() {
                return Ok(items);
            }
            match tokio::time::timeout_at(deadline, added.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out (the sender lives as long as `self`).
                _ => return Ok(Vec::new()),
            }
        }
    }

    async fn remove_recipient(&self, recipient: &str) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.inboxes.remove(recipient);
        Ok(())
    }
}
