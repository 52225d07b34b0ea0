//! The inbox's contract: what both [`Inbox`] implementations must do.

use std::time::Duration;

use super::{Inbox, InboxItem, InboxReadError, MarkRead};

const MAX: usize = 100;

fn ids(items: &[InboxItem]) -> Vec<&str> {
    items.iter().map(|item| item.id.as_str()).collect()
}

/// Adds `p-0` … `p-{n-1}` to `recipient`'s inbox, oldest first.
async fn fill(inbox: &dyn Inbox, recipient: &str, n: usize) {
    for i in 0..n {
        let payload = format!("notice {i}");
        assert!(
            inbox
                .add(recipient, &format!("p-{i}"), payload.as_bytes(), MAX)
                .await
                .expect("add")
        );
    }
}

/// A redelivered request adds nothing and keeps the first payload; inboxes are separate.
pub async fn inbox_adds_each_item_once(inbox: &dyn Inbox) {
    assert!(inbox.add("c-1", "p-1", b"first", MAX).await.expect("add"));
    assert!(
        !inbox.add("c-1", "p-1", b"again", MAX).await.expect("add"),
        "a redelivered item is not added again"
    );
    assert!(
        inbox.add("c-2", "p-1", b"other", MAX).await.expect("add"),
        "each recipient has their own inbox"
    );
    let page = inbox.list("c-1", None, 10).await.expect("list");
    assert_eq!(ids(&page.items), ["p-1"]);
    assert_eq!(page.items[0].payload, b"first");
    assert!(!page.items[0].read);
    assert!(page.items[0].added_at_ms > 0);
    assert_eq!((page.next_cursor, page.unread), (None, 1));
}

/// Pages run newest first, each continuing after the last cursor, and end with no cursor;
/// a cursor the inbox did not issue is an error, not an empty page.
pub async fn inbox_pages_newest_first_and_refuses_cursors_it_did_not_issue(inbox: &dyn Inbox) {
    let empty = inbox.list("c-1", None, 2).await.expect("list");
    assert!(empty.items.is_empty());
    assert_eq!((empty.next_cursor, empty.unread), (None, 0));
    inbox
        .add("c-2", "p-x", b"elsewhere", MAX)
        .await
        .expect("add");
    fill(inbox, "c-1", 5).await;

    let first = inbox.list("c-1", None, 2).await.expect("list");
    assert_eq!(ids(&first.items), ["p-4", "p-3"]);
    assert_eq!(first.items[0].payload, b"notice 4");
    assert_eq!(first.unread, 5, "unread counts the whole inbox");
    let second = inbox
        .list("c-1", first.next_cursor.as_deref(), 2)
        .await
        .expect("list");
    assert_eq!(ids(&second.items), ["p-2", "p-1"]);
    let last = inbox
        .list("c-1", second.next_cursor.as_deref(), 2)
        .await
        .expect("list");
    assert_eq!(ids(&last.items), ["p-0"]);
    assert_eq!(last.next_cursor, None, "the oldest item ends the paging");
    let exact = inbox.list("c-1", None, 5).await.expect("list");
    assert_eq!(exact.items.len(), 5);
    assert_eq!(
        exact.next_cursor, None,
        "a page that ends at the oldest has no next"
    );
    assert!(
        inbox
            .list("c-1", Some(&last.items[0].cursor), 2)
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // c-2's item is older than c-1's newest, so c-1's newest cursor is beyond c-2's inbox.
    let foreign = &first.items[0].cursor;
    for cursor in ["not a cursor", "", "-1", foreign.as_str()] {
        assert!(
            matches!(
                inbox.list("c-2", Some(cursor), 2).await,
                Err(InboxReadError::InvalidCursor(c)) if c == cursor
            ),
            "{cursor:?} must be refused"
        );
    }
    assert!(matches!(
        inbox.list("c-3", Some(&first.items[1].cursor), 2).await,
        Err(InboxReadError::InvalidCursor(_))
    ));
}

/// Beyond its bound the inbox forgets its oldest items, their ids and their read marks.
pub async fn inbox_trims_its_oldest_items_beyond_its_bound(inbox: &dyn Inbox) {
    for i in 0..3 {
        assert!(
            inbox
                .add("c-1", &format!("p-{i}"), b"n", 3)
                .await
                .expect("add")
        );
    }
    assert_eq!(
        inbox.mark_read("c-1", "p-0").await.expect("mark"),
        MarkRead::Marked
    );
    let oldest = inbox.list("c-1", None, 10).await.expect("list").items[2].clone();
    assert_eq!(oldest.id, "p-0");
    assert!(inbox.add("c-1", "p-3", b"n", 3).await.expect("add"));
    let page = inbox.list("c-1", None, 10).await.expect("list");
    assert_eq!(ids(&page.items), ["p-3", "p-2", "p-1"]);
    assert_eq!(page.unread, 3, "the trimmed item's read mark went with it");
    assert_eq!(
        inbox.mark_read("c-1", "p-0").await.expect("mark"),
        MarkRead::NotFound
    );
    assert!(
        inbox
            .list("c-1", Some(&oldest.cursor), 10)
            .await
            .expect("a trimmed item's cursor stays valid")
            .items
            .is_empty()
    );

    assert!(
        inbox.add("c-1", "p-0", b"n", 3).await.expect("add"),
        "a trimmed id can be added again"
    );
    let page = inbox.list("c-1", None, 10).await.expect("list");
    assert_eq!(ids(&page.items), ["p-0", "p-3", "p-2"]);
    assert!(!page.items[0].read);
    // A smaller bound trims several at once.
    assert!(inbox.add("c-1", "p-4", b"n", 1).await.expect("add"));
    assert_eq!(
        ids(&inbox.list("c-1", None, 10).await.expect("list").items),
        ["p-4"]
    );
    assert!(inbox.add("c-1", "p-2", b"n", 3).await.expect("add"));
}

/// The first mark of an item is reported once; unread counts follow the marks.
pub async fn inbox_counts_unread_items_and_marks_each_one_read_once(inbox: &dyn Inbox) {
    fill(inbox, "c-1", 3).await;
    fill(inbox, "c-2", 1).await;
    assert_eq!(
        inbox.mark_read("c-1", "p-1").await.expect("mark"),
        MarkRead::Marked
    );
    assert_eq!(
        inbox.mark_read("c-1", "p-1").await.expect("mark"),
        MarkRead::AlreadyRead
    );
    assert_eq!(
        inbox.mark_read("c-1", "p-9").await.expect("mark"),
        MarkRead::NotFound
    );
    assert_eq!(
        inbox.mark_read("c-3", "p-1").await.expect("mark"),
        MarkRead::NotFound,
        "nothing is marked in another inbox"
    );
    let page = inbox.list("c-1", None, 10).await.expect("list");
    assert_eq!(page.unread, 2);
    assert_eq!(
        page.items
            .iter()
            .map(|item| (item.id.as_str(), item.read))
            .collect::<Vec<_>>(),
        [("p-2", false), ("p-1", true), ("p-0", false)]
    );
    let other = inbox.list("c-2", None, 10).await.expect("list");
    assert_eq!(other.unread, 1, "marks are per recipient");
    assert!(!other.items[0].read);
    assert!(!inbox.add("c-1", "p-1", b"again", MAX).await.expect("add"));
    assert_eq!(
        inbox.list("c-1", None, 10).await.expect("list").unread,
        2,
        "a redelivered item stays read"
    );
}

/// Of concurrent marks of one item exactly one is `Marked`, so one READ receipt is sent.
pub async fn inbox_gives_the_first_mark_to_exactly_one_of_concurrent_callers(inbox: &dyn Inbox) {
    fill(inbox, "c-1", 1).await;
    let mark = || inbox.mark_read("c-1", "p-0");
    let (a, b, c, d, e, f, g, h) = tokio::join!(
        mark(),
        mark(),
        mark(),
        mark(),
        mark(),
        mark(),
        mark(),
        mark()
    );
    let marks = [a, b, c, d, e, f, g, h].map(|mark| mark.expect("mark"));
    assert_eq!(
        marks.iter().filter(|m| **m == MarkRead::Marked).count(),
        1,
        "{marks:?}"
    );
    assert!(
        marks
            .iter()
            .all(|m| matches!(m, MarkRead::Marked | MarkRead::AlreadyRead))
    );
}

/// A wait replays what is newer than its cursor oldest first, wakes for an item added while
/// it waits, and returns nothing once its timeout passed.
pub async fn inbox_wait_returns_new_items_as_they_arrive_and_nothing_after_its_timeout(
    inbox: &dyn Inbox,
) {
    assert!(matches!(
        inbox
            .wait("c-1", Some("nonsense"), Duration::from_secs(1))
            .await,
        Err(InboxReadError::InvalidCursor(_))
    ));
    fill(inbox, "c-1", 3).await;
    let replay = inbox
        .wait("c-1", None, Duration::from_secs(5))
        .await
        .expect("wait");
    assert_eq!(ids(&replay), ["p-0", "p-1", "p-2"], "oldest first");
    let rest = inbox
        .wait("c-1", Some(&replay[0].cursor), Duration::from_secs(5))
        .await
        .expect("wait");
    assert_eq!(ids(&rest), ["p-1", "p-2"]);
    let newest = replay[2].cursor.clone();

    let mut waiting = inbox.wait("c-1", Some(&newest), Duration::from_secs(30));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "a wait with nothing new keeps waiting"
    );
    assert!(inbox.add("c-1", "p-new", b"new", MAX).await.expect("add"));
    let woken = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the wait wakes for the new item")
        .expect("wait");
    assert_eq!(ids(&woken), ["p-new"]);
    assert_eq!(woken[0].payload, b"new");
    assert!(!woken[0].read);

    let started = tokio::time::Instant::now();
    let timeout = Duration::from_millis(300);
    let nothing = inbox
        .wait("c-1", Some(&woken[0].cursor), timeout)
        .await
        .expect("wait");
    assert!(nothing.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        inbox
            .wait("c-2", None, Duration::ZERO)
            .await
            .expect("wait")
            .is_empty()
    );
}

/// Removing a recipient deletes their items, ids and read marks, and nobody else's.
pub async fn inbox_remove_recipient_deletes_the_whole_inbox(inbox: &dyn Inbox) {
    fill(inbox, "c-1", 3).await;
    fill(inbox, "c-2", 1).await;
    inbox.mark_read("c-1", "p-0").await.expect("mark");
    let cursor = inbox.list("c-1", None, 1).await.expect("list").items[0]
        .cursor
        .clone();
    inbox.remove_recipient("c-1").await.expect("remove");
    let page = inbox.list("c-1", None, 10).await.expect("list");
    assert!(page.items.is_empty());
    assert_eq!((page.next_cursor, page.unread), (None, 0));
    assert!(matches!(
        inbox.list("c-1", Some(&cursor), 10).await,
        Err(InboxReadError::InvalidCursor(_))
    ));
    assert_eq!(
        inbox.mark_read("c-1", "p-1").await.expect("mark"),
        MarkRead::NotFound
    );
    assert!(
        inbox.add("c-1", "p-0", b"n", MAX).await.expect("add"),
        "the removed ids are forgotten"
    );
    assert!(
        !inbox.list("c-1", None, 1).await.expect("list").items[0].read,
        "and so are the read marks"
    );
    assert_eq!(
        ids(&inbox.list("c-2", None, 10).await.expect("list").items),
        ["p-0"]
    );
    inbox
        .remove_recipient("c-9")
        .await
        .expect("removing nothing");
}
