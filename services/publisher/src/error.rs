//! The publisher's errors, and the one place they become gRPC statuses: what a caller can
//! act on is said to it (which field, which status, which finding); what went wrong inside
//! is logged (within the RPC's span) and answered with a retryable code and no internals.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use zhida_bus::ProduceError;
use zhida_proto::events::v1::{FindingKind, PolicyStatus, ReviewFinding};
use zhida_runtime::FieldViolations;

use crate::lifecycle::{Refusal, status_name};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad fields, each with its path.
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    #[error("the event log did not acknowledge the change: {0}")]
    Log(#[from] ProduceError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Denied(String),
    /// The step is not allowed from the policy's status.
    #[error("the policy is {}: it cannot {step} from there", status_name(*status))]
    State {
        status: PolicyStatus,
        step: &'static str,
    },
    #[error("{} review finding(s) neither fixed nor acknowledged", .0.len())]
    Unresolved(Vec<ReviewFinding>),
    /// The caller's `expected_generation` is not the policy's.
    #[error("the policy changed: it is at generation {current}, the request expected {expected}")]
    Stale { expected: u64, current: u64 },
    /// Another change reached the log first.
    #[error("another change to the policy came first")]
    Lost,
    /// Appended, but this replica did not apply it in time.
    #[error("the change was recorded but is not applied yet")]
    Late,
    #[error("{0}")]
    AlreadyExists(String),
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound => Error::NotFound("no such policy".into()),
            Refusal::Denied(why) => Error::Denied(why),
            Refusal::State { status, step } => Error::State { status, step },
            Refusal::Unresolved(findings) => Error::Unresolved(findings),
            Refusal::Invalid(bad) => Error::Invalid(bad),
            Refusal::Exists => Error::AlreadyExists("the policy exists".into()),
        }
    }
}

/// `mobile`, `resident_id`, …: a finding's kind as messages spell it.
pub fn kind_name(kind: i32) -> &'static str {
    match FindingKind::try_from(kind).unwrap_or_default() {
        FindingKind::Unspecified => "unspecified",
        FindingKind::ResidentId => "resident_id",
        FindingKind::Mobile => "mobile",
        FindingKind::BankCard => "bank_card",
        FindingKind::Email => "email",
        FindingKind::CreditCode => "credit_code",
        FindingKind::ForbiddenWord => "forbidden_word",
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(violations) => violations.into(),
            Error::NotFound(why) => Status::not_found(why),
            Error::Denied(why) => Status::permission_denied(why),
            Error::State { status, .. } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation(
                    "STATUS",
                    status_name(status),
                    error.to_string(),
                );
                Status::with_error_details(Code::FailedPrecondition, error.to_string(), details)
            }
            Error::Unresolved(ref findings) => {
                let mut details = ErrorDetails::new();
                for f in findings {
                    details.add_precondition_failure_violation(
                        "REVIEW_FINDING",
                        f.finding_id.clone(),
                        format!(
                            "{} in {} at {}..{}: {}",
                            kind_name(f.kind),
                            f.field,
                            f.start,
                            f.end,
                            f.excerpt
                        ),
                    );
                }
                let ids: Vec<&str> = findings.iter().map(|f| f.finding_id.as_str()).collect();
                Status::with_error_details(
                    Code::FailedPrecondition,
                    format!(
                        "{error}: fix the text or acknowledge them (acknowledge_findings): {}",
                        ids.join(", ")
                    ),
                    details,
                )
            }
            Error::Stale { .. } | Error::Lost => {
                Status::aborted(format!("{error}: read the policy again and retry"))
            }
            Error::AlreadyExists(why) => Status::already_exists(why),
            Error::Log(_) | Error::Late => {
                tracing::warn!(%error, "policy change not confirmed");
                Status::unavailable(format!(
                    "{error}; read the policy again before retrying (a retried CreateDraft \
                     with the same request_id is safe)"
                ))
            }
        }
    }
}
