//! The delivery ledger's contract: what both [`DeliveryLedger`] implementations must do.

use std::time::Duration;

use zhida_proto::events::v1::Channel;

use super::{Begin, DeliveryKey, DeliveryLedger, Outcome, OutcomeState, Status};

fn key(policy: &str) -> DeliveryKey {
    DeliveryKey {
        policy_id: policy.into(),
        recipient_id: "c-0001".into(),
        channel: Channel::Email,
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

    // Every state reads back as written, detail and all.
    for (i, state) in [
        OutcomeState::Sent,
        OutcomeState::Failed,
        OutcomeState::Undeliverable,
        OutcomeState::Cancelled,
        OutcomeState::AlreadyReceived,
    ]
    .into_iter()
    .enumerate()
    {
        let k = key(&format!("p-state-{i}"));
        let outcome = Outcome {
            state,
            detail: format!("550 5.1.1 user unknown: {i}"),
        };
        ledger.finish(&k, &outcome).await.expect("finish");
        assert_eq!(
            ledger.status(&k).await.expect("status"),
            Some(Status::Done(outcome))
        );
    }
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
