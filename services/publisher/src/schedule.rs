//! Time-driven steps: an approved policy's scheduled `publish_at` comes, a live version's
//! `valid_until` passes. Scheduled work lives in the records (rebuilt from the log), so it
//! survives restarts; two replicas may both try, and the log keeps one (the other's event
//! does not apply, and downstream consumers dedup by event id).

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zhida_proto::events::v1::PolicyStatus;

use crate::{
    error::Error,
    lifecycle::{Actor, Command, Record},
    writer::{Writer, now},
};

/// How often due work is looked for.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(
    writer: Arc<Writer>,
    mut caught_up: watch::Receiver<bool>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Nothing is due before the records are complete.
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        result = caught_up.wait_for(|c| *c) => { result?; }
    }
    let actor = Actor::scheduler();
    loop {
        let at = now();
        let work = writer.records.select(|r| due(r, at.seconds).is_some());
        for record in work {
            let Some(command) = due(&record, at.seconds) else {
                continue;
            };
            let id = &record.policy.policy_id;
            match writer.change(id, None, command, &actor).await {
                Ok(_) => {}
                // Someone else did it, or the record moved on: look again next tick.
                Err(Error::State { .. } | Error::Lost | Error::Unresolved(_)) => {}
                Err(error) => {
                    tracing::warn!(policy_id = id, %error, "scheduled step failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

/// What is due for `record` at `now` (seconds).
fn due(record: &Record, now: i64) -> Option<Command> {
    let policy = &record.policy;
    match record.status() {
        PolicyStatus::Approved if policy.publish_at.is_some_and(|t| t.seconds <= now) => {
            Some(Command::Release)
        }
        PolicyStatus::Withdrawn | PolicyStatus::Expired => None,
        _ if policy.live_version > 0 => record
            .versions
            .get(&policy.live_version)
            .and_then(|live| live.valid_until)
            .filter(|until| until.seconds <= now)
            .map(|_| Command::Expire),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use zhida_proto::{
        Timestamp,
        events::v1::{Policy, PolicyPublished},
    };

    use super::*;

    #[test]
    fn due_work_follows_the_clock() {
        let approved = Record {
            policy: Policy {
                status: PolicyStatus::Approved as i32,
                publish_at: Some(Timestamp {
                    seconds: 100,
                    nanos: 0,
                }),
                ..Policy::default()
            },
            ..Record::default()
        };
        assert!(due(&approved, 99).is_none());
        assert!(matches!(due(&approved, 100), Some(Command::Release)));
        let mut live = Record {
            policy: Policy {
                status: PolicyStatus::Published as i32,
                live_version: 1,
                ..Policy::default()
            },
            ..Record::default()
        };
        live.versions.insert(
            1,
            PolicyPublished {
                valid_until: Some(Timestamp {
                    seconds: 200,
                    nanos: 0,
                }),
                ..PolicyPublished::default()
            },
        );
        assert!(due(&live, 199).is_none());
        assert!(matches!(due(&live, 200), Some(Command::Expire)));
        live.policy.status = PolicyStatus::Expired as i32;
        assert!(due(&live, 300).is_none(), "once");
    }
}
