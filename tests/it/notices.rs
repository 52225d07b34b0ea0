//! A policy's later life reaches whoever received it (issue #10 point 6), through real
//! servers: the lifecycle events are produced straight onto the test's `policy.events`
//! (what is tested starts at the profiler, the notifier and the relay).
//!
//! - A revision sends each earlier recipient exactly one "政策已更新" on each channel they
//!   received the policy on (email, SMS, inbox, and email for a digest subscriber), however
//!   often the event is delivered; a revision that widens the audience gives the new
//!   audience the policy and nobody else anything more than the notice.
//! - A withdrawal stops the digest entries still held (never sent, CANCELLED), sends the
//!   withdrawal notice only to those who received the policy, and the relay's feed shows
//!   the item withdrawn.

use std::time::Duration;

use zhida_bus::{Group, Producer, Topic};
use zhida_proto::{
    events::v1::{
        Channel, Contact, DeliveryState, Frequency, PolicyPublished, PolicyRevised, PolicyStatus,
        PolicyWithdrawn, Profile, RelaySubscriberKind,
    },
    notification::v1::{GetDeliveryStatusRequest, InboxItem, ListInboxRequest, MarkReadRequest},
    profile::v1::UpsertProfileRequest,
    relay::v1::{
        PullFeedRequest, PutSubscriberRequest, Subscriber, relay_service_client::RelayServiceClient,
    },
};
use zhida_runtime::auth::Kind;

use crate::helpers::{
    Mail, Server, TestEnv, bearer, channel, citizen, eventually, mail_for, wait_until_consumed,
};

const UPDATED: &str = "政策已更新：";
/// The digest period of the tests that hold a policy in a digest across a lifecycle event.
const PERIOD: u64 = 20;
const WITHDRAWN: &str = "政策已撤回：";

/// A subscriber of `tag` by email (and the given extra channels), at once or daily.
fn subscriber(
    env: &TestEnv,
    id: &str,
    tag: &str,
    channels: &[Channel],
    frequency: Frequency,
) -> Profile {
    let mut profile = citizen(env, id, id, &[tag], true);
    if channels.contains(&Channel::Sms) {
        let digits = u32::from_str_radix(&env.id[env.id.len() - 8..], 16).expect("hex id");
        profile.contacts.push(Contact {
            channel: Channel::Sms as i32,
            address: format!("139{:08}", digits % 100_000_000),
            consent: true,
            ..Contact::default()
        });
    }
    let subscription = &mut profile.subscriptions[0];
    subscription
        .channels
        .extend(channels.iter().map(|c| *c as i32));
    subscription.frequency = frequency as i32;
    profile
}

fn policy(env: &TestEnv, name: &str, tags: &[&str], version: u32, title: &str) -> PolicyPublished {
    PolicyPublished {
        policy_id: format!("{name}-{}", env.id),
        title: title.into(),
        body: "符合条件的企业和个人可申请。".into(),
        summary: "申请条件与补贴标准。".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        department: "区人力资源和社会保障局".into(),
        service_url: "https://zwdt.sh.gov.cn/yp/1".into(),
        published_at: Some(zhida_proto::timestamp_now()),
        version,
        ..PolicyPublished::default()
    }
}

/// `zhida serve all` with SMS written to a file of the test's own (never quiet) and digests
/// every `digest_period`.
async fn start(env: &TestEnv, dir: &tempfile::TempDir, digest_period: &str) -> Server {
    let sms = dir.path().join("sms.jsonl");
    Server::start_with(
        "all",
        env,
        &[
            ("ZHIDA_DIGEST__PERIOD", digest_period),
            ("ZHIDA_SMS__MODE", "file"),
            ("ZHIDA_SMS__FILE", sms.to_str().expect("UTF-8 path")),
            ("ZHIDA_SMS__QUIET_HOURS__START", "00:00"),
            ("ZHIDA_SMS__QUIET_HOURS__END", "00:00"),
        ],
    )
    .await
}

/// The SMS texts the notifier wrote to the test's file.
fn sms_texts(dir: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_to_string(dir.path().join("sms.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect()
}

fn with_subject(mail: &[Mail], prefix: &str) -> usize {
    mail.iter()
        .filter(|m| m.subject.starts_with(prefix))
        .count()
}

async fn inbox_titles(server: &Server, recipient_id: &str) -> Vec<String> {
    inbox(server, recipient_id)
        .await
        .into_iter()
        .map(|item| item.title)
        .collect()
}

async fn inbox(server: &Server, recipient_id: &str) -> Vec<InboxItem> {
    let page = server
        .inbox()
        .await
        .list_inbox(ListInboxRequest {
            recipient_id: recipient_id.into(),
            before_cursor: String::new(),
            limit: 50,
        })
        .await
        .expect("inbox")
        .into_inner();
    page.items
}

async fn upsert(server: &Server, profiles: &[&Profile]) {
    let mut client = server.profiles().await;
    for profile in profiles {
        client
            .upsert_profile(UpsertProfileRequest {
                profile: Some((*profile).clone()),
            })
            .await
            .expect("upsert");
    }
}

/// Waits until just after a digest run (runs fall on whole multiples of `period`
/// seconds, from 08:00 district time), so the next is a whole period away.
async fn after_a_digest_run(period: u64) {
    loop {
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            % period;
        if (1..=3).contains(&second) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the open or the closed digest of `subject` (email) holds `policy_id`.
async fn digest_holds(env: &TestEnv, subject: &str, policy_id: &str) -> bool {
    let mut redis = env.redis().await;
    for state in ["open", "closed"] {
        let key = format!("{}digest:{state}:{subject}|email", env.key_prefix());
        let held: bool = redis::cmd("HEXISTS")
            .arg(&key)
            .arg(policy_id)
            .query_async(&mut redis)
            .await
            .expect("HEXISTS");
        if held {
            return true;
        }
    }
    false
}

/// Waits until whether the digest of `subject` holds `policy_id` is `holds`, at most `within`.
async fn until_digest(
    env: &TestEnv,
    subject: &str,
    policy_id: &str,
    holds: bool,
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    while digest_holds(env, subject, policy_id).await != holds {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the digest of {subject} still {} {policy_id} after {within:?}",
            if holds { "lacks" } else { "holds" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the notifier handled every lifecycle event and every request they led to.
async fn settle(env: &TestEnv) {
    for (group, topic) in [
        (Group::Profiler, Topic::PolicyEvents),
        (Group::NotifierPolicies, Topic::PolicyEvents),
        (Group::Notifier, Topic::DeliveryRequests),
    ] {
        wait_until_consumed(env, group, topic, Duration::from_secs(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revision_reaches_each_earlier_recipient_once_on_each_channel() {
    let env = TestEnv::new("revise").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&env, &dir, "2s").await;
    let producer = Producer::new(&env.kafka, "/test/notices").expect("producer");
    let ann = subscriber(
        &env,
        "ann",
        "employment",
        &[Channel::Sms, Channel::Inbox],
        Frequency::Immediate,
    );
    let bob = subscriber(&env, "bob", "employment", &[], Frequency::Immediate);
    let dan = subscriber(&env, "dan", "employment", &[], Frequency::DailyDigest);
    // Not in the first audience: the third version adds her tag.
    let eve = subscriber(&env, "eve", "talent", &[], Frequency::Immediate);
    upsert(&server, &[&ann, &bob, &dan, &eve]).await;
    let (ann_mail, bob_mail, dan_mail, eve_mail) = (
        env.address("ann"),
        env.address("bob"),
        env.address("dan"),
        env.address("eve"),
    );

    let v1 = policy(&env, "jy", &["employment"], 1, "杨浦区就业见习补贴申领指南");
    producer.emit(&v1.policy_id, &v1).await.expect("published");
    eventually("version 1 everywhere", Duration::from_secs(40), || {
        mail_for(&ann_mail).len() == 1
            && mail_for(&bob_mail).len() == 1
            && mail_for(&dan_mail).len() == 1
            && sms_texts(&dir).len() == 1
    })
    .await;
    assert_eq!(inbox_titles(&server, &ann.subject_id).await.len(), 1);
    assert!(mail_for(&dan_mail)[0].subject.starts_with("政策订阅日报"));

    // Version 2, same audience, delivered twice (a producer retry, a redelivery).
    let revised = PolicyRevised {
        policy: Some(policy(
            &env,
            "jy",
            &["employment"],
            2,
            "杨浦区就业见习补贴申领指南（修订）",
        )),
        previous_version: 1,
        change_summary: "补贴标准由每月2,690元提高到每月3,000元。".into(),
        audience_changed: false,
    };
    for _ in 0..2 {
        producer
            .emit(&v1.policy_id, &revised)
            .await
            .expect("revised");
    }
    let updated_sms = || {
        sms_texts(&dir)
            .iter()
            .filter(|t| t.contains(UPDATED))
            .count()
    };
    eventually("the revision notices", Duration::from_secs(40), || {
        with_subject(&mail_for(&ann_mail), UPDATED) >= 1
            && with_subject(&mail_for(&bob_mail), UPDATED) >= 1
            && with_subject(&mail_for(&dan_mail), UPDATED) >= 1
            && updated_sms() >= 1
    })
    .await;
    settle(&env).await;
    // Give a duplicate the time to show up, were there one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (who, address) in [("ann", &ann_mail), ("bob", &bob_mail), ("dan", &dan_mail)] {
        let mail = mail_for(address);
        assert_eq!(mail.len(), 2, "{who}: version 1 and one notice");
        let notice = mail
            .iter()
            .find(|m| m.subject.starts_with(UPDATED))
            .expect("the notice");
        assert!(
            notice
                .subject
                .contains("杨浦区就业见习补贴申领指南（修订）"),
            "{}",
            notice.subject
        );
        assert!(
            notice.body.contains("每月3,000元"),
            "{who}: {}",
            notice.body
        );
    }
    assert_eq!(updated_sms(), 1, "one SMS notice: {:?}", sms_texts(&dir));
    assert_eq!(sms_texts(&dir).len(), 2);
    let titles = inbox_titles(&server, &ann.subject_id).await;
    assert_eq!(
        titles.iter().filter(|t| t.starts_with(UPDATED)).count(),
        1,
        "{titles:?}"
    );
    assert_eq!(titles.len(), 2, "{titles:?}");
    // The notice is read by its own item id; the policy's item stays unread.
    let notice = inbox(&server, &ann.subject_id)
        .await
        .into_iter()
        .find(|i| i.title.starts_with(UPDATED))
        .expect("the notice's item");
    assert_eq!(notice.item_id, format!("{}#rev2", v1.policy_id));
    let marked = server
        .inbox()
        .await
        .mark_read(MarkReadRequest {
            recipient_id: ann.subject_id.clone(),
            policy_id: notice.item_id.clone(),
        })
        .await
        .expect("marked read")
        .into_inner();
    assert!(!marked.already_read);
    let read: Vec<(String, bool)> = inbox(&server, &ann.subject_id)
        .await
        .into_iter()
        .map(|i| (i.item_id, i.read))
        .collect();
    assert_eq!(
        read,
        [
            (notice.item_id.clone(), true),
            (v1.policy_id.clone(), false)
        ]
    );
    assert!(
        mail_for(&eve_mail).is_empty(),
        "eve was never in the audience"
    );

    // Version 3 adds eve's tag: she gets the policy itself; the earlier recipients one
    // notice of version 3 each, and not the policy again.
    let wider = PolicyRevised {
        policy: Some(policy(
            &env,
            "jy",
            &["employment", "talent"],
            3,
            "杨浦区就业见习补贴申领指南（第三版）",
        )),
        previous_version: 2,
        change_summary: "适用范围扩大到创业者。".into(),
        audience_changed: true,
    };
    producer.emit(&v1.policy_id, &wider).await.expect("revised");
    eventually(
        "eve's policy and the notices of version 3",
        Duration::from_secs(40),
        || {
            mail_for(&eve_mail).len() == 1
                && with_subject(&mail_for(&ann_mail), UPDATED) == 2
                && with_subject(&mail_for(&bob_mail), UPDATED) == 2
        },
    )
    .await;
    settle(&env).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let eve_got = mail_for(&eve_mail);
    assert_eq!(eve_got.len(), 1, "eve: the policy, no notice");
    assert_eq!(eve_got[0].subject, "杨浦区就业见习补贴申领指南（第三版）");
    for (who, address) in [("ann", &ann_mail), ("bob", &bob_mail), ("dan", &dan_mail)] {
        let mail = mail_for(address);
        assert_eq!(
            with_subject(&mail, UPDATED),
            2,
            "{who}: one notice per version"
        );
        assert_eq!(mail.len(), 3, "{who}: never the policy a second time");
    }
    assert_eq!(updated_sms(), 2, "{:?}", sms_texts(&dir));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawal_stops_held_digest_entries_and_notifies_only_earlier_recipients() {
    let env = TestEnv::new("withdraw").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&env, &dir, &format!("{PERIOD}s")).await;
    let producer = Producer::new(&env.kafka, "/test/notices").expect("producer");
    let now = subscriber(&env, "now", "housing", &[], Frequency::Immediate);
    let daily = subscriber(&env, "daily", "housing", &[], Frequency::DailyDigest);
    upsert(&server, &[&now, &daily]).await;
    let (now_mail, daily_mail) = (env.address("now"), env.address("daily"));
    // An association scoped to housing policies, whose feed will show the withdrawal.
    let association = format!("assoc-housing-{}", env.id);
    RelayServiceClient::with_interceptor(
        channel(&server.url).await.expect("connect"),
        bearer(Kind::Operator, "ops", &[]),
    )
    .put_subscriber(PutSubscriberRequest {
        subscriber: Some(Subscriber {
            id: association.clone(),
            kind: RelaySubscriberKind::Association as i32,
            display_name: "杨浦区房地产业协会".into(),
            scope: r#"{"tags": ["housing"]}"#.into(),
            ..Subscriber::default()
        }),
    })
    .await
    .expect("registered");

    after_a_digest_run(PERIOD).await;
    let published = policy(&env, "zf", &["housing"], 1, "杨浦区保障性租赁住房申请指南");
    producer
        .emit(&published.policy_id, &published)
        .await
        .expect("published");
    eventually("the immediate email", Duration::from_secs(10), || {
        mail_for(&now_mail).len() == 1
    })
    .await;
    until_digest(
        &env,
        &daily.subject_id,
        &published.policy_id,
        true,
        Duration::from_secs(10),
    )
    .await;

    let withdrawn = PolicyWithdrawn {
        policy_id: published.policy_id.clone(),
        version: 1,
        title: published.title.clone(),
        department: published.department.clone(),
        reason: "上位政策已废止。".into(),
        withdrawn_at: Some(zhida_proto::timestamp_now()),
    };
    producer
        .emit(&withdrawn.policy_id, &withdrawn)
        .await
        .expect("withdrawn");
    eventually("the withdrawal notice", Duration::from_secs(20), || {
        with_subject(&mail_for(&now_mail), WITHDRAWN) == 1
    })
    .await;
    // The next digest run takes the held entry, and sends nothing.
    until_digest(
        &env,
        &daily.subject_id,
        &published.policy_id,
        false,
        Duration::from_secs(2 * PERIOD + 10),
    )
    .await;
    settle(&env).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        mail_for(&daily_mail).is_empty(),
        "a withdrawn policy's digest entry went out, or a notice to someone who never got it"
    );
    let status = server
        .notifications()
        .await
        .get_delivery_status(GetDeliveryStatusRequest {
            policy_id: published.policy_id.clone(),
            recipient_id: daily.subject_id.clone(),
            channel: Channel::Email as i32,
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.state, DeliveryState::Cancelled as i32, "{status:?}");
    let mail = mail_for(&now_mail);
    assert_eq!(mail.len(), 2, "the policy and one withdrawal notice");
    let notice = mail
        .iter()
        .find(|m| m.subject.starts_with(WITHDRAWN))
        .expect("notice");
    let status = server
        .notifications()
        .await
        .get_delivery_status(GetDeliveryStatusRequest {
            policy_id: format!("{}#withdrawn", published.policy_id),
            recipient_id: now.subject_id.clone(),
            channel: Channel::Email as i32,
        })
        .await
        .expect("the notice's status")
        .into_inner();
    assert_eq!(status.state, DeliveryState::Sent as i32, "{status:?}");
    assert!(notice.body.contains("上位政策已废止。"), "{}", notice.body);

    // A redelivered withdrawal sends nothing more.
    producer
        .emit(&withdrawn.policy_id, &withdrawn)
        .await
        .expect("withdrawn again");
    settle(&env).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mail_for(&now_mail).len(), 2);

    // The relay's feed shows it withdrawn, with the reason.
    let mut relay = RelayServiceClient::with_interceptor(
        channel(&server.url).await.expect("connect"),
        bearer(Kind::Subscriber, &association, &[]),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let items = relay
            .pull_feed(PullFeedRequest {
                limit: 500,
                ..PullFeedRequest::default()
            })
            .await
            .expect("feed")
            .into_inner()
            .items;
        // The relayed entry now reads withdrawn, and a withdrawal entry follows it.
        let item = items.iter().find(|i| i.policy_id == published.policy_id);
        if let Some(item) = item.filter(|i| i.status == PolicyStatus::Withdrawn as i32) {
            assert_eq!(item.withdrawal_reason, "上位政策已废止。");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the feed never showed the item withdrawn: {item:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_revised_while_held_for_a_digest_goes_out_as_revised_without_a_notice() {
    let env = TestEnv::new("heldrev").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&env, &dir, &format!("{PERIOD}s")).await;
    let producer = Producer::new(&env.kafka, "/test/notices").expect("producer");
    let now = subscriber(&env, "now", "elderly-care", &[], Frequency::Immediate);
    let daily = subscriber(&env, "daily", "elderly-care", &[], Frequency::DailyDigest);
    upsert(&server, &[&now, &daily]).await;
    let (now_mail, daily_mail) = (env.address("now"), env.address("daily"));

    after_a_digest_run(PERIOD).await;
    let v1 = policy(&env, "yl", &["elderly-care"], 1, "杨浦区养老服务补贴办法");
    producer.emit(&v1.policy_id, &v1).await.expect("published");
    until_digest(
        &env,
        &daily.subject_id,
        &v1.policy_id,
        true,
        Duration::from_secs(10),
    )
    .await;
    let revised = PolicyRevised {
        policy: Some(policy(
            &env,
            "yl",
            &["elderly-care"],
            2,
            "杨浦区养老服务补贴办法（修订版）",
        )),
        previous_version: 1,
        change_summary: "补贴对象扩大到75周岁以上。".into(),
        audience_changed: false,
    };
    producer
        .emit(&v1.policy_id, &revised)
        .await
        .expect("revised");
    eventually(
        "the immediate email and its notice",
        Duration::from_secs(20),
        || {
            let mail = mail_for(&now_mail);
            mail.len() == 2 && with_subject(&mail, UPDATED) == 1
        },
    )
    .await;
    eventually("the digest", Duration::from_secs(2 * PERIOD + 10), || {
        !mail_for(&daily_mail).is_empty()
    })
    .await;
    settle(&env).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let digests = mail_for(&daily_mail);
    assert_eq!(
        digests.len(),
        1,
        "one digest, no notice: {:?}",
        digests.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(
        digests[0].body.contains("杨浦区养老服务补贴办法（修订版）"),
        "the digest carries the revision: {}",
        digests[0].body
    );
    assert_eq!(mail_for(&now_mail).len(), 2);
}
