//! Deleting a profile deletes what the notifier keeps of that person: the `profiles`
//! tombstone of a subject removes its inbox. (Upserts are not the notifier's business and
//! are passed over.)

use std::sync::Arc;

use zhida_bus::{HandleError, Handler, Record};
use zhida_store::Inbox;

pub(crate) struct Erasure {
    pub inbox: Arc<dyn Inbox>,
}

#[async_trait::async_trait]
impl Handler for Erasure {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        if record.payload.is_some() {
            return Ok(());
        }
        let Some(subject) = record.key_str() else {
            return Err(HandleError::permanent(
                "profiles tombstone without a UTF-8 key",
            ));
        };
        self.inbox
            .remove_recipient(subject)
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(subject, "deleted profile's inbox removed");
        Ok(())
    }
}
