//! [`ReceiptIndex`] on Redis, shared by every replica (a receipt may arrive on another
//! replica's session): `<prefix>sms-receipt:<provider>:<message id>` holds the target,
//! with the TTL; a take is `GETDEL`, so only one taker gets it.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::{ReceiptIndex, ReceiptTarget, decode, encode};
use crate::{Result, millis};

pub struct RedisReceiptIndex {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisReceiptIndex {
    /// Keys are `<prefix>sms-receipt:<provider>:<message id>`.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}sms-receipt:"),
        }
    }

    fn key(&self, provider: &str, message_id: &str) -> String {
        format!("{}{provider}:{message_id}", self.prefix)
    }
}

#[async_trait]
impl ReceiptIndex for RedisReceiptIndex {
    async fn remember(
        &self,
        provider: &str,
        message_id: &str,
        target: &ReceiptTarget,
        ttl: Duration,
    ) -> Result<()> {
        let mut conn = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(self.key(provider, message_id))
            .arg(encode(target))
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn take(&self, provider: &str, message_id: &str) -> Result<Option<ReceiptTarget>> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("GETDEL")
            .arg(self.key(provider, message_id))
            .query_async(&mut conn)
            .await?;
        // A value this code did not write is no target.
        Ok(value.as_deref().and_then(decode))
    }
}
