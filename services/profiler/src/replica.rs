//! This replica's copy of the `profiles` table: the [`Directory`] rebuilt by replaying the
//! compacted topic, this replica's own writes applied ahead of the replay
//! (read-your-writes), and a way to wait until the replay has passed a given write.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use tokio::sync::Notify;
use zhida_bus::TableRecord;
use zhida_catalogue::Industries;
use zhida_proto::events::v1::{Profile, ProfileUpserted};
use zhida_store::LogPosition;

use crate::directory::{Directory, Resolution, Target};

/// Shared by the replay, the policy matcher and the gRPC service.
pub(crate) struct Replica {
    state: RwLock<State>,
    /// Woken whenever the replay applied a record.
    replayed: Notify,
}

struct State {
    directory: Directory,
    /// subject → offset of the last record this replica wrote for it. A write is applied at
    /// once (read-your-writes); replayed records older than it are skipped, or the replay
    /// would briefly bring back the previous version and a Subscribe reading it would
    /// write it back.
    ahead: HashMap<String, i64>,
    /// partition → offset of the last record the replay has passed.
    replayed: HashMap<i32, i64>,
}

impl State {
    /// Whether this copy of `key` includes the write that landed `at`: the replay passed
    /// it, or this replica wrote it (or a later version) itself.
    fn has_seen(&self, key: &str, at: LogPosition) -> bool {
        self.replayed
            .get(&at.partition)
            .is_some_and(|&offset| offset >= at.offset)
            || self
                .ahead
                .get(key)
                .is_some_and(|&offset| offset >= at.offset)
    }
}

impl Replica {
    /// An empty copy; `industries` are the codes stored subscription filters may name.
    pub fn new(industries: Industries) -> Self {
        Self {
            state: RwLock::new(State {
                directory: Directory::new(industries),
                ahead: HashMap::new(),
                replayed: HashMap::new(),
            }),
            replayed: Notify::new(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the directory (briefly: the replay waits meanwhile).
    pub fn with_directory<R>(&self, read: impl FnOnce(&Directory) -> R) -> R {
        read(&self.read().directory)
    }

    /// Applies one replayed record of the `profiles` topic.
    pub fn apply(&self, record: TableRecord) {
        self.apply_quietly(record);
        self.replayed.notify_waiters();
    }

    fn apply_quietly(&self, record: TableRecord) {
        let mut state = self.write();
        state.replayed.insert(record.partition, record.offset);
        if let Some(&written) = state.ahead.get(&record.key) {
            if record.offset < written {
                return;
            }
            state.ahead.remove(&record.key);
        }
        let directory = &mut state.directory;
        match record.value {
            None => {
                directory.remove(&record.key);
            }
            Some(bytes) => match prost::Message::decode(bytes.as_slice()) {
                Ok(ProfileUpserted {
                    profile: Some(profile),
                }) if profile.subject_id == record.key => directory.upsert(profile),
                // A table has no dead-letter topic: a record that cannot be a profile is
                // skipped loudly. Upserts are validated before they are written, so this
                // means tampering.
                _ => tracing::error!(
                    key = record.key,
                    "profiles record is not a valid ProfileUpserted; skipped"
                ),
            },
        }
    }

    /// Applies this replica's own write of `key`, acknowledged at `offset`, ahead of the
    /// replay.
    pub fn wrote(&self, key: &str, offset: i64, change: impl FnOnce(&mut Directory)) {
        let mut state = self.write();
        state.ahead.insert(key.to_string(), offset);
        change(&mut state.directory);
    }

    /// [`wrote`](Self::wrote) for a batch of upserts, each acknowledged at its offset,
    /// under one lock.
    pub fn wrote_profiles(&self, writes: impl IntoIterator<Item = (i64, Profile)>) {
        let mut state = self.write();
        for (offset, profile) in writes {
            state.ahead.insert(profile.subject_id.clone(), offset);
            state.directory.upsert(profile);
        }
    }

    /// Waits until this copy of `key` includes the write that landed `at`; false if it
    /// does not by `deadline`.
    pub async fn seen(&self, key: &str, at: LogPosition, deadline: tokio::time::Instant) -> bool {
        loop {
            // Registered before the check, so a record applied in between still wakes us.
            let replayed = self.replayed.notified();
            tokio::pin!(replayed);
            replayed.as_mut().enable();
            if self.read().has_seen(key, at) {
                return true;
            }
            if tokio::time::timeout_at(deadline, replayed).await.is_err() {
                return false;
            }
        }
    }

    /// Resolves `target` on a blocking thread: at a million profiles it takes up to a few
    /// hundred milliseconds, which must not stall an async worker.
    pub async fn resolve(
        self: &Arc<Self>,
        target: Target,
    ) -> Result<Resolution, tokio::task::JoinError> {
        let replica = self.clone();
        tokio::task::spawn_blocking(move || replica.read().directory.resolve(&target)).await
    }
}

#[cfg(test)]
mod tests {
    use zhida_bus::EventMeta;
    use zhida_proto::events::v1::{Profile, SubjectKind, Subscription};

    use super::*;

    fn replica() -> Replica {
        Replica::new(Industries::gbt4754_2017())
    }

    fn version(subscriptions: &[&str]) -> Profile {
        Profile {
            subject_id: "c-1".into(),
            kind: SubjectKind::Citizen as i32,
            display_name: "王芳".into(),
            street: "五角场街道".into(),
            subscriptions: subscriptions
                .iter()
                .map(|id| Subscription {
                    id: id.to_string(),
                    tags: vec!["housing".into()],
                    ..Subscription::default()
                })
                .collect(),
            ..Profile::default()
        }
    }

    fn record(profile: Option<&Profile>, offset: i64) -> TableRecord {
        TableRecord {
            key: "c-1".into(),
            value: profile.map(|p| {
                prost::Message::encode_to_vec(&ProfileUpserted {
                    profile: Some(p.clone()),
                })
            }),
            meta: EventMeta::default(),
            partition: 0,
            offset,
        }
    }

    fn subscriptions(replica: &Replica) -> Option<Vec<String>> {
        replica.with_directory(|directory| {
            let profile = directory.get("c-1")?;
            Some(profile.subscriptions.iter().map(|s| s.id.clone()).collect())
        })
    }

    #[test]
    fn the_replay_never_rolls_back_this_replicas_own_writes() {
        let replica = replica();
        let (v1, v2, v3) = (version(&["a"]), version(&["a", "b"]), version(&["c"]));
        // v1 and v2 written here (offsets 3 and 5) and applied at once.
        for (profile, offset) in [(&v1, 3), (&v2, 5)] {
            replica.wrote("c-1", offset, |d| d.upsert(profile.clone()));
        }
        // The replay is behind: v1 must not come back over v2.
        replica.apply(record(Some(&v1), 3));
        assert_eq!(subscriptions(&replica), Some(vec!["a".into(), "b".into()]));
        replica.apply(record(Some(&v2), 5));
        // Another replica's later write is applied as usual.
        replica.apply(record(Some(&v3), 7));
        assert_eq!(subscriptions(&replica), Some(vec!["c".into()]));
        // A local delete is not undone by replaying the upsert before it.
        replica.wrote("c-1", 9, |d| {
            d.remove("c-1");
        });
        replica.apply(record(Some(&v3), 7));
        assert_eq!(subscriptions(&replica), None);
        replica.apply(record(None, 9));
        assert_eq!(subscriptions(&replica), None);
    }

    #[tokio::test]
    async fn a_writer_waits_until_the_replay_passed_the_previous_write() {
        let replica = Arc::new(replica());
        let at = LogPosition {
            partition: 0,
            offset: 4,
        };
        let soon = || tokio::time::Instant::now() + std::time::Duration::from_millis(50);
        assert!(
            !replica.seen("c-1", at, soon()).await,
            "nothing replayed yet"
        );
        replica.apply(record(Some(&version(&["a"])), 3));
        assert!(!replica.seen("c-1", at, soon()).await, "offset 3 < 4");

        let waiting = {
            let replica = replica.clone();
            tokio::spawn(async move {
                let later = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
                replica.seen("c-1", at, later).await
            })
        };
        replica.apply(record(Some(&version(&["a", "b"])), 4));
        assert!(waiting.await.expect("joined"), "woken by the replay");
        // Its own later write counts as seen too.
        let ahead = LogPosition {
            partition: 0,
            offset: 8,
        };
        replica.wrote("c-1", 8, |_| {});
        assert!(replica.seen("c-1", ahead, soon()).await);
    }
}
