//! The profiler's errors, and the one place they become gRPC statuses: what a caller can
//! act on is said to it; what went wrong inside is logged (within the RPC's span) and
//! answered with a retryable code and no internals.

use tonic::Status;
use zhida_bus::ProduceError;
use zhida_runtime::FieldViolations;
use zhida_store::StoreError;

use crate::profile::TooManySubscriptions;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad fields, each with its path.
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldViolations),
    #[error("no profile {0}")]
    NoProfile(String),
    #[error("profile {subject} has no subscription {id}")]
    NoSubscription { subject: String, id: String },
    #[error(transparent)]
    TooManySubscriptions(#[from] TooManySubscriptions),
    /// The `profiles` replay has not caught up since start.
    #[error("the profile directory is still loading from the profiles topic; retry")]
    Loading,
    /// Another write of the subject holds its lease past the wait.
    #[error("another write of this profile is in progress; retry")]
    Busy,
    /// The write's lease expired before the write was released.
    #[error("the profile's write lease expired before the write was confirmed; retry")]
    LeaseLost,
    /// This replica has not replayed the subject's last write in time.
    #[error("this replica has not yet replayed the profile's last write; retry")]
    Behind,
    #[error("the profiles log did not acknowledge the write: {0}")]
    Log(#[from] ProduceError),
    #[error("the write lease store failed: {0}")]
    Leases(#[from] StoreError),
    /// The subject key store failed (sealing or opening addresses, or destroying a key).
    #[error("the subject key store failed: {0}")]
    Keys(StoreError),
    /// The profile's addresses do not open: its key was destroyed by a delete that did not
    /// finish (or they were altered).
    #[error("the contact addresses of profile {0} cannot be read")]
    Unreadable(String),
    #[error("matching did not finish: {0}")]
    Matching(#[from] tokio::task::JoinError),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(violations) => violations.into(),
            Error::NoProfile(_) | Error::NoSubscription { .. } => {
                Status::not_found(error.to_string())
            }
            Error::TooManySubscriptions(_) => Status::failed_precondition(error.to_string()),
            Error::Loading | Error::Behind => Status::unavailable(error.to_string()),
            Error::Busy | Error::LeaseLost => {
                tracing::info!(%error, "profile write not done");
                Status::aborted(error.to_string())
            }
            Error::Log(_) => {
                tracing::warn!(%error, "profile write failed");
                Status::unavailable("the profiles log is unavailable; retry")
            }
            Error::Leases(_) => {
                tracing::warn!(%error, "profile write failed");
                Status::unavailable("profile writes are unavailable right now; retry")
            }
            Error::Keys(_) => {
                tracing::warn!(%error, "profile call failed");
                Status::unavailable("profiles are unavailable right now; retry")
            }
            Error::Unreadable(_) => Status::failed_precondition(
                "the profile's contact addresses were erased (a delete that did not finish?): \
                 delete the profile again, or upsert it",
            ),
            Error::Matching(_) => {
                tracing::error!(%error, "audience resolution failed");
                Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn internals_are_not_told_to_the_caller() {
        let produce = ProduceError::Kafka {
            topic: "zhida.profiles".into(),
            source: rdkafka::error::KafkaError::Canceled,
        };
        let status = Status::from(Error::Log(produce));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("zhida.profiles"), "{status:?}");
        let status = Status::from(Error::Leases(StoreError::from(redis::RedisError::from(
            std::io::Error::other("10.0.0.7:6379 refused"),
        ))));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.0.0.7"), "{status:?}");
    }
}
