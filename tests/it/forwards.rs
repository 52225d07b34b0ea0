//! "政府+" forwards through real servers: a `RelayForwardRequested` on `relay.forwards` →
//! profiler → `delivery.requests` → notifier, deduplicated against the direct push. The
//! forward is produced here as the relay would write it, so the profiler's and notifier's
//! part is tested on its own.

use std::{collections::BTreeMap, sync::Mutex, time::Duration};

use prost::Message as _;
use zhida_bus::{Producer, Topic};
use zhida_proto::{
    events::v1::{
        Channel, Contact, DeliveryState, DeliveryStatusChanged, Enterprise, PolicyPublished,
        Profile, RelayForward, RelayForwardRequested, RelaySubscriberKind, SubjectKind,
        profile::Details,
    },
    notification::v1::GetDeliveryStatusRequest,
    profile::v1::UpsertProfileRequest,
};

use crate::helpers::{
    NewPolicy, Server, TestEnv, count_records, eventually, mail_for, publish, redeliver,
};

/// An enterprise reachable by email at `env.address(name)`, in industry `industry`.
pub(crate) fn enterprise(env: &TestEnv, name: &str, organisation: &str, industry: &str) -> Profile {
    Profile {
        subject_id: format!("ent-{name}-{}", env.id),
        kind: SubjectKind::Enterprise as i32,
        display_name: format!("上海杨浦{name}科技有限公司"),
        street: "五角场街道".into(),
        contacts: vec![Contact {
            channel: Channel::Email as i32,
            address: env.address(name),
            consent: true,
            ..Contact::default()
        }],
        subscriptions: vec![],
        details: Some(Details::Enterprise(Enterprise {
            credit_code: zhida_profiler::credit_code(&format!("91310110{organisation}"))
                .expect("17 code characters"),
            industry: industry.into(),
            size: "小".into(),
            ..Enterprise::default()
        })),
    }
}

/// The statuses of `policy_id` that carry the forward `forward_id`, in the order written:
/// (recipient, channel, state, forward); asserts that `expected` of them arrive.
async fn forward_statuses(
    env: &TestEnv,
    policy_id: &str,
    forward_id: &str,
    expected: usize,
) -> Vec<(String, Channel, DeliveryState, RelayForward)> {
    let seen = Mutex::new(Vec::new());
    let read = count_records(
        env,
        Topic::DeliveryStatus,
        expected,
        Duration::from_secs(30),
        |bytes| {
            let Ok(status) = DeliveryStatusChanged::decode(bytes) else {
                return false;
            };
            let Some(forward) = status.forward.clone() else {
                return false;
            };
            if status.policy_id != policy_id || forward.forward_id != forward_id {
                return false;
            }
            seen.lock().expect("lock").push((
                status.recipient_id,
                Channel::try_from(status.channel).unwrap_or_default(),
                DeliveryState::try_from(status.state).unwrap_or_default(),
                forward,
            ));
            true
        },
    )
    .await;
    assert_eq!(read, expected, "statuses of forward {forward_id}");
    seen.into_inner().expect("lock")
}

/// (recipient, channel) → states, from `statuses`.
fn states(
    statuses: &[(String, Channel, DeliveryState, RelayForward)],
) -> BTreeMap<(String, Channel), Vec<DeliveryState>> {
    let mut states: BTreeMap<(String, Channel), Vec<DeliveryState>> = BTreeMap::new();
    for (recipient, channel, state, _) in statuses {
        states
            .entry((recipient.clone(), *channel))
            .or_default()
            .push(*state);
    }
    states
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_reaches_members_who_did_not_have_the_policy_and_no_one_twice() {
    let env = TestEnv::new("forwards").await;
    let server = Server::start("all", &env).await;
    let mut profiles = server.profiles().await;
    // a: in the policy's audience (software) and a member; b: a member outside the
    // audience; c: outside the audience, and no member.
    let a = enterprise(&env, "a", "MA1G2K3L4", "I6513");
    let b = enterprise(&env, "b", "MA1G2K3L5", "C3911");
    let c = enterprise(&env, "c", "MA1G2K3L6", "C3911");
    for profile in [&a, &b, &c] {
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(profile.clone()),
            })
            .await
            .expect("upsert");
    }
    let policy = NewPolicy {
        request_id: format!("kw-{}", env.id),
        title: "杨浦区软件和信息服务业专项扶持办法".into(),
        body: "对年营业收入首次突破1亿元的软件企业给予一次性奖励。".into(),
        tags: vec!["tech-innovation".into()],
        department: "区科学技术委员会".into(),
        service_url: "https://zwdt.sh.gov.cn/".into(),
        audience: r#"{"enterprise": {"industry": [{"industry": "I65"}]}}"#.into(),
        urgent: false,
        valid_until: None,
    };
    let policy_id = publish(&server, policy.clone()).await;
    let suffix = format!(".{}@example.cn", env.id);
    let mail_to = |name: &str| {
        let address = env.address(name);
        mail_for(&suffix)
            .into_iter()
            .filter(|m| m.envelope_to == address)
            .collect::<Vec<_>>()
    };
    eventually("a's email", Duration::from_secs(30), || {
        mail_to("a").len() == 1
    })
    .await;
    assert!(mail_to("b").is_empty(), "b is not in the audience");

    // The association forwards it to a, b and c (not a member), with a note.
    let forward = |id: &str, subscriber: &str, name: &str, note: &str| RelayForward {
        forward_id: format!("{id}-{}", env.id),
        subscriber_id: format!("{subscriber}-{}", env.id),
        subscriber_name: name.into(),
        note: note.into(),
    };
    let f1 = forward(
        "f1",
        "assoc-soft",
        "杨浦区软件行业协会",
        "请会员企业于5月31日前申报 <b>勿迟</b>",
    );
    let published = PolicyPublished {
        policy_id: policy_id.clone(),
        title: policy.title.clone(),
        body: policy.body.clone(),
        tags: policy.tags.clone(),
        department: policy.department.clone(),
        service_url: policy.service_url.clone(),
        audience: policy.audience.clone(),
        version: 1,
        ..PolicyPublished::default()
    };
    let producer = Producer::new(&env.kafka, "/tests/forwards").expect("producer");
    producer
        .emit(
            &policy_id,
            &RelayForwardRequested {
                forward: Some(f1.clone()),
                policy: Some(published.clone()),
                member_ids: vec![
                    a.subject_id.clone(),
                    b.subject_id.clone(),
                    c.subject_id.clone(),
                ],
                members: vec![a.subject_id.clone(), b.subject_id.clone()],
                subscriber_kind: RelaySubscriberKind::Association as i32,
                ..RelayForwardRequested::default()
            },
        )
        .await
        .expect("forward produced");

    // Email and page each: b gets the policy, a already had it.
    let first = forward_statuses(&env, &policy_id, &f1.forward_id, 4).await;
    assert!(first.iter().all(|(.., f)| *f == f1), "{first:?}");
    let expected = BTreeMap::from([
        (
            (a.subject_id.clone(), Channel::Email),
            vec![DeliveryState::AlreadyReceived],
        ),
        (
            (a.subject_id.clone(), Channel::Inbox),
            vec![DeliveryState::AlreadyReceived],
        ),
        (
            (b.subject_id.clone(), Channel::Email),
            vec![DeliveryState::Sent],
        ),
        (
            (b.subject_id.clone(), Channel::Inbox),
            vec![DeliveryState::Sent],
        ),
    ]);
    assert_eq!(states(&first), expected);
    let to_b = mail_to("b");
    assert_eq!(to_b.len(), 1, "b got the forward once");
    assert_eq!(to_b[0].subject, policy.title);
    assert!(
        to_b[0]
            .body
            .contains("经 杨浦区软件行业协会 转发：请会员企业于5月31日前申报 <b>勿迟</b>"),
        "{}",
        to_b[0].body
    );
    assert!(to_b[0].html.contains("&lt;b&gt;勿迟"), "{}", to_b[0].html);
    assert_eq!(mail_to("a").len(), 1, "a got nothing more");
    assert!(mail_to("c").is_empty(), "c is no member");
    let mut notifications = server.notifications().await;
    let status_of = |policy_id: String, recipient: &Profile| GetDeliveryStatusRequest {
        policy_id,
        recipient_id: recipient.subject_id.clone(),
        channel: Channel::Email as i32,
    };
    let answer = notifications
        .get_delivery_status(status_of(
            format!("{policy_id}#forward:{}", f1.forward_id),
            &a,
        ))
        .await
        .expect("a forward's status")
        .into_inner();
    assert_eq!(
        answer.state,
        DeliveryState::AlreadyReceived as i32,
        "{answer:?}"
    );

    // The broker hands the forward over again: the same statuses (b's still SENT, its
    // own), nothing sent.
    redeliver::<RelayForwardRequested>(&env, &policy_id, Duration::from_secs(30)).await;
    let twice = forward_statuses(&env, &policy_id, &f1.forward_id, 8).await;
    let doubled: BTreeMap<_, _> = expected
        .iter()
        .map(|(k, v)| (k.clone(), [v.clone(), v.clone()].concat()))
        .collect();
    assert_eq!(states(&twice), doubled);

    // A park forwards it to b as well: b already has it.
    let f2 = forward("f2", "park-wjc", "五角场创智天地园区", "");
    producer
        .emit(
            &policy_id,
            &RelayForwardRequested {
                forward: Some(f2.clone()),
                policy: Some(published),
                member_ids: vec![b.subject_id.clone()],
                members: vec![b.subject_id.clone()],
                subscriber_kind: RelaySubscriberKind::Park as i32,
                ..RelayForwardRequested::default()
            },
        )
        .await
        .expect("forward produced");
    let second = forward_statuses(&env, &policy_id, &f2.forward_id, 2).await;
    assert_eq!(
        states(&second),
        BTreeMap::from([
            (
                (b.subject_id.clone(), Channel::Email),
                vec![DeliveryState::AlreadyReceived]
            ),
            (
                (b.subject_id.clone(), Channel::Inbox),
                vec![DeliveryState::AlreadyReceived]
            ),
        ])
    );
    let answer = notifications
        .get_delivery_status(status_of(
            format!("{policy_id}#forward:{}", f1.forward_id),
            &b,
        ))
        .await
        .expect("a forward's status")
        .into_inner();
    assert_eq!(
        answer.state,
        DeliveryState::Sent as i32,
        "f1 made b's delivery"
    );
    // Every status was read after its delivery was settled: nothing more went out.
    assert_eq!(
        (mail_to("a").len(), mail_to("b").len(), mail_to("c").len()),
        (1, 1, 0)
    );
}
