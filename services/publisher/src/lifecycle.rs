//! The policy lifecycle as two pure functions (docs/lifecycle.md has the diagram):
//!
//! ```text
//! draft ──submit──▶ in_review ──approve──▶ approved ──publish (now | at)──▶ published
//!   ▲                  │                                                     │  │  │
//!   └─────reject───────┘         revise: a new version drafts, reviewed  ◀───┘  │  │
//!                                like the first; published again = revised      │  │
//!                                                        withdraw ──▶ withdrawn ◀┘  │
//!                                                valid_until passed ──▶ expired  ◀──┘
//! ```
//!
//! - [`decide`] checks a [`Command`] by an [`Actor`] against the current [`Record`] and
//!   answers the one event that records it, or why not ([`Refusal`]);
//! - [`apply`] folds an event into the record, or ignores it when it does not follow from
//!   the record (a duplicate, or the loser of two replicas' race): every replica that reads
//!   `policy.events` in order arrives at the same records, and the write path answers with
//!   what [`apply`] made of its own event.
//!
//! Whoever may see a policy at all is decided here too ([`visible`]): drafts belong to
//! their department and the reviewers; a published policy is public.

use std::collections::BTreeMap;

use zhida_proto::{
    Timestamp,
    events::v1::{
        Faq, Policy, PolicyContent, PolicyExpired, PolicyPublished, PolicyRecorded, PolicyRevised,
        PolicyStatus, PolicyWithdrawn, ReviewFinding, Transition,
    },
};
use zhida_runtime::{FieldViolations, auth::Kind};

/// A policy as the publisher keeps it: the record and every published version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub policy: Policy,
    /// Published versions by number, as they went out (FAQs as they are now: see
    /// [`Record::published`]).
    pub versions: BTreeMap<u32, PolicyPublished>,
}

impl Record {
    pub fn status(&self) -> PolicyStatus {
        PolicyStatus::try_from(self.policy.status).unwrap_or_default()
    }

    /// Version `version` as published, with the policy's current FAQs (they change
    /// without a new version).
    pub fn published(&self, version: u32) -> Option<PolicyPublished> {
        self.versions.get(&version).map(|p| PolicyPublished {
            faqs: self.policy.faqs.clone(),
            ..p.clone()
        })
    }

    /// What the public sees: the live version (content, status published) while a revision
    /// is being drafted; the record itself otherwise.
    pub fn public_view(&self) -> Policy {
        let mut policy = self.policy.clone();
        if policy.live_version > 0 && is_working(self.status()) {
            if let Some(live) = self.versions.get(&policy.live_version) {
                policy.content = Some(content_of(live));
            }
            policy.status = PolicyStatus::Published as i32;
            policy.findings.clear();
            policy.submitted_by.clear();
            policy.reviewed_by.clear();
            policy.review_comment.clear();
            policy.publish_at = None;
        }
        policy
    }
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: Kind,
    pub id: String,
    /// `auth.mode = "off"` (development): everyone is the same anonymous operator, so the
    /// rule that the submitter does not approve cannot be kept.
    pub unrestricted: bool,
}

impl Actor {
    /// `kind:id`, as records and audit name it.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.name(), self.id)
    }

    /// The scheduler releasing and expiring policies.
    pub fn scheduler() -> Self {
        Self {
            kind: Kind::Operator,
            id: "scheduler".into(),
            unrestricted: true,
        }
    }

    fn is_department_of(&self, policy: &Policy) -> bool {
        self.unrestricted || (self.kind == Kind::Department && self.id == policy.department)
    }

    fn is_reviewer_of(&self, policy: &Policy) -> bool {
        self.unrestricted
            || (self.kind == Kind::Reviewer && (self.id == "*" || self.id == policy.department))
    }
}

/// Whether `actor` (or an anonymous caller, `None`) may see `record` at all. Drafts that
/// were never published are their department's and its reviewers'.
pub fn visible(record: &Record, actor: Option<&Actor>) -> bool {
    record.policy.live_version > 0
        || actor
            .is_some_and(|a| a.is_department_of(&record.policy) || a.is_reviewer_of(&record.policy))
}

/// Whether `actor` sees the working copy (drafts, findings) rather than the public view.
pub fn sees_working_copy(record: &Record, actor: Option<&Actor>) -> bool {
    actor.is_some_and(|a| a.is_department_of(&record.policy) || a.is_reviewer_of(&record.policy))
}

/// What a caller asks for. Content has been checked ([`crate::content`]) and screened
/// (`findings`) before.
#[derive(Debug, Clone)]
pub enum Command {
    Create {
        policy_id: String,
        department: String,
        content: PolicyContent,
        faqs: Vec<Faq>,
        findings: Vec<ReviewFinding>,
    },
    Update {
        content: PolicyContent,
        findings: Vec<ReviewFinding>,
    },
    Submit,
    Review {
        approve: bool,
        comment: String,
        acknowledge: Vec<String>,
    },
    /// `at` in the future schedules; otherwise now.
    Publish {
        at: Option<Timestamp>,
    },
    /// The scheduler: an approved policy's `publish_at` came.
    Release,
    Revise {
        content: PolicyContent,
        change_summary: String,
        findings: Vec<ReviewFinding>,
    },
    Withdraw {
        reason: String,
    },
    UpdateFaqs {
        faqs: Vec<Faq>,
    },
    /// The scheduler: the live version's `valid_until` passed.
    Expire,
}

impl Command {
    fn step(&self) -> &'static str {
        match self {
            Command::Create { .. } => "create",
            Command::Update { .. } => "update the draft",
            Command::Submit => "submit for review",
            Command::Review { approve: true, .. } => "approve",
            Command::Review { approve: false, .. } => "reject",
            Command::Publish { .. } | Command::Release => "publish",
            Command::Revise { .. } => "revise",
            Command::Withdraw { .. } => "withdraw",
            Command::UpdateFaqs { .. } => "edit the FAQs",
            Command::Expire => "expire",
        }
    }
}

/// One event on `policy.events`.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Recorded(Box<PolicyRecorded>),
    Published(Box<PolicyPublished>),
    Revised(Box<PolicyRevised>),
    Withdrawn(PolicyWithdrawn),
    Expired(PolicyExpired),
}

impl Change {
    pub fn policy_id(&self) -> &str {
        match self {
            Change::Recorded(e) => e.policy.as_ref().map_or("", |p| &p.policy_id),
            Change::Published(e) => &e.policy_id,
            Change::Revised(e) => e.policy.as_ref().map_or("", |p| &p.policy_id),
            Change::Withdrawn(e) => &e.policy_id,
            Change::Expired(e) => &e.policy_id,
        }
    }

    /// A CloudEvents id that names the change itself, so a retried produce of the same
    /// change is recognisably the same event downstream.
    pub fn event_id(&self) -> String {
        match self {
            Change::Recorded(e) => format!(
                "{}/g{}",
                self.policy_id(),
                e.policy.as_ref().map_or(0, |p| p.generation)
            ),
            Change::Published(e) => format!("{}/v{}/published", e.policy_id, e.version),
            Change::Revised(e) => format!(
                "{}/v{}/revised",
                self.policy_id(),
                e.policy.as_ref().map_or(0, |p| p.version)
            ),
            Change::Withdrawn(e) => format!("{}/v{}/withdrawn", e.policy_id, e.version),
            Change::Expired(e) => format!("{}/v{}/expired", e.policy_id, e.version),
        }
    }
}

/// Why a command cannot be done.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No such policy, or not one the caller may see.
    NotFound,
    /// The caller may see it but not do this.
    Denied(String),
    /// Not from this status (FAILED_PRECONDITION naming it).
    State {
        status: PolicyStatus,
        step: &'static str,
    },
    /// Review findings neither fixed nor acknowledged.
    Unresolved(Vec<ReviewFinding>),
    /// Bad fields in the command itself.
    Invalid(FieldViolations),
    /// Already exists (CreateDraft with a request id another department used).
    Exists,
}

/// The lower-case status name used in messages and docs.
pub fn status_name(status: PolicyStatus) -> &'static str {
    match status {
        PolicyStatus::Unspecified => "unspecified",
        PolicyStatus::Draft => "draft",
        PolicyStatus::InReview => "in_review",
        PolicyStatus::Approved => "approved",
        PolicyStatus::Published => "published",
        PolicyStatus::Withdrawn => "withdrawn",
        PolicyStatus::Expired => "expired",
    }
}

fn is_working(status: PolicyStatus) -> bool {
    matches!(
        status,
        PolicyStatus::Draft | PolicyStatus::InReview | PolicyStatus::Approved
    )
}

/// The one event that does `command` for `actor` on `current` (none: the policy does not
/// exist yet), at `now`.
pub fn decide(
    current: Option<&Record>,
    command: Command,
    actor: &Actor,
    now: Timestamp,
) -> Result<Change, Refusal> {
    let step = command.step();
    let Some(record) = current else {
        let Command::Create {
            policy_id,
            department,
            content,
            faqs,
            findings,
        } = command
        else {
            return Err(Refusal::NotFound);
        };
        let policy = Policy {
            policy_id,
            status: PolicyStatus::Draft as i32,
            content: Some(content),
            faqs,
            generation: 1,
            department,
            findings,
            created_at: Some(now),
            updated_at: Some(now),
            ..Policy::default()
        };
        return Ok(recorded(policy, Transition::DraftCreated, actor, now, ""));
    };
    if !visible(record, Some(actor)) {
        return Err(Refusal::NotFound);
    }
    let status = record.status();
    let refuse = || Refusal::State { status, step };
    let mut next = record.policy.clone();
    next.generation += 1;
    next.updated_at = Some(now);
    match command {
        Command::Create { department, .. } => {
            if department == record.policy.department {
                // A retried create: the policy it made, unchanged (the caller answers it).
                Err(Refusal::Exists)
            } else {
                Err(Refusal::Denied(
                    "this request_id names another department's policy".into(),
                ))
            }
        }
        Command::Update { content, findings } => {
            owner(record, actor, step)?;
            if status != PolicyStatus::Draft {
                return Err(refuse());
            }
            next.findings = keep_acknowledged(&record.policy.findings, findings);
            next.content = Some(content);
            Ok(recorded(next, Transition::DraftUpdated, actor, now, ""))
        }
        Command::Submit => {
            owner(record, actor, step)?;
            if status != PolicyStatus::Draft {
                return Err(refuse());
            }
            next.status = PolicyStatus::InReview as i32;
            next.submitted_by = actor.key();
            next.reviewed_by.clear();
            next.review_comment.clear();
            Ok(recorded(next, Transition::Submitted, actor, now, ""))
        }
        Command::Review {
            approve,
            comment,
            acknowledge,
        } => {
            if !actor.is_reviewer_of(&record.policy) {
                return Err(Refusal::Denied(format!(
                    "{} is not a reviewer of {}'s policies",
                    actor.key(),
                    record.policy.department
                )));
            }
            if status != PolicyStatus::InReview {
                return Err(refuse());
            }
            if !actor.unrestricted && record.policy.submitted_by == actor.key() {
                return Err(Refusal::Denied(
                    "the person who submitted a policy cannot also approve or reject it".into(),
                ));
            }
            let mut bad = FieldViolations::new();
            for (i, id) in acknowledge.iter().enumerate() {
                match next.findings.iter_mut().find(|f| &f.finding_id == id) {
                    Some(finding) => finding.acknowledged_by = actor.key(),
                    None => bad.add(
                        format!("acknowledge_findings[{i}]"),
                        format!("{id:?} is not a finding of this policy"),
                    ),
                }
            }
            if !bad.is_empty() {
                return Err(Refusal::Invalid(bad));
            }
            next.reviewed_by = actor.key();
            next.review_comment = comment.clone();
            if approve {
                let open = unresolved(&next.findings);
                if !open.is_empty() {
                    return Err(Refusal::Unresolved(open));
                }
                next.status = PolicyStatus::Approved as i32;
                Ok(recorded(next, Transition::Approved, actor, now, &comment))
            } else {
                if comment.trim().is_empty() {
                    let mut bad = FieldViolations::new();
                    bad.add("comment", "required when rejecting: say what to fix");
                    return Err(Refusal::Invalid(bad));
                }
                next.status = PolicyStatus::Draft as i32;
                Ok(recorded(next, Transition::Rejected, actor, now, &comment))
            }
        }
        Command::Publish { at } => {
            owner(record, actor, step)?;
            if status != PolicyStatus::Approved {
                return Err(refuse());
            }
            match at {
                Some(at) if (at.seconds, at.nanos) > (now.seconds, now.nanos) => {
                    next.publish_at = Some(at);
                    Ok(recorded(next, Transition::Scheduled, actor, now, ""))
                }
                _ => release(record, now),
            }
        }
        Command::Release => {
            if status != PolicyStatus::Approved {
                return Err(refuse());
            }
            release(record, now)
        }
        Command::Revise {
            content,
            change_summary,
            findings,
        } => {
            owner(record, actor, step)?;
            if status != PolicyStatus::Published {
                return Err(refuse());
            }
            next.status = PolicyStatus::Draft as i32;
            next.content = Some(content);
            next.findings = findings;
            next.change_summary = change_summary;
            next.submitted_by.clear();
            next.reviewed_by.clear();
            next.review_comment.clear();
            Ok(recorded(next, Transition::RevisionStarted, actor, now, ""))
        }
        Command::Withdraw { reason } => {
            owner(record, actor, step)?;
            if record.policy.live_version == 0
                || matches!(status, PolicyStatus::Withdrawn | PolicyStatus::Expired)
            {
                return Err(refuse());
            }
            let live = record.versions.get(&record.policy.live_version);
            Ok(Change::Withdrawn(PolicyWithdrawn {
                policy_id: record.policy.policy_id.clone(),
                version: record.policy.live_version,
                title: live.map(|p| p.title.clone()).unwrap_or_default(),
                department: record.policy.department.clone(),
                reason,
                withdrawn_at: Some(now),
            }))
        }
        Command::UpdateFaqs { faqs } => {
            owner(record, actor, step)?;
            if matches!(status, PolicyStatus::Withdrawn | PolicyStatus::Expired) {
                return Err(refuse());
            }
            next.faqs = faqs;
            Ok(recorded(next, Transition::FaqsUpdated, actor, now, ""))
        }
        Command::Expire => {
            if record.policy.live_version == 0
                || matches!(status, PolicyStatus::Withdrawn | PolicyStatus::Expired)
            {
                return Err(refuse());
            }
            Ok(Change::Expired(PolicyExpired {
                policy_id: record.policy.policy_id.clone(),
                version: record.policy.live_version,
                expired_at: Some(now),
            }))
        }
    }
}

/// `record`'s approved working copy goes out: the first version, or the next one.
fn release(record: &Record, now: Timestamp) -> Result<Change, Refusal> {
    let open = unresolved(&record.policy.findings);
    if !open.is_empty() {
        return Err(Refusal::Unresolved(open));
    }
    let version = record.policy.live_version + 1;
    let published = published(&record.policy, version, now);
    if record.policy.live_version == 0 {
        return Ok(Change::Published(Box::new(published)));
    }
    let previous = record
        .versions
        .get(&record.policy.live_version)
        .cloned()
        .unwrap_or_default();
    let mut old_tags = previous.tags.clone();
    old_tags.sort();
    let mut new_tags = published.tags.clone();
    new_tags.sort();
    Ok(Change::Revised(Box::new(PolicyRevised {
        audience_changed: old_tags != new_tags || previous.audience != published.audience,
        previous_version: record.policy.live_version,
        change_summary: record.policy.change_summary.clone(),
        policy: Some(published),
    })))
}

/// The working copy of `policy` as version `version`, published at `now`.
pub fn published(policy: &Policy, version: u32, now: Timestamp) -> PolicyPublished {
    let c = policy.content.clone().unwrap_or_default();
    PolicyPublished {
        policy_id: policy.policy_id.clone(),
        title: c.title,
        body: c.body,
        tags: c.tags,
        department: policy.department.clone(),
        published_at: Some(now),
        service_url: c.service_url,
        audience: c.audience,
        urgent: c.urgent,
        version,
        summary: c.summary,
        document_number: c.document_number,
        valid_from: c.valid_from,
        valid_until: c.valid_until,
        attachments: c.attachments,
        interpretation: c.interpretation,
        faqs: policy.faqs.clone(),
    }
}

/// The content a published version carries.
pub fn content_of(p: &PolicyPublished) -> PolicyContent {
    PolicyContent {
        title: p.title.clone(),
        summary: p.summary.clone(),
        body: p.body.clone(),
        tags: p.tags.clone(),
        document_number: p.document_number.clone(),
        valid_from: p.valid_from,
        valid_until: p.valid_until,
        service_url: p.service_url.clone(),
        attachments: p.attachments.clone(),
        interpretation: p.interpretation.clone(),
        audience: p.audience.clone(),
        urgent: p.urgent,
    }
}

fn owner(record: &Record, actor: &Actor, step: &str) -> Result<(), Refusal> {
    if actor.is_department_of(&record.policy) {
        Ok(())
    } else {
        Err(Refusal::Denied(format!(
            "only {} may {step} its policy",
            record.policy.department
        )))
    }
}

fn recorded(
    policy: Policy,
    transition: Transition,
    actor: &Actor,
    now: Timestamp,
    comment: &str,
) -> Change {
    Change::Recorded(Box::new(PolicyRecorded {
        policy: Some(policy),
        transition: transition as i32,
        actor: actor.key(),
        at: Some(now),
        comment: comment.to_string(),
    }))
}

/// Findings nobody acknowledged.
pub fn unresolved(findings: &[ReviewFinding]) -> Vec<ReviewFinding> {
    findings
        .iter()
        .filter(|f| f.acknowledged_by.is_empty())
        .cloned()
        .collect()
}

/// The new findings, with an earlier acknowledgement kept where the same finding (same id,
/// same masked excerpt) is still there: an edit elsewhere does not undo a review.
fn keep_acknowledged(before: &[ReviewFinding], mut now: Vec<ReviewFinding>) -> Vec<ReviewFinding> {
    for finding in &mut now {
        if let Some(old) = before
            .iter()
            .find(|o| o.finding_id == finding.finding_id && o.excerpt == finding.excerpt)
        {
            finding.acknowledged_by = old.acknowledged_by.clone();
        }
    }
    now
}

/// Folds `change` into `current`; `None` when it does not follow from it (see the module
/// docs), which leaves the record as it was.
pub fn apply(current: Option<&Record>, change: &Change) -> Option<Record> {
    match change {
        Change::Recorded(e) => {
            let policy = e.policy.clone()?;
            let expected = current.map_or(1, |r| r.policy.generation + 1);
            if policy.generation != expected || policy.policy_id.is_empty() {
                return None;
            }
            Some(Record {
                policy,
                versions: current.map(|r| r.versions.clone()).unwrap_or_default(),
            })
        }
        Change::Published(p) => {
            let record = current?;
            if record.status() != PolicyStatus::Approved
                || record.policy.live_version != 0
                || p.version.max(1) != 1
            {
                return None;
            }
            Some(go_live(record, p, ""))
        }
        Change::Revised(e) => {
            let record = current?;
            let p = e.policy.as_ref()?;
            if record.status() != PolicyStatus::Approved
                || record.policy.live_version == 0
                || record.policy.live_version != e.previous_version
                || p.version != e.previous_version + 1
            {
                return None;
            }
            Some(go_live(record, p, &e.change_summary))
        }
        Change::Withdrawn(e) => {
            let record = current?;
            if record.policy.live_version == 0
                || matches!(
                    record.status(),
                    PolicyStatus::Withdrawn | PolicyStatus::Expired
                )
            {
                return None;
            }
            let mut next = end(record, PolicyStatus::Withdrawn, e.withdrawn_at);
            next.policy.withdrawal_reason = e.reason.clone();
            Some(next)
        }
        Change::Expired(e) => {
            let record = current?;
            if record.policy.live_version == 0
                || matches!(
                    record.status(),
                    PolicyStatus::Withdrawn | PolicyStatus::Expired
                )
            {
                return None;
            }
            Some(end(record, PolicyStatus::Expired, e.expired_at))
        }
    }
}

fn go_live(record: &Record, p: &PolicyPublished, change_summary: &str) -> Record {
    let mut next = record.clone();
    let version = p.version.max(1);
    next.versions.insert(version, p.clone());
    let policy = &mut next.policy;
    policy.status = PolicyStatus::Published as i32;
    policy.live_version = version;
    policy.generation += 1;
    policy.content = Some(content_of(p));
    policy.publish_at = None;
    policy.published_at = p.published_at;
    policy.updated_at = p.published_at;
    if policy.first_published_at.is_none() {
        policy.first_published_at = p.published_at;
    }
    policy.change_summary = change_summary.to_string();
    next
}

/// Withdrawn or expired: the live version's content stays readable; a revision being
/// drafted is dropped.
fn end(record: &Record, status: PolicyStatus, at: Option<Timestamp>) -> Record {
    let mut next = record.clone();
    if let Some(live) = record.versions.get(&record.policy.live_version) {
        next.policy.content = Some(content_of(live));
    }
    let policy = &mut next.policy;
    policy.status = status as i32;
    policy.generation += 1;
    policy.updated_at = at;
    policy.publish_at = None;
    policy.findings.clear();
    next
}

#[cfg(test)]
mod tests {
    use zhida_proto::events::v1::FindingKind;

    use super::*;

    const NOW: Timestamp = Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    };

    fn department() -> Actor {
        Actor {
            kind: Kind::Department,
            id: "区人社局".into(),
            unrestricted: false,
        }
    }

    fn reviewer() -> Actor {
        Actor {
            kind: Kind::Reviewer,
            id: "*".into(),
            unrestricted: false,
        }
    }

    fn content(title: &str) -> PolicyContent {
        PolicyContent {
            title: title.into(),
            body: "正文".into(),
            tags: vec!["employment".into()],
            ..PolicyContent::default()
        }
    }

    fn finding(id: &str) -> ReviewFinding {
        ReviewFinding {
            finding_id: id.into(),
            kind: FindingKind::Mobile as i32,
            field: "body".into(),
            excerpt: "电话138****5678".into(),
            ..ReviewFinding::default()
        }
    }

    fn approval() -> Command {
        Command::Review {
            approve: true,
            comment: String::new(),
            acknowledge: vec![],
        }
    }

    /// Decides and applies, as the write path does.
    fn step(record: Option<&Record>, command: Command, actor: &Actor) -> Result<Record, Refusal> {
        let change = decide(record, command, actor, NOW)?;
        Ok(apply(record, &change).expect("a decided change applies"))
    }

    fn created(findings: Vec<ReviewFinding>) -> Record {
        step(
            None,
            Command::Create {
                policy_id: "pol-1".into(),
                department: "区人社局".into(),
                content: content("见习补贴"),
                faqs: vec![],
                findings,
            },
            &department(),
        )
        .expect("created")
    }

    fn published() -> Record {
        let r = created(vec![]);
        let r = step(Some(&r), Command::Submit, &department()).expect("allowed");
        let r = step(Some(&r), approval(), &reviewer()).expect("allowed");
        step(Some(&r), Command::Publish { at: None }, &department()).expect("allowed")
    }

    #[test]
    fn the_happy_path_ends_published_at_version_one() {
        let r = published();
        assert_eq!(r.status(), PolicyStatus::Published);
        assert_eq!(r.policy.live_version, 1);
        assert_eq!(r.policy.generation, 4);
        assert_eq!(r.versions[&1].title, "见习补贴");
        assert_eq!(r.policy.submitted_by, "department:区人社局");
        assert_eq!(r.policy.reviewed_by, "reviewer:*");
    }

    #[test]
    fn steps_out_of_order_name_the_status() {
        let r = created(vec![]);
        let refused = decide(Some(&r), Command::Publish { at: None }, &department(), NOW);
        assert_eq!(
            refused,
            Err(Refusal::State {
                status: PolicyStatus::Draft,
                step: "publish"
            })
        );
        let r = published();
        assert!(matches!(
            decide(
                Some(&r),
                Command::Update {
                    content: content("x"),
                    findings: vec![]
                },
                &department(),
                NOW
            ),
            Err(Refusal::State {
                status: PolicyStatus::Published,
                ..
            })
        ));
    }

    #[test]
    fn the_submitter_cannot_review_and_other_departments_see_nothing() {
        let r = created(vec![]);
        let r = step(Some(&r), Command::Submit, &department()).expect("allowed");
        // A reviewer token of the same person (same kind:id is impossible across kinds, so
        // model the same principal holding both: the department itself is no reviewer).
        let refused = decide(Some(&r), approval(), &department(), NOW);
        assert!(matches!(refused, Err(Refusal::Denied(_))), "{refused:?}");
        let mut same = reviewer();
        same.kind = Kind::Reviewer;
        let mut r2 = r.clone();
        r2.policy.submitted_by = same.key();
        assert!(matches!(
            decide(
                Some(&r2),
                approval(),
                &same,
                NOW
            ),
            Err(Refusal::Denied(m)) if m.contains("submitted")
        ));
        let other = Actor {
            kind: Kind::Department,
            id: "区科委".into(),
            unrestricted: false,
        };
        assert!(!visible(&r, Some(&other)));
        assert!(!visible(&r, None));
        assert_eq!(
            decide(Some(&r), Command::Submit, &other, NOW),
            Err(Refusal::NotFound)
        );
        let live = published();
        assert!(visible(&live, None), "published policies are public");
    }

    #[test]
    fn findings_block_approval_until_acknowledged_and_survive_unrelated_edits() {
        let r = created(vec![finding("body:mobile:3")]);
        let r = step(
            Some(&r),
            Command::Update {
                content: content("见习补贴（修订）"),
                findings: vec![finding("body:mobile:3")],
            },
            &department(),
        )
        .expect("allowed");
        let r = step(Some(&r), Command::Submit, &department()).expect("allowed");
        let approve = |ack: Vec<String>| Command::Review {
            approve: true,
            comment: String::new(),
            acknowledge: ack,
        };
        match decide(Some(&r), approve(vec![]), &reviewer(), NOW) {
            Err(Refusal::Unresolved(open)) => assert_eq!(open[0].finding_id, "body:mobile:3"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(Some(&r), approve(vec!["nope".into()]), &reviewer(), NOW),
            Err(Refusal::Invalid(_))
        ));
        let r =
            step(Some(&r), approve(vec!["body:mobile:3".into()]), &reviewer()).expect("allowed");
        assert_eq!(r.status(), PolicyStatus::Approved);
        assert_eq!(r.policy.findings[0].acknowledged_by, "reviewer:*");
    }

    #[test]
    fn rejection_needs_a_comment_and_returns_to_draft() {
        let r = created(vec![]);
        let r = step(Some(&r), Command::Submit, &department()).expect("allowed");
        let reject = |comment: &str| Command::Review {
            approve: false,
            comment: comment.into(),
            acknowledge: vec![],
        };
        assert!(matches!(
            decide(Some(&r), reject(" "), &reviewer(), NOW),
            Err(Refusal::Invalid(_))
        ));
        let r = step(Some(&r), reject("请补充申请条件"), &reviewer()).expect("allowed");
        assert_eq!(r.status(), PolicyStatus::Draft);
        assert_eq!(r.policy.review_comment, "请补充申请条件");
    }

    #[test]
    fn scheduling_records_the_time_and_release_publishes() {
        let r = created(vec![]);
        let r = step(Some(&r), Command::Submit, &department()).expect("allowed");
        let r = step(Some(&r), approval(), &reviewer()).expect("allowed");
        let later = Timestamp {
            seconds: NOW.seconds + 3600,
            nanos: 0,
        };
        let r = step(
            Some(&r),
            Command::Publish { at: Some(later) },
            &department(),
        )
        .expect("allowed");
        assert_eq!(r.status(), PolicyStatus::Approved);
        assert_eq!(r.policy.publish_at, Some(later));
        let r = step(Some(&r), Command::Release, &Actor::scheduler()).expect("allowed");
        assert_eq!(r.status(), PolicyStatus::Published);
        assert_eq!(r.policy.publish_at, None);
    }

    #[test]
    fn a_revision_keeps_the_live_version_public_until_it_is_published() {
        let r = published();
        let r = step(
            Some(&r),
            Command::Revise {
                content: PolicyContent {
                    tags: vec!["employment".into(), "graduates".into()],
                    ..content("见习补贴（2024年修订）")
                },
                change_summary: "补贴标准提高到每月2690元".into(),
                findings: vec![],
            },
            &department(),
        )
        .expect("allowed");
        assert_eq!(r.status(), PolicyStatus::Draft);
        let public = r.public_view();
        assert_eq!(public.status, PolicyStatus::Published as i32);
        assert_eq!(
            public.content.expect("allowed").title,
            "见习补贴",
            "the live version"
        );
        let r = step(Some(&r), Command::Submit, &department()).expect("allowed");
        let r = step(Some(&r), approval(), &reviewer()).expect("allowed");
        let change =
            decide(Some(&r), Command::Publish { at: None }, &department(), NOW).expect("allowed");
        let Change::Revised(revised) = &change else {
            panic!("{change:?}")
        };
        assert_eq!(revised.previous_version, 1);
        assert!(revised.audience_changed, "a tag was added");
        assert_eq!(revised.change_summary, "补贴标准提高到每月2690元");
        let r = apply(Some(&r), &change).expect("allowed");
        assert_eq!(r.policy.live_version, 2);
        assert_eq!(r.versions.len(), 2);
        assert_eq!(
            r.versions[&1].title, "见习补贴",
            "earlier versions stay readable"
        );
    }

    #[test]
    fn withdrawal_and_expiry_end_a_policy_once() {
        let r = published();
        let change = decide(
            Some(&r),
            Command::Withdraw {
                reason: "政策调整".into(),
            },
            &department(),
            NOW,
        )
        .expect("allowed");
        let withdrawn = apply(Some(&r), &change).expect("allowed");
        assert_eq!(withdrawn.status(), PolicyStatus::Withdrawn);
        assert_eq!(withdrawn.policy.withdrawal_reason, "政策调整");
        assert_eq!(
            apply(Some(&withdrawn), &change),
            None,
            "a duplicate is ignored"
        );
        assert!(matches!(
            decide(Some(&withdrawn), Command::Expire, &Actor::scheduler(), NOW),
            Err(Refusal::State { .. })
        ));
        let expired = step(Some(&r), Command::Expire, &Actor::scheduler()).expect("allowed");
        assert_eq!(expired.status(), PolicyStatus::Expired);
    }

    #[test]
    fn racing_writers_the_log_decides() {
        // Two replicas both saw generation 1 and recorded generation 2: the first in the
        // log wins, the second is ignored by every replica.
        let r = created(vec![]);
        let a = decide(Some(&r), Command::Submit, &department(), NOW).expect("allowed");
        let b = decide(
            Some(&r),
            Command::Update {
                content: content("另一个标题"),
                findings: vec![],
            },
            &department(),
            NOW,
        )
        .expect("allowed");
        let after_a = apply(Some(&r), &a).expect("allowed");
        assert_eq!(apply(Some(&after_a), &b), None);
        // A publish that lost against a withdrawal, or a duplicate publish, changes nothing.
        let live = published();
        let duplicate = Change::Published(Box::new(live.versions[&1].clone()));
        assert_eq!(apply(Some(&live), &duplicate), None);
    }

    #[test]
    fn faqs_change_without_a_new_version() {
        let r = published();
        let r = step(
            Some(&r),
            Command::UpdateFaqs {
                faqs: vec![Faq {
                    question: "谁可以申请？".into(),
                    answer: "毕业两年内的高校毕业生。".into(),
                }],
            },
            &department(),
        )
        .expect("allowed");
        assert_eq!(r.policy.live_version, 1);
        assert_eq!(r.status(), PolicyStatus::Published);
        assert_eq!(r.published(1).expect("allowed").faqs.len(), 1);
    }
}
