//! The digest store's contract: what both [`DigestStore`] implementations must do.

use zhida_proto::events::v1::Channel;

use super::{DigestKey, DigestStore};

fn digest_key(recipient: &str) -> DigestKey {
    DigestKey {
        recipient_id: recipient.into(),
        channel: Channel::Email,
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

/// Removing a recipient's digest forgets its open and its closed batch, and only theirs.
pub async fn digests_of_a_removed_recipient_are_forgotten(digests: &dyn DigestStore) {
    let (a, b) = (digest_key("c-a"), digest_key("c-b"));
    digests.add(&a, "p-1", b"one").await.expect("add");
    digests.add(&b, "p-1", b"one").await.expect("add");
    let mut closed = digests.close().await.expect("close");
    closed.sort();
    assert_eq!(closed, [a.clone(), b.clone()]);
    digests.add(&a, "p-2", b"two").await.expect("add");

    digests.remove(&a).await.expect("remove");
    assert!(digests.items(&a).await.expect("items").is_empty());
    assert_eq!(
        digests.close().await.expect("close"),
        std::slice::from_ref(&b),
        "neither a's closed nor its open digest is left"
    );
    assert_eq!(digests.items(&b).await.expect("items").len(), 1);
    digests.remove(&a).await.expect("removing twice is fine");
}
