//! The relay's errors, and the one place they become gRPC statuses: what a caller can act
//! on is said to it; what went wrong inside is logged (within the RPC's span) and answered
//! without internals.

use tonic::Status;
use zhida_runtime::FieldViolations;
use zhida_store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad fields, each with its path.
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    /// What the call names does not exist (or is not the caller's to see).
    #[error("not found: {0}")]
    NotFound(String),
    #[error("the relay's store failed: {0}")]
    Store(#[from] StoreError),
    /// A stored feed entry does not decode: written by something else, or damaged.
    #[error("feed entry {id} does not decode: {source}")]
    Corrupt {
        id: String,
        source: prost::DecodeError,
    },
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(violations) => violations.into(),
            Error::NotFound(what) => Status::not_found(format!("no {what}")),
            Error::Store(_) => {
                tracing::warn!(%error, "relay store unavailable");
                Status::unavailable("the relay's store is unavailable; retry")
            }
            Error::Corrupt { ref id, .. } => {
                tracing::error!(%error, "feed not read");
                Status::data_loss(format!("feed entry {id} is damaged"))
            }
        }
    }
}
