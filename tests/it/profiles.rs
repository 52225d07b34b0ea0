//! The profiler's API against a real broker: field-by-field validation, subscriptions,
//! explain and preview, a restart that replays the compacted `profiles` topic, and a
//! delete that leaves a tombstone and survives the next restart.

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
        UpsertProfileRequest, profile_service_client::ProfileServiceClient,
    },
};

use crate::helpers::{Server, TestEnv, has_tombstone};

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

fn fields(status: &tonic::Status) -> Vec<String> {
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
    let mut client = ProfileServiceClient::connect(server.url.clone())
        .await
        .expect("connect");
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
    assert_eq!(why.channels, [Channel::Email as i32]);
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
    let mut client = ProfileServiceClient::connect(server.url.clone())
        .await
        .expect("connect");
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
    let mut client = ProfileServiceClient::connect(server.url.clone())
        .await
        .expect("connect");
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
