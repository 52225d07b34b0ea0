//! Contract tests both implementations of each store must pass. They are plain async
//! functions so the integration tests can run them against memory and against Redis.

use std::time::Duration;

use crate::{
    Begin, DeliveryKey, DeliveryLedger, DigestKey, DigestStore, Feed, FeedReadError, LogPosition,
    Outcome, OutcomeState, Status, WriteLeases,
};

fn key(policy: &str) -> DeliveryKey {
    DeliveryKey {
        policy_id: policy.into(),
        recipient_id: "c-0001".into(),
        channel: "email".into(),
    }
}

/// One sender at a time; the first outcome wins; abandoning frees the key for a retry.
pub async fn ledger_gives_each_delivery_to_one_sender(ledger: &dyn DeliveryLedger) {
    let k = key("p-1");
    assert_eq!(ledger.status(&k).await.expect("status"), None);
    let Begin::Acquired(token) = ledger
        .begin(&k, Duration::from_secs(30))
        .await
        .expect("begin")
    else {
        panic!("a fresh key must be acquired");
    };
    assert_eq!(
        ledger
            .begin(&k, Duration::from_secs(30))
            .await
            .expect("begin"),
        Begin::InFlight
    );
    assert_eq!(
        ledger.status(&k).await.expect("status"),
        Some(Status::InFlight)
    );

    ledger.abandon(&k, "not-the-token").await.expect("abandon");
    assert_eq!(
        ledger
            .begin(&k, Duration::from_secs(30))
            .await
            .expect("begin"),
        Begin::InFlight,
        "a stranger's abandon frees nothing"
    );
    ledger.abandon(&k, &token).await.expect("abandon");
    let Begin::Acquired(_) = ledger
        .begin(&k, Duration::from_secs(30))
        .await
        .expect("begin")
    else {
        panic!("an abandoned key must be acquirable again");
    };

    let sent = Outcome {
        state: OutcomeState::Sent,
        detail: "250 ok".into(),
    };
    ledger.finish(&k, &sent).await.expect("finish");
    let failed = Outcome {
        state: OutcomeState::Failed,
        detail: "late".into(),
    };
    ledger.finish(&k, &failed).await.expect("finish");
    assert_eq!(
        ledger
            .begin(&k, Duration::from_secs(30))
            .await
            .expect("begin"),
        Begin::Done(sent.clone()),
        "the first outcome wins"
    );
    assert_eq!(
        ledger.status(&k).await.expect("status"),
        Some(Status::Done(sent))
    );
    assert_eq!(
        ledger.status(&key("p-2")).await.expect("status"),
        None,
        "keys are independent"
    );
}

/// A holder that vanished loses its lease when it expires.
pub async fn ledger_lease_expires(ledger: &dyn DeliveryLedger) {
    let k = key("p-lease");
    assert!(matches!(
        ledger
            .begin(&k, Duration::from_millis(200))
            .await
            .expect("begin"),
        Begin::Acquired(_)
    ));
    assert_eq!(
        ledger
            .begin(&k, Duration::from_millis(200))
            .await
            .expect("begin"),
        Begin::InFlight
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Begin::Acquired(_) = ledger
            .begin(&k, Duration::from_secs(30))
            .await
            .expect("begin")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Appends are idempotent per id; paging by cursor returns each entry once, in order.
pub async fn feed_pages_by_cursor_and_ignores_duplicates(feed: &dyn Feed) {
    assert!(feed.read(None, 10).await.expect("read").is_empty());
    for i in 0..5 {
        assert!(
            feed.append(&format!("p-{i}"), format!("item {i}").as_bytes())
                .await
                .expect("append")
        );
    }
    assert!(
        !feed.append("p-2", b"again").await.expect("append"),
        "a duplicate id is not appended"
    );

    let first = feed.read(None, 2).await.expect("read");
    assert_eq!(
        first.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["p-0", "p-1"]
    );
    let rest = feed.read(Some(&first[1].cursor), 10).await.expect("read");
    assert_eq!(
        rest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["p-2", "p-3", "p-4"]
    );
    assert_eq!(rest[0].payload, b"item 2");
    assert!(
        feed.read(Some(&rest[2].cursor), 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(matches!(
        feed.read(Some("not a cursor"), 10).await,
        Err(FeedReadError::InvalidCursor(_))
    ));
}

fn digest_key(recipient: &str) -> DigestKey {
    DigestKey {
        recipient_id: recipient.into(),
        channel: "email".into(),
    }
}

/// Open digests fill once per policy, close into batches that survive until completed, and
/// a policy in a batch being sent does not go into the next one.
pub async fn digests_close_into_batches_once_per_policy(digests: &dyn DigestStore) {
    let (a, b) = (digest_key("c-a"), digest_key("c-b"));
    assert!(digests.close().await.expect("close").is_empty());
    digests.add(&a, "p-2", b"two").await.expect("add");
    digests.add(&a, "p-1", b"one").await.expect("add");
    digests.add(&a, "p-1", b"one").await.expect("add twice");
    digests.add(&b, "p-1", b"one").await.expect("add");
    assert_eq!(
        digests.close().await.expect("close"),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        digests.items(&a).await.expect("items"),
        [
            ("p-1".to_string(), b"one".to_vec()),
            ("p-2".to_string(), b"two".to_vec())
        ]
    );
    // A redelivered p-1 is already being sent; p-3 waits for the next digest.
    digests.add(&a, "p-1", b"one").await.expect("add");
    digests.add(&a, "p-3", b"three").await.expect("add");
    // Not completed (a crashed run): closing again returns the same batches, unchanged,
    // and keeps p-3 open because a's batch is still there.
    assert_eq!(
        digests.close().await.expect("close"),
        [a.clone(), b.clone()]
    );
    assert_eq!(digests.items(&a).await.expect("items").len(), 2);
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Completing with other ids (an overtaken run) removes nothing.
    digests
        .complete(&a, &ids(&["p-1"]))
        .await
        .expect("complete");
    assert_eq!(digests.items(&a).await.expect("items").len(), 2);
    digests
        .complete(&a, &ids(&["p-1", "p-2"]))
        .await
        .expect("complete");
    digests
        .complete(&b, &ids(&["p-1"]))
        .await
        .expect("complete");
    assert_eq!(
        digests.close().await.expect("close"),
        std::slice::from_ref(&a)
    );
    assert_eq!(
        digests.items(&a).await.expect("items"),
        [("p-3".to_string(), b"three".to_vec())]
    );
    digests
        .complete(&a, &ids(&["p-3"]))
        .await
        .expect("complete");
    assert!(digests.close().await.expect("close").is_empty());
    assert!(digests.items(&b).await.expect("items").is_empty());
}

/// One holder per key; releasing hands the position of the holder's write to the next one,
/// and a release without a write (or by a stranger) changes nothing it should not.
pub async fn leases_serialise_writers_and_hand_on_the_last_write(leases: &dyn WriteLeases) {
    let ttl = Duration::from_secs(30);
    let first = leases
        .acquire("c-1", ttl)
        .await
        .expect("acquire")
        .expect("a free key is acquired");
    assert_eq!(first.last_write, None, "nothing was written yet");
    assert_eq!(leases.acquire("c-1", ttl).await.expect("acquire"), None);
    assert!(
        leases.acquire("c-2", ttl).await.expect("acquire").is_some(),
        "leases are per key"
    );

    let at = LogPosition {
        partition: 2,
        offset: 41,
    };
    assert!(
        !leases
            .release("c-1", "not-the-token", Some(at))
            .await
            .expect("release"),
        "a stranger releases nothing"
    );
    assert_eq!(leases.acquire("c-1", ttl).await.expect("acquire"), None);
    assert!(
        leases
            .release("c-1", &first.token, Some(at))
            .await
            .expect("release")
    );

    let second = leases
        .acquire("c-1", ttl)
        .await
        .expect("acquire")
        .expect("released");
    assert_eq!(second.last_write, Some(at));
    // A writer that wrote nothing (its change was refused) keeps the previous position.
    assert!(
        leases
            .release("c-1", &second.token, None)
            .await
            .expect("release")
    );
    let third = leases
        .acquire("c-1", ttl)
        .await
        .expect("acquire")
        .expect("released");
    assert_eq!(third.last_write, Some(at));
    assert!(
        !leases
            .release("c-1", &second.token, None)
            .await
            .expect("release"),
        "a released token holds nothing"
    );
}

/// An expired lease can be taken over; its late release reports that and records nothing.
pub async fn write_lease_expires_and_its_late_release_records_nothing(leases: &dyn WriteLeases) {
    let early = LogPosition {
        partition: 0,
        offset: 7,
    };
    let setup = leases
        .acquire("c-1", Duration::from_secs(30))
        .await
        .expect("acquire")
        .expect("free");
    assert!(
        leases
            .release("c-1", &setup.token, Some(early))
            .await
            .expect("release")
    );

    let stale = leases
        .acquire("c-1", Duration::from_millis(150))
        .await
        .expect("acquire")
        .expect("free");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let next = loop {
        if let Some(lease) = leases
            .acquire("c-1", Duration::from_secs(30))
            .await
            .expect("acquire")
        {
            break lease;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an expired lease must be acquirable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(next.last_write, Some(early));
    let late = LogPosition {
        partition: 0,
        offset: 9,
    };
    assert!(
        !leases
            .release("c-1", &stale.token, Some(late))
            .await
            .expect("release"),
        "the expired holder must learn it lost the lease"
    );
    assert!(
        leases
            .release("c-1", &next.token, None)
            .await
            .expect("release")
    );
    let last = leases
        .acquire("c-1", Duration::from_secs(30))
        .await
        .expect("acquire")
        .expect("free");
    assert_eq!(
        last.last_write,
        Some(early),
        "the late write was not recorded"
    );
}
