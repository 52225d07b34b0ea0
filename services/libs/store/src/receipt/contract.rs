//! The contract every [`ReceiptIndex`] passes.

use std::time::Duration;

use zhida_proto::events::v1::Channel;

use super::{ReceiptIndex, ReceiptTarget};
use crate::DeliveryKey;

fn target(policy: &str, segment: u8) -> ReceiptTarget {
    ReceiptTarget {
        key: DeliveryKey {
            policy_id: policy.into(),
            recipient_id: "c-1".into(),
            channel: Channel::Sms,
        },
        segment,
        segments: 2,
    }
}

/// A remembered message id is taken once, by provider; unknown ids find nothing.
pub async fn receipts_are_taken_once_per_provider(index: &dyn ReceiptIndex) {
    let ttl = Duration::from_secs(60);
    index
        .remember("smsc-a", "m-1", &target("p-1", 1), ttl)
        .await
        .expect("remember");
    index
        .remember("smsc-a", "m-2", &target("p-1", 2), ttl)
        .await
        .expect("remember");
    // Another provider may hand out the same id for another message.
    index
        .remember("smsc-b", "m-1", &target("p-2", 1), ttl)
        .await
        .expect("remember");
    assert_eq!(
        index.take("smsc-a", "m-1").await.expect("take"),
        Some(target("p-1", 1))
    );
    assert_eq!(
        index.take("smsc-a", "m-1").await.expect("take"),
        None,
        "a receipt sent again reports nothing twice"
    );
    assert_eq!(
        index.take("smsc-a", "m-2").await.expect("take"),
        Some(target("p-1", 2))
    );
    assert_eq!(
        index.take("smsc-b", "m-1").await.expect("take"),
        Some(target("p-2", 1))
    );
    assert_eq!(index.take("smsc-a", "m-9").await.expect("take"), None);
}

/// An entry whose receipt never came is gone after its TTL.
pub async fn receipt_entries_expire(index: &dyn ReceiptIndex) {
    index
        .remember(
            "smsc-a",
            "m-old",
            &target("p-3", 1),
            Duration::from_millis(100),
        )
        .await
        .expect("remember");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(index.take("smsc-a", "m-old").await.expect("take"), None);
}
