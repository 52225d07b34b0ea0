//! The publisher's state: every policy's [`Record`], folded from `policy.events` in log
//! order by [`Records::apply`] (a table reader that never commits, so a restarted replica
//! rebuilds everything), with the full-text index kept in step.
//!
//! The write path appends an event, then waits with [`Records::applied`] until this
//! replica's fold reached that offset, and reads back what the fold made of it: the log
//! decides between replicas, never a local guess.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, HashMap},
    ops::Bound,
    sync::{Arc, RwLock},
    time::Duration,
};

use prost::Message;
use tokio::sync::watch;
use zhida_bus::{Event, TableRecord};
use zhida_proto::events::v1::{
    PolicyExpired, PolicyPublished, PolicyRecorded, PolicyRevised, PolicyWithdrawn, Transition,
};
use zhida_search::{Library, PolicyDoc};

use crate::lifecycle::{self, Change, Record};

/// The records and where the fold stands.
pub struct Records {
    state: RwLock<State>,
    /// Bumped after every applied record, so waiters re-check.
    progress: watch::Sender<u64>,
    search: Arc<Library>,
    caught_up: watch::Receiver<bool>,
}

#[derive(Default)]
struct State {
    policies: HashMap<String, Entry>,
    /// Newest first: (created, policy id).
    order: BTreeSet<(Reverse<i64>, String)>,
    /// The highest offset applied, per partition.
    applied: HashMap<i32, i64>,
}

struct Entry {
    record: Record,
    /// Where the event that made the record as it is sits in the log.
    at: (i32, i64),
}

/// The result of waiting for one's own event.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The fold took it: the record as it is now.
    Applied(Box<Record>),
    /// Another change came first in the log (another replica, or a concurrent call).
    Lost,
    /// The fold did not get there in time.
    Late,
}

impl Records {
    pub fn new(search: Arc<Library>, caught_up: watch::Receiver<bool>) -> Self {
        Self {
            state: RwLock::new(State::default()),
            progress: watch::Sender::new(0),
            search,
            caught_up,
        }
    }

    /// Folds one record of `policy.events`. Records other services wrote, or that do not
    /// decode, are skipped (logged): the publisher's state only follows its own events.
    pub fn apply(&self, record: TableRecord) {
        let partition = record.partition;
        let offset = record.offset;
        // This reader is the only writer of the state, so what it folds here is still the
        // current record when it is stored below.
        let folded = decode(&record).and_then(|change| {
            let state = self.state.read().expect("records lock");
            let current = state.policies.get(change.policy_id()).map(|e| &e.record);
            lifecycle::apply(current, &change).map(|next| (change, next))
        });
        if let Some((change, next)) = &folded {
            // Before the change is visible (an RPC waiting for it then finds it searchable),
            // and outside the lock, so readers are not held up by the index.
            self.index(change, next);
        }
        {
            let mut state = self.state.write().expect("records lock");
            if let Some((change, next)) = folded {
                let id = change.policy_id().to_string();
                let (created, _) = position(&next);
                state.order.insert((Reverse(created), id.clone()));
                state.policies.insert(
                    id,
                    Entry {
                        record: next,
                        at: (partition, offset),
                    },
                );
            }
            let applied = state.applied.entry(partition).or_insert(-1);
            *applied = (*applied).max(offset);
        }
        self.progress.send_modify(|n| *n += 1);
    }

    /// Makes what was indexed during the replay searchable, once.
    pub fn caught_up(&self) {
        if let Err(error) = self.search.commit() {
            tracing::error!(error = format!("{error:#}"), "search index commit failed");
        }
    }

    fn index(&self, change: &Change, next: &Record) {
        let reindex = match change {
            Change::Published(_) | Change::Revised(_) => true,
            Change::Recorded(e) => {
                e.transition == Transition::FaqsUpdated as i32 && next.policy.live_version > 0
            }
            Change::Withdrawn(_) | Change::Expired(_) => true,
        };
        if !reindex {
            return;
        }
        let Some(live) = next.published(next.policy.live_version) else {
            return;
        };
        let doc = PolicyDoc {
            policy_id: live.policy_id.clone(),
            version: live.version,
            title: live.title.clone(),
            summary: live.summary.clone(),
            body: live.body.clone(),
            interpretation: live
                .interpretation
                .as_ref()
                .map(|i| format!("{}\n{}", i.title, i.text))
                .unwrap_or_default(),
            faqs: live
                .faqs
                .iter()
                .map(|f| (f.question.clone(), f.answer.clone()))
                .collect(),
            department: live.department.clone(),
            tags: live.tags.clone(),
            status: next.public_view().status,
            valid_from: live.valid_from.map(|t| t.seconds),
            valid_until: live.valid_until.map(|t| t.seconds),
        };
        let result = self.search.upsert(doc).and_then(|()| {
            if *self.caught_up.borrow() {
                self.search.commit()
            } else {
                Ok(())
            }
        });
        if let Err(error) = result {
            tracing::error!(
                error = format!("{error:#}"),
                policy_id = live.policy_id,
                "search index update failed"
            );
        }
    }

    /// Waits until the fold applied `offset` of `partition`, then says what became of the
    /// event there for `policy_id`.
    pub async fn applied(
        &self,
        policy_id: &str,
        partition: i32,
        offset: i64,
        within: Duration,
    ) -> Outcome {
        let mut progress = self.progress.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            {
                let state = self.state.read().expect("records lock");
                if state.applied.get(&partition).is_some_and(|a| *a >= offset) {
                    return match state.policies.get(policy_id) {
                        Some(entry) if entry.at == (partition, offset) => {
                            Outcome::Applied(Box::new(entry.record.clone()))
                        }
                        _ => Outcome::Lost,
                    };
                }
            }
            if tokio::time::timeout_at(deadline, progress.changed())
                .await
                .is_err()
            {
                return Outcome::Late;
            }
        }
    }

    pub fn get(&self, policy_id: &str) -> Option<Record> {
        let state = self.state.read().expect("records lock");
        state.policies.get(policy_id).map(|e| e.record.clone())
    }

    /// Up to `limit` records after `after` (a page token's position) in newest-first order
    /// that `keep` accepts, and the position to continue from when more may follow.
    pub fn page(
        &self,
        after: Option<&(i64, String)>,
        limit: usize,
        mut keep: impl FnMut(&Record) -> bool,
    ) -> (Vec<Record>, Option<(i64, String)>) {
        let state = self.state.read().expect("records lock");
        let range = match after {
            Some((created, id)) => state.order.range((
                Bound::Excluded((Reverse(*created), id.clone())),
                Bound::Unbounded,
            )),
            None => state.order.range(..),
        };
        let mut found: Vec<Record> = Vec::new();
        for (_, id) in range {
            let Some(entry) = state.policies.get(id) else {
                continue;
            };
            if keep(&entry.record) {
                if found.len() == limit {
                    let next = found.last().map(position);
                    return (found, next);
                }
                found.push(entry.record.clone());
            }
        }
        (found, None)
    }

    /// Every record that `pick` selects (the scheduler's due work).
    pub fn select(&self, mut pick: impl FnMut(&Record) -> bool) -> Vec<Record> {
        let state = self.state.read().expect("records lock");
        state
            .policies
            .values()
            .filter(|e| pick(&e.record))
            .map(|e| e.record.clone())
            .collect()
    }

    pub fn search(&self) -> &Library {
        &self.search
    }
}

/// The change a record of `policy.events` carries; `None` for other types and bad bytes.
fn decode(record: &TableRecord) -> Option<Change> {
    let payload = record.value.as_deref()?;
    let ty = record.meta.ty.as_str();
    let change = if ty == PolicyRecorded::TYPE {
        PolicyRecorded::decode(payload).map(|e| Change::Recorded(Box::new(e)))
    } else if ty == PolicyPublished::TYPE {
        PolicyPublished::decode(payload).map(|e| Change::Published(Box::new(e)))
    } else if ty == PolicyRevised::TYPE {
        PolicyRevised::decode(payload).map(|e| Change::Revised(Box::new(e)))
    } else if ty == PolicyWithdrawn::TYPE {
        PolicyWithdrawn::decode(payload).map(Change::Withdrawn)
    } else if ty == PolicyExpired::TYPE {
        PolicyExpired::decode(payload).map(Change::Expired)
    } else {
        tracing::debug!(ty, offset = record.offset, "not a publisher event: skipped");
        return None;
    };
    match change {
        Ok(change) => Some(change),
        Err(error) => {
            tracing::warn!(%error, ty, offset = record.offset, "undecodable policy event skipped");
            None
        }
    }
}

/// Where `record` sits in the newest-first order: its creation time (nanoseconds) and id.
fn position(record: &Record) -> (i64, String) {
    let created = record
        .policy
        .created_at
        .map_or(0, |t| t.seconds * 1_000_000_000 + i64::from(t.nanos));
    (created, record.policy.policy_id.clone())
}
