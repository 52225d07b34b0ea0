//! The profiler's API against a real broker: field-by-field validation, subscriptions,
//! explain and preview, a restart that replays the compacted `profiles` topic, a delete
//! that leaves a tombstone and survives the next restart, and two replicas taking writes
//! for the same subjects at once.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;
use zhida_bus::Topic;
use zhida_proto::{
    events::v1::{
        Channel, Contact, Enterprise, Profile, SubjectKind, Subscription, profile::Details,
    },
    profile::v1::{
        DeleteProfileRequest, ExplainMatchRequest, GetProfileRequest, ListSubscriptionsRequest,
        PolicyDraft, PreviewAudienceRequest, SubscribeRequest, UnsubscribeRequest,
        UpsertProfileRequest,
    },
};

use crate::helpers::{Server, TestEnv, citizen, has_tombstone};

fn credit_code(organisation: &str) -> String {
    zhida_profiler::credit_code(&format!("91310110{organisation}")).expect("17 code characters")
}

fn enterprise(env: &TestEnv) -> Profile {
    Profile {
        subject_id: format!("ent-{}", env.id),
        kind: SubjectKind::Enterprise as i32,
        display_name: "上海杨浦智造科技有限公司".into(),
        street: "新江湾城街道".into(),
        contacts: vec![Contact {
            channel: Channel::Email as i32,
            address: env.address("hr"),
            consent: true,
            ..Contact::default()
        }],
        subscriptions: vec![],
        details: Some(Details::Enterprise(Enterprise {
            credit_code: credit_code("MA1G2K3L4"),
            industry: "C3911".into(),
            size: "小".into(),
            registered_on: "2019-04-16".into(),
            registered_capital: 800.0,
            employees: 46,
            qualifications: vec!["科技型中小企业".into()],
            parks: vec!["park-xinjiangwan".into()],
            associations: vec![],
        })),
    }
}

/// The fields an INVALID_ARGUMENT status names, in order.
pub(crate) fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

fn draft() -> PolicyDraft {
    PolicyDraft {
        tags: vec!["tech-innovation".into()],
        audience: r#"{"enterprise": {"size": ["小", "微"], "industry": [{"industry": "C39"}]}}"#
            .into(),
        department: "区科委".into(),
        title: "杨浦区支持科技型中小企业创新发展若干措施".into(),
        service_url: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_are_validated_subscribed_explained_replayed_and_deleted_everywhere() {
    let env = TestEnv::new("profiles").await;
    let mut server = Server::start("profiler", &env).await;
    let mut client = server.profiles().await;
    let profile = enterprise(&env);
    let id = profile.subject_id.clone();

    // Every bad field at once; the mobile number is personal data and is not echoed.
    let mut bad = profile.clone();
    if let Some(Details::Enterprise(e)) = &mut bad.details {
        e.credit_code = "913101100000000000".into();
        e.industry = "C99".into();
    }
    bad.contacts.push(Contact {
        channel: Channel::Sms as i32,
        address: "1380013800".into(),
        consent: true,
        ..Contact::default()
    });
    let error = client
        .upsert_profile(UpsertProfileRequest { profile: Some(bad) })
        .await
        .expect_err("invalid");
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    assert_eq!(
        fields(&error),
        [
            "profile.enterprise.credit_code",
            "profile.enterprise.industry",
            "profile.contacts[1].address"
        ]
    );
    assert!(!format!("{error:?}").contains("1380013800"), "{error:?}");

    client
        .upsert_profile(UpsertProfileRequest {
            profile: Some(profile.clone()),
        })
        .await
        .expect("upsert");

    // Subscribe; a retried Subscribe names the same subscription instead of adding one.
    let subscription = Subscription {
        tags: vec!["tech-innovation".into(), "sme".into()],
        channels: vec![Channel::Email as i32],
        filter: r#"{"department": ["区科委"]}"#.into(),
        ..Subscription::default()
    };
    let subscribe = SubscribeRequest {
        subject_id: id.clone(),
        subscription: Some(subscription),
    };
    let stored = client
        .subscribe(subscribe.clone())
        .await
        .expect("subscribe")
        .into_inner()
        .subscription
        .expect("stored subscription");
    assert!(!stored.id.is_empty());
    let again = client
        .subscribe(subscribe)
        .await
        .expect("subscribe again")
        .into_inner()
        .subscription
        .expect("stored subscription");
    assert_eq!(again.id, stored.id);
    let listed = client
        .list_subscriptions(ListSubscriptionsRequest {
            subject_id: id.clone(),
        })
        .await
        .expect("list")
        .into_inner()
        .subscriptions;
    assert_eq!(listed, std::slice::from_ref(&stored));

    let error = client
        .subscribe(SubscribeRequest {
            subject_id: id.clone(),
            subscription: Some(Subscription {
                tags: vec!["sme".into()],
                channels: vec![Channel::Email as i32],
                filter: r#"{"department": [{"prefx": "区"}]}"#.into(),
                ..Subscription::default()
            }),
        })
        .await
        .expect_err("invalid filter");
    assert_eq!(fields(&error), ["subscription.filter"]);
    assert!(
        error.message().contains("$.department[0].prefx"),
        "{error:?}"
    );

    // Why would it receive a draft? Its size and industry, and its subscription.
    let why = client
        .explain_match(ExplainMatchRequest {
            subject_id: id.clone(),
            policy: Some(draft()),
        })
        .await
        .expect("explain")
        .into_inner();
    assert!(why.matched);
    assert_eq!(
        why.audience_conditions,
        [
            "enterprise.industry is in industry C39",
            "enterprise.size = \"小\""
        ]
    );
    assert_eq!(why.subscription_ids, std::slice::from_ref(&stored.id));
    assert_eq!(
        why.channels,
        [Channel::Email as i32, Channel::Inbox as i32],
        "in the audience: email (consented) and the inbox every subject has"
    );
    assert!(why.reason.contains("tech-innovation"), "{}", why.reason);

    let preview = client
        .preview_audience(PreviewAudienceRequest {
            policy: Some(draft()),
            sample_size: 5,
        })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(
        (
            preview.audience_matches,
            preview.subscription_matches,
            preview.recipients
        ),
        (1, 1, 1)
    );
    assert_eq!(preview.sample[0].subject_id, id);

    client
        .unsubscribe(UnsubscribeRequest {
            subject_id: id.clone(),
            subscription_id: stored.id.clone(),
        })
        .await
        .expect("unsubscribe");
    let error = client
        .unsubscribe(UnsubscribeRequest {
            subject_id: id.clone(),
            subscription_id: stored.id.clone(),
        })
        .await
        .expect_err("already gone");
    assert_eq!(error.code(), Code::NotFound);

    // A restart rebuilds everything from the compacted topic: the last write wins.
    server.kill_9();
    let mut server = Server::start("profiler", &env).await;
    let mut client = server.profiles().await;
    let replayed = client
        .get_profile(GetProfileRequest {
            subject_id: id.clone(),
        })
        .await
        .expect("replayed")
        .into_inner()
        .profile
        .expect("profile");
    assert_eq!(
        replayed, profile,
        "the profile without the removed subscription"
    );

    client
        .delete_profile(DeleteProfileRequest {
            subject_id: id.clone(),
        })
        .await
        .expect("delete");
    assert!(
        has_tombstone(&env, Topic::Profiles, &id, Duration::from_secs(20)).await,
        "a tombstone for {id} on the profiles topic"
    );
    server.kill_9();
    let server = Server::start("profiler", &env).await;
    let mut client = server.profiles().await;
    let error = client
        .get_profile(GetProfileRequest {
            subject_id: id.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(error.code(), Code::NotFound);
    let preview = client
        .preview_audience(PreviewAudienceRequest {
            policy: Some(draft()),
            sample_size: 0,
        })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(
        preview.audience_matches, 0,
        "the deleted profile matches nothing"
    );
}

/// Two replicas behind one load balancer: Subscribe calls for the same subjects race
/// across them, and every acknowledged subscription is kept, as both replicas see it.
#[tokio::test(flavor = "multi_thread")]
async fn two_profiler_replicas_racing_subscribes_keep_every_acknowledged_subscription() {
    const SUBJECTS: usize = 3;
    const PER_SUBJECT: usize = 16;
    let env = TestEnv::new("replicas").await;
    let replicas = [
        Server::start("profiler", &env).await,
        Server::start("profiler", &env).await,
    ];
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(replica.profiles().await);
    }
    let profiles: Vec<_> = (0..SUBJECTS)
        .map(|i| citizen(&env, &format!("c{i}"), "张伟", &[], true))
        .collect();
    let subjects: Vec<String> = profiles.iter().map(|p| p.subject_id.clone()).collect();
    for (i, profile) in profiles.into_iter().enumerate() {
        clients[i % 2]
            .clone()
            .upsert_profile(UpsertProfileRequest {
                profile: Some(profile),
            })
            .await
            .expect("upsert");
    }

    // Both replicas know every profile before the race starts.
    for client in &clients {
        for subject in &subjects {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let request = GetProfileRequest {
                subject_id: subject.clone(),
            };
            while let Err(status) = client.clone().get_profile(request.clone()).await {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{subject} never replayed: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    // Every subscription at once, alternating replicas.
    let tags = ["employment", "housing", "sme", "tech-innovation"];
    let (clients_by_turn, subjects_ref) = (&clients, &subjects);
    let calls = (0..PER_SUBJECT).flat_map(|n| {
        subjects_ref.iter().enumerate().map(move |(i, subject)| {
            let mut client = clients_by_turn[(i + n + 1) % 2].clone();
            let request = SubscribeRequest {
                subject_id: subject.clone(),
                subscription: Some(Subscription {
                    id: format!("sub-{n}"),
                    tags: vec![tags[n % tags.len()].into()],
                    channels: vec![Channel::Email as i32],
                    ..Subscription::default()
                }),
            };
            async move {
                let result = client.subscribe(request.clone()).await;
                (request.subject_id, format!("sub-{n}"), result)
            }
        })
    });
    let results = futures::future::join_all(calls).await;
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for (subject, id, result) in results {
        match result {
            Ok(_) => acknowledged.push((subject, id)),
            Err(status) => panic!("Subscribe {subject}/{id} failed: {status:?}"),
        }
    }
    assert_eq!(acknowledged.len(), SUBJECTS * PER_SUBJECT);

    for (r, client) in clients.iter().enumerate() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut listed = Vec::new();
            for subject in &subjects {
                let subscriptions = client
                    .clone()
                    .list_subscriptions(ListSubscriptionsRequest {
                        subject_id: subject.clone(),
                    })
                    .await
                    .expect("list")
                    .into_inner()
                    .subscriptions;
                listed.extend(subscriptions.into_iter().map(|s| (subject.clone(), s.id)));
            }
            let missing: Vec<_> = acknowledged
                .iter()
                .filter(|a| !listed.contains(a))
                .collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "replica {r} lost {} acknowledged subscriptions: {missing:?}",
                missing.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
