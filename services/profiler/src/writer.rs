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

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use zhida_bus::{Producer, Topic};
use zhida_proto::events::v1::{Profile, ProfileUpserted};
use zhida_store::{Lease, LogPosition, WriteLeases};

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
            .with_directory(|directory| decide(directory.get(subject)))?;
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
