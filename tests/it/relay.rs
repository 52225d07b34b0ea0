//! The "政府+" relay end to end (issue #11), through `zhida serve all` against the real
//! broker, Redis and SMTP server, with webhooks received by a peer we did not write the
//! verification of (the `standardwebhooks` package, [`crate::webhook_peer`]):
//!
//! - scoped feeds: an association scoped by its industries and a park scoped by a tag each
//!   get exactly their policies, pulled with their own tokens; a stream resumes from its
//!   last cursor without a gap or a repeat;
//! - a webhook delivery verified by the peer; one that fails three times then succeeds
//!   arrives once, under the same `webhook-id` on every try;
//! - an endpoint that never succeeds is disabled (with a notice in its feed) without
//!   holding up another; its queue is bounded and its overflow counted; a removed
//!   subscriber's pending deliveries stop; SSRF: http, metadata and unallowed addresses
//!   are refused at registration;
//! - a forward to members reaches the member who had not received the policy, once, and
//!   not the one who had (ALREADY_RECEIVED); a forward to a child tier puts it in the
//!   child's feed, and the child's own forward reaches its member; `GetRelayReach` shows
//!   reached → forwarded → delivered per subscriber and tier.

use std::{collections::HashSet, time::Duration};

use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt as _;
use zhida_proto::{
    events::v1::{DeliveryState, Profile, RelaySubscriberKind, profile::Details},
    profile::v1::UpsertProfileRequest,
    relay::v1::{
        FeedEvent, FeedItem, ForwardRequest, GetRelayReachRequest, GetSubscriberRequest,
        PullFeedRequest, PutSubscriberRequest, RemoveSubscriberRequest, RotateWebhookSecretRequest,
        StreamFeedRequest, Subscriber, Webhook, WebhookState,
        relay_service_client::RelayServiceClient,
    },
};
use zhida_runtime::auth::{Bearer, Kind};

use crate::{
    helpers::{NewPolicy, Server, TestEnv, bearer, channel, eventually, mail_for, publish},
    webhook_peer::{Answered, FailMode, WebhookPeer},
};

type Relay = RelayServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

const SOFTWARE: &str = r#"{"enterprise": {"industry": [{"industry": "I65"}]}}"#;

async fn relay_as(server: &Server, bearer: Bearer) -> Relay {
    RelayServiceClient::with_interceptor(channel(&server.url).await.expect("connect"), bearer)
}

async fn operator(server: &Server) -> Relay {
    relay_as(server, crate::helpers::bearer(Kind::Operator, "ops", &[])).await
}

/// `zhida serve all` whose webhooks may reach the peers on loopback, trusting their CA,
/// retrying on a short schedule.
async fn start(
    env: &TestEnv,
    ca_file: &std::path::Path,
    schedule: &str,
    extra: &[(&str, &str)],
) -> Server {
    let ca = format!("[\"{}\"]", ca_file.display());
    let mut settings = vec![
        ("ZHIDA_RELAY__WEBHOOKS__ALLOW_NETWORKS", "[\"127.0.0.0/8\"]"),
        ("ZHIDA_RELAY__WEBHOOKS__EXTRA_ROOT_CERTS", ca.as_str()),
        ("ZHIDA_RELAY__WEBHOOKS__RETRY_SCHEDULE", schedule),
        ("ZHIDA_RELAY__WEBHOOKS__TIMEOUT", "1s"),
    ];
    settings.extend_from_slice(extra);
    Server::start_with("all", env, &settings).await
}

fn subscriber(
    id: &str,
    kind: RelaySubscriberKind,
    parent: &str,
    scope: &str,
    members: &[&str],
) -> Subscriber {
    Subscriber {
        id: id.into(),
        kind: kind as i32,
        parent_id: parent.into(),
        display_name: format!("{id} 会"),
        scope: scope.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        ..Subscriber::default()
    }
}

fn with_webhook(mut s: Subscriber, url: &str) -> Subscriber {
    s.webhook = Some(Webhook {
        url: url.into(),
        ..Webhook::default()
    });
    s
}

/// Registers `s`; the webhook secret when one was made.
async fn put(relay: &mut Relay, s: Subscriber) -> String {
    relay
        .put_subscriber(PutSubscriberRequest {
            subscriber: Some(s),
        })
        .await
        .expect("registered")
        .into_inner()
        .webhook_secret
}

/// An enterprise of `industry` reachable by email at `env.address(name)`, naming
/// `associations` in its profile.
fn enterprise(env: &TestEnv, name: &str, industry: &str, associations: &[&str]) -> Profile {
    let mut profile = crate::forwards::enterprise(env, name, "MA1G2K3L4", industry);
    if let Some(Details::Enterprise(e)) = &mut profile.details {
        e.associations = associations.iter().map(|a| a.to_string()).collect();
    }
    profile
}

/// What `peer` received once it has at least `n` deliveries (within 15 s).
async fn deliveries(peer: &WebhookPeer, n: usize) -> Vec<crate::webhook_peer::Delivery> {
    for _ in 0..150 {
        let got = peer.deliveries().await;
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peer.deliveries().await
}

async fn pull(relay: &mut Relay, subscriber_id: &str) -> Vec<FeedItem> {
    relay
        .pull_feed(PullFeedRequest {
            subscriber_id: subscriber_id.into(),
            limit: 500,
            ..PullFeedRequest::default()
        })
        .await
        .expect("pulled")
        .into_inner()
        .items
}

/// Polls `subscriber_id`'s feed until `check` holds on it.
async fn feed_until(
    relay: &mut Relay,
    subscriber_id: &str,
    what: &str,
    check: impl Fn(&[FeedItem]) -> bool,
) -> Vec<FeedItem> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let items = pull(relay, subscriber_id).await;
        if check(&items) {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: feed of {subscriber_id} is {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn policy(env: &TestEnv, name: &str, tags: &[&str], audience: &str) -> NewPolicy {
    NewPolicy {
        request_id: uuid::Uuid::new_v4().to_string(),
        title: format!("{name}：杨浦区政策 {}", env.id),
        body: "为贯彻落实区委区政府部署，制定本措施。".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        department: "区科委".into(),
        audience: audience.into(),
        ..NewPolicy::default()
    }
}

fn ids(items: &[FeedItem]) -> Vec<(&str, i32)> {
    items
        .iter()
        .map(|i| (i.policy_id.as_str(), i.event))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_feeds_by_pull_stream_and_webhook_forwards_with_dedup_and_reach() {
    let env = TestEnv::new("relay").await;
    let peer = WebhookPeer::start("assoc").await;
    let server = start(&env, &peer.ca_file, r#"["0s", "300ms", "300ms"]"#, &[]).await;
    let mut ops = operator(&server).await;
    let (assoc, branch, park) = (
        format!("assoc-sw-{}", env.id),
        format!("assoc-sw-br-{}", env.id),
        format!("park-cz-{}", env.id),
    );
    let (a, b, c) = (
        enterprise(&env, "ent-a", "I6513", &[&assoc]),
        enterprise(&env, "ent-b", "C3911", &[&assoc]),
        enterprise(&env, "ent-c", "C3911", &[]),
    );
    let secret = put(
        &mut ops,
        with_webhook(
            subscriber(
                &assoc,
                RelaySubscriberKind::Association,
                "",
                r#"{"audience": {"industries": [{"industry": "I"}]}}"#,
                &[&a.subject_id, &b.subject_id],
            ),
            &peer.url,
        ),
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    peer.set_secrets(&[secret]).await;
    put(
        &mut ops,
        subscriber(
            &branch,
            RelaySubscriberKind::Association,
            &assoc,
            "",
            &[&c.subject_id],
        ),
    )
    .await;
    put(
        &mut ops,
        subscriber(
            &park,
            RelaySubscriberKind::Park,
            "",
            r#"{"tags": ["business-environment"]}"#,
            &[],
        ),
    )
    .await;
    let mut profiles = server.profiles().await;
    for p in [&a, &b, &c] {
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(p.clone()),
            })
            .await
            .expect("profile");
    }

    // Scoped: the association gets the software policy, the park its tag's.
    let software = publish(
        &server,
        policy(&env, "软件", &["digital-economy"], SOFTWARE),
    )
    .await;
    let parks = publish(&server, policy(&env, "园区", &["business-environment"], "")).await;
    let mut as_assoc = relay_as(&server, bearer(Kind::Subscriber, &assoc, &[])).await;
    let mut as_park = relay_as(&server, bearer(Kind::Subscriber, &park, &[])).await;
    let items = feed_until(&mut as_assoc, "", "the software policy", |i| !i.is_empty()).await;
    assert_eq!(
        ids(&items),
        [(software.as_str(), FeedEvent::Relayed as i32)]
    );
    let items = feed_until(&mut as_park, "", "the park policy", |i| !i.is_empty()).await;
    assert_eq!(ids(&items), [(parks.as_str(), FeedEvent::Relayed as i32)]);
    // A subscriber reads its own feed only.
    let denied = as_park
        .pull_feed(PullFeedRequest {
            subscriber_id: assoc.clone(),
            ..PullFeedRequest::default()
        })
        .await
        .expect_err("another's feed");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // The webhook: one verified delivery of the software policy.
    let delivered = deliveries(&peer, 1).await;
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert!(delivered[0].verified, "{delivered:#?}");
    assert_eq!(delivered[0].body["type"], "policy.relayed");
    assert_eq!(delivered[0].body["data"]["policyId"], software.as_str());

    // A stream from the start, then live; resumed from its last cursor: no gap, no repeat.
    let mut stream = as_park
        .stream_feed(StreamFeedRequest::default())
        .await
        .expect("stream")
        .into_inner();
    let first = stream.next().await.expect("an item").expect("ok");
    assert_eq!(first.policy_id, parks);
    let live = publish(
        &server,
        policy(&env, "园区二", &["business-environment"], ""),
    )
    .await;
    let second = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("live within 20 s")
        .expect("an item")
        .expect("ok");
    assert_eq!(second.policy_id, live);
    drop(stream);
    let missed = publish(
        &server,
        policy(&env, "园区三", &["business-environment"], ""),
    )
    .await;
    let mut resumed = as_park
        .stream_feed(StreamFeedRequest {
            after_cursor: second.cursor.clone(),
            ..StreamFeedRequest::default()
        })
        .await
        .expect("resumed")
        .into_inner();
    let next = tokio::time::timeout(Duration::from_secs(20), resumed.next())
        .await
        .expect("within 20 s")
        .expect("an item")
        .expect("ok");
    assert_eq!(
        next.policy_id, missed,
        "the first after the cursor, nothing repeated"
    );
    let bad = as_park
        .stream_feed(StreamFeedRequest {
            after_cursor: "nonsense".into(),
            ..StreamFeedRequest::default()
        })
        .await
        .expect_err("a bad cursor");
    assert_eq!(bad.code(), Code::InvalidArgument);

    // ent-a got the software policy directly; the forward reaches ent-b only, and the
    // branch, whose own forward reaches ent-c.
    eventually("ent-a's direct email", Duration::from_secs(30), || {
        mail_for(&env.address("ent-a")).len() == 1
    })
    .await;
    let to_all = ForwardRequest {
        policy_id: software.clone(),
        all_members: true,
        child_ids: vec![branch.clone()],
        note: "请会员企业对照申报。".into(),
        request_id: "fwd-1".into(),
        ..ForwardRequest::default()
    };
    let forward = as_assoc
        .forward(to_all.clone())
        .await
        .expect("forwarded")
        .into_inner();
    assert_eq!(forward.members_requested, 2);
    assert_eq!(forward.children, std::slice::from_ref(&branch));
    let mut as_branch = relay_as(&server, bearer(Kind::Subscriber, &branch, &[])).await;
    let items = feed_until(&mut as_branch, "", "the forwarded policy", |i| {
        !i.is_empty()
    })
    .await;
    assert_eq!(
        ids(&items),
        [(software.as_str(), FeedEvent::Forwarded as i32)]
    );
    assert_eq!(
        (
            items[0].forwarded_by.as_str(),
            items[0].forward_note.as_str()
        ),
        (assoc.as_str(), "请会员企业对照申报。")
    );
    as_branch
        .forward(ForwardRequest {
            policy_id: software.clone(),
            member_ids: vec![c.subject_id.clone()],
            request_id: "fwd-2".into(),
            ..ForwardRequest::default()
        })
        .await
        .expect("the branch forwards");
    // A retried forward changes nothing.
    as_assoc.forward(to_all).await.expect("retried");
    eventually("ent-b's forwarded email", Duration::from_secs(30), || {
        mail_for(&env.address("ent-b")).len() == 1
    })
    .await;
    eventually("ent-c's forwarded email", Duration::from_secs(30), || {
        mail_for(&env.address("ent-c")).len() == 1
    })
    .await;
    let forwarded = &mail_for(&env.address("ent-b"))[0];
    assert!(forwarded.body.contains("转发"), "{}", forwarded.body);

    // Reach: reached → forwarded → delivered, per subscriber and tier.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reach = loop {
        let reach = ops
            .get_relay_reach(GetRelayReachRequest {
                policy_id: software.clone(),
            })
            .await
            .expect("reach")
            .into_inner();
        let done = reach.subscribers.len() == 2
            && reach.subscribers[0].members_already_reached == 1
            && reach.subscribers[0].members_delivered == 1
            && reach.subscribers[1].members_delivered == 1;
        if done {
            break reach;
        }
        assert!(tokio::time::Instant::now() < deadline, "{reach:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (top, child) = (&reach.subscribers[0], &reach.subscribers[1]);
    assert_eq!(
        (top.subscriber_id.as_str(), top.tier, top.reached_by),
        (assoc.as_str(), 1, FeedEvent::Relayed as i32)
    );
    assert!(top.webhook_delivered && top.pulled, "{top:#?}");
    assert_eq!(top.members_forwarded, 2);
    let states: HashSet<(String, i32)> = top
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.state))
        .collect();
    assert!(
        states.contains(&(a.subject_id.clone(), DeliveryState::AlreadyReceived as i32)),
        "{states:?}"
    );
    assert!(
        states.contains(&(b.subject_id.clone(), DeliveryState::Sent as i32)),
        "{states:?}"
    );
    assert_eq!(
        (child.subscriber_id.as_str(), child.tier, child.reached_by),
        (branch.as_str(), 2, FeedEvent::Forwarded as i32)
    );
    assert_eq!(reach.tiers.len(), 2);
    assert_eq!(
        (reach.tiers[1].tier, reach.tiers[1].members_delivered),
        (2, 1)
    );
    // Nothing went twice: ent-a still has one email, the webhook one delivery.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mail_for(&env.address("ent-a")).len(), 1);
    assert_eq!(mail_for(&env.address("ent-b")).len(), 1);
    assert_eq!(
        peer.deliveries()
            .await
            .iter()
            .filter(|d| d.body["data"]["policyId"] == software.as_str())
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_fails_three_times_then_succeeds_is_delivered_once_under_one_id() {
    let env = TestEnv::new("hookretry").await;
    let peer = WebhookPeer::start("retry").await;
    let server = start(
        &env,
        &peer.ca_file,
        r#"["0s", "200ms", "200ms", "200ms", "200ms"]"#,
        &[],
    )
    .await;
    let mut ops = operator(&server).await;
    let id = format!("assoc-retry-{}", env.id);
    let secret = put(
        &mut ops,
        with_webhook(
            subscriber(
                &id,
                RelaySubscriberKind::Association,
                "",
                r#"{"tags": ["digital-economy"]}"#,
                &[],
            ),
            &peer.url,
        ),
    )
    .await;
    peer.set_secrets(&[secret]).await;
    peer.fail_next(3, FailMode::Status500).await;
    let policy_id = publish(&server, policy(&env, "重试", &["digital-economy"], "")).await;

    deliveries(&peer, 4).await;
    // Nothing more comes after the success.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let attempts = peer.deliveries().await;
    assert_eq!(
        attempts.len(),
        4,
        "three failures then one success: {attempts:#?}"
    );
    assert!(attempts.iter().all(|d| d.verified), "{attempts:#?}");
    let ids: HashSet<Option<&str>> = attempts.iter().map(|d| d.webhook_id.as_deref()).collect();
    assert_eq!(
        ids.len(),
        1,
        "the same webhook-id on every try: {attempts:#?}"
    );
    assert!(
        ids.iter()
            .all(|id| id.is_some_and(|id| id.starts_with("msg_"))),
        "{ids:?}"
    );
    let answered: Vec<&Answered> = attempts.iter().map(|d| &d.answered).collect();
    assert!(
        matches!(
            answered[..],
            [
                Answered::Status(500),
                Answered::Status(500),
                Answered::Status(500),
                Answered::Status(204)
            ]
        ),
        "{answered:?}"
    );
    assert!(
        attempts
            .iter()
            .all(|d| d.body["data"]["policyId"] == policy_id.as_str())
    );
    let shown = ops
        .get_subscriber(GetSubscriberRequest {
            subscriber_id: id.clone(),
        })
        .await
        .expect("subscriber")
        .into_inner();
    let webhook = shown.webhook.expect("webhook");
    assert_eq!(
        (webhook.state, webhook.pending),
        (WebhookState::Enabled as i32, 0)
    );

    // Rotation: the subscriber itself takes a new secret; while the old one is in its grace
    // period every delivery is signed with both, so a receiver holding either verifies.
    let mut as_subscriber = relay_as(&server, bearer(Kind::Subscriber, &id, &[])).await;
    let rotated = as_subscriber
        .rotate_webhook_secret(RotateWebhookSecretRequest::default())
        .await
        .expect("rotated")
        .into_inner();
    assert!(rotated.webhook_secret.starts_with("whsec_"));
    peer.set_secrets(&[rotated.webhook_secret]).await;
    let second = publish(&server, policy(&env, "轮换", &["digital-economy"], "")).await;
    let after = deliveries(&peer, 5).await;
    assert_eq!(after.len(), 5, "{after:#?}");
    assert_eq!(after[4].body["data"]["policyId"], second.as_str());
    assert!(
        after[4].verified,
        "the new secret verifies: {:#?}",
        after[4]
    );
    let signature = after[4].signature.as_deref().unwrap_or_default();
    assert_eq!(
        signature.matches("v1,").count(),
        2,
        "signed by the new and the old secret: {signature}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_endpoint_is_disabled_bounded_and_removable_without_holding_up_another() {
    let env = TestEnv::new("hookfail").await;
    let (bad_peer, good_peer) = (
        WebhookPeer::start("bad").await,
        WebhookPeer::start("good").await,
    );
    // Both peers' certificates are trusted: one CA file each.
    let cas = format!(
        "[\"{}\", \"{}\"]",
        bad_peer.ca_file.display(),
        good_peer.ca_file.display()
    );
    let server = start(
        &env,
        &bad_peer.ca_file,
        r#"["0s", "200ms", "200ms"]"#,
        &[
            ("ZHIDA_RELAY__WEBHOOKS__EXTRA_ROOT_CERTS", cas.as_str()),
            ("ZHIDA_RELAY__WEBHOOKS__QUEUE_CAPACITY", "2"),
        ],
    )
    .await;
    let mut ops = operator(&server).await;

    // SSRF and bad input: refused with the field named.
    for url in [
        "http://127.0.0.1:1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:1/hook",
        "https://user:pw@127.0.0.1:1/",
    ] {
        let refused = ops
            .put_subscriber(PutSubscriberRequest {
                subscriber: Some(with_webhook(
                    subscriber(
                        &format!("ssrf-{}", env.id),
                        RelaySubscriberKind::Park,
                        "",
                        "",
                        &[],
                    ),
                    url,
                )),
            })
            .await
            .expect_err(url);
        assert_eq!(refused.code(), Code::InvalidArgument, "{url}: {refused:?}");
        assert_eq!(
            crate::profiles::fields(&refused),
            ["subscriber.webhook.url"],
            "{url}"
        );
    }
    let bad_scope = ops
        .put_subscriber(PutSubscriberRequest {
            subscriber: Some(subscriber(
                &format!("scope-{}", env.id),
                RelaySubscriberKind::Park,
                "",
                r#"{"tags": [{"prefix": 3}]}"#,
                &[],
            )),
        })
        .await
        .expect_err("a bad scope");
    assert_eq!(crate::profiles::fields(&bad_scope), ["subscriber.scope"]);
    assert!(
        bad_scope
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .description
            .contains("$.tags"),
        "{bad_scope:?}"
    );

    let (bad, good) = (
        format!("park-bad-{}", env.id),
        format!("park-good-{}", env.id),
    );
    let scope = r#"{"tags": ["business-environment"]}"#;
    let bad_secret = put(
        &mut ops,
        with_webhook(
            subscriber(&bad, RelaySubscriberKind::Park, "", scope, &[]),
            &bad_peer.url,
        ),
    )
    .await;
    let good_secret = put(
        &mut ops,
        with_webhook(
            subscriber(&good, RelaySubscriberKind::Park, "", scope, &[]),
            &good_peer.url,
        ),
    )
    .await;
    bad_peer.set_secrets(&[bad_secret]).await;
    good_peer.set_secrets(&[good_secret]).await;
    bad_peer.fail_next(1_000, FailMode::Drop).await;

    let first = publish(&server, policy(&env, "一", &["business-environment"], "")).await;
    // The good endpoint is not held up by the bad one.
    let got = deliveries(&good_peer, 1).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    // Three attempts, then disabled with a notice in its feed.
    let mut as_bad = relay_as(&server, bearer(Kind::Subscriber, &bad, &[])).await;
    let items = feed_until(&mut as_bad, "", "the disabling notice", |i| {
        i.iter().any(|i| i.event == FeedEvent::Notice as i32)
    })
    .await;
    assert_eq!(items[0].policy_id, first);
    assert!(items[1].notice.contains("disabled"), "{items:#?}");
    assert_eq!(
        bad_peer.deliveries().await.len(),
        3,
        "the schedule has three attempts"
    );
    let shown = ops
        .get_subscriber(GetSubscriberRequest {
            subscriber_id: bad.clone(),
        })
        .await
        .expect("shown")
        .into_inner();
    let webhook = shown.webhook.expect("webhook");
    assert_eq!(webhook.state, WebhookState::Disabled as i32);
    assert!(!webhook.disabled_reason.is_empty());

    // Disabled: deliveries wait, up to the capacity (2); the rest overflow, still in the feed.
    for name in ["二", "三", "四"] {
        publish(&server, policy(&env, name, &["business-environment"], "")).await;
    }
    feed_until(&mut as_bad, "", "four policies", |i| {
        i.iter()
            .filter(|i| i.event == FeedEvent::Relayed as i32)
            .count()
            == 4
    })
    .await;
    let webhook = ops
        .get_subscriber(GetSubscriberRequest {
            subscriber_id: bad.clone(),
        })
        .await
        .expect("shown")
        .into_inner()
        .webhook
        .expect("webhook");
    assert_eq!((webhook.pending, webhook.overflowed), (2, 1), "{webhook:?}");

    // Removed: its pending deliveries stop.
    let removed = ops
        .remove_subscriber(RemoveSubscriberRequest {
            subscriber_id: bad.clone(),
        })
        .await
        .expect("removed")
        .into_inner();
    assert_eq!(removed.pending_dropped, 2);
    let gone = as_bad
        .pull_feed(PullFeedRequest::default())
        .await
        .expect_err("gone");
    assert_eq!(gone.code(), Code::NotFound);
    let reenable = with_webhook(
        subscriber(&bad, RelaySubscriberKind::Park, "", scope, &[]),
        &bad_peer.url,
    );
    bad_peer.fail_next(0, FailMode::Drop).await;
    let before = bad_peer.deliveries().await.len();
    let secret = put(&mut ops, reenable).await;
    bad_peer.set_secrets(&[secret]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        bad_peer.deliveries().await.len(),
        before,
        "nothing of the removed subscriber's queue went out"
    );
}
