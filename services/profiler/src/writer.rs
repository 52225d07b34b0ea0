//! Profile writes, safe with any number of replicas. Every write (upsert, delete,
//! subscribe, unsubscribe) is a read-modify-write of the subject's record on the compacted
//! `profiles` topic, so two must never interleave:
//!
//! 1. take the subject's write lease (one holder across replicas, [`WriteLeases`]);
//! 2. wait until this replica has replayed the previous holder's append, wherever it was
//!    made (the lease hands on its position), so the change sees the latest profile;
//! 3. append what the change decides, and apply it here at once (read-your-writes);
//! 4. release the lease, recording where the append landed for the next holder.
//!
//! A holder appends only while its lease outlives the producer's timeout, so an append the
//! broker acknowledges lands while the lease is held. A holder that dies blocks the
//! subject's writes until its lease expires.
//!
//! Contact addresses are sealed under the subject's key before they are appended
//! ([`Contacts`]); a delete destroys the key first, under the lease (so it cannot destroy
//! the key of a profile created again meanwhile), then appends the tombstone. A delete cut
//! short between the two leaves the profile with unreadable addresses (the person asked
//! for them to go) until it is deleted again or upserted.
//!
//! An import ([`Writer::import`]) writes a chunk of upserts with the same steps and the
//! same guarantees per subject, batched: the chunk's leases are taken in one round trip
//! ([`WriteLeases::acquire_many`]); the subjects whose lease another writer holds wait and
//! are retried (after the others are written, so two imports never wait on each other)
//! until [`LEASE_WAIT`] passes without progress, never dropped. Each held subject waits for
//! its last write's replay as above, is sealed (its key fetched concurrently with the
//! others'), and skipped when the directory already holds exactly it (so an import repeated
//! appends nothing). The appends are produced together and their acknowledgements awaited
//! together; each acknowledged one is applied here, and all the leases are released in one
//! round trip, each with its own append's position. When some appends fail, the
//! acknowledged ones still are applied and recorded, and the import answers the failure.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use zhida_bus::{Producer, Topic};
use zhida_proto::events::v1::{Profile, ProfileUpserted};
use zhida_store::{Lease, LogPosition, Release, WriteLeases};

use crate::{
    contacts::Contacts,
    error::{Error, Result},
    replica::Replica,
};

/// How long a write waits for its subject's lease (held by a concurrent write on this or
/// another replica) before answering ABORTED.
const LEASE_WAIT: Duration = Duration::from_secs(10);

/// How long a write waits for this replica's replay to reach the subject's last write.
const REPLAY_WAIT: Duration = Duration::from_secs(5);

/// A write lease lasts the producer's timeout plus this. A holder appends only while at
/// least the producer's timeout plus half of this is left, so an acknowledged append lands
/// while the lease is held, with time left to release it.
const LEASE_SLACK: Duration = Duration::from_secs(10);

/// What a write does to a subject's profile.
pub(crate) enum Change {
    Put(Box<Profile>),
    Delete,
    /// Nothing to write (an idempotent call found its work done): no append.
    Keep,
}

impl Change {
    pub fn put(profile: Profile) -> Self {
        Self::Put(Box::new(profile))
    }
}

#[derive(Clone)]
pub(crate) struct Writer {
    replica: Arc<Replica>,
    producer: Producer,
    leases: Arc<dyn WriteLeases>,
    /// Seals addresses before they are written; shreds them on delete.
    contacts: Contacts,
    /// `kafka.produce_timeout` + [`LEASE_SLACK`].
    lease_ttl: Duration,
}

impl Writer {
    pub fn new(
        replica: Arc<Replica>,
        producer: Producer,
        leases: Arc<dyn WriteLeases>,
        contacts: Contacts,
        produce_timeout: Duration,
    ) -> Self {
        Self {
            replica,
            producer,
            leases,
            contacts,
            lease_ttl: produce_timeout + LEASE_SLACK,
        }
    }

    /// Writes what `decide` makes of the subject's current profile (`None`: there is none);
    /// see the module docs.
    pub async fn change(
        &self,
        subject: &str,
        decide: impl FnOnce(Option<&Profile>) -> Result<Change>,
    ) -> Result<()> {
        let lease = self.lease(subject).await?;
        let taken = Instant::now();
        let result = self.change_leased(subject, &lease, taken, decide).await;
        let written = result.as_ref().ok().copied().flatten();
        match self.leases.release(subject, &lease.token, written).await {
            Ok(true) => {}
            Ok(false) if written.is_some() => return Err(Error::LeaseLost),
            // Nothing was written: the change's own answer stands.
            Ok(false) => {}
            Err(error) if written.is_some() => return Err(Error::Leases(error)),
            Err(error) => tracing::warn!(%error, subject, "write lease not released"),
        }
        result.map(|_| ())
    }

    /// `profile` as the API answers it, its addresses opened.
    pub async fn opened(&self, profile: Profile) -> Result<Profile> {
        self.contacts.open(profile).await
    }

    /// Edits the subject's existing profile in place; [`Error::NoProfile`] if it has none.
    pub async fn edit(
        &self,
        subject: &str,
        edit: impl FnOnce(&mut Profile) -> Result<()>,
    ) -> Result<()> {
        self.change(subject, |current| {
            let mut profile = current
                .cloned()
                .ok_or_else(|| Error::NoProfile(subject.to_string()))?;
            edit(&mut profile)?;
            Ok(Change::put(profile))
        })
        .await
    }

    async fn change_leased(
        &self,
        subject: &str,
        lease: &Lease,
        taken: Instant,
        decide: impl FnOnce(Option<&Profile>) -> Result<Change>,
    ) -> Result<Option<LogPosition>> {
        if let Some(at) = lease.last_write {
            let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
            if !self.replica.seen(subject, at, deadline).await {
                tracing::warn!(subject, %at, "replay has not reached the last write");
                return Err(Error::Behind);
            }
        }
        let mut change = self
            .replica
            .with_directory(|directory| decide(directory.get(subject).as_ref()))?;
        match &mut change {
            Change::Put(profile) => self.contacts.seal(profile).await?,
            Change::Delete => self.contacts.shred(subject).await?,
            Change::Keep => {}
        }
        if taken.elapsed() > LEASE_SLACK / 2 {
            return Err(Error::LeaseLost);
        }
        let delivered = match &change {
            Change::Put(profile) => {
                let event = ProfileUpserted {
                    profile: Some(Profile::clone(profile)),
                };
                self.producer.emit(subject, &event).await
            }
            Change::Delete => self.producer.tombstone(Topic::Profiles, subject).await,
            Change::Keep => return Ok(None),
        }?;
        self.replica
            .wrote(subject, delivered.offset, |directory| match change {
                Change::Put(profile) => directory.upsert(*profile),
                Change::Delete => {
                    directory.remove(subject);
                }
                Change::Keep => {}
            });
        Ok(Some(LogPosition {
            partition: delivered.partition,
            offset: delivered.offset,
        }))
    }

    /// Upserts `profiles` (each checked, its subscriptions given ids) as one batch, a
    /// subject named twice as its last profile; answers how many subjects were already
    /// stored exactly so (nothing appended for them). See the module docs.
    pub async fn import(&self, profiles: Vec<Profile>) -> Result<usize> {
        let mut pending = last_per_subject(profiles);
        let mut unchanged = 0;
        let mut deadline = Instant::now() + LEASE_WAIT;
        let mut pause = Duration::from_millis(1);
        while !pending.is_empty() {
            let keys: Vec<&str> = pending.iter().map(|p| p.subject_id.as_str()).collect();
            let leases = self.leases.acquire_many(&keys, self.lease_ttl).await?;
            let taken = Instant::now();
            let mut held = Vec::new();
            let mut waiting = Vec::new();
            for (profile, lease) in pending.into_iter().zip(leases) {
                match lease {
                    Some(lease) => held.push((profile, lease)),
                    None => waiting.push(profile),
                }
            }
            pending = waiting;
            if !held.is_empty() {
                unchanged += self.import_leased(held, taken).await?;
                deadline = Instant::now() + LEASE_WAIT;
                pause = Duration::from_millis(1);
                continue;
            }
            if Instant::now() + pause >= deadline {
                return Err(Error::Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        Ok(unchanged)
    }

    /// Writes `held` (each with its subject's lease, taken at `taken`) and releases the
    /// leases in one round trip; answers how many were unchanged.
    async fn import_leased(
        &self,
        mut held: Vec<(Profile, Lease)>,
        taken: Instant,
    ) -> Result<usize> {
        let mut written = vec![None; held.len()];
        let result = self.import_held(&mut held, taken, &mut written).await;
        let releases: Vec<Release<'_>> = held
            .iter()
            .zip(&written)
            .map(|((profile, lease), written)| Release {
                key: &profile.subject_id,
                token: &lease.token,
                written: *written,
            })
            .collect();
        let any_written = written.iter().any(Option::is_some);
        match self.leases.release_many(&releases).await {
            Ok(released) => {
                let lost = released
                    .iter()
                    .zip(&written)
                    .any(|(released, written)| !released && written.is_some());
                if lost {
                    return Err(Error::LeaseLost);
                }
            }
            Err(error) if any_written => return Err(Error::Leases(error)),
            Err(error) => tracing::warn!(%error, "import's write leases not released"),
        }
        result
    }

    /// The steps between taking and releasing `held`'s leases: `written[i]` is set to where
    /// profile i's append landed, for each one acknowledged (also when others failed).
    async fn import_held(
        &self,
        held: &mut [(Profile, Lease)],
        taken: Instant,
        written: &mut [Option<LogPosition>],
    ) -> Result<usize> {
        let replay_deadline = tokio::time::Instant::now() + REPLAY_WAIT;
        for (profile, lease) in held.iter() {
            if let Some(at) = lease.last_write
                && !self
                    .replica
                    .seen(&profile.subject_id, at, replay_deadline)
                    .await
            {
                tracing::warn!(subject = profile.subject_id, %at, "replay has not reached the last write");
                return Err(Error::Behind);
            }
        }
        let stored: Vec<Option<Profile>> = self.replica.with_directory(|directory| {
            held.iter()
                .map(|(profile, _)| directory.get(&profile.subject_id))
                .collect()
        });
        let changed = futures::future::try_join_all(held.iter_mut().zip(&stored).map(
            |((profile, _), stored)| self.contacts.seal_unless_stored(profile, stored.as_ref()),
        ))
        .await?;
        if taken.elapsed() > LEASE_SLACK / 2 {
            return Err(Error::LeaseLost);
        }
        let appends = held
            .iter()
            .zip(&changed)
            .enumerate()
            .filter(|(_, (_, changed))| **changed)
            .map(|(i, ((profile, _), _))| {
                let event = ProfileUpserted {
                    profile: Some(profile.clone()),
                };
                async move { (i, self.producer.emit(&profile.subject_id, &event).await) }
            });
        let delivered = futures::future::join_all(appends).await;
        let mut failure = None;
        let mut applied = Vec::with_capacity(delivered.len());
        for (i, outcome) in delivered {
            match outcome {
                Ok(delivered) => {
                    written[i] = Some(LogPosition {
                        partition: delivered.partition,
                        offset: delivered.offset,
                    });
                    applied.push((delivered.offset, held[i].0.clone()));
                }
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        self.replica.wrote_profiles(applied);
        match failure {
            Some(error) => Err(Error::Log(error)),
            None => Ok(changed.iter().filter(|changed| !**changed).count()),
        }
    }

    /// Takes `subject`'s write lease, waiting for a concurrent writer up to [`LEASE_WAIT`].
    async fn lease(&self, subject: &str) -> Result<Lease> {
        let deadline = Instant::now() + LEASE_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(lease) = self.leases.acquire(subject, self.lease_ttl).await? {
                return Ok(lease);
            }
            if Instant::now() + pause >= deadline {
                return Err(Error::Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// `profiles` with each subject once, as its last profile (a later line replaces an
/// earlier one, as on the topic), in the order of their last appearance.
fn last_per_subject(profiles: Vec<Profile>) -> Vec<Profile> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, profile) in profiles.iter().enumerate() {
        last.insert(&profile.subject_id, i);
    }
    let keep: Vec<bool> = (0..profiles.len())
        .map(|i| last.get(profiles[i].subject_id.as_str()) == Some(&i))
        .collect();
    profiles
        .into_iter()
        .zip(keep)
        .filter_map(|(profile, keep)| keep.then_some(profile))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: &str, name: &str) -> Profile {
        Profile {
            subject_id: id.into(),
            display_name: name.into(),
            ..Profile::default()
        }
    }

    #[test]
    fn a_subject_named_twice_in_a_batch_is_written_once_as_its_last_profile() {
        let batch = last_per_subject(vec![
            profile("a", "first"),
            profile("b", "only"),
            profile("a", "second"),
            profile("c", "only"),
        ]);
        let got: Vec<(&str, &str)> = batch
            .iter()
            .map(|p| (p.subject_id.as_str(), p.display_name.as_str()))
            .collect();
        assert_eq!(got, vec![("b", "only"), ("a", "second"), ("c", "only")]);
    }
}
