//! `kill -9` a notifier in the middle of a batch, with many deliveries in flight: after a
//! restart every request is delivered, and nothing the ledger had recorded is sent again.
//!
//! A message may legitimately appear twice in the SMTP dump only if its delivery was in
//! flight at the kill: its SMTP transaction was cut short after the server stored it and
//! before the notifier recorded the outcome (RFC 1047). The restarted notifier never saw an
//! outcome, so it sends again, with the same Message-ID. So at most `IN_FLIGHT` messages
//! repeat, never one the ledger had recorded, and never with another Message-ID.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use zhida_bus::{Group, Producer, Topic};
use zhida_proto::events::v1::{Channel, DeliveryRequested};

use crate::helpers::{
    Server, TestEnv, eventually, mail_for, recorded_deliveries, wait_until_consumed,
};

const REQUESTS: usize = 3000;
/// Deliveries the notifier handles at once (`kafka.max_in_flight`).
const IN_FLIGHT: usize = 16;

#[tokio::test(flavor = "multi_thread")]
async fn a_notifier_killed_mid_batch_resumes_without_losing_or_duplicating_email() {
    let env = TestEnv::new("kill").await;
    let producer = Producer::new(&env.kafka, "/test").expect("producer");
    let sends = (0..REQUESTS).map(|i| {
        let request = DeliveryRequested {
            policy_id: format!("pol-{}", env.id),
            recipient_id: format!("r{i:03}"),
            channel: Channel::Email as i32,
            address: env.address(&format!("r{i:03}")),
            recipient_name: format!("居民{i}"),
            title: "长者食堂运营补贴".into(),
            body: "补贴标准……".into(),
            department: "区民政局".into(),
            reason: "您订阅了政策标签“elderly-care”".into(),
            ..DeliveryRequested::default()
        };
        let producer = producer.clone();
        async move { producer.emit(&request.recipient_id, &request).await }
    });
    for result in futures::future::join_all(sends).await {
        result.expect("request produced");
    }

    let suffix = format!(".{}@example.cn", env.id);
    let in_flight = IN_FLIGHT.to_string();
    let settings = [("ZHIDA_KAFKA__MAX_IN_FLIGHT", in_flight.as_str())];
    let mut notifier = Server::start_with("notifier", &env, &settings).await;
    eventually("the first emails", Duration::from_secs(30), || {
        mail_for(&suffix).len() >= 10
    })
    .await;
    // Kill at a random point of the send cycle, not right after a file appeared.
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 64);
    tokio::time::sleep(Duration::from_millis(jitter)).await;
    notifier.kill_9();
    let at_kill = mail_for(&suffix).len();
    assert!(
        at_kill < REQUESTS,
        "the kill must land mid-batch ({at_kill} of {REQUESTS} already sent)"
    );

    // What the ledger holds as done at the kill must never go out again.
    let policy_id = format!("pol-{}", env.id);
    let recipients = (0..REQUESTS).map(|i| format!("r{i:03}"));
    let recorded: HashSet<String> =
        recorded_deliveries(&env, &policy_id, recipients, Channel::Email)
            .await
            .iter()
            .map(|recipient| env.address(recipient))
            .collect();
    assert!(
        !recorded.is_empty() && recorded.len() < REQUESTS,
        "the kill lands mid-batch: {} recorded",
        recorded.len()
    );

    let _restarted = Server::start_with("notifier", &env, &settings).await;
    eventually("every request delivered", Duration::from_secs(60), || {
        mail_for(&suffix).len() >= REQUESTS
    })
    .await;
    // A duplicate would come from a redelivered record: wait until the restarted notifier
    // has committed every record, so nothing it could still send is pending.
    wait_until_consumed(
        &env,
        Group::Notifier,
        Topic::DeliveryRequests,
        Duration::from_secs(30),
    )
    .await;
    let mut per_recipient: HashMap<String, Vec<String>> = HashMap::new();
    for mail in mail_for(&suffix) {
        per_recipient
            .entry(mail.envelope_to)
            .or_default()
            .push(mail.message_id);
    }
    assert_eq!(per_recipient.len(), REQUESTS, "every recipient got mail");
    let repeated: Vec<_> = per_recipient
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    let resent: Vec<_> = repeated
        .iter()
        .filter(|(to, _)| recorded.contains(to.as_str()))
        .collect();
    assert!(
        resent.is_empty(),
        "sent again although the ledger had recorded them: {resent:?}"
    );
    assert!(
        repeated.len() <= IN_FLIGHT
            && repeated
                .iter()
                .all(|(_, ids)| ids.len() == 2 && ids[0] == ids[1]),
        "only deliveries in flight at the kill may repeat, once, with the same Message-ID: {repeated:?} (killed after {at_kill})"
    );
}
