//! The publisher's errors, and the one place they become gRPC statuses: what a caller can
//! act on is said to it; what went wrong inside is logged (within the RPC's span) and
//! answered with a retryable code and no internals.

use tonic::Status;
use zhida_bus::ProduceError;
use zhida_runtime::FieldViolations;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad fields, each with its path.
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    #[error("the event log did not acknowledge the policy: {0}")]
    Log(#[from] ProduceError),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(violations) => violations.into(),
            Error::Log(_) => {
                tracing::warn!(%error, "policy not published");
                Status::unavailable("the event log is unavailable; retry with the same request_id")
            }
        }
    }
}
