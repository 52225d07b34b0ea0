//! The relay stores' contract: what both implementations of [`SubscriberRegistry`],
//! [`WebhookOutbox`], [`RelayReach`] and [`FeedSignals`] must do. Outbox times are the
//! `now` the tests pass, offset from the clock, never waited for.

use std::{
    collections::HashSet,
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::broadcast::{self, error::RecvError};

use super::{
    Enqueued, FeedSignals, OutboxMessage, OutboxStats, ReachMark, RelayReach, StoredReach,
    SubscriberRegistry, WebhookOutbox,
};

/// Records are kept by id and listed in id order; every put and remove moves the
/// generation to a value it never had.
pub async fn registry_keeps_records_by_id_and_moves_its_generation(
    registry: &dyn SubscriberRegistry,
) {
    let mut generations = HashSet::new();
    let mut moved = async || {
        let generation = registry.generation().await.expect("generation");
        assert!(
            generations.insert(generation),
            "generation {generation} seen before"
        );
    };
    assert!(registry.all().await.expect("all").is_empty());
    assert_eq!(registry.get("s-1").await.expect("get"), None);
    moved().await;
    registry.put("s-2", b"two").await.expect("put");
    moved().await;
    registry.put("s-1", b"one").await.expect("put");
    moved().await;
    registry.put("s-2", b"two, revised").await.expect("put");
    moved().await;
    assert_eq!(
        registry.get("s-2").await.expect("get"),
        Some(b"two, revised".to_vec())
    );
    assert_eq!(
        registry.all().await.expect("all"),
        [
            ("s-1".to_string(), b"one".to_vec()),
            ("s-2".to_string(), b"two, revised".to_vec())
        ]
    );
    assert!(registry.remove("s-1").await.expect("remove"));
    moved().await;
    assert!(
        !registry.remove("s-1").await.expect("remove"),
        "already gone"
    );
    assert_eq!(registry.get("s-1").await.expect("get"), None);
    assert_eq!(
        registry.all().await.expect("all"),
        [("s-2".to_string(), b"two, revised".to_vec())]
    );
}

fn message(id: &str) -> OutboxMessage {
    OutboxMessage {
        id: id.to_string(),
        payload: format!("{{\"id\":\"{id}\"}}").into_bytes(),
    }
}

/// Queues message `id` at `endpoint`.
async fn enqueue(
    outbox: &dyn WebhookOutbox,
    endpoint: &str,
    id: &str,
    capacity: usize,
) -> Enqueued {
    outbox
        .enqueue(endpoint, &message(id), capacity)
        .await
        .expect("enqueue")
}

/// The endpoints due at `now` (up to 10), claimed for `lease`.
async fn claim(outbox: &dyn WebhookOutbox, now: SystemTime, lease: Duration) -> Vec<String> {
    outbox.claim_due(now, lease, 10).await.expect("claim")
}

async fn head_id(outbox: &dyn WebhookOutbox, endpoint: &str) -> Option<String> {
    outbox
        .head(endpoint)
        .await
        .expect("head")
        .map(|queued| queued.message.id)
}

/// An endpoint's messages come out in the order queued, each id once per endpoint: one
/// queued again, even after it was sent, is a duplicate; another endpoint may use it.
pub async fn outbox_queues_in_order_once_per_id(outbox: &dyn WebhookOutbox) {
    let before = SystemTime::now() - Duration::from_secs(1);
    for id in ["m-1", "m-2", "m-3"] {
        assert_eq!(enqueue(outbox, "e-1", id, 10).await, Enqueued::Added);
    }
    assert_eq!(enqueue(outbox, "e-1", "m-2", 10).await, Enqueued::Duplicate);
    assert_eq!(
        outbox.stats("e-1").await.expect("stats"),
        OutboxStats {
            pending: 3,
            overflowed: 0
        }
    );
    let head = outbox.head("e-1").await.expect("head").expect("a head");
    assert_eq!(head.message, message("m-1"));
    assert_eq!(head.attempts, 0);
    assert!(
        before <= head.queued_at && head.queued_at <= SystemTime::now(),
        "queued now: {:?}",
        head.queued_at
    );
    let mut sent = Vec::new();
    while let Some(head) = outbox.head("e-1").await.expect("head") {
        assert_eq!(head.message, message(&head.message.id), "payload kept");
        outbox
            .pop("e-1", &head.message.id, SystemTime::now())
            .await
            .expect("pop");
        sent.push(head.message.id);
        assert!(sent.len() <= 3, "pop removes the head");
    }
    assert_eq!(sent, ["m-1", "m-2", "m-3"]);
    assert_eq!(
        enqueue(outbox, "e-1", "m-1", 10).await,
        Enqueued::Duplicate,
        "ids are remembered after they were sent"
    );
    assert_eq!(outbox.stats("e-1").await.expect("stats").pending, 0);
    assert_eq!(
        enqueue(outbox, "e-2", "m-1", 10).await,
        Enqueued::Added,
        "ids are per endpoint"
    );
}

/// A queue holding its capacity refuses more and counts each refusal; a refused message
/// is not remembered, so it may be queued once there is room.
pub async fn outbox_refuses_beyond_its_capacity_and_counts_the_overflow(
    outbox: &dyn WebhookOutbox,
) {
    for id in ["m-1", "m-2"] {
        assert_eq!(enqueue(outbox, "e-1", id, 2).await, Enqueued::Added);
    }
    for id in ["m-3", "m-4"] {
        assert_eq!(enqueue(outbox, "e-1", id, 2).await, Enqueued::Full);
    }
    assert_eq!(
        enqueue(outbox, "e-1", "m-1", 2).await,
        Enqueued::Duplicate,
        "a duplicate is not an overflow"
    );
    assert_eq!(
        outbox.stats("e-1").await.expect("stats"),
        OutboxStats {
            pending: 2,
            overflowed: 2
        }
    );
    outbox
        .pop("e-1", "m-1", SystemTime::now())
        .await
        .expect("pop");
    assert_eq!(enqueue(outbox, "e-1", "m-3", 2).await, Enqueued::Added);
    assert_eq!(
        outbox.stats("e-1").await.expect("stats"),
        OutboxStats {
            pending: 2,
            overflowed: 2
        }
    );
    assert_eq!(
        outbox.stats("e-9").await.expect("stats"),
        OutboxStats::default()
    );
}

/// Claims return endpoints due at `now`, earliest first and up to the limit; a claimed
/// endpoint is not returned again until its lease has passed.
pub async fn outbox_claims_due_endpoints_once_per_lease(outbox: &dyn WebhookOutbox) {
    let lease = Duration::from_secs(30);
    let secs = Duration::from_secs;
    for endpoint in ["e-1", "e-2"] {
        enqueue(outbox, endpoint, "m-1", 10).await;
    }
    let t0 = SystemTime::now();
    assert!(
        outbox
            .claim_due(t0, lease, 0)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        claim(outbox, t0 - secs(60), lease).await.is_empty(),
        "not due before they were queued"
    );
    assert_eq!(
        outbox.claim_due(t0, lease, 1).await.expect("claim"),
        ["e-1"]
    );
    assert_eq!(claim(outbox, t0, lease).await, ["e-2"], "e-1 is leased");
    assert!(
        claim(outbox, t0 + secs(29), lease).await.is_empty(),
        "both leased"
    );
    assert_eq!(
        claim(outbox, t0 + secs(30), lease).await,
        ["e-1", "e-2"],
        "the leases lapsed"
    );
    assert!(claim(outbox, t0 + secs(59), lease).await.is_empty());
}

/// Pop and retry act on the head only when named by id; a retry counts an attempt and makes
/// the endpoint due when asked, a pop makes the next message due when asked, and an empty
/// queue is due never, until a message is queued.
pub async fn outbox_pops_and_retries_only_the_head(outbox: &dyn WebhookOutbox) {
    let lease = Duration::from_secs(300);
    let secs = Duration::from_secs;
    for id in ["m-1", "m-2"] {
        enqueue(outbox, "e-1", id, 10).await;
    }
    let t0 = SystemTime::now();
    outbox.pop("e-1", "m-2", t0).await.expect("pop");
    assert_eq!(head_id(outbox, "e-1").await.as_deref(), Some("m-1"));
    assert_eq!(outbox.retry("e-1", "m-2", t0).await.expect("retry"), 0);
    assert_eq!(outbox.retry("e-9", "m-1", t0).await.expect("retry"), 0);

    assert_eq!(
        outbox
            .retry("e-1", "m-1", t0 + secs(10))
            .await
            .expect("retry"),
        1
    );
    assert_eq!(
        outbox
            .retry("e-1", "m-1", t0 + secs(20))
            .await
            .expect("retry"),
        2
    );
    let head = outbox.head("e-1").await.expect("head").expect("a head");
    assert_eq!((head.message.id.as_str(), head.attempts), ("m-1", 2));
    assert!(
        claim(outbox, t0 + secs(19), lease).await.is_empty(),
        "due when the last retry said"
    );
    assert_eq!(claim(outbox, t0 + secs(20), lease).await, ["e-1"]);

    outbox.pop("e-1", "m-1", t0 + secs(50)).await.expect("pop");
    let head = outbox.head("e-1").await.expect("head").expect("a head");
    assert_eq!((head.message.id.as_str(), head.attempts), ("m-2", 0));
    assert!(
        claim(outbox, t0 + secs(49), lease).await.is_empty(),
        "the pop's next_at replaces the lease"
    );
    assert_eq!(claim(outbox, t0 + secs(50), lease).await, ["e-1"]);

    outbox.pop("e-1", "m-2", t0 + secs(60)).await.expect("pop");
    assert_eq!(outbox.head("e-1").await.expect("head"), None);
    assert_eq!(outbox.retry("e-1", "m-2", t0).await.expect("retry"), 0);
    assert!(
        claim(outbox, t0 + secs(10_000), lease).await.is_empty(),
        "an empty queue is not due"
    );
    enqueue(outbox, "e-1", "m-3", 10).await;
    assert_eq!(
        claim(outbox, SystemTime::now(), lease).await,
        ["e-1"],
        "a queue that was empty is due now"
    );
}

/// A paused endpoint is never claimed (whatever pop and retry say) but still queues; resume
/// makes it due when asked if it has messages.
pub async fn outbox_paused_endpoints_queue_but_are_not_claimed(outbox: &dyn WebhookOutbox) {
    let lease = Duration::from_secs(30);
    let later = SystemTime::now() + Duration::from_secs(3600);
    enqueue(outbox, "e-1", "m-1", 10).await;
    outbox.pause("e-1").await.expect("pause");
    assert!(claim(outbox, later, lease).await.is_empty());
    assert_eq!(enqueue(outbox, "e-1", "m-2", 10).await, Enqueued::Added);
    assert_eq!(outbox.retry("e-1", "m-1", later).await.expect("retry"), 1);
    assert!(claim(outbox, later, lease).await.is_empty());
    outbox.pop("e-1", "m-1", later).await.expect("pop");
    assert!(claim(outbox, later, lease).await.is_empty());
    assert_eq!(outbox.stats("e-1").await.expect("stats").pending, 1);

    let at = later + Duration::from_secs(10);
    outbox.resume("e-1", at).await.expect("resume");
    assert!(claim(outbox, later, lease).await.is_empty());
    assert_eq!(claim(outbox, at, lease).await, ["e-1"]);

    outbox.pause("e-2").await.expect("pause");
    outbox.resume("e-2", later).await.expect("resume");
    assert!(
        claim(outbox, later, lease).await.is_empty(),
        "an empty endpoint is not due on resume"
    );
    outbox.pause("e-2").await.expect("pause");
    enqueue(outbox, "e-2", "m-1", 10).await;
    assert!(
        claim(outbox, later, lease).await.is_empty(),
        "paused while empty, then queued: still paused"
    );
    outbox.resume("e-2", later).await.expect("resume");
    assert_eq!(claim(outbox, later, lease).await, ["e-2"]);
}

/// Clearing an endpoint drops its queue, remembered ids, pause and counters, answering how
/// many were pending; other endpoints keep theirs.
pub async fn outbox_clear_forgets_the_endpoint(outbox: &dyn WebhookOutbox) {
    let lease = Duration::from_secs(30);
    for id in ["m-1", "m-2", "m-3"] {
        enqueue(outbox, "e-1", id, 2).await;
    }
    enqueue(outbox, "e-2", "m-1", 2).await;
    outbox.pause("e-1").await.expect("pause");
    assert_eq!(outbox.clear("e-1").await.expect("clear"), 2);
    assert_eq!(outbox.clear("e-1").await.expect("clear"), 0);
    assert_eq!(outbox.clear("e-9").await.expect("clear"), 0);
    assert_eq!(
        outbox.stats("e-1").await.expect("stats"),
        OutboxStats::default()
    );
    assert_eq!(outbox.head("e-1").await.expect("head"), None);
    let now = SystemTime::now();
    assert_eq!(
        claim(outbox, now, lease).await,
        ["e-2"],
        "only the other endpoint"
    );
    assert_eq!(
        enqueue(outbox, "e-1", "m-1", 2).await,
        Enqueued::Added,
        "its ids are forgotten"
    );
    assert_eq!(
        claim(outbox, SystemTime::now(), lease).await,
        ["e-1"],
        "its pause is forgotten"
    );
    assert_eq!(head_id(outbox, "e-2").await.as_deref(), Some("m-1"));
}

fn policies(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Marks are idempotent and the first reach of a subscriber stays; the reach of a policy
/// lists each subscriber marked for it, in id order.
pub async fn reach_marks_are_idempotent_and_the_first_reach_stays(reach: &dyn RelayReach) {
    let first = ReachMark::Reached { tier: 2, by: 1 };
    reach
        .mark("s-2", &policies(&["p-1", "p-2"]), first)
        .await
        .expect("mark");
    reach
        .mark("s-2", &policies(&["p-1", "p-2"]), first)
        .await
        .expect("mark");
    reach
        .mark(
            "s-2",
            &policies(&["p-1"]),
            ReachMark::Reached { tier: 3, by: 2 },
        )
        .await
        .expect("mark");
    reach
        .mark("s-2", &policies(&["p-1"]), ReachMark::WebhookFailed)
        .await
        .expect("mark");
    for mark in [
        ReachMark::WebhookDelivered,
        ReachMark::Pulled,
        ReachMark::Pulled,
    ] {
        reach
            .mark("s-1", &policies(&["p-1"]), mark)
            .await
            .expect("mark");
    }
    reach
        .mark("s-3", &[], ReachMark::Streamed)
        .await
        .expect("marking no policy");
    reach
        .mark("s-3", &policies(&["p-2"]), ReachMark::Streamed)
        .await
        .expect("mark");
    assert_eq!(
        reach.reach("p-1").await.expect("reach"),
        [
            StoredReach {
                subscriber_id: "s-1".into(),
                webhook_delivered: true,
                pulled: true,
                ..StoredReach::default()
            },
            StoredReach {
                subscriber_id: "s-2".into(),
                tier: 2,
                by: 1,
                webhook_failed: true,
                ..StoredReach::default()
            },
        ]
    );
    assert_eq!(
        reach.reach("p-2").await.expect("reach"),
        [
            StoredReach {
                subscriber_id: "s-2".into(),
                tier: 2,
                by: 1,
                ..StoredReach::default()
            },
            StoredReach {
                subscriber_id: "s-3".into(),
                streamed: true,
                ..StoredReach::default()
            },
        ]
    );
    assert!(reach.reach("p-9").await.expect("reach").is_empty());
}

/// A member's delivery states are ORed, as bits, into each subscriber that forwarded it the
/// policy, and only there: a member never forwarded the policy records nothing.
pub async fn reach_member_states_go_to_forwarders_only(reach: &dyn RelayReach) {
    let reached = ReachMark::Reached { tier: 1, by: 1 };
    for subscriber in ["s-1", "s-2"] {
        reach
            .mark(subscriber, &policies(&["p-1", "p-2"]), reached)
            .await
            .expect("mark");
    }
    reach
        .forwarded("p-1", "s-1", &policies(&["c-2", "c-1"]))
        .await
        .expect("forwarded");
    reach
        .forwarded("p-1", "s-2", &policies(&["c-1"]))
        .await
        .expect("forwarded");
    assert_eq!(reach.member_state("p-1", "c-1", 2).await.expect("state"), 2);
    assert_eq!(reach.member_state("p-1", "c-1", 2).await.expect("state"), 2);
    assert_eq!(reach.member_state("p-1", "c-1", 0).await.expect("state"), 2);
    assert_eq!(
        reach.member_state("p-1", "c-2", 31).await.expect("state"),
        1
    );
    assert_eq!(reach.member_state("p-1", "c-9", 2).await.expect("state"), 0);
    assert_eq!(
        reach.member_state("p-2", "c-1", 2).await.expect("state"),
        0,
        "forwarded another policy"
    );
    reach
        .forwarded("p-1", "s-1", &policies(&["c-1"]))
        .await
        .expect("forwarded again");
    reach
        .forwarded("p-1", "s-3", &policies(&["c-3"]))
        .await
        .expect("forwarded without a reach");

    let reached_with = |subscriber: &str, members: &[(&str, u32)]| StoredReach {
        subscriber_id: subscriber.into(),
        tier: 1,
        by: 1,
        members: members.iter().map(|(m, s)| (m.to_string(), *s)).collect(),
        ..StoredReach::default()
    };
    assert_eq!(
        reach.reach("p-1").await.expect("reach"),
        [
            reached_with("s-1", &[("c-1", 0b101), ("c-2", 1 << 31)]),
            reached_with("s-2", &[("c-1", 0b101)]),
            StoredReach {
                subscriber_id: "s-3".into(),
                members: vec![("c-3".into(), 0)],
                ..StoredReach::default()
            },
        ]
    );
    assert_eq!(
        reach.reach("p-2").await.expect("reach"),
        [reached_with("s-1", &[]), reached_with("s-2", &[])]
    );
}

/// A removed subscriber is no longer listed in any policy, and its members' states go
/// only to the forwarders that remain.
pub async fn reach_of_a_removed_subscriber_is_not_listed(reach: &dyn RelayReach) {
    let reached = ReachMark::Reached { tier: 1, by: 1 };
    for subscriber in ["s-1", "s-2"] {
        reach
            .mark(subscriber, &policies(&["p-1", "p-2"]), reached)
            .await
            .expect("mark");
        reach
            .forwarded("p-1", subscriber, &policies(&["c-1"]))
            .await
            .expect("forwarded");
    }
    reach
        .mark("s-1", &policies(&["p-3"]), ReachMark::Pulled)
        .await
        .expect("mark");
    reach.remove_subscriber("s-1").await.expect("remove");
    reach
        .remove_subscriber("s-9")
        .await
        .expect("remove unknown");
    let listed = |policy: &'static str| async move {
        reach
            .reach(policy)
            .await
            .expect("reach")
            .into_iter()
            .map(|r| r.subscriber_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(listed("p-1").await, ["s-2"]);
    assert_eq!(listed("p-2").await, ["s-2"]);
    assert!(listed("p-3").await.is_empty());
    assert_eq!(reach.member_state("p-1", "c-1", 2).await.expect("state"), 1);
    assert_eq!(
        reach.reach("p-1").await.expect("reach")[0].members,
        [("c-1".to_string(), 0b100)]
    );
}

/// The next signal named `feed` (others skipped).
async fn signal_named(receiver: &mut broadcast::Receiver<String>, feed: &str) {
    loop {
        match receiver.recv().await {
            Ok(name) if name == feed => return,
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => panic!("the signals closed"),
        }
    }
}

/// Sends `feed`'s signal on `from` until `receiver` hears it. Signals are best effort, so
/// one may be missed while a Redis subscription starts.
async fn until_heard(
    from: &dyn FeedSignals,
    receiver: &mut broadcast::Receiver<String>,
    feed: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        from.notify(feed).await.expect("notify");
        if tokio::time::timeout(Duration::from_millis(100), signal_named(receiver, feed))
            .await
            .is_ok()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{feed} was never heard");
    }
}

/// A signal reaches every subscriber, of this replica and of another (`a` and `b` share
/// their signals as replicas do).
pub async fn feed_signals_reach_every_subscriber(a: &dyn FeedSignals, b: &dyn FeedSignals) {
    let mut at_a = a.subscribe();
    let mut at_b = b.subscribe();
    until_heard(b, &mut at_a, "s-1").await;
    until_heard(b, &mut at_b, "s-1").await;
    a.notify("s-2").await.expect("notify");
    for receiver in [&mut at_a, &mut at_b] {
        tokio::time::timeout(Duration::from_secs(5), signal_named(receiver, "s-2"))
            .await
            .expect("once subscribed, both hear every signal");
    }
}
