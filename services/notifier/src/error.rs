//! The notifier's gRPC errors, and the one place they become statuses: what a caller can
//! act on is said to it; what went wrong inside is logged (within the RPC's span) and
//! answered with a retryable code and no internals. (The delivery path speaks the consumer
//! loop's `HandleError`: permanent or transient.)

use tonic::Status;
use zhida_runtime::FieldViolations;
use zhida_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad fields, each with its path.
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    #[error("the delivery ledger failed: {0}")]
    Ledger(#[source] StoreError),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(violations) => violations.into(),
            Error::Ledger(_) => {
                tracing::warn!(%error, "delivery status not read");
                Status::unavailable("the delivery ledger is unavailable; retry")
            }
        }
    }
}
