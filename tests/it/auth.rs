//! Identity and access against a real `zhida serve all`: every RPC refuses a call without
//! a token (but health, reflection and what is public by design); a token without the
//! scope is refused; departments draft only as themselves and read only their own drafts;
//! whoever submitted a policy does not approve it; a citizen reaches only its own profile,
//! subscriptions and inbox; expired, forged, `alg: none` and rotated-out tokens are
//! refused; a service without keys does not start unless `auth.mode = "off"`.

use std::{process::Command, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use tonic::{Code, codegen::http::uri::PathAndQuery};
use zhida_proto::{
    events::v1::{PolicyContent, PolicyStatus},
    notification::v1::ListInboxRequest,
    policy::v1::{
        CreateDraftRequest, Decision, GetPolicyRequest, ListPoliciesRequest, ListPoliciesResponse,
        ReviewRequest, SubmitForReviewRequest, policy_service_client::PolicyServiceClient,
    },
    profile::v1::{GetProfileRequest, SubscribeRequest, UpsertProfileRequest},
    relay::v1::PullFeedRequest,
};
use zhida_runtime::auth::{self, Bearer, Kind, Signer};

use crate::helpers::{Authed, Server, TestEnv, bearer, channel, citizen, reviewer, token};

/// A draft of the policy every test here drafts, as `department` (empty: the caller's).
fn draft(request_id: String, department: &str) -> CreateDraftRequest {
    CreateDraftRequest {
        request_id,
        content: Some(PolicyContent {
            title: "杨浦区科技企业研发费用补贴".into(),
            body: "……".into(),
            tags: vec!["tech-innovation".into()],
            ..PolicyContent::default()
        }),
        faqs: Vec::new(),
        department: department.into(),
    }
}

/// A `PolicyService` client that sends no token.
async fn anonymous(server: &Server) -> PolicyServiceClient<tonic::transport::Channel> {
    PolicyServiceClient::new(channel(&server.url).await.expect("connect"))
}

/// `ListPolicies` of everything, one page of 200.
fn everything() -> ListPoliciesRequest {
    ListPoliciesRequest {
        page_size: 200,
        ..ListPoliciesRequest::default()
    }
}

/// The ids of the policies a `ListPolicies` answer shows.
fn ids(response: tonic::Response<ListPoliciesResponse>) -> Vec<String> {
    response
        .into_inner()
        .policies
        .into_iter()
        .map(|p| p.policy_id)
        .collect()
}

/// Checks that policy `id` (a draft of 区科委, `state`) is invisible to another
/// department (`other`) and to a caller without a token (`nobody`): as if it did not exist.
async fn assert_hidden(
    id: &str,
    other: &mut PolicyServiceClient<Authed>,
    nobody: &mut PolicyServiceClient<tonic::transport::Channel>,
    state: &str,
) {
    let get = || GetPolicyRequest {
        policy_id: id.to_string(),
        version: 0,
    };
    let as_other = other
        .get_policy(get())
        .await
        .expect_err("another department's draft");
    assert_eq!(as_other.code(), Code::NotFound, "{state}: {as_other:?}");
    assert!(
        !as_other.message().contains("区科委"),
        "{state}: {as_other:?}"
    );
    let as_nobody = nobody.get_policy(get()).await.expect_err("no token");
    assert_eq!(as_nobody.code(), Code::NotFound, "{state}: {as_nobody:?}");
    let listed = ids(other.list_policies(everything()).await.expect("listed"));
    assert!(
        !listed.iter().any(|p| p == id),
        "{state}: listed for 区民政局"
    );
    let listed = ids(nobody.list_policies(everything()).await.expect("listed"));
    assert!(
        !listed.iter().any(|p| p == id),
        "{state}: listed without a token"
    );
    let theirs = ListPoliciesRequest {
        department: "区科委".into(),
        ..everything()
    };
    let listed = ids(other.list_policies(theirs).await.expect("listed"));
    assert!(
        !listed.iter().any(|p| p == id),
        "{state}: listed for 区民政局 asking for 区科委's"
    );
}

/// Calls `path` with an empty message (every field at its default) as `authorization`
/// (a whole header value) or without one; the status code (`Ok` for a success).
async fn call(url: &str, path: &str, authorization: Option<&str>) -> Code {
    let channel = channel(url).await.expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(());
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ASCII"));
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = PathAndQuery::try_from(path).expect("path");
    match grpc.unary(request, path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rpc_needs_a_valid_token_with_its_scope_and_reaches_only_what_is_the_callers() {
    let env = TestEnv::new("auth").await;
    let server = Server::start("all", &env).await;

    // 1. No credentials: nothing answers OK but the public calls; everything else is
    //    refused before its handler, as UNAUTHENTICATED.
    // The library (公文库) is public: a token there only adds the caller's own drafts.
    let public = [
        "/zhida.policy.v1.PolicyService/ListTags",
        "/zhida.policy.v1.PolicyService/GetPolicy",
        "/zhida.policy.v1.PolicyService/GetInterpretation",
        "/zhida.policy.v1.PolicyService/ListPolicies",
        "/zhida.policy.v1.PolicyService/SearchPolicies",
        "/zhida.profile.v1.ProfileService/UnsubscribeByToken",
    ];
    let mut refused = 0;
    for path in zhida_proto::rpc_paths() {
        let code = call(&server.url, &path, None).await;
        if public.contains(&path.as_str()) {
            assert_ne!(code, Code::Unauthenticated, "{path} is public");
        } else {
            assert_eq!(code, Code::Unauthenticated, "{path} without a token");
            refused += 1;
        }
    }
    assert!(refused >= 14, "{refused} RPCs refused");
    assert_eq!(
        call(&server.url, "/grpc.health.v1.Health/Check", None).await,
        Code::Ok,
        "probes need no token"
    );

    // 2. A valid token without the scope: PERMISSION_DENIED for every RPC it lacks.
    let association = format!("Bearer {}", token(Kind::Subscriber, "assoc-a", &[]));
    for path in zhida_proto::rpc_paths() {
        let code = call(&server.url, &path, Some(&association)).await;
        // A subscriber's own: its feed, its registration, its forwards and its secret
        // (answered past the layer: this one is not registered, so NOT_FOUND).
        let own = [
            "PullFeed",
            "StreamFeed",
            "GetSubscriber",
            "Forward",
            "RotateWebhookSecret",
        ]
        .iter()
        .any(|rpc| path == format!("/zhida.relay.v1.RelayService/{rpc}"));
        if own || public.contains(&path.as_str()) {
            assert!(
                !matches!(code, Code::Unauthenticated | Code::PermissionDenied),
                "{path}: {code:?}"
            );
        } else {
            assert_eq!(code, Code::PermissionDenied, "{path} as an association");
        }
    }

    // 3. Bad tokens: expired, signed by another key, unsigned (alg none), rotated out.
    let signer = |key_id: &str| {
        let (private, _) = zhida_runtime::auth::generate_key();
        Signer::new(&Default::default(), key_id, &private).expect("signer")
    };
    let stranger = signer("test").issue(
        Kind::Operator,
        "mallory",
        &Default::default(),
        Duration::from_secs(60),
    );
    let rotated_out = signer("retired").issue(
        Kind::Operator,
        "mallory",
        &Default::default(),
        Duration::from_secs(60),
    );
    let valid = token(Kind::Directory, "portal", &[]);
    let claims = valid.split('.').nth(1).expect("claims").to_string();
    let unsigned = format!(
        "{}.{claims}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"test"}"#)
    );
    let expired = {
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&claims).expect("b64")).expect("json");
        assert!(payload["exp"].as_u64().is_some());
        // Same signer as valid tokens, long expired.
        crate::helpers::token_at(Kind::Directory, "portal", 1_000, 2_000)
    };
    let get = "/zhida.profile.v1.ProfileService/GetProfile";
    for (what, token) in [
        ("expired", expired),
        ("another key", stranger.expect("token")),
        ("alg none", unsigned),
        ("a retired key id", rotated_out.expect("token")),
        ("garbage", "x.y.z".to_string()),
    ] {
        assert_eq!(
            call(&server.url, get, Some(&format!("Bearer {token}"))).await,
            Code::Unauthenticated,
            "{what}"
        );
    }
    assert_eq!(
        call(&server.url, get, Some(&format!("Bearer {valid}"))).await,
        Code::InvalidArgument,
        "the valid token gets to the handler (which wants a subject id)"
    );

    // 4. A department drafts as itself only; an empty department is its own; a citizen
    //    holding the scope is still no department; without a token nobody drafts.
    let mut kw = server.publisher("区科委").await;
    let refused = kw
        .create_draft(draft(
            format!("auth-other-{}", env.id),
            "区人力资源社会保障局",
        ))
        .await
        .expect_err("another department's name");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    for (what, department) in [("as itself", ""), ("named", "区科委")] {
        let created = kw
            .create_draft(draft(
                format!("auth-{what}-{}", env.id).replace(' ', "-"),
                department,
            ))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"))
            .into_inner();
        assert_eq!(
            (created.department.as_str(), created.status),
            ("区科委", PolicyStatus::Draft as i32),
            "{what}: {created:?}"
        );
    }
    let citizen_drafts = server
        .publisher_as(bearer(Kind::Subject, "c-x", &[auth::POLICY_PUBLISH]))
        .await
        .create_draft(draft(format!("auth-citizen-{}", env.id), ""))
        .await
        .expect_err("a citizen holding the scope is still no department");
    assert_eq!(citizen_drafts.code(), Code::PermissionDenied);
    let nobody = anonymous(&server)
        .await
        .create_draft(draft(format!("auth-nobody-{}", env.id), "区科委"))
        .await
        .expect_err("no token");
    assert_eq!(nobody.code(), Code::Unauthenticated);

    // 5. A citizen reaches its own profile, subscriptions and inbox, and nobody else's.
    let mine = citizen(&env, "mine", "王芳", &["employment"], true);
    let theirs = citizen(&env, "theirs", "李强", &["employment"], true);
    let mut portal = server.profiles().await;
    for profile in [&mine, &theirs] {
        portal
            .upsert_profile(UpsertProfileRequest {
                profile: Some(profile.clone()),
            })
            .await
            .expect("the portal writes any profile");
    }
    let me: Bearer = bearer(Kind::Subject, &mine.subject_id, &[]);
    let mut as_me = server.profiles_as(me.clone()).await;
    let get = |id: &str| GetProfileRequest {
        subject_id: id.to_string(),
    };
    as_me
        .get_profile(get(&mine.subject_id))
        .await
        .expect("my own profile");
    let mut denied = Vec::new();
    denied.push(as_me.get_profile(get(&theirs.subject_id)).await.err());
    denied.push(
        as_me
            .upsert_profile(UpsertProfileRequest {
                profile: Some(theirs.clone()),
            })
            .await
            .err(),
    );
    denied.push(
        as_me
            .subscribe(SubscribeRequest {
                subject_id: theirs.subject_id.clone(),
                subscription: Some(theirs.subscriptions[0].clone()),
            })
            .await
            .err(),
    );
    let mut my_inbox = server.inbox_as(me).await;
    let inbox = |id: &str| ListInboxRequest {
        recipient_id: id.to_string(),
        limit: 10,
        ..ListInboxRequest::default()
    };
    my_inbox
        .list_inbox(inbox(&mine.subject_id))
        .await
        .expect("my own inbox");
    denied.push(my_inbox.list_inbox(inbox(&theirs.subject_id)).await.err());
    for status in denied {
        let status = status.expect("refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(
            !status.message().contains('@'),
            "no address in the refusal: {status:?}"
        );
    }
}

/// Issue #8: an association reads and forwards from its own feed only, and only operators
/// register subscribers.
#[tokio::test(flavor = "multi_thread")]
async fn an_association_cannot_read_another_associations_feed() {
    use zhida_proto::relay::v1::{
        ForwardRequest, GetSubscriberRequest, PutSubscriberRequest, StreamFeedRequest, Subscriber,
        relay_service_client::RelayServiceClient,
    };
    let env = TestEnv::new("feeds").await;
    let server = Server::start("relay", &env).await;
    let relay = |kind, id: &str| {
        let bearer = bearer(kind, id, &[]);
        let url = server.url.clone();
        async move {
            RelayServiceClient::with_interceptor(channel(&url).await.expect("connect"), bearer)
        }
    };
    let (mine, theirs) = (format!("assoc-a-{}", env.id), format!("assoc-b-{}", env.id));
    let register = |id: &str| PutSubscriberRequest {
        subscriber: Some(Subscriber {
            id: id.into(),
            kind: zhida_proto::events::v1::RelaySubscriberKind::Association as i32,
            display_name: id.into(),
            ..Subscriber::default()
        }),
    };
    let mut me = relay(Kind::Subscriber, &mine).await;
    let refused = me
        .put_subscriber(register(&mine))
        .await
        .expect_err("a subscriber registers nobody");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut ops = relay(Kind::Operator, "ops").await;
    for id in [&mine, &theirs] {
        ops.put_subscriber(register(id)).await.expect("registered");
    }
    me.pull_feed(PullFeedRequest::default())
        .await
        .expect("its own feed");
    me.get_subscriber(GetSubscriberRequest::default())
        .await
        .expect("itself");
    let denied = [
        me.pull_feed(PullFeedRequest {
            subscriber_id: theirs.clone(),
            ..PullFeedRequest::default()
        })
        .await
        .err(),
        me.stream_feed(StreamFeedRequest {
            subscriber_id: theirs.clone(),
            ..StreamFeedRequest::default()
        })
        .await
        .err(),
        me.get_subscriber(GetSubscriberRequest {
            subscriber_id: theirs.clone(),
        })
        .await
        .err(),
        me.forward(ForwardRequest {
            subscriber_id: theirs.clone(),
            policy_id: "p-1".into(),
            all_members: true,
            request_id: "r-1".into(),
            ..ForwardRequest::default()
        })
        .await
        .err(),
    ];
    for status in denied {
        let status = status.expect("refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    // A department is no subscriber; an operator names whose feed it reads.
    let mut department = relay(Kind::Department, "区科委").await;
    let status = department
        .pull_feed(PullFeedRequest::default())
        .await
        .expect_err("no relay scope");
    assert_eq!(status.code(), Code::PermissionDenied);
    ops.pull_feed(PullFeedRequest {
        subscriber_id: theirs.clone(),
        ..PullFeedRequest::default()
    })
    .await
    .expect("an operator reads any feed");
}

/// Issue #8: drafts are their department's (and its reviewers') until published.
#[tokio::test(flavor = "multi_thread")]
async fn a_department_cannot_read_another_departments_drafts() {
    let env = TestEnv::new("drafts").await;
    let server = Server::start("publisher", &env).await;
    let mut kw = server.publisher("区科委").await;
    let created = kw
        .create_draft(draft(format!("drafts-{}", env.id), ""))
        .await
        .expect("drafted")
        .into_inner();
    let id = created.policy_id.clone();
    let get = || GetPolicyRequest {
        policy_id: id.clone(),
        version: 0,
    };

    // Another department, and a caller without a token, do not see it: as if it did not
    // exist, whether drafted or waiting for review.
    let mut mzj = server.publisher("区民政局").await;
    let mut nobody = anonymous(&server).await;
    assert_hidden(&id, &mut mzj, &mut nobody, "a draft").await;

    // Its department and a district-wide reviewer do.
    let mut review = reviewer(&server).await;
    let mine = kw
        .get_policy(get())
        .await
        .expect("its own draft")
        .into_inner();
    assert_eq!(
        mine.policy.map(|p| (p.status, p.department)),
        Some((PolicyStatus::Draft as i32, "区科委".to_string()))
    );
    let listed = ids(kw.list_policies(everything()).await.expect("listed"));
    assert!(listed.contains(&id), "listed for 区科委");
    review
        .get_policy(get())
        .await
        .expect("a reviewer reads drafts");
    let listed = ids(review.list_policies(everything()).await.expect("listed"));
    assert!(listed.contains(&id), "listed for a reviewer");

    // Submitted for review, it is still nobody else's business.
    kw.submit_for_review(SubmitForReviewRequest {
        policy_id: id.clone(),
        expected_generation: created.generation,
    })
    .await
    .expect("submitted");
    assert_hidden(&id, &mut mzj, &mut nobody, "in review").await;
    let waiting = review
        .get_policy(get())
        .await
        .expect("in review")
        .into_inner();
    assert_eq!(
        waiting.policy.map(|p| p.status),
        Some(PolicyStatus::InReview as i32)
    );
}

/// The four-eyes rule (先审查后公开): a principal holding both scopes submits, and its
/// review of its own submission is refused; another reviewer's is not.
#[tokio::test(flavor = "multi_thread")]
async fn the_submitter_cannot_approve() {
    let env = TestEnv::new("foureyes").await;
    let server = Server::start("publisher", &env).await;
    let mut both = server
        .publisher_as(bearer(
            Kind::Department,
            "区科委",
            &[auth::POLICY_PUBLISH, auth::POLICY_REVIEW],
        ))
        .await;
    let created = both
        .create_draft(draft(format!("foureyes-{}", env.id), ""))
        .await
        .expect("drafted")
        .into_inner();
    let submitted = both
        .submit_for_review(SubmitForReviewRequest {
            policy_id: created.policy_id.clone(),
            expected_generation: created.generation,
        })
        .await
        .expect("submitted")
        .into_inner();
    let review = |expected_generation| ReviewRequest {
        policy_id: created.policy_id.clone(),
        expected_generation,
        decision: Decision::Approve as i32,
        comment: String::new(),
        acknowledge_findings: Vec::new(),
    };
    let refused = both
        .review(review(submitted.generation))
        .await
        .expect_err("the submitter approves its own policy");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let unchanged = both
        .get_policy(GetPolicyRequest {
            policy_id: created.policy_id.clone(),
            version: 0,
        })
        .await
        .expect("its own policy")
        .into_inner()
        .policy
        .expect("the policy");
    assert_eq!(
        (
            unchanged.status,
            unchanged.generation,
            unchanged.reviewed_by.as_str()
        ),
        (PolicyStatus::InReview as i32, submitted.generation, ""),
        "the refusal changed nothing"
    );
    // Another principal, a reviewer, may (the audience preview may be unavailable here:
    // only the publisher runs; the approval stands regardless).
    let approved = reviewer(&server)
        .await
        .review(review(submitted.generation))
        .await
        .expect("another principal approves")
        .into_inner()
        .policy
        .expect("the policy");
    assert_eq!(approved.status, PolicyStatus::Approved as i32);
    assert_eq!(approved.reviewed_by, "reviewer:*");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_without_keys_does_not_start_unless_auth_is_explicitly_off() {
    let env = TestEnv::new("authoff").await;
    let output = Command::new(env!("CARGO_BIN_EXE_zhida"))
        .args(["serve", "relay"])
        .envs(env.vars())
        .env("ZHIDA_AUTH__KEYS", "[]")
        .env("ZHIDA_GRPC__LISTEN", "127.0.0.1:0")
        .output()
        .expect("zhida runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started without keys");
    assert!(stderr.contains("auth.keys"), "names the key: {stderr}");

    // Explicitly off: it serves everyone (and says so at start).
    let server = Server::start_with(
        "relay",
        &env,
        &[("ZHIDA_AUTH__KEYS", "[]"), ("ZHIDA_AUTH__MODE", "off")],
    )
    .await;
    assert_eq!(
        call(
            &server.url,
            "/zhida.relay.v1.RelayService/ListSubscribers",
            None
        )
        .await,
        Code::Ok,
        "no token needed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_state_changing_call_lands_on_the_audit_topic_with_who_what_and_outcome() {
    let env = TestEnv::new("audit").await;
    let server = Server::start("all", &env).await;
    let profile = citizen(&env, "audited", "张伟", &["employment"], true);
    let mut portal = server.profiles().await;
    portal
        .upsert_profile(UpsertProfileRequest {
            profile: Some(profile.clone()),
        })
        .await
        .expect("written");
    portal
        .get_profile(GetProfileRequest {
            subject_id: profile.subject_id.clone(),
        })
        .await
        .expect("a read, not audited");
    let denied = server
        .publisher("区科委")
        .await
        .create_draft(draft(format!("audit-{}", env.id), "区民政局"))
        .await
        .expect_err("another department");
    assert_eq!(denied.code(), Code::PermissionDenied);

    let expected = [
        (
            "directory:test-portal",
            "/zhida.profile.v1.ProfileService/UpsertProfile",
        ),
        (
            "department:区科委",
            "/zhida.policy.v1.PolicyService/CreateDraft",
        ),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let lines = loop {
        let output = Command::new(env!("CARGO_BIN_EXE_zhida"))
            .args(["audit", "--since", "10m"])
            .envs(env.vars())
            .output()
            .expect("zhida audit runs");
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).expect("utf-8");
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        if lines.len() >= expected.len() || std::time::Instant::now() > deadline {
            assert!(
                !stdout.contains('@'),
                "no address in the audit trail: {stdout}"
            );
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        lines.len(),
        2,
        "one record per write, none per read: {lines:?}"
    );
    for (principal, rpc) in expected {
        let line = lines
            .iter()
            .find(|l| l["rpc"] == rpc)
            .unwrap_or_else(|| panic!("{rpc} audited: {lines:?}"));
        assert_eq!(line["principal"], principal);
        assert!(
            line["at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
    }
    let publish = lines
        .iter()
        .find(|l| l["rpc"] == expected[1].1)
        .expect("the refused draft");
    assert_eq!(
        publish["code"],
        tonic::Code::PermissionDenied.description(),
        "the outcome: refused"
    );
}
