//! A policy travels its lifecycle (CreateDraft → SubmitForReview → Review → Publish) →
//! policy.events → profiler → delivery.requests → notifier → SMTP, through real servers,
//! and arrives once per matched recipient: the profiles its audience rule matches and the
//! subscribers its tags and their filters match.

use std::time::Duration;

use prost::Message as _;
use tonic::Code;
use zhida_bus::Topic;
use zhida_proto::{
    events::v1::{DeliveryStatusChanged, PolicyPublished, PolicyStatus, Profile, profile::Details},
    policy::v1::PublishRequest,
    profile::v1::UpsertProfileRequest,
};

use crate::helpers::{
    NewPolicy, Server, TestEnv, citizen, count_records, draft_and_approve, eventually, mail_for,
    publish_approved, redeliver,
};

fn graduate(mut profile: Profile) -> Profile {
    if let Some(Details::Citizen(c)) = &mut profile.details {
        c.groups = vec!["高校毕业生".into()];
    }
    profile
}

fn filtered(mut profile: Profile, filter: &str) -> Profile {
    profile.subscriptions[0].filter = filter.into();
    profile
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_policy_is_emailed_once_to_each_matched_recipient_and_to_no_one_else() {
    let env = TestEnv::new("e2e").await;
    let server = Server::start("all", &env).await;
    let mut profiles = server.profiles().await;
    let mut publisher = server.publisher("区人力资源社会保障局").await;

    let seed = [
        // Subscribed to one of the tags.
        citizen(&env, "wang", "王芳", &["employment"], true),
        // Subscribed to both tags and in the audience: still one email.
        graduate(citizen(
            &env,
            "zhang",
            "张伟",
            &["graduates", "employment"],
            true,
        )),
        // In the audience only.
        graduate(citizen(&env, "zhao", "赵敏", &[], true)),
        // Subscribed to another tag.
        citizen(&env, "li", "李强", &["elderly-care"], true),
        // Subscribed, and in the audience, but without consent.
        graduate(citizen(&env, "chen", "陈静", &["employment"], false)),
        // Subscribed, but the filter wants another department.
        filtered(
            citizen(&env, "sun", "孙丽", &["employment"], true),
            r#"{"department": ["区科委"]}"#,
        ),
    ];
    for profile in &seed {
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(profile.clone()),
            })
            .await
            .expect("upsert");
    }

    let request = NewPolicy {
        request_id: format!("rsj-{}", env.id),
        title: "杨浦区高校毕业生就业见习补贴".into(),
        body: "离校2年内未就业高校毕业生参加就业见习的，按规定给予见习补贴。".into(),
        tags: vec!["employment".into(), "graduates".into()],
        department: "区人力资源社会保障局".into(),
        service_url: "https://zwdt.sh.gov.cn/".into(),
        audience: r#"{"citizen": {"groups": ["高校毕业生"]}}"#.into(),
        urgent: false,
        valid_until: None,
    };
    let approved = draft_and_approve(&server, &mut publisher, &request).await;
    let published = publish_approved(&mut publisher, &approved).await;
    let policy_id = published.policy_id.clone();

    let suffix = format!(".{}@example.cn", env.id);
    eventually("three recipients' email", Duration::from_secs(30), || {
        mail_for(&suffix).len() >= 3
    })
    .await;
    let mail = mail_for(&suffix);
    let mut to: Vec<&str> = mail.iter().map(|m| m.envelope_to.as_str()).collect();
    to.sort();
    assert_eq!(
        to,
        [
            env.address("wang"),
            env.address("zhang"),
            env.address("zhao")
        ],
        "no mail for the unsubscribed, the non-consenting or the filtered out"
    );
    for m in &mail {
        assert_eq!(m.subject, request.title);
        assert!(m.body.contains(&request.body), "{}", m.body);
        assert!(m.body.contains("区人力资源社会保障局"), "{}", m.body);
        assert!(m.message_id.contains(&policy_id), "{}", m.message_id);
    }
    let body_of = |who: &str| {
        let address = env.address(who);
        mail.iter()
            .find(|m| m.envelope_to == address)
            .map(|m| m.body.clone())
            .unwrap_or_default()
    };
    let zhang = body_of("zhang");
    assert_eq!(
        zhang.matches("您订阅了政策标签").count(),
        1,
        "one reason sentence for two matching tags: {zhang}"
    );
    assert!(
        zhang.contains("该政策面向：citizen.groups = \"高校毕业生\""),
        "{zhang}"
    );
    let zhao = body_of("zhao");
    assert!(!zhao.contains("您订阅了"), "{zhao}");
    assert!(zhao.contains("该政策面向"), "{zhao}");
    let wang = mail
        .iter()
        .find(|m| m.envelope_to == env.address("wang"))
        .expect("wang's mail");
    assert!(wang.body.starts_with("王芳，您好"), "{}", wang.body);

    // A client retry: the same CreateDraft (same request_id) answers the same policy,
    // published, and creates nothing; publishing it again is refused by its status.
    let again = publisher
        .create_draft(request.draft())
        .await
        .expect("a retried CreateDraft")
        .into_inner();
    assert_eq!(again.policy_id, policy_id);
    assert_eq!(
        (again.status, again.live_version),
        (PolicyStatus::Published as i32, 1),
        "{again:?}"
    );
    let twice = publisher
        .publish(PublishRequest {
            policy_id: policy_id.clone(),
            expected_generation: again.generation,
            publish_at: None,
        })
        .await
        .expect_err("a published policy is not published again");
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");
    assert!(
        twice.message().contains("the policy is published"),
        "names the status: {twice:?}"
    );

    // The broker hands the policy's event over again (at-least-once): every delivery is
    // re-handled, and nothing is sent twice. Each handling emits a status, so wait for six.
    redeliver::<PolicyPublished>(&env, &policy_id, Duration::from_secs(30)).await;
    let is_ours =
        |bytes: &[u8]| DeliveryStatusChanged::decode(bytes).is_ok_and(|s| s.policy_id == policy_id);
    let statuses = count_records(
        &env,
        Topic::DeliveryStatus,
        6,
        Duration::from_secs(30),
        is_ours,
    )
    .await;
    assert_eq!(statuses, 6, "the redelivered requests were handled");
    assert_eq!(mail_for(&suffix).len(), 3, "no email was sent twice");
}
