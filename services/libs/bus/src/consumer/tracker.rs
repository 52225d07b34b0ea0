//! The consumer loop's bookkeeping, pure: which records of its partitions are unfinished,
//! which may start now, and how far each partition may be committed.
//!
//! - A record starts at once unless a record with the same key (same partition) is still
//!   running; then it waits behind it, and starts when that one finishes: per-key order.
//!   Records without a key share one queue per partition.
//! - A partition's commit position is its lowest unfinished offset (or one past the
//!   highest admitted when none is unfinished): the committed offset never passes a record
//!   that is not finished, however many after it are.
//! - A revoked partition is forgotten: its waiting records are dropped (the next owner
//!   reads them again from the committed position) and finishing its running ones changes
//!   nothing, even if the partition comes back (a new assignment starts a new epoch).

use std::collections::{BTreeSet, HashMap, VecDeque, hash_map::Entry};

use super::Record;

/// Handed out with every record that may start; handed back when it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    key: Option<Vec<u8>>,
    epoch: u64,
}

/// What finishing a record changed.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    /// The next record of the same key, which may start now.
    pub next: Option<(Ticket, Record)>,
    /// The partition's new commit position (the next offset to read), when it advanced.
    pub commit: Option<i64>,
}

#[derive(Default)]
pub(crate) struct Tracker {
    partitions: HashMap<(String, i32), Partition>,
    epochs: u64,
}

struct Partition {
    epoch: u64,
    /// Admitted and not finished: running, or waiting behind their key.
    unfinished: BTreeSet<i64>,
    /// One past the highest offset admitted.
    end: i64,
    /// The commit position last handed out.
    committed: i64,
    /// Keys with a record running, each with the records waiting behind it.
    keys: HashMap<Option<Vec<u8>>, VecDeque<Record>>,
}

impl Tracker {
    /// Takes `record`, read from its partition. Returns it with its ticket if it may start
    /// now; otherwise it waits behind the running record of its key (or, when its offset is
    /// already unfinished here, is a duplicate read and dropped).
    pub fn admit(&mut self, record: Record) -> Option<(Ticket, Record)> {
        let id = (record.topic.clone(), record.partition);
        let partition = match self.partitions.entry(id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.epochs += 1;
                entry.insert(Partition {
                    epoch: self.epochs,
                    unfinished: BTreeSet::new(),
                    end: record.offset,
                    committed: record.offset,
                    keys: HashMap::new(),
                })
            }
        };
        if !partition.unfinished.insert(record.offset) {
            return None;
        }
        partition.end = partition.end.max(record.offset + 1);
        match partition.keys.entry(record.key.clone()) {
            Entry::Occupied(mut waiting) => {
                waiting.get_mut().push_back(record);
                None
            }
            Entry::Vacant(running) => {
                running.insert(VecDeque::new());
                Some((ticket_for(&record, partition.epoch), record))
            }
        }
    }

    /// The record of `ticket` finished (handled, or dead-lettered).
    pub fn finish(&mut self, ticket: &Ticket) -> Finished {
        let Some(partition) = self
            .partitions
            .get_mut(&(ticket.topic.clone(), ticket.partition))
            .filter(|p| p.epoch == ticket.epoch)
        else {
            return Finished::default();
        };
        partition.unfinished.remove(&ticket.offset);
        let next = match partition.keys.entry(ticket.key.clone()) {
            Entry::Occupied(mut waiting) => match waiting.get_mut().pop_front() {
                Some(record) => Some((ticket_for(&record, partition.epoch), record)),
                None => {
                    waiting.remove();
                    None
                }
            },
            Entry::Vacant(_) => None,
        };
        let position = partition
            .unfinished
            .first()
            .copied()
            .unwrap_or(partition.end);
        let commit = (position > partition.committed).then(|| {
            partition.committed = position;
            position
        });
        Finished { next, commit }
    }

    /// Forgets a partition this consumer no longer owns.
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }

    /// Records admitted and not finished, running or waiting.
    pub fn unfinished(&self) -> usize {
        self.partitions.values().map(|p| p.unfinished.len()).sum()
    }
}

fn ticket_for(record: &Record, epoch: u64) -> Ticket {
    Ticket {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        key: record.key.clone(),
        epoch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventMeta;

    fn record(partition: i32, offset: i64, key: &str) -> Record {
        Record {
            topic: "t".into(),
            partition,
            offset,
            key: (!key.is_empty()).then(|| key.as_bytes().to_vec()),
            payload: None,
            meta: EventMeta::default(),
        }
    }

    fn started(admitted: Option<(Ticket, Record)>) -> Ticket {
        admitted.expect("may start").0
    }

    #[test]
    fn records_of_different_keys_run_together_and_one_key_runs_in_order() {
        let mut tracker = Tracker::default();
        let a0 = started(tracker.admit(record(0, 10, "a")));
        let b0 = started(tracker.admit(record(0, 11, "b")));
        assert!(
            tracker.admit(record(0, 12, "a")).is_none(),
            "waits behind a@10"
        );
        assert!(
            tracker.admit(record(0, 13, "a")).is_none(),
            "waits behind a@12"
        );
        assert_eq!(tracker.unfinished(), 4);

        let finished = tracker.finish(&b0);
        assert!(finished.next.is_none());
        assert_eq!(finished.commit, None, "10 is unfinished");

        let finished = tracker.finish(&a0);
        let (a1, next) = finished.next.expect("a@12 starts");
        assert_eq!(next.offset, 12);
        assert_eq!(finished.commit, Some(12), "10 and 11 are done");

        let finished = tracker.finish(&a1);
        let (a2, next) = finished.next.expect("a@13 starts");
        assert_eq!(next.offset, 13);
        assert_eq!(finished.commit, Some(13));

        let finished = tracker.finish(&a2);
        assert!(finished.next.is_none());
        assert_eq!(
            finished.commit,
            Some(14),
            "everything done: one past the last"
        );
        assert_eq!(tracker.unfinished(), 0);
        started(tracker.admit(record(0, 14, "a")));
    }

    #[test]
    fn the_commit_position_never_passes_an_unfinished_record() {
        let mut tracker = Tracker::default();
        let tickets: Vec<_> = (0..100)
            .map(|i| started(tracker.admit(record(0, i, &format!("k{i}")))))
            .collect();
        // Everything but offset 40 finishes, in reverse.
        for ticket in tickets.iter().rev().filter(|t| t.offset != 40) {
            if let Some(position) = tracker.finish(ticket).commit {
                assert!(position <= 40, "committed {position} past unfinished 40");
            }
        }
        assert_eq!(tracker.finish(&tickets[40]).commit, Some(100));
    }

    #[test]
    fn keyless_records_share_one_queue_and_partitions_are_independent() {
        let mut tracker = Tracker::default();
        let first = started(tracker.admit(record(0, 0, "")));
        assert!(tracker.admit(record(0, 1, "")).is_none());
        let other = started(tracker.admit(record(1, 0, "")));
        assert_eq!(tracker.finish(&other).commit, Some(1));
        let finished = tracker.finish(&first);
        assert_eq!(finished.next.expect("second keyless").1.offset, 1);
        assert_eq!(finished.commit, Some(1));
    }

    #[test]
    fn a_revoked_partition_drops_its_waiting_records_and_ignores_late_finishes() {
        let mut tracker = Tracker::default();
        let old = started(tracker.admit(record(0, 5, "a")));
        assert!(tracker.admit(record(0, 6, "a")).is_none());
        tracker.revoke("t", 0);
        assert_eq!(tracker.unfinished(), 0);

        // Assigned again: read again from the committed position 5.
        let new = started(tracker.admit(record(0, 5, "a")));
        let late = tracker.finish(&old);
        assert!(late.next.is_none() && late.commit.is_none(), "{late:?}");
        assert!(tracker.admit(record(0, 6, "a")).is_none(), "a@5 still runs");
        let finished = tracker.finish(&new);
        assert_eq!(finished.next.expect("a@6").1.offset, 6);
        assert_eq!(finished.commit, Some(6));
    }

    #[test]
    fn a_record_read_twice_while_unfinished_is_not_started_twice() {
        let mut tracker = Tracker::default();
        let ticket = started(tracker.admit(record(0, 3, "a")));
        assert!(tracker.admit(record(0, 3, "a")).is_none());
        let finished = tracker.finish(&ticket);
        assert!(finished.next.is_none(), "the duplicate did not queue");
        assert_eq!(finished.commit, Some(4));
    }
}
