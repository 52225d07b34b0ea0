//! The recipients store's contract: what both [`PolicyRecipients`] implementations must do.

use zhida_proto::events::v1::Channel;

use super::{PolicyRecipients, Recipient};

fn recipient(id: &str, channel: Channel, version: u32) -> Recipient {
    Recipient {
        recipient_id: id.into(),
        channel,
        sealed_address: if channel == Channel::Inbox {
            Vec::new()
        } else {
            vec![7, 0, 255, id.len() as u8]
        },
        display_name: format!("{id} 的名字"),
        language: "zh".into(),
        subscription_id: "s-1".into(),
        version,
    }
}

/// Each (recipient, channel) is recorded once per policy with what it first received,
/// listed in order, and erasure forgets one recipient everywhere and only them.
pub async fn recipients_are_recorded_once_and_erased_with_their_profile(
    store: &dyn PolicyRecipients,
) {
    assert!(store.list("p-1").await.expect("list").is_empty());
    let (b_email, a_sms, a_email) = (
        recipient("c-b", Channel::Email, 1),
        recipient("c-a", Channel::Sms, 1),
        recipient("c-a", Channel::Email, 1),
    );
    for r in [&b_email, &a_sms, &a_email] {
        store.add("p-1", r).await.expect("add");
    }
    // Redelivered, or received again as version 2 (the audience changed): the first stays.
    store
        .add("p-1", &recipient("c-a", Channel::Email, 2))
        .await
        .expect("add again");
    store
        .add("p-2", &recipient("c-a", Channel::Inbox, 1))
        .await
        .expect("add");
    assert_eq!(
        store.list("p-1").await.expect("list"),
        [a_email.clone(), a_sms.clone(), b_email.clone()]
    );
    assert_eq!(store.list("p-2").await.expect("list").len(), 1);

    store.remove_recipient("c-a").await.expect("remove");
    assert_eq!(
        store.list("p-1").await.expect("list"),
        std::slice::from_ref(&b_email)
    );
    assert!(store.list("p-2").await.expect("list").is_empty());
    store
        .remove_recipient("c-a")
        .await
        .expect("removing twice is fine");
    // Received again after the delete (a new profile under the same id): recorded anew.
    store.add("p-1", &a_sms).await.expect("add");
    assert_eq!(store.list("p-1").await.expect("list"), [a_sms, b_email]);
}

/// Withdrawal is a mark per policy, for good, and recording a recipient says whether
/// the policy is withdrawn.
pub async fn withdrawn_policies_stay_withdrawn(store: &dyn PolicyRecipients) {
    let a = recipient("c-a", Channel::Email, 1);
    assert!(!store.is_withdrawn("p-1").await.expect("read"));
    assert!(
        !store.add("p-1", &a).await.expect("add"),
        "not withdrawn yet"
    );
    store.withdraw("p-1").await.expect("withdraw");
    store
        .withdraw("p-1")
        .await
        .expect("withdrawing twice is fine");
    assert!(store.is_withdrawn("p-1").await.expect("read"));
    assert!(!store.is_withdrawn("p-2").await.expect("read"));
    let b = recipient("c-b", Channel::Sms, 1);
    assert!(
        store.add("p-1", &b).await.expect("add"),
        "sent while withdrawn"
    );
    assert!(!store.add("p-2", &b).await.expect("add"), "another policy");
    assert_eq!(store.list("p-1").await.expect("list"), [a, b]);
}

/// The latest revision of a policy is kept; an older or repeated one changes nothing.
pub async fn the_latest_revision_is_kept(store: &dyn PolicyRecipients) {
    assert_eq!(store.latest("p-1").await.expect("latest"), None);
    store.revise("p-1", 3, b"three").await.expect("revise");
    store.revise("p-1", 2, b"two").await.expect("an older one");
    store
        .revise("p-1", 3, b"three again")
        .await
        .expect("repeated");
    assert_eq!(
        store.latest("p-1").await.expect("latest"),
        Some((3, b"three".to_vec()))
    );
    store.revise("p-1", 10, b"ten").await.expect("revise");
    assert_eq!(
        store.latest("p-1").await.expect("latest"),
        Some((10, b"ten".to_vec())),
        "versions compare as numbers"
    );
    assert_eq!(store.latest("p-2").await.expect("latest"), None);
}
