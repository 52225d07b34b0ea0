//! The one write path: decide against the current record, append the event, wait until
//! this replica's fold applied it, answer what the fold made of it. Used by the RPCs and by
//! the scheduler alike.

use std::{sync::Arc, time::Duration};

use zhida_bus::{Delivered, Producer};
use zhida_proto::Timestamp;

use crate::{
    error::Error,
    lifecycle::{self, Actor, Change, Command, Record},
    records::{Outcome, Records},
};

/// How long a write waits for its own event to come back through the fold.
const APPLY_WITHIN: Duration = Duration::from_secs(15);

pub struct Writer {
    pub producer: Producer,
    pub records: Arc<Records>,
    /// Changes on this replica go one at a time: publishing is a few changes a minute, and
    /// the log orders replicas anyway.
    lock: tokio::sync::Mutex<()>,
}

impl Writer {
    pub fn new(producer: Producer, records: Arc<Records>) -> Self {
        Self {
            producer,
            records,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Does `command` for `actor` on `policy_id`; `expected` is the generation the caller
    /// read (none for create and the scheduler).
    pub async fn change(
        &self,
        policy_id: &str,
        expected: Option<u64>,
        command: Command,
        actor: &Actor,
    ) -> Result<Record, Error> {
        let _one_at_a_time = self.lock.lock().await;
        let current = self.records.get(policy_id);
        if let (Some(expected), Some(record)) = (expected, &current)
            && lifecycle::visible(record, Some(actor))
            && record.policy.generation != expected
        {
            return Err(Error::Stale {
                expected,
                current: record.policy.generation,
            });
        }
        let change = lifecycle::decide(current.as_ref(), command, actor, now())?;
        let delivered = self.emit(&change).await?;
        match self
            .records
            .applied(
                policy_id,
                delivered.partition,
                delivered.offset,
                APPLY_WITHIN,
            )
            .await
        {
            Outcome::Applied(record) => {
                let record = *record;
                tracing::info!(
                    policy_id,
                    generation = record.policy.generation,
                    status = lifecycle::status_name(record.status()),
                    actor = actor.key(),
                    partition = delivered.partition,
                    offset = delivered.offset,
                    "policy changed"
                );
                Ok(record)
            }
            Outcome::Lost => Err(Error::Lost),
            Outcome::Late => Err(Error::Late),
        }
    }

    async fn emit(&self, change: &Change) -> Result<Delivered, Error> {
        let key = change.policy_id().to_string();
        let id = change.event_id();
        let producer = &self.producer;
        Ok(match change {
            Change::Recorded(e) => producer.emit_with_id(&key, &id, e.as_ref()).await?,
            Change::Published(e) => producer.emit_with_id(&key, &id, e.as_ref()).await?,
            Change::Revised(e) => producer.emit_with_id(&key, &id, e.as_ref()).await?,
            Change::Withdrawn(e) => producer.emit_with_id(&key, &id, e).await?,
            Change::Expired(e) => producer.emit_with_id(&key, &id, e).await?,
        })
    }
}

pub fn now() -> Timestamp {
    zhida_proto::timestamp_now()
}
