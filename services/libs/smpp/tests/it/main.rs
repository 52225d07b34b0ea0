//! The SMPP client against the real SMSC simulator (`deploy/smsc`, started by
//! `deploy/servers.sh`; the `ZHIDA_TEST_SMPP`, `ZHIDA_TEST_SMSC_CONTROL` and
//! `ZHIDA_TEST_SMS_DUMP` variables say where). Each test binds with its own `system_id`
//! and sends to its own numbers, so the tests run in parallel.

mod helpers;

use std::{collections::HashSet, time::Duration};

use helpers::{Smsc, number, submit};
use tokio::{io::AsyncReadExt, io::AsyncWriteExt, net::TcpListener, task::JoinSet};
use zhida_smpp::{
    Address, Error, ReceiptState, Session, Status, Submit, SubmitError, Submitted, segments,
};

#[tokio::test]
async fn a_long_ucs2_message_arrives_as_two_parts_the_smsc_joins() {
    let smsc = Smsc::new();
    let (session, _receipts) = smsc.connect().await;
    // 66 UTF-16 units, then a surrogate pair across the 67-unit boundary of part one.
    let text = format!("【杨浦区政务】{}😀{}", "政".repeat(59), "策".repeat(20));
    let to = number("1");
    let parts = segments(&text, 0x5A, 3).expect("fits three");
    assert_eq!(parts.len(), 2);
    for part in parts {
        let submit = Submit::segment(
            Address::alphanumeric("10690000"),
            Address::international(&to),
            0,
            part,
        );
        session.submit(&submit).await.expect("accepted");
    }

    let mut dumped = smsc.submits(2).await;
    dumped.sort_by_key(|d| d["udh"]["seq"].as_u64());
    for (d, seq) in dumped.iter().zip(1..) {
        assert_eq!(d["destination_addr"], to.as_str());
        assert_eq!(d["data_coding"], 8);
        assert_eq!(d["esm_class"], 0x40);
        assert_eq!(
            d["udh"],
            serde_json::json!({"ref": 0x5A, "total": 2, "seq": seq})
        );
        assert_eq!(d["udh_hex"], format!("0500035a020{seq}"));
    }
    let first: String = text.chars().take(66).collect();
    assert_eq!(dumped[0]["text"], first.as_str());
    let joined: String = dumped
        .iter()
        .map(|d| d["text"].as_str().expect("text"))
        .collect();
    assert_eq!(joined, text);
}

#[tokio::test]
async fn receipts_report_delivered_and_undeliverable_by_message_id() {
    let smsc = Smsc::new();
    let mut config = smsc.config();
    // Several keep-alives go by while the receipts are on their way.
    config.enquire_link_interval = Duration::from_millis(100);
    let (session, mut receipts) = Session::connect(config).await.expect("bind");
    let delivered = session
        .submit(&submit(&number("1"), "您关注的政策已发布"))
        .await
        .expect("accepted");
    let undeliverable = session
        .submit(&submit(&number("4444"), "您关注的政策已发布"))
        .await
        .expect("accepted");

    let mut got = Vec::new();
    while got.len() < 2 {
        let receipt = tokio::time::timeout(Duration::from_secs(10), receipts.recv())
            .await
            .expect("a receipt within 10 s")
            .expect("session still open");
        got.push(receipt);
    }
    let of = |s: &Submitted| {
        got.iter()
            .find(|r| r.message_id == s.message_id)
            .unwrap_or_else(|| panic!("no receipt for {} in {got:?}", s.message_id))
    };
    assert_eq!(of(&delivered).state, ReceiptState::Delivered);
    assert_eq!(of(&delivered).error_code.as_deref(), Some("000"));
    assert_eq!(of(&undeliverable).state, ReceiptState::Undeliverable);
    assert_eq!(of(&undeliverable).error_code.as_deref(), Some("001"));
    assert!(
        !session.is_closed(),
        "enquire_link answers keep the session"
    );
    // The simulator counts our deliver_sm_resp after we hand the receipt over.
    helpers::eventually("both receipts acknowledged", || async {
        (smsc.stats().await["receipts_acked"] == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn smsc_answers_are_classified_as_refused_throttled_or_failed() {
    let smsc = Smsc::new();
    let (session, _receipts) = smsc.connect().await;
    let to = number("2");

    assert_eq!(
        session.submit(&submit(&number("0000"), "x")).await,
        Err(SubmitError::Refused {
            status: Status::ESME_RINVDSTADR
        })
    );
    smsc.mode("throttle", Some(1), None).await;
    assert_eq!(
        session.submit(&submit(&to, "x")).await,
        Err(SubmitError::Throttled {
            status: Status::ESME_RTHROTTLED
        })
    );
    smsc.mode("refuse", Some(1), None).await;
    assert_eq!(
        session.submit(&submit(&to, "x")).await,
        Err(SubmitError::Failed {
            status: Status::ESME_RSYSERR
        })
    );
    session.submit(&submit(&to, "x")).await.expect("accepted");
    assert!(!session.is_closed());
}

#[tokio::test]
async fn a_dropped_connection_fails_every_submit_in_flight_and_closes_the_session() {
    let smsc = Smsc::new();
    let (session, _receipts) = smsc.connect().await;
    // The fourth submit closes the connection; those pipelined behind it go unanswered.
    smsc.mode("drop", Some(1), Some(3)).await;
    let mut calls = JoinSet::new();
    for i in 0..10 {
        let session = session.clone();
        let submit = submit(&number(&format!("{i}1")), "x");
        calls.spawn(async move { session.submit(&submit).await });
    }
    let results = calls.join_all().await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| **r == Err(SubmitError::ConnectionLost))
        .count();
    assert_eq!((accepted, lost), (3, 7), "{results:?}");
    assert!(session.is_closed());
    assert_eq!(
        session.submit(&submit(&number("1"), "x")).await,
        Err(SubmitError::ConnectionLost)
    );

    let (again, _receipts) = smsc.connect().await;
    again
        .submit(&submit(&number("1"), "x"))
        .await
        .expect("a new session sends");
}

#[tokio::test]
async fn twenty_concurrent_submits_pipeline_on_one_connection() {
    let smsc = Smsc::new();
    let mut config = smsc.config();
    config.window = 8;
    let (session, _receipts) = Session::connect(config).await.expect("bind");
    let mut calls = JoinSet::new();
    for i in 0..20 {
        let session = session.clone();
        let submit = submit(&number(&format!("{i:02}3")), "政策速递");
        calls.spawn(async move { session.submit(&submit).await });
    }
    let ids: HashSet<String> = calls
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("accepted").message_id)
        .collect();
    assert_eq!(ids.len(), 20, "one distinct message_id each");
    let stats = smsc.stats().await;
    assert_eq!(
        (&stats["binds"], &stats["submits_accepted"]),
        (&1.into(), &20.into()),
        "{stats}"
    );
}

#[tokio::test]
async fn close_unbinds_and_a_wrong_password_is_refused() {
    let smsc = Smsc::new();
    let (session, _receipts) = smsc.connect().await;
    session.close().await.expect("unbind answered");
    assert!(session.is_closed());
    assert_eq!(smsc.stats().await["unbinds"], 1);
    assert_eq!(
        session.submit(&submit(&number("1"), "x")).await,
        Err(SubmitError::ConnectionLost)
    );

    let mut config = smsc.config();
    config.password = "wrong".into();
    match Session::connect(config).await {
        Err(Error::BindRefused { status }) => assert_eq!(status, Status::ESME_RINVPASWD),
        other => panic!("expected ESME_RINVPASWD, got {other:?}"),
    }
}

/// The simulator always answers `enquire_link`, so a silent peer stands in for a link
/// that died without a FIN: it answers the bind, then reads and says nothing.
#[tokio::test]
async fn an_unanswered_enquire_link_ends_the_session_and_its_submits() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        let (mut peer, _) = listener.accept().await.expect("accept");
        let mut bind = [0u8; 64];
        let _ = peer.read(&mut bind).await;
        let seq = &bind[12..16];
        let resp = [&[0, 0, 0, 17, 0x80, 0, 0, 9, 0, 0, 0, 0][..], seq, &[0]].concat();
        peer.write_all(&resp).await.expect("bind_resp");
        let mut sink = [0u8; 1024];
        while peer.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    let mut config = zhida_smpp::Config::new(addr, "t-silent", "secret".into());
    config.enquire_link_interval = Duration::from_millis(100);
    config.response_timeout = Duration::from_secs(30);
    let (session, _receipts) = Session::connect(config).await.expect("bind");
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        session.submit(&submit(&number("1"), "x")),
    )
    .await
    .expect("ended by the dead link, not the 30 s response timeout");
    assert_eq!(result, Err(SubmitError::ConnectionLost));
    assert!(session.is_closed());
}
