//! The loop with more than one record in flight: concurrency across keys, order within a
//! key, commits that never pass an unfinished record, and a rebalance while records are in
//! flight.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use zhida_bus::{ConsumerSpec, Group, HandleError, Handler, Record, Topic};
use zhida_proto::events::v1::PolicyPublished;

use crate::{committed, policy, setup, wait_for};

/// What a handler saw, shared by every member of a test's group.
#[derive(Default)]
struct Seen {
    /// Records whose effect happened, in the order they finished: (key, id).
    effects: Vec<(String, String)>,
    /// Keys with a record being handled right now.
    running: HashSet<String>,
    /// Two records of one key handled at the same time.
    overlaps: Vec<String>,
    now: usize,
    most: usize,
    /// First attempts of held records, per id.
    attempted: HashSet<String>,
}

/// Records each record's effect after a short pause; records whose id is listed in `hold`
/// block on their first attempt until `release` is cancelled, and then end without effect
/// (what a crashed or abandoned attempt looks like to the rest of the system).
#[derive(Clone)]
struct Probe {
    seen: Arc<Mutex<Seen>>,
    pause: Duration,
    hold: Arc<HashSet<String>>,
    release: CancellationToken,
}

impl Probe {
    fn new(seen: &Arc<Mutex<Seen>>, pause: Duration) -> Self {
        Self {
            seen: seen.clone(),
            pause,
            hold: Arc::default(),
            release: CancellationToken::new(),
        }
    }
}

#[async_trait]
impl Handler for Probe {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let policy: PolicyPublished = record.decode()?;
        let key = record.key_str().unwrap_or_default().to_string();
        let held = {
            let mut seen = self.seen.lock().expect("lock");
            if !seen.running.insert(key.clone()) {
                seen.overlaps.push(key.clone());
            }
            seen.now += 1;
            seen.most = seen.most.max(seen.now);
            self.hold.contains(&policy.policy_id) && seen.attempted.insert(policy.policy_id.clone())
        };
        if held {
            self.release.cancelled().await;
        } else {
            tokio::time::sleep(self.pause).await;
        }
        let mut seen = self.seen.lock().expect("lock");
        seen.running.remove(&key);
        seen.now -= 1;
        if !held {
            seen.effects.push((key, policy.policy_id));
        }
        Ok(())
    }
}

fn effects_of(seen: &Arc<Mutex<Seen>>) -> usize {
    seen.lock().expect("lock").effects.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_of_different_keys_run_together_and_each_key_keeps_its_order() {
    let (config, producer) = setup("keys").await;
    // 10 keys, 20 records each, produced round by round so each key's order is known.
    for seq in 0..20 {
        let round = (0..10).map(|k| {
            let producer = producer.clone();
            async move {
                producer
                    .emit(&format!("k{k}"), &policy(&format!("k{k}-{seq:02}")))
                    .await
            }
        });
        for produced in futures::future::join_all(round).await {
            produced.expect("produced");
        }
    }

    let seen = Arc::new(Mutex::new(Seen::default()));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        ConsumerSpec::new(Group::Relay, Topic::PolicyEvents).in_flight(8),
        Probe::new(&seen, Duration::from_millis(5)),
        producer,
        shutdown.clone(),
    ));
    wait_for("all 200 handled", || effects_of(&seen) >= 200).await;
    shutdown.cancel();
    task.await.expect("join").expect("loop ends cleanly");

    let seen = seen.lock().expect("lock");
    assert!(
        seen.overlaps.is_empty(),
        "one key ran twice at once: {:?}",
        seen.overlaps
    );
    assert!(
        (2..=8).contains(&seen.most),
        "between 2 and 8 records at once, not {}",
        seen.most
    );
    let mut per_key: HashMap<&str, Vec<&str>> = HashMap::new();
    for (key, id) in &seen.effects {
        per_key.entry(key).or_default().push(id);
    }
    assert_eq!(per_key.len(), 10);
    for (key, ids) in per_key {
        let expected: Vec<String> = (0..20).map(|seq| format!("{key}-{seq:02}")).collect();
        assert_eq!(ids, expected, "{key} handled once each, in order");
    }
    let offsets = committed(&config);
    assert_eq!(
        offsets.iter().sum::<i64>(),
        200,
        "all committed: {offsets:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_committed_offset_never_passes_an_unfinished_record() {
    let (config, producer) = setup("commit").await;
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut stuck_at = None;
    for i in 0..60 {
        let id = format!("r{i:02}");
        let at = producer
            .emit(&format!("key-{i}"), &policy(&id))
            .await
            .expect("produced");
        ends.insert(at.partition, at.offset + 1);
        if i == 20 {
            stuck_at = Some(at);
        }
    }
    let stuck_at = stuck_at.expect("r20 produced");

    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut probe = Probe::new(&seen, Duration::ZERO);
    probe.hold = Arc::new(HashSet::from(["r20".to_string()]));
    let release = probe.release.clone();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        ConsumerSpec::new(Group::Relay, Topic::PolicyEvents).in_flight(16),
        probe,
        producer,
        shutdown.clone(),
    ));
    wait_for("every record but r20", || effects_of(&seen) >= 59).await;
    // Offsets are auto-committed every second: wait for the other partition's to land,
    // which proves commits are happening, then look at r20's.
    let other = 1 - stuck_at.partition;
    wait_for("the other partition committed to its end", || {
        committed(&config)[other as usize] == ends[&other]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let offsets = committed(&config);
    assert!(
        offsets[stuck_at.partition as usize] <= stuck_at.offset,
        "committed {offsets:?} while r20 (partition {}, offset {}) is unfinished",
        stuck_at.partition,
        stuck_at.offset
    );

    release.cancel();
    wait_for("r20's partition committed to its end", || {
        committed(&config)[stuck_at.partition as usize] == ends[&stuck_at.partition]
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("loop ends cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebalance_with_records_in_flight_loses_none_of_them() {
    let (config, producer) = setup("rebalance").await;
    let ids: Vec<String> = (0..100).map(|i| format!("r{i:03}")).collect();
    let sends = ids.iter().map(|id| {
        let producer = producer.clone();
        async move { producer.emit(id, &policy(id)).await }
    });
    for produced in futures::future::join_all(sends).await {
        produced.expect("produced");
    }
    let spec = ConsumerSpec::new(Group::Relay, Topic::PolicyEvents).in_flight(32);
    let seen = Arc::new(Mutex::new(Seen::default()));

    // The first member holds every tenth record on its first attempt, and finishes the rest.
    let mut first = Probe::new(&seen, Duration::from_millis(2));
    first.hold = Arc::new(ids.iter().skip(7).step_by(10).cloned().collect());
    let release = first.release.clone();
    let stop_first = CancellationToken::new();
    let first_task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        spec,
        first,
        producer.clone(),
        stop_first.clone(),
    ));
    wait_for("the first member finished all it could", || {
        effects_of(&seen) >= 90
    })
    .await;
    assert_eq!(
        seen.lock().expect("lock").attempted.len(),
        10,
        "all held records are in flight"
    );

    // A second member joins: the first one's partitions are revoked with records in flight.
    let stop_second = CancellationToken::new();
    let second_task = tokio::spawn(zhida_bus::run_consumer(
        config.clone(),
        spec,
        Probe::new(&seen, Duration::from_millis(2)),
        producer,
        stop_second.clone(),
    ));
    wait_for("every record's effect after the rebalance", || {
        let seen = seen.lock().expect("lock");
        seen.effects
            .iter()
            .map(|(_, id)| id)
            .collect::<HashSet<_>>()
            .len()
            == ids.len()
    })
    .await;
    // The abandoned first attempts end now; their partitions' new positions stay.
    release.cancel();
    wait_for("everything committed", || {
        committed(&config).iter().sum::<i64>() == 100
    })
    .await;
    stop_first.cancel();
    stop_second.cancel();
    first_task.await.expect("join").expect("first ends cleanly");
    second_task
        .await
        .expect("join")
        .expect("second ends cleanly");
    // Redelivered after the rebalance (idempotent effects in a real handler); printed
    // for whoever tunes `in_flight`.
    let repeated = effects_of(&seen) - ids.len();
    eprintln!("{repeated} records handled again after the rebalance");
}
