//! Daily digests through real servers: a DAILY_DIGEST subscriber gets nothing at once and
//! then one digest per run holding every policy exactly once, while an immediate
//! subscriber of the same tag is emailed at once; a retried draft, a second publish and a
//! redelivered event add nothing.

use std::time::Duration;

use tonic::Code;
use zhida_bus::{Group, Topic};
use zhida_proto::{
    events::v1::{Channel, DeliveryState, Frequency, PolicyPublished, Profile},
    notification::v1::GetDeliveryStatusRequest,
    policy::v1::PublishRequest,
    profile::v1::UpsertProfileRequest,
};

use crate::helpers::{
    NewPolicy, Server, TestEnv, citizen, eventually, mail_for, publish, redeliver,
    wait_until_consumed,
};

/// Digest runs every few seconds instead of daily.
const PERIOD: &str = "3s";

/// A subscriber of `housing` who wants it at once or in the daily digest.
fn subscriber(env: &TestEnv, id: &str, frequency: Frequency) -> Profile {
    let mut profile = citizen(env, id, id, &["housing"], true);
    profile.subscriptions[0].frequency = frequency as i32;
    profile
}

fn policy(env: &TestEnv, n: u32) -> NewPolicy {
    NewPolicy {
        request_id: format!("zfb-{n}-{}", env.id),
        title: format!("杨浦区保障性租赁住房申请指南（第{n}批）"),
        body: "符合条件的新市民、青年人可申请保障性租赁住房。".into(),
        tags: vec!["housing".into()],
        department: "区住房保障局".into(),
        service_url: String::new(),
        audience: String::new(),
        urgent: false,
        valid_until: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_subscribers_get_each_policy_once_in_a_digest_and_nothing_at_once() {
    let env = TestEnv::new("digest").await;
    let server = Server::start_with("all", &env, &[("ZHIDA_DIGEST__PERIOD", PERIOD)]).await;
    let mut profiles = server.profiles().await;
    let mut publisher = server.publisher("区住房保障局").await;
    let mut notifications = server.notifications().await;
    let daily = subscriber(&env, "daily", Frequency::DailyDigest);
    for profile in [daily.clone(), subscriber(&env, "now", Frequency::Immediate)] {
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(profile),
            })
            .await
            .expect("upsert");
    }
    let requests = [policy(&env, 1), policy(&env, 2)];
    let mut policy_ids = Vec::new();
    for request in &requests {
        policy_ids.push(publish(&server, request.clone()).await);
    }

    let now_mail = format!("now.{}@example.cn", env.id);
    let daily_mail = format!("daily.{}@example.cn", env.id);
    eventually(
        "the immediate subscriber's two emails",
        Duration::from_secs(30),
        || mail_for(&now_mail).len() >= 2,
    )
    .await;
    // Every policy reaches the digest subscriber exactly once, in digests only. The two
    // policies may straddle a run, so there are one or two digests.
    let titles = |mail: &[crate::helpers::Mail]| -> Vec<usize> {
        requests
            .iter()
            .map(|r| mail.iter().map(|m| m.body.matches(&r.title).count()).sum())
            .collect()
    };
    eventually("both policies in digests", Duration::from_secs(30), || {
        titles(&mail_for(&daily_mail)).iter().all(|n| *n >= 1)
    })
    .await;
    let digests = mail_for(&daily_mail);
    assert_eq!(titles(&digests), [1, 1], "each policy once");
    assert!(
        (1..=2).contains(&digests.len()),
        "{} digests",
        digests.len()
    );
    for m in &digests {
        assert!(m.subject.starts_with("政策订阅日报"), "{}", m.subject);
        assert!(m.body.contains("您订阅了政策标签“housing”"), "{}", m.body);
    }
    for id in &policy_ids {
        let status = notifications
            .get_delivery_status(GetDeliveryStatusRequest {
                policy_id: id.clone(),
                recipient_id: daily.subject_id.clone(),
                channel: Channel::Email as i32,
            })
            .await
            .expect("status")
            .into_inner();
        assert_eq!(status.state, DeliveryState::Sent as i32, "{id}");
    }

    // A client retry: the same draft is the same (published) policy, and a second Publish
    // is refused by its status.
    let again = publisher
        .create_draft(requests[0].draft())
        .await
        .expect("a retried CreateDraft")
        .into_inner();
    assert_eq!(again.policy_id, policy_ids[0]);
    let twice = publisher
        .publish(PublishRequest {
            policy_id: again.policy_id.clone(),
            expected_generation: again.generation,
            publish_at: None,
        })
        .await
        .expect_err("published already");
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");
    // The broker hands the first policy's event over again (at-least-once): every request
    // is redelivered and handled, and the next digest run finds nothing new for the
    // subscriber.
    redeliver::<PolicyPublished>(&env, &policy_ids[0], Duration::from_secs(30)).await;
    wait_until_consumed(
        &env,
        Group::Profiler,
        Topic::PolicyEvents,
        Duration::from_secs(30),
    )
    .await;
    wait_until_consumed(
        &env,
        Group::Notifier,
        Topic::DeliveryRequests,
        Duration::from_secs(30),
    )
    .await;
    // Every redelivered request was handled: nothing waits for a digest any more, open or
    // closed, so no later run can send one.
    let mut redis = env.redis().await;
    let member = format!("{}|email", daily.subject_id);
    for state in ["open", "closed"] {
        let key = format!("{}digest:{state}:{member}", env.key_prefix());
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .expect("EXISTS");
        assert!(!exists, "{key} still holds policies");
    }
    assert_eq!(
        mail_for(&daily_mail).len(),
        digests.len(),
        "no further digest"
    );
    assert_eq!(mail_for(&now_mail).len(), 2, "no email sent twice");
}
