//! [`SubjectKeys`] on Redis, shared by every replica: `<prefix>subject-key:<subject>` holds
//! the key's bytes (id and secret), without expiry. Creation is `SET … NX GET`: it stores a
//! new key only where none is, and answers the one already there otherwise, in one atomic
//! command, so racing replicas agree. Destruction is `DEL` (Redis persistence and replicas
//! forget it with the next rewrite and sync; see the README on backups).

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use zhida_seal::DataKey;

use super::SubjectKeys;
use crate::{Result, StoreError};

pub struct RedisSubjectKeys {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisSubjectKeys {
    /// Keys are `<prefix>subject-key:<subject>`.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}subject-key:"),
        }
    }

    fn key(&self, subject: &str) -> String {
        format!("{}{subject}", self.prefix)
    }
}

/// A stored value this code did not write is an error, never a key to seal with.
fn decode(subject: &str, bytes: &[u8]) -> Result<DataKey> {
    DataKey::from_bytes(bytes)
        .ok_or_else(|| StoreError(format!("the data key of {subject} is not a key")))
}

#[async_trait]
impl SubjectKeys for RedisSubjectKeys {
    async fn create(&self, subject: &str) -> Result<DataKey> {
        let fresh = DataKey::generate();
        let mut conn = self.conn.clone();
        let before: Option<Vec<u8>> = redis::cmd("SET")
            .arg(self.key(subject))
            .arg(fresh.to_bytes())
            .arg("NX")
            .arg("GET")
            .query_async(&mut conn)
            .await?;
        match before {
            None => Ok(fresh),
            Some(bytes) => decode(subject, &bytes),
        }
    }

    async fn find(&self, subject: &str) -> Result<Option<DataKey>> {
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(subject))
            .query_async(&mut conn)
            .await?;
        bytes.map(|bytes| decode(subject, &bytes)).transpose()
    }

    async fn destroy(&self, subject: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: u64 = redis::cmd("DEL")
            .arg(self.key(subject))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
