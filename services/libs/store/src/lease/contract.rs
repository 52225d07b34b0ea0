//! The write leases' contract: what both [`WriteLeases`] implementations must do.

use std::time::Duration;

use super::{LogPosition, Release, WriteLeases};

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

/// Batches behave key by key as single calls do: a held key is not taken (nor a key named
/// twice, twice), each release answers for itself, and what a batch release records is
/// what the next holder is handed.
pub async fn leases_in_batches_behave_as_one_by_one(leases: &dyn WriteLeases) {
    let ttl = Duration::from_secs(30);
    assert_eq!(
        leases.acquire_many(&[], ttl).await.expect("acquire"),
        vec![]
    );
    let at = LogPosition {
        partition: 1,
        offset: 5,
    };
    let held = leases
        .acquire("b-1", ttl)
        .await
        .expect("acquire")
        .expect("free");
    assert!(
        leases
            .release("b-1", &held.token, Some(at))
            .await
            .expect("release")
    );
    let elsewhere = leases
        .acquire("b-2", ttl)
        .await
        .expect("acquire")
        .expect("free");

    let batch = leases
        .acquire_many(&["b-1", "b-2", "b-3", "b-3"], ttl)
        .await
        .expect("acquire_many");
    assert_eq!(batch.len(), 4);
    let first = batch[0].clone().expect("b-1 is free");
    assert_eq!(first.last_write, Some(at), "the last write is handed on");
    assert_eq!(batch[1], None, "b-2 is held elsewhere");
    let third = batch[2].clone().expect("b-3 is free");
    assert_eq!(third.last_write, None);
    assert_eq!(batch[3], None, "a key named twice is taken once");
    assert_eq!(
        leases.acquire("b-1", ttl).await.expect("acquire"),
        None,
        "a batch's lease excludes single writers"
    );

    let later = LogPosition {
        partition: 1,
        offset: 9,
    };
    let released = leases
        .release_many(&[
            Release {
                key: "b-1",
                token: &first.token,
                written: Some(later),
            },
            Release {
                key: "b-2",
                token: "not-the-token",
                written: Some(later),
            },
            Release {
                key: "b-3",
                token: &third.token,
                written: None,
            },
        ])
        .await
        .expect("release_many");
    assert_eq!(released, vec![true, false, true]);
    assert!(
        leases
            .release("b-2", &elsewhere.token, None)
            .await
            .expect("release"),
        "a stranger's batch release left b-2's holder alone"
    );
    let again = leases
        .acquire_many(&["b-1", "b-2", "b-3"], ttl)
        .await
        .expect("acquire_many");
    let positions: Vec<Option<LogPosition>> = again
        .iter()
        .map(|lease| lease.as_ref().expect("all released").last_write)
        .collect();
    assert_eq!(positions, vec![Some(later), None, None]);
}
