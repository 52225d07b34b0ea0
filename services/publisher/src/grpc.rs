//! `PolicyService`: each handler checks its request field by field, names who acts (from
//! the caller's token), and hands a [`Command`] to the one [`Writer`]; the library reads
//! come straight from the [`Records`] and the search index.

use std::{sync::Arc, time::Duration};

use tonic::{Request, Response, Status, metadata::MetadataValue, transport::Channel};
use zhida_catalogue::{Industries, SharedTags};
use zhida_proto::{
    events::v1::{Policy, PolicyContent, ReviewFinding},
    policy::v1::{
        AudiencePreview, CreateDraftRequest, CreateTagRequest, Decision, GetInterpretationRequest,
        GetInterpretationResponse, GetPolicyRequest, GetPolicyResponse, Highlight,
        ListPoliciesRequest, ListPoliciesResponse, ListTagsRequest, ListTagsResponse,
        PublishRequest, RenameTagRequest, RetireTagRequest, ReviewRequest, ReviewResponse,
        ReviseRequest, SearchHit, SearchPoliciesRequest, SearchPoliciesResponse,
        SubmitForReviewRequest, Tag, UpdateDraftRequest, UpdateFaqsRequest, WithdrawRequest,
        policy_service_server::PolicyService,
    },
    profile::v1::{
        PolicyDraft, PreviewAudienceRequest, profile_service_client::ProfileServiceClient,
    },
};
use zhida_runtime::{
    FieldViolations,
    auth::{ANONYMOUS, Kind, Principal},
};
use zhida_screen::Screen;

use crate::{
    content,
    error::Error,
    library,
    lifecycle::{self, Actor, Command, Record},
    tags,
    writer::Writer,
};

pub(crate) struct Publisher {
    pub writer: Arc<Writer>,
    pub tags: SharedTags,
    pub industries: Industries,
    pub screen: Arc<Screen>,
    /// Where `PreviewAudience` is asked when a reviewer approves; `None`: not configured.
    pub profiler: Option<ProfileServiceClient<Channel>>,
}

/// Who calls: `None` for a public read without a token.
fn actor<T>(request: &Request<T>) -> Option<Actor> {
    Principal::of(request).map(|p| Actor {
        kind: p.kind,
        id: p.id.clone(),
        unrestricted: p.kind == Kind::Operator && p.id == ANONYMOUS,
    })
}

/// Who calls a changing RPC: the layer made sure there is a principal; without one (a
/// handler called directly, in a unit test) nothing is restricted.
fn writer_of<T>(request: &Request<T>) -> Actor {
    actor(request).unwrap_or(Actor {
        kind: Kind::Operator,
        id: ANONYMOUS.into(),
        unrestricted: true,
    })
}

fn required_policy_id(bad: &mut FieldViolations, id: &str) -> String {
    let id = id.trim();
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        bad.add(
            "policy_id",
            "required: a policy id as CreateDraft answered it",
        );
    }
    id.to_string()
}

/// The policy a changing request names, and the generation its caller read.
struct Target {
    policy_id: String,
    expected: u64,
}

impl Target {
    fn checked(bad: &mut FieldViolations, policy_id: &str, expected_generation: u64) -> Self {
        if expected_generation == 0 {
            bad.add(
                "expected_generation",
                "required: the generation of the policy as you read it (stale ones are ABORTED)",
            );
        }
        Self {
            policy_id: required_policy_id(bad, policy_id),
            expected: expected_generation,
        }
    }
}

impl Publisher {
    /// Checks `content` for `policy_id` and runs the review gate over it.
    fn checked(
        &self,
        bad: &mut FieldViolations,
        content: Option<PolicyContent>,
        policy_id: &str,
    ) -> (PolicyContent, Vec<ReviewFinding>) {
        let Some(mut content) = content else {
            bad.add("content", "required");
            return (PolicyContent::default(), Vec::new());
        };
        let tags = self.tags.snapshot();
        content::check_content(
            bad,
            "content",
            &mut content,
            &tags,
            &self.industries,
            policy_id,
        );
        let findings = library::screen(&self.screen, &content);
        (content, findings)
    }

    /// Hands `command` on `target` to the writer once the request was found valid (`bad`
    /// empty): the policy as the change left it.
    async fn change(
        &self,
        actor: &Actor,
        bad: FieldViolations,
        target: &Target,
        command: Command,
    ) -> Result<Policy, Error> {
        bad.into_result()?;
        let record = self
            .writer
            .change(&target.policy_id, Some(target.expected), command, actor)
            .await?;
        Ok(record.policy)
    }

    async fn preview(
        &self,
        policy: &Policy,
        authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
    ) -> AudiencePreview {
        let Some(client) = &self.profiler else {
            return AudiencePreview {
                preview: None,
                unavailable: "publisher.profiler_url is not configured".into(),
            };
        };
        let c = policy.content.clone().unwrap_or_default();
        let mut request = Request::new(PreviewAudienceRequest {
            sample_size: 20,
            policy: Some(PolicyDraft {
                tags: c.tags,
                audience: c.audience,
                department: policy.department.clone(),
                title: c.title,
                service_url: c.service_url,
            }),
        });
        request.set_timeout(Duration::from_secs(5));
        if let Some(authorization) = authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization);
        }
        match client.clone().preview_audience(request).await {
            Ok(answer) => AudiencePreview {
                preview: Some(answer.into_inner()),
                unavailable: String::new(),
            },
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "audience preview failed");
                AudiencePreview {
                    preview: None,
                    unavailable: format!(
                        "the profiler answered {:?}: {}",
                        status.code(),
                        status.message()
                    ),
                }
            }
        }
    }

    /// The record for `actor`: NOT_FOUND when it may not see it.
    fn readable(&self, policy_id: &str, actor: Option<&Actor>) -> Result<Record, Error> {
        self.writer
            .records
            .get(policy_id)
            .filter(|r| lifecycle::visible(r, actor))
            .ok_or_else(|| Error::NotFound(format!("no policy {policy_id:?}")))
    }
}

/// The record as `actor` may see it.
fn view(record: &Record, actor: Option<&Actor>) -> Policy {
    if lifecycle::sees_working_copy(record, actor) {
        record.policy.clone()
    } else {
        record.public_view()
    }
}

#[tonic::async_trait]
impl PolicyService for Publisher {
    async fn create_draft(
        &self,
        request: Request<CreateDraftRequest>,
    ) -> Result<Response<Policy>, Status> {
        let actor = writer_of(&request);
        let department =
            zhida_runtime::auth::acting_department(&request, &request.get_ref().department)?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let request_id = request.request_id.trim();
        if request_id.is_empty()
            || request_id.len() > 128
            || !request_id.bytes().all(|b| b.is_ascii_graphic())
        {
            bad.add("request_id", "required: 1–128 printable ASCII characters");
        }
        let department = department.trim().to_string();
        if department.is_empty()
            || department.chars().count() > 100
            || department.chars().any(char::is_control)
        {
            bad.add(
                "department",
                "required: the issuing department, e.g. 区人力资源社会保障局 (at most 100 characters)",
            );
        }
        let policy_id = library::policy_id(&department, request_id);
        let (content, findings) = self.checked(&mut bad, request.content, &policy_id);
        let mut faqs = request.faqs;
        content::check_faqs(&mut bad, "faqs", &mut faqs);
        bad.into_result().map_err(Error::from)?;
        let command = Command::Create {
            policy_id: policy_id.clone(),
            department,
            content,
            faqs,
            findings,
        };
        match self.writer.change(&policy_id, None, command, &actor).await {
            Ok(record) => Ok(Response::new(record.policy)),
            // The same request again: the policy it created.
            Err(Error::AlreadyExists(_)) => {
                let record = self.readable(&policy_id, Some(&actor))?;
                Ok(Response::new(record.policy))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn update_draft(
        &self,
        request: Request<UpdateDraftRequest>,
    ) -> Result<Response<Policy>, Status> {
        let actor = writer_of(&request);
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let target = Target::checked(&mut bad, &request.policy_id, request.expected_generation);
        let (content, findings) = self.checked(&mut bad, request.content, &target.policy_id);
        let command = Command::Update { content, findings };
        Ok(Response::new(
            self.change(&actor, bad, &target, command).await?,
        ))
    }

    async fn submit_for_review(
        &self,
        request: Request<SubmitForReviewRequest>,
    ) -> Result<Response<Policy>, Status> {
        let actor = writer_of(&request);
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let target = Target::checked(&mut bad, &request.policy_id, request.expected_generation);
        Ok(Response::new(
            self.change(&actor, bad, &target, Command::Submit).await?,
        ))
    }

    async fn review(
        &self,
        request: Request<ReviewRequest>,
    ) -> Result<Response<ReviewResponse>, Status> {
        let actor = writer_of(&request);
        let authorization = request.metadata().get("authorization").cloned();
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let target = Target::checked(&mut bad, &request.policy_id, request.expected_generation);
        let approve = match Decision::try_from(request.decision) {
            Ok(Decision::Approve) => true,
            Ok(Decision::Reject) => false,
            _ => {
                bad.add("decision", "required: DECISION_APPROVE or DECISION_REJECT");
                false
            }
        };
        let comment = request.comment.trim().to_string();
        if comment.chars().count() > content::MAX_ANSWER_CHARS {
            bad.add(
                "comment",
                format!("at most {} characters", content::MAX_ANSWER_CHARS),
            );
        }
        let command = Command::Review {
            approve,
            comment,
            acknowledge: request.acknowledge_findings,
        };
        let policy = self.change(&actor, bad, &target, command).await?;
        let audience = if approve {
            Some(self.preview(&policy, authorization).await)
        } else {
            None
        };
        Ok(Response::new(ReviewResponse {
            policy: Some(policy),
            audience,
        }))
    }

    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<Policy>, Status> {
        let actor = writer_of(&request);
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let target = Target::checked(&mut bad, &request.policy_id, request.expected_generation);
        if let Some(at) = &request.publish_at
            && (!(0..1_000_000_000).contains(&at.nanos)
                || at.seconds > zhida_runtime::district::unix_now() + 366 * 86_400)
        {
            bad.add("publish_at", "a valid time within a year from now");
        }
        let command = Command::Publish {
            at: request.publish_at,
        };
        Ok(Response::new(
            self.change(&actor, bad, &target, command).await?,
        ))
    }

    async fn revise(&self, request: Request<ReviseRequest>) -> Result<Response<Policy>, Status> {
        let actor = writer_of(&request);
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let target = Target::checked(&mut bad, &request.policy_id, request.expected_generation);
        let change_summary =
            content::check_reason(&mut bad, "change_summary", &request.change_summary);
        let (content, findings) = self.checked(&mut bad, request.content, &target.policy_id);
        let command = Command::Revise {
            content,
            change_summary,
            findings,
        };
        Ok(Response::new(
            self.change(&actor, bad, &target, command).await?,
        ))
    }

    async fn withdraw(
        &self,
        request: Request<WithdrawRequest>,
    ) -> Result<Response<Policy>, Status> {
        let actor = writer_of(&request);
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let target = Target::checked(&mut bad, &request.policy_id, request.expected_generation);
        let reason = content::check_reason(&mut bad, "reason", &request.reason);
        let command = Command::Withdraw { reason };
        Ok(Response::new(
            self.change(&actor, bad, &target, command).await?,
        ))
    }

    async fn update_faqs(
        &self,
        request: Request<UpdateFaqsRequest>,
    ) -> Result<Response<Policy>, Status> {
        let actor = writer_of(&request);
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let target = Target::checked(&mut bad, &request.policy_id, request.expected_generation);
        let mut faqs = request.faqs;
        content::check_faqs(&mut bad, "faqs", &mut faqs);
        // FAQs of a published policy go out without a review: personal data is refused
        // outright rather than queued as findings.
        for finding in library::screen_faqs(&self.screen, &faqs) {
            bad.add(
                finding.field.clone(),
                format!(
                    "{} must not be published ({}); FAQs are not reviewed again",
                    crate::error::kind_name(finding.kind),
                    finding.excerpt
                ),
            );
        }
        let command = Command::UpdateFaqs { faqs };
        Ok(Response::new(
            self.change(&actor, bad, &target, command).await?,
        ))
    }

    async fn get_policy(
        &self,
        request: Request<GetPolicyRequest>,
    ) -> Result<Response<GetPolicyResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let policy_id = required_policy_id(&mut bad, &request.policy_id);
        bad.into_result().map_err(Error::from)?;
        let record = self.readable(&policy_id, actor.as_ref())?;
        let version = if request.version == 0 {
            record.policy.live_version
        } else {
            request.version
        };
        let published = if version == 0 {
            None
        } else {
            Some(record.published(version).ok_or_else(|| {
                Error::NotFound(format!(
                    "{policy_id} has no version {version}: published versions are {:?}",
                    record.versions.keys().collect::<Vec<_>>()
                ))
            })?)
        };
        Ok(Response::new(GetPolicyResponse {
            policy: Some(view(&record, actor.as_ref())),
            published,
            versions: record.versions.keys().copied().collect(),
        }))
    }

    async fn get_interpretation(
        &self,
        request: Request<GetInterpretationRequest>,
    ) -> Result<Response<GetInterpretationResponse>, Status> {
        let actor = actor(&request);
        let id = request.into_inner().interpretation_id;
        let Some(policy_id) = id.strip_suffix(".jd").filter(|p| !p.is_empty()) else {
            let mut bad = FieldViolations::new();
            bad.add("interpretation_id", "an interpretation id: <policy_id>.jd");
            return Err(Error::from(bad).into());
        };
        let record = self.readable(policy_id, actor.as_ref())?;
        let policy = view(&record, actor.as_ref());
        let content = policy.content.unwrap_or_default();
        let interpretation = content
            .interpretation
            .ok_or_else(|| Error::NotFound(format!("{policy_id} has no interpretation")))?;
        Ok(Response::new(GetInterpretationResponse {
            interpretation: Some(interpretation),
            policy_title: content.title,
            policy_status: policy.status,
        }))
    }

    async fn list_policies(
        &self,
        request: Request<ListPoliciesRequest>,
    ) -> Result<Response<ListPoliciesResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let page_size = bad.page_size("page_size", request.page_size, 50, 200) as usize;
        let filter = library::Filter::parse(&mut bad, &request);
        let after = library::parse_page_token(&mut bad, &request.page_token);
        bad.into_result().map_err(Error::from)?;
        let (records, next) = self.writer.records.page(after.as_ref(), page_size, |r| {
            lifecycle::visible(r, actor.as_ref()) && filter.keeps(&view(r, actor.as_ref()))
        });
        Ok(Response::new(ListPoliciesResponse {
            policies: records.iter().map(|r| view(r, actor.as_ref())).collect(),
            next_page_token: next.map(|p| library::page_token(&p)).unwrap_or_default(),
        }))
    }

    async fn search_policies(
        &self,
        request: Request<SearchPoliciesRequest>,
    ) -> Result<Response<SearchPoliciesResponse>, Status> {
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let limit = bad.page_size("limit", request.limit, 20, 100) as usize;
        let valid_at = library::parse_date(&mut bad, "valid_on", &request.valid_on);
        bad.into_result().map_err(Error::from)?;
        let query = zhida_search::Query {
            text: request.query,
            limit,
            valid_at,
        };
        let found = self.writer.records.search().search(&query).map_err(|e| {
            let mut bad = FieldViolations::new();
            bad.add("query", e.to_string());
            Error::from(bad)
        })?;
        Ok(Response::new(SearchPoliciesResponse {
            total: found.total,
            hits: found
                .hits
                .into_iter()
                .map(|h| SearchHit {
                    policy_id: h.policy_id,
                    version: h.version,
                    title: h.title,
                    department: h.department,
                    status: h.status,
                    score: h.score,
                    highlights: h
                        .highlights
                        .into_iter()
                        .map(|(field, fragment)| Highlight { field, fragment })
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn list_tags(
        &self,
        request: Request<ListTagsRequest>,
    ) -> Result<Response<ListTagsResponse>, Status> {
        let include_retired = request.into_inner().include_retired;
        Ok(Response::new(ListTagsResponse {
            tags: tags::list(&self.tags, include_retired),
        }))
    }

    async fn create_tag(
        &self,
        request: Request<CreateTagRequest>,
    ) -> Result<Response<Tag>, Status> {
        let request = request.into_inner();
        Ok(Response::new(
            tags::create(&self.writer.producer, &self.tags, request.tag, request.name).await?,
        ))
    }

    async fn rename_tag(
        &self,
        request: Request<RenameTagRequest>,
    ) -> Result<Response<Tag>, Status> {
        let request = request.into_inner();
        Ok(Response::new(
            tags::rename(&self.writer.producer, &self.tags, request.tag, request.name).await?,
        ))
    }

    async fn retire_tag(
        &self,
        request: Request<RetireTagRequest>,
    ) -> Result<Response<Tag>, Status> {
        let request = request.into_inner();
        Ok(Response::new(
            tags::retire(&self.writer.producer, &self.tags, request.tag).await?,
        ))
    }
}
