//! The tag catalogue as data, seen from the profiler: it seeds the empty `tags` topic of
//! its own deployment, and follows it while running. An operator's retirement (a
//! `TagDefined` on the topic) refuses new subscriptions to the tag but keeps the old ones;
//! a tag created on the topic becomes subscribable, both without a restart.

use std::time::Duration;

use tonic::Code;
use zhida_bus::Producer;
use zhida_proto::{
    events::v1::{Channel, Subscription, TagDefined},
    profile::v1::{
        GetProfileRequest, ListSubscriptionsRequest, PolicyDraft, PreviewAudienceRequest,
        SubscribeRequest, UpsertProfileRequest,
    },
};

use crate::{
    helpers::{Server, TestEnv, citizen},
    profiles::fields,
};

/// How long a definition may take to reach the running profiler.
const REPLICATION: Duration = Duration::from_secs(30);

fn on(tag: &str) -> Subscription {
    Subscription {
        tags: vec![tag.into()],
        channels: vec![Channel::Inbox as i32],
        ..Subscription::default()
    }
}

/// What the profiler answers a draft filed under `tag` (a read-only probe of its
/// catalogue): `Ok` for an active tag, `INVALID_ARGUMENT` otherwise.
async fn preview(server: &Server, tag: &str) -> Result<(), tonic::Status> {
    server
        .profiles()
        .await
        .preview_audience(PreviewAudienceRequest {
            policy: Some(PolicyDraft {
                tags: vec![tag.into()],
                ..PolicyDraft::default()
            }),
            sample_size: 1,
        })
        .await
        .map(|_| ())
}

/// Waits until a draft under `tag` is accepted (`active`) or refused.
async fn until_draft(server: &Server, tag: &str, active: bool) {
    let deadline = tokio::time::Instant::now() + REPLICATION;
    loop {
        match preview(server, tag).await {
            Ok(()) if active => return,
            Err(status) if !active && status.code() == Code::InvalidArgument => return,
            Ok(()) | Err(_) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the profiler never saw {tag} become {}",
            if active { "active" } else { "retired" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn define(producer: &Producer, tag: &str, name: &str, retired: bool) {
    producer
        .emit(
            tag,
            &TagDefined {
                tag: tag.into(),
                name: name.into(),
                retired,
                updated_at: None,
            },
        )
        .await
        .expect("tag defined");
}

#[tokio::test(flavor = "multi_thread")]
async fn retiring_and_creating_tags_on_the_topic_reaches_a_running_profiler() {
    let env = TestEnv::new("tags").await;
    let server = Server::start("profiler", &env).await;
    let mut client = server.profiles().await;

    // Seeded by the profiler itself: the built-in tags are subscribable, others are not.
    let profile = citizen(&env, "renter", "王芳", &["housing"], true);
    let id = profile.subject_id.clone();
    client
        .upsert_profile(UpsertProfileRequest {
            profile: Some(profile.clone()),
        })
        .await
        .expect("a subscription to housing");
    let unknown = client
        .subscribe(SubscribeRequest {
            subject_id: id.clone(),
            subscription: Some(on("night-economy")),
        })
        .await
        .expect_err("not a tag yet");
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(fields(&unknown), ["subscription.tags[0]"]);

    // An operator retires housing.
    let producer = Producer::new(&env.kafka, "/zhida/test").expect("producer");
    define(&producer, "housing", "住房保障", true).await;
    until_draft(&server, "housing", false).await;
    let refused = client
        .subscribe(SubscribeRequest {
            subject_id: id.clone(),
            subscription: Some(on("housing")),
        })
        .await
        .expect_err("retired");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(fields(&refused), ["subscription.tags[0]"]);
    assert!(
        refused.message().contains("retired"),
        "{}",
        refused.message()
    );

    // The subscription made before stays, readable and unchanged, and survives the same
    // profile upserted again.
    let listed = |subscriptions: &[Subscription]| -> Vec<Vec<String>> {
        subscriptions.iter().map(|s| s.tags.clone()).collect()
    };
    let before = client
        .list_subscriptions(ListSubscriptionsRequest {
            subject_id: id.clone(),
        })
        .await
        .expect("listed")
        .into_inner()
        .subscriptions;
    assert_eq!(listed(&before), [["housing"]]);
    client
        .upsert_profile(UpsertProfileRequest {
            profile: Some(profile.clone()),
        })
        .await
        .expect("an old subscription to a retired tag stays valid");
    let stored = client
        .get_profile(GetProfileRequest {
            subject_id: id.clone(),
        })
        .await
        .expect("read")
        .into_inner()
        .profile
        .expect("profile");
    assert_eq!(stored.subscriptions, before);

    // An operator creates a tag: subscribable without a restart.
    define(&producer, "night-economy", "夜间经济", false).await;
    until_draft(&server, "night-economy", true).await;
    client
        .subscribe(SubscribeRequest {
            subject_id: id.clone(),
            subscription: Some(on("night-economy")),
        })
        .await
        .expect("a new tag");
    let after = client
        .list_subscriptions(ListSubscriptionsRequest { subject_id: id })
        .await
        .expect("listed")
        .into_inner()
        .subscriptions;
    assert_eq!(listed(&after), [["housing"], ["night-economy"]]);
}
