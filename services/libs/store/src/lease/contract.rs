//! The write leases' contract: what both [`WriteLeases`] implementations must do.

use std::time::Duration;

use super::{LogPosition, WriteLeases};

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
