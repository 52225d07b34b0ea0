//! The notifier's gRPC errors, and the one place they become statuses: what a caller can
//! act on is said to it; what went wrong inside is logged (within the RPC's span) and
//! answered with a retryable code and no internals. (The delivery path speaks the consumer
//! loop's `HandleError`: permanent or transient.)

use tonic::Status;
use zhida_bus::ProduceError;
use zhida_runtime::FieldViolations;
use zhida_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad fields, each with its path.
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    #[error("the delivery ledger failed: {0}")]
    Ledger(#[source] StoreError),
    #[error("the inbox store failed: {0}")]
    Inbox(#[source] StoreError),
    #[error("the inbox holds no item for policy {0}")]
    NotInInbox(String),
    /// A stored inbox item does not decode: written by something else, or damaged.
    #[error("inbox item {id} does not decode: {source}")]
    Corrupt {
        id: String,
        source: prost::DecodeError,
    },
    #[error("the status event was not acknowledged: {0}")]
    Log(#[source] ProduceError),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(violations) => violations.into(),
            Error::NotInInbox(_) => Status::not_found(error.to_string()),
            Error::Ledger(_) => {
                tracing::warn!(%error, "delivery status not read");
                Status::unavailable("the delivery ledger is unavailable; retry")
            }
            Error::Inbox(_) => {
                tracing::warn!(%error, "inbox not read");
                Status::unavailable("the inbox is unavailable; retry")
            }
            Error::Log(_) => {
                tracing::warn!(%error, "read receipt not reported");
                Status::unavailable("the event log is unavailable; retry")
            }
            Error::Corrupt { ref id, .. } => {
                tracing::error!(%error, "inbox not read");
                Status::data_loss(format!("inbox item {id} is damaged"))
            }
        }
    }
}
