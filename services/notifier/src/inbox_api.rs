//! `InboxService`: a person's page reads their inbox (newest first, with the unread count),
//! marks items read (the first mark goes out as `DELIVERY_STATE_READ` on
//! `delivery.status`), and streams new items as they arrive.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use zhida_bus::Producer;
use zhida_proto::{
    events::v1::{Channel, DeliveryState, DeliveryStatusChanged},
    notification::v1::{
        InboxItem, ListInboxRequest, ListInboxResponse, MarkReadRequest, MarkReadResponse,
        StreamInboxRequest, inbox_service_server::InboxService,
    },
};
use zhida_runtime::FieldViolations;
use zhida_store::{DeliveryKey, Inbox, InboxItem as StoredItem, InboxReadError, MarkRead};

use crate::{error::Error, sender::is_id};

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;
/// How long one wait for new items blocks before the stream checks that its client is
/// still there.
const STREAM_POLL: Duration = Duration::from_secs(20);
/// Items buffered per stream before it waits for its client.
const STREAM_BUFFER: usize = 16;

pub(crate) struct InboxApi {
    pub inbox: Arc<dyn Inbox>,
    pub producer: Producer,
    /// Ends open streams on shutdown, so the server can drain.
    pub shutdown: CancellationToken,
}

fn check_recipient(bad: &mut FieldViolations, id: &str) {
    if !is_id(id) {
        bad.add("recipient_id", "required: 1–128 of A-Z a-z 0-9 _ . : -");
    }
}

/// A stored item as the page shows it.
fn shown(stored: StoredItem) -> Result<InboxItem, Error> {
    let mut item: InboxItem =
        prost::Message::decode(stored.payload.as_slice()).map_err(|source| Error::Corrupt {
            id: stored.id.clone(),
            source,
        })?;
    item.cursor = stored.cursor;
    item.read = stored.read;
    // The id it is stored (and marked read) by: items from before item ids were written
    // get theirs here.
    item.item_id = stored.id;
    Ok(item)
}

fn read_error(error: InboxReadError, field: &str) -> Error {
    match error {
        InboxReadError::InvalidCursor(_) => {
            let mut bad = FieldViolations::new();
            bad.add(field, "not a cursor this inbox returned");
            Error::Invalid(bad)
        }
        InboxReadError::Store(store) => Error::Inbox(store),
    }
}

type ItemStream = Pin<Box<dyn Stream<Item = Result<InboxItem, Status>> + Send>>;

#[tonic::async_trait]
impl InboxService for InboxApi {
    async fn list_inbox(
        &self,
        request: Request<ListInboxRequest>,
    ) -> Result<Response<ListInboxResponse>, Status> {
        zhida_runtime::auth::authorize_subject(&request, &request.get_ref().recipient_id)?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        check_recipient(&mut bad, &request.recipient_id);
        let limit = bad.page_size("limit", request.limit, DEFAULT_LIMIT, MAX_LIMIT);
        bad.into_result().map_err(Error::from)?;
        let before = Some(request.before_cursor.as_str()).filter(|c| !c.is_empty());
        let page = self
            .inbox
            .list(&request.recipient_id, before, limit as usize)
            .await
            .map_err(|e| read_error(e, "before_cursor"))?;
        let items = page
            .items
            .into_iter()
            .map(shown)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(ListInboxResponse {
            items,
            next_cursor: page.next_cursor.unwrap_or_default(),
            unread: page.unread,
        }))
    }

    async fn mark_read(
        &self,
        request: Request<MarkReadRequest>,
    ) -> Result<Response<MarkReadResponse>, Status> {
        zhida_runtime::auth::authorize_subject(&request, &request.get_ref().recipient_id)?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        check_recipient(&mut bad, &request.recipient_id);
        if !crate::notice::is_item_id(&request.policy_id) {
            bad.add(
                "policy_id",
                "required: an item's item_id (a policy id of 1–128 of A-Z a-z 0-9 _ . : -, \
                 or a notice's <policy_id>#rev<n> or <policy_id>#withdrawn)",
            );
        }
        bad.into_result().map_err(Error::from)?;
        let marked = self
            .inbox
            .mark_read(&request.recipient_id, &request.policy_id)
            .await
            .map_err(Error::Inbox)?;
        if marked == MarkRead::NotFound {
            return Err(Error::NotInInbox(request.policy_id).into());
        }
        // Reported again when it was read before: the event id is the same, so a retry
        // after a crash between the mark and the event still reports it, once in effect.
        let key = DeliveryKey {
            policy_id: request.policy_id,
            recipient_id: request.recipient_id,
            channel: Channel::Inbox,
        };
        let status = DeliveryStatusChanged {
            policy_id: key.policy_id.clone(),
            recipient_id: key.recipient_id.clone(),
            channel: Channel::Inbox as i32,
            state: DeliveryState::Read as i32,
            detail: String::new(),
            at: None,
            // The page's item is the policy's, however many forwards reached it.
            forward: None,
        };
        let id = format!("{}|{}", key.encoded(), status.state);
        self.producer
            .emit_with_id(&key.recipient_id, &id, &status)
            .await
            .map_err(Error::Log)?;
        Ok(Response::new(MarkReadResponse {
            already_read: marked == MarkRead::AlreadyRead,
        }))
    }

    type StreamInboxStream = ItemStream;

    async fn stream_inbox(
        &self,
        request: Request<StreamInboxRequest>,
    ) -> Result<Response<Self::StreamInboxStream>, Status> {
        zhida_runtime::auth::authorize_subject(&request, &request.get_ref().recipient_id)?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        check_recipient(&mut bad, &request.recipient_id);
        bad.into_result().map_err(Error::from)?;
        let (inbox, shutdown) = (self.inbox.clone(), self.shutdown.clone());
        let recipient = request.recipient_id;
        let mut cursor = Some(request.after_cursor).filter(|c| !c.is_empty());
        // Read once before the stream starts, so a bad cursor is an error, not an empty
        // stream; what it found goes out first.
        let mut items = inbox
            .wait(&recipient, cursor.as_deref(), Duration::ZERO)
            .await
            .map_err(|e| read_error(e, "after_cursor"))?;
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            loop {
                for stored in items {
                    cursor = Some(stored.cursor.clone());
                    let item = shown(stored).map_err(Status::from);
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                }
                let waited = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tx.closed() => return,
                    waited = inbox.wait(&recipient, cursor.as_deref(), STREAM_POLL) => waited,
                };
                items = match waited {
                    Ok(items) => items,
                    Err(error) => {
                        let _ = tx.send(Err(read_error(error, "after_cursor").into())).await;
                        return;
                    }
                };
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
