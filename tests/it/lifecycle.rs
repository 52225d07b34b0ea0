//! The publishing lifecycle against a real broker (docs/lifecycle.md): the review gate, who
//! may do which step, stale generations, the events each step appends, the library after a
//! restart, scheduled publication across a `kill -9`, and expiry.

use std::time::Duration;

use prost::Message as _;
use tonic::Code;
use tonic_types::StatusExt as _;
use zhida_bus::Topic;
use zhida_proto::{
    Timestamp,
    events::v1::{
        Faq, FindingKind, Interpretation, PolicyContent, PolicyExpired, PolicyPublished,
        PolicyRevised, PolicyStatus, PolicyWithdrawn,
    },
    policy::v1::{
        CreateDraftRequest, Decision, GetInterpretationRequest, GetPolicyRequest,
        ListPoliciesRequest, PublishRequest, ReviewRequest, ReviseRequest, SearchPoliciesRequest,
        SubmitForReviewRequest, UpdateDraftRequest, UpdateFaqsRequest, WithdrawRequest,
    },
};
use zhida_runtime::auth::Kind;

use crate::helpers::{NewPolicy, Server, TestEnv, bearer, count_records, draft_and_approve};

const RSJ: &str = "区人力资源社会保障局";

fn content(title: &str, body: &str) -> PolicyContent {
    PolicyContent {
        title: title.into(),
        summary: "离校2年内未就业高校毕业生参加就业见习的，按月给予见习补贴。".into(),
        body: body.into(),
        tags: vec!["employment".into(), "graduates".into()],
        document_number: "杨人社规〔2023〕2号".into(),
        service_url: "https://zwdt.sh.gov.cn/".into(),
        interpretation: Some(Interpretation {
            title: "一图读懂见习补贴".into(),
            text: "谁能申请？离校2年内未就业的高校毕业生。".into(),
            ..Interpretation::default()
        }),
        audience: r#"{"citizen": {"groups": ["高校毕业生"]}}"#.into(),
        ..PolicyContent::default()
    }
}

fn now_plus(seconds: i64) -> Timestamp {
    let now = zhida_proto::timestamp_now();
    Timestamp {
        seconds: now.seconds + seconds,
        nanos: 0,
    }
}

#[tokio::test]
async fn a_draft_is_screened_reviewed_by_another_person_published_revised_and_withdrawn() {
    let env = TestEnv::new("lifecycle").await;
    // `serve all`: the reviewer's approval shows the profiler's audience preview.
    let server = Server::start("all", &env).await;
    let mut department = server.publisher(RSJ).await;
    let mut reviewer = server.publisher_as(bearer(Kind::Reviewer, "*", &[])).await;

    // 1. Drafted with a phone number and an ID number in the body: two findings, masked.
    let flawed = "见习补贴按月发放。经办人手机13912345678，身份证号110101199003074258。";
    let draft = department
        .create_draft(CreateDraftRequest {
            request_id: format!("rsj-{}", env.id),
            content: Some(content("杨浦区就业见习补贴", flawed)),
            ..CreateDraftRequest::default()
        })
        .await
        .expect("draft created")
        .into_inner();
    assert_eq!(draft.status, PolicyStatus::Draft as i32);
    assert_eq!(draft.department, RSJ, "the department comes from the token");
    let kinds: Vec<i32> = draft.findings.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [FindingKind::Mobile as i32, FindingKind::ResidentId as i32]
    );
    for f in &draft.findings {
        assert!(
            !f.excerpt.contains("13912345678") && !f.excerpt.contains("110101199003074258"),
            "masked: {}",
            f.excerpt
        );
    }
    // The same request again (a retry) is the same draft.
    let again = department
        .create_draft(CreateDraftRequest {
            request_id: format!("rsj-{}", env.id),
            content: Some(content("杨浦区就业见习补贴", flawed)),
            ..CreateDraftRequest::default()
        })
        .await
        .expect("idempotent")
        .into_inner();
    assert_eq!(
        (again.policy_id.as_str(), again.generation),
        (draft.policy_id.as_str(), 1)
    );
    let id = draft.policy_id.clone();

    // Publishing a draft names its status.
    let refused = department
        .publish(PublishRequest {
            policy_id: id.clone(),
            expected_generation: 1,
            publish_at: None,
        })
        .await
        .expect_err("a draft is not approved");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("draft"), "{}", refused.message());

    // 2. Submitted with the findings; the reviewer cannot approve until they are resolved.
    let submitted = department
        .submit_for_review(SubmitForReviewRequest {
            policy_id: id.clone(),
            expected_generation: 1,
        })
        .await
        .expect("submitted")
        .into_inner();
    let approve = |generation: u64, acknowledge: Vec<String>| ReviewRequest {
        policy_id: id.clone(),
        expected_generation: generation,
        decision: Decision::Approve as i32,
        comment: String::new(),
        acknowledge_findings: acknowledge,
    };
    let blocked = reviewer
        .review(approve(submitted.generation, vec![]))
        .await
        .expect_err("findings block approval");
    assert_eq!(blocked.code(), Code::FailedPrecondition);
    let failure = blocked
        .get_details_precondition_failure()
        .expect("PreconditionFailure details");
    assert_eq!(failure.violations.len(), 2);
    assert_eq!(
        failure.violations[0].subject,
        submitted.findings[0].finding_id
    );
    // A stale generation is ABORTED.
    let stale = reviewer
        .review(approve(1, vec![]))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    // Rejected: back to the department, which fixes the text.
    let rejected = reviewer
        .review(ReviewRequest {
            decision: Decision::Reject as i32,
            comment: "请删除经办人的个人信息".into(),
            ..approve(submitted.generation, vec![])
        })
        .await
        .expect("rejected")
        .into_inner()
        .policy
        .expect("policy");
    assert_eq!(rejected.status, PolicyStatus::Draft as i32);
    let fixed = department
        .update_draft(UpdateDraftRequest {
            policy_id: id.clone(),
            expected_generation: rejected.generation,
            content: Some(content(
                "杨浦区就业见习补贴",
                "见习补贴按月发放。咨询电话：12333。",
            )),
        })
        .await
        .expect("updated")
        .into_inner();
    assert!(fixed.findings.is_empty(), "{:?}", fixed.findings);
    let submitted = department
        .submit_for_review(SubmitForReviewRequest {
            policy_id: id.clone(),
            expected_generation: fixed.generation,
        })
        .await
        .expect("submitted again")
        .into_inner();

    // The one who submitted cannot approve, even holding the reviewer's scope: approving
    // takes a reviewer's identity (a department's token never is one, whatever its scopes),
    // and the principal recorded as the submitter is refused by the lifecycle itself
    // (lifecycle::tests::the_submitter_cannot_review…).
    let mut both = server
        .publisher_as(bearer(
            Kind::Department,
            RSJ,
            &["policy:publish", "policy:review"],
        ))
        .await;
    let own = both
        .review(approve(submitted.generation, vec![]))
        .await
        .expect_err("four eyes");
    assert_eq!(own.code(), Code::PermissionDenied, "{}", own.message());
    assert!(
        own.message().contains("not a reviewer"),
        "{}",
        own.message()
    );

    // 3. Approved: the reviewer sees the audience as it is now.
    let review = reviewer
        .review(approve(submitted.generation, vec![]))
        .await
        .expect("approved")
        .into_inner();
    let approved = review.policy.expect("policy");
    assert_eq!(approved.status, PolicyStatus::Approved as i32);
    assert_eq!(approved.reviewed_by, "reviewer:*");
    let audience = review.audience.expect("audience");
    assert!(audience.unavailable.is_empty(), "{}", audience.unavailable);
    assert!(audience.preview.is_some());

    // A draft of another department is not there for it, nor for the public.
    let mut other = server.publisher("区科委").await;
    let hidden = other
        .get_policy(GetPolicyRequest {
            policy_id: id.clone(),
            version: 0,
        })
        .await
        .expect_err("not theirs");
    assert_eq!(hidden.code(), Code::NotFound);

    // 4. Published: one PolicyPublished, version 1, with the library's content.
    let published = department
        .publish(PublishRequest {
            policy_id: id.clone(),
            expected_generation: approved.generation,
            publish_at: None,
        })
        .await
        .expect("published")
        .into_inner();
    assert_eq!(published.status, PolicyStatus::Published as i32);
    assert_eq!(published.live_version, 1);
    let is = |version: u32| {
        let id = id.clone();
        move |bytes: &[u8]| {
            PolicyPublished::decode(bytes)
                .is_ok_and(|p| p.policy_id == id && p.version == version && !p.title.is_empty())
        }
    };
    assert_eq!(
        count_records(&env, Topic::PolicyEvents, 1, Duration::from_secs(10), is(1)).await,
        1
    );
    let again = department
        .publish(PublishRequest {
            policy_id: id.clone(),
            expected_generation: published.generation,
            publish_at: None,
        })
        .await
        .expect_err("published once");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("published"), "{}", again.message());

    // The public library: found by its Chinese words, its interpretation readable.
    let mut public = zhida_proto::policy::v1::policy_service_client::PolicyServiceClient::new(
        crate::helpers::channel(&server.url).await.expect("connect"),
    );
    let found = public
        .search_policies(SearchPoliciesRequest {
            query: "见习补贴".into(),
            limit: 10,
            valid_on: String::new(),
        })
        .await
        .expect("searched")
        .into_inner();
    assert_eq!(found.hits.len(), 1, "{found:?}");
    assert_eq!(found.hits[0].policy_id, id);
    assert!(
        found.hits[0]
            .highlights
            .iter()
            .any(|h| h.fragment.contains("<em>")),
        "{:?}",
        found.hits[0].highlights
    );
    let interpretation = public
        .get_interpretation(GetInterpretationRequest {
            interpretation_id: format!("{id}.jd"),
        })
        .await
        .expect("interpretation")
        .into_inner();
    assert_eq!(
        interpretation.interpretation.expect("it").policy_id,
        id,
        "linked back to its policy"
    );

    // FAQs change without a new version; personal data in them is refused outright.
    let leaked = department
        .update_faqs(UpdateFaqsRequest {
            policy_id: id.clone(),
            expected_generation: published.generation,
            faqs: vec![Faq {
                question: "找谁咨询？".into(),
                answer: "请联系 liming@example.cn".into(),
            }],
        })
        .await
        .expect_err("personal data");
    assert_eq!(leaked.code(), Code::InvalidArgument);
    assert_eq!(
        leaked
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "faqs[0].answer"
    );
    let with_faqs = department
        .update_faqs(UpdateFaqsRequest {
            policy_id: id.clone(),
            expected_generation: published.generation,
            faqs: vec![Faq {
                question: "谁可以申请？".into(),
                answer: "离校2年内未就业的高校毕业生。".into(),
            }],
        })
        .await
        .expect("faqs")
        .into_inner();
    assert_eq!(with_faqs.live_version, 1);

    // 5. Revised: reviewed again; version 1 stays live and readable meanwhile.
    let revising = department
        .revise(ReviseRequest {
            policy_id: id.clone(),
            expected_generation: with_faqs.generation,
            content: Some(content(
                "杨浦区就业见习补贴（2024年修订）",
                "见习补贴按每人每月2690元发放。咨询电话：12333。",
            )),
            change_summary: "补贴标准调整为每人每月2690元".into(),
        })
        .await
        .expect("revision started")
        .into_inner();
    assert_eq!(revising.status, PolicyStatus::Draft as i32);
    let live = public
        .get_policy(GetPolicyRequest {
            policy_id: id.clone(),
            version: 0,
        })
        .await
        .expect("public view")
        .into_inner();
    let live_policy = live.policy.expect("policy");
    assert_eq!(live_policy.status, PolicyStatus::Published as i32);
    assert_eq!(
        live_policy.content.expect("content").title,
        "杨浦区就业见习补贴",
        "the public reads the live version while the revision is drafted"
    );
    let submitted = department
        .submit_for_review(SubmitForReviewRequest {
            policy_id: id.clone(),
            expected_generation: revising.generation,
        })
        .await
        .expect("submitted")
        .into_inner();
    let approved = reviewer
        .review(approve(submitted.generation, vec![]))
        .await
        .expect("approved")
        .into_inner()
        .policy
        .expect("policy");
    let v2 = department
        .publish(PublishRequest {
            policy_id: id.clone(),
            expected_generation: approved.generation,
            publish_at: None,
        })
        .await
        .expect("revision published")
        .into_inner();
    assert_eq!(v2.live_version, 2);
    let revised = |bytes: &[u8]| {
        PolicyRevised::decode(bytes).is_ok_and(|r| {
            r.previous_version == 1
                && r.change_summary == "补贴标准调整为每人每月2690元"
                && r.policy.is_some_and(|p| p.version == 2)
        })
    };
    assert_eq!(
        count_records(
            &env,
            Topic::PolicyEvents,
            1,
            Duration::from_secs(10),
            revised
        )
        .await,
        1
    );
    let v1 = public
        .get_policy(GetPolicyRequest {
            policy_id: id.clone(),
            version: 1,
        })
        .await
        .expect("version 1")
        .into_inner();
    assert_eq!(v1.versions, [1, 2]);
    assert_eq!(v1.published.expect("v1").title, "杨浦区就业见习补贴");

    // 6. Withdrawn, with its reason.
    let withdrawn = department
        .withdraw(WithdrawRequest {
            policy_id: id.clone(),
            expected_generation: v2.generation,
            reason: "政策调整".into(),
        })
        .await
        .expect("withdrawn")
        .into_inner();
    assert_eq!(withdrawn.status, PolicyStatus::Withdrawn as i32);
    let event = |bytes: &[u8]| {
        PolicyWithdrawn::decode(bytes)
            .is_ok_and(|w| w.version == 2 && w.reason == "政策调整" && !w.title.is_empty())
    };
    assert_eq!(
        count_records(&env, Topic::PolicyEvents, 1, Duration::from_secs(10), event).await,
        1
    );

    // 7. A restarted publisher rebuilds the same record and search index from the topic.
    drop(server);
    let server = Server::start("publisher", &env).await;
    let mut public = zhida_proto::policy::v1::policy_service_client::PolicyServiceClient::new(
        crate::helpers::channel(&server.url).await.expect("connect"),
    );
    let rebuilt = public
        .get_policy(GetPolicyRequest {
            policy_id: id.clone(),
            version: 0,
        })
        .await
        .expect("rebuilt")
        .into_inner()
        .policy
        .expect("policy");
    assert_eq!(rebuilt.generation, withdrawn.generation);
    assert_eq!(rebuilt.status, PolicyStatus::Withdrawn as i32);
    assert_eq!(rebuilt.faqs.len(), 1);
    let listed = public
        .list_policies(ListPoliciesRequest {
            status: PolicyStatus::Withdrawn as i32,
            ..ListPoliciesRequest::default()
        })
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(listed.policies.len(), 1);
    let found = public
        .search_policies(SearchPoliciesRequest {
            query: "2690元".into(),
            limit: 10,
            valid_on: String::new(),
        })
        .await
        .expect("searched")
        .into_inner();
    assert_eq!(
        found.hits.len(),
        1,
        "version 2's text is indexed: {found:?}"
    );
    assert_eq!(found.hits[0].status, PolicyStatus::Withdrawn as i32);
}

/// Approved, scheduled a few seconds ahead, the publisher killed: the restarted one
/// releases it at its time (the schedule lives in the log). Another policy expires when its
/// `valid_until` passes.
#[tokio::test]
async fn a_scheduled_release_survives_a_kill_and_validity_ends_in_expiry() {
    let env = TestEnv::new("schedule").await;
    let mut server = Server::start("publisher", &env).await;
    let mut department = server.publisher(RSJ).await;
    let mut approved = Vec::new();
    for (n, valid_until) in [(1, None), (2, Some(now_plus(8)))] {
        let policy = NewPolicy {
            request_id: format!("batch-{n}-{}", env.id),
            title: format!("见习补贴（第{n}批）"),
            body: "见习补贴按月发放。".into(),
            tags: vec!["employment".into()],
            department: RSJ.into(),
            valid_until,
            ..NewPolicy::default()
        };
        approved.push(draft_and_approve(&server, &mut department, &policy).await);
    }
    let scheduled = department
        .publish(PublishRequest {
            policy_id: approved[0].policy_id.clone(),
            expected_generation: approved[0].generation,
            publish_at: Some(now_plus(4)),
        })
        .await
        .expect("scheduled")
        .into_inner();
    assert_eq!(scheduled.status, PolicyStatus::Approved as i32);
    assert!(scheduled.publish_at.is_some());
    department
        .publish(PublishRequest {
            policy_id: approved[1].policy_id.clone(),
            expected_generation: approved[1].generation,
            publish_at: None,
        })
        .await
        .expect("published now");
    server.kill_9();
    drop(server);

    let server = Server::start("publisher", &env).await;
    let department = server.publisher(RSJ).await;
    let status = |policy: &str| {
        let policy = policy.to_string();
        let mut client = department.clone();
        async move {
            client
                .get_policy(GetPolicyRequest {
                    policy_id: policy,
                    version: 0,
                })
                .await
                .expect("readable")
                .into_inner()
                .policy
                .expect("policy")
                .status
        }
    };
    let first = approved[0].policy_id.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while status(&first).await != PolicyStatus::Published as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scheduled policy was not released"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let released =
        |bytes: &[u8]| PolicyPublished::decode(bytes).is_ok_and(|p| p.policy_id == first);
    // Exactly one release, however many times the schedulers looked.
    assert_eq!(
        count_records(
            &env,
            Topic::PolicyEvents,
            2,
            Duration::from_secs(3),
            released
        )
        .await,
        1
    );
    let second = approved[1].policy_id.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while status(&second).await != PolicyStatus::Expired as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the policy did not expire"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expired = |bytes: &[u8]| PolicyExpired::decode(bytes).is_ok_and(|e| e.policy_id == second);
    assert_eq!(
        count_records(
            &env,
            Topic::PolicyEvents,
            2,
            Duration::from_secs(3),
            expired
        )
        .await,
        1
    );
}

/// Operators change the catalogue through the publisher; a new tag can be used at once, a
/// retired one takes no new policies, and a non-operator cannot touch it.
#[tokio::test]
async fn operators_keep_the_tag_catalogue() {
    use zhida_proto::policy::v1::{CreateTagRequest, ListTagsRequest, RetireTagRequest};
    let env = TestEnv::new("tags-api").await;
    let server = Server::start("publisher", &env).await;
    let mut operator = server
        .publisher_as(bearer(Kind::Operator, "ops", &[]))
        .await;
    let mut department = server.publisher(RSJ).await;
    let denied = department
        .create_tag(CreateTagRequest {
            tag: "green-low-carbon".into(),
            name: "绿色低碳".into(),
        })
        .await
        .expect_err("departments do not keep the catalogue");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let bad = operator
        .create_tag(CreateTagRequest {
            tag: "Green Low Carbon".into(),
            name: String::new(),
        })
        .await
        .expect_err("invalid");
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .expect("details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["tag", "name"]);
    let created = operator
        .create_tag(CreateTagRequest {
            tag: "green-low-carbon".into(),
            name: "绿色低碳".into(),
        })
        .await
        .expect("created")
        .into_inner();
    assert!(!created.retired);
    let draft = |n: u32| CreateDraftRequest {
        request_id: format!("green-{n}-{}", env.id),
        content: Some(PolicyContent {
            tags: vec!["green-low-carbon".into()],
            ..content("绿色低碳转型扶持办法", "对节能改造项目给予补贴。")
        }),
        ..CreateDraftRequest::default()
    };
    department
        .create_draft(draft(1))
        .await
        .expect("a new tag is usable at once");
    operator
        .retire_tag(RetireTagRequest {
            tag: "green-low-carbon".into(),
        })
        .await
        .expect("retired");
    let refused = department
        .create_draft(draft(2))
        .await
        .expect_err("retired");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("retired"),
        "{}",
        refused.message()
    );
    let listed = operator
        .list_tags(ListTagsRequest {
            include_retired: true,
        })
        .await
        .expect("listed")
        .into_inner()
        .tags;
    assert!(
        listed
            .iter()
            .any(|t| t.tag == "green-low-carbon" && t.retired)
    );
    let active = operator
        .list_tags(ListTagsRequest::default())
        .await
        .expect("listed")
        .into_inner()
        .tags;
    assert!(active.iter().all(|t| t.tag != "green-low-carbon"));
    assert!(active.iter().any(|t| t.tag == "employment"), "the seed");
}
