//! Each subject's data key, which seals its contact addresses wherever they are copied
//! (`zhida_seal`). Deleting a profile destroys its key, and with it every sealed copy
//! ("crypto-shredding"); a profile created again gets a new key, which does not open what
//! the old one sealed.
//!
//! The profiler [`create`](SubjectKeys::create)s a key when it first seals an address of
//! the subject (create-if-absent: two replicas racing agree on one key, whichever stored it
//! first) and [`destroy`](SubjectKeys::destroy)s it on delete; the notifier
//! [`find`](SubjectKeys::find)s it at send time. Keys are never cached: a key destroyed is
//! gone for every reader at once.

pub mod contract;
mod memory;
mod redis;

use async_trait::async_trait;
use zhida_seal::DataKey;

pub use self::{memory::MemorySubjectKeys, redis::RedisSubjectKeys};
use crate::Result;

#[async_trait]
pub trait SubjectKeys: Send + Sync {
    /// The subject's key: the one it has, or a new one stored now if it has none. Callers
    /// racing for the same subject all get the one stored first.
    async fn create(&self, subject: &str) -> Result<DataKey>;
    /// The subject's key, if it has one (none: never created, or destroyed).
    async fn find(&self, subject: &str) -> Result<Option<DataKey>>;
    /// Destroys the subject's key, if any; nothing sealed under it opens again.
    async fn destroy(&self, subject: &str) -> Result<()>;
}
