//! The feed's contract: what both [`Feed`] implementations must do.

use super::{Feed, FeedReadError};

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

/// An entry's state changes in place, for any entry (appended or not), and reads back per id.
pub async fn feed_states_change_in_place(feed: &dyn Feed) {
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(feed.states(&[]).await.expect("states").is_empty());
    assert_eq!(feed.states(&ids(&["p-1"])).await.expect("states"), [None]);
    assert!(feed.append("p-1", b"item").await.expect("append"));
    feed.set_state("p-1", b"revised").await.expect("set");
    feed.set_state("p-1", b"withdrawn").await.expect("set");
    feed.set_state("p-9", b"before its entry")
        .await
        .expect("set");
    assert_eq!(
        feed.states(&ids(&["p-1", "p-2", "p-9"]))
            .await
            .expect("states"),
        [
            Some(b"withdrawn".to_vec()),
            None,
            Some(b"before its entry".to_vec())
        ]
    );
    let entries = feed.read(None, 10).await.expect("read");
    assert_eq!(entries.len(), 1, "states append nothing");
    assert_eq!(entries[0].payload, b"item");
}

/// Clearing a feed deletes it whole: entries, states and the ids appended (an id may be
/// appended again), and nothing of another feed.
pub async fn feed_clear_deletes_the_whole_feed(feed: &dyn Feed, other: &dyn Feed) {
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for feed in [feed, other] {
        assert!(feed.append("p-1", b"one").await.expect("append"));
        assert!(feed.append("p-2", b"two").await.expect("append"));
        feed.set_state("p-1", b"withdrawn").await.expect("set");
    }
    feed.clear().await.expect("clear");
    assert!(feed.read(None, 10).await.expect("read").is_empty());
    assert_eq!(
        feed.states(&ids(&["p-1"])).await.expect("states"),
        [None],
        "states go with it"
    );
    assert!(
        feed.append("p-2", b"again").await.expect("append"),
        "its ids are forgotten"
    );
    let entries = feed.read(None, 10).await.expect("read");
    assert_eq!(
        entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["p-2"]
    );
    assert_eq!(entries[0].payload, b"again");
    feed.clear().await.expect("clearing an empty feed");

    assert_eq!(
        other.read(None, 10).await.expect("read").len(),
        2,
        "the other feed stays"
    );
    assert_eq!(
        other.states(&ids(&["p-1"])).await.expect("states"),
        [Some(b"withdrawn".to_vec())]
    );
}
