//! `RelayService`: associations and parks page through the feed by cursor, each item with
//! its current status and version (a withdrawn item must not be forwarded any more).

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};
use zhida_proto::relay::v1::{
    FeedItem, PullFeedRequest, PullFeedResponse, relay_service_server::RelayService,
};
use zhida_runtime::FieldViolations;
use zhida_store::{Feed, FeedReadError};

use crate::error::{Error, Result};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub(crate) struct Relay {
    pub feed: Arc<dyn Feed>,
}

#[tonic::async_trait]
impl RelayService for Relay {
    async fn pull_feed(
        &self,
        request: Request<PullFeedRequest>,
    ) -> Result<Response<PullFeedResponse>, Status> {
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let limit = bad.page_size("limit", request.limit, DEFAULT_LIMIT, MAX_LIMIT);
        bad.into_result().map_err(Error::from)?;
        let after = Some(request.after_cursor.as_str()).filter(|c| !c.is_empty());
        let entries = self
            .feed
            .read(after, limit as usize)
            .await
            .map_err(|e| match e {
                FeedReadError::InvalidCursor(_) => {
                    let mut bad = FieldViolations::new();
                    bad.add("after_cursor", "not a cursor this feed returned");
                    Error::Invalid(bad)
                }
                FeedReadError::Store(store) => Error::Store(store),
            })?;
        let next_cursor = entries
            .last()
            .map_or(request.after_cursor.clone(), |e| e.cursor.clone());
        // Each item as it reads now: revised, withdrawn or expired since it was appended.
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let states = self.feed.states(&ids).await.map_err(Error::Store)?;
        let mut items = Vec::with_capacity(entries.len());
        for (entry, state) in entries.into_iter().zip(states) {
            let mut item = decode(&entry.id, &entry.payload)?;
            if let Some(state) = state {
                crate::feed_writer::overlay(&mut item, &decode(&entry.id, &state)?);
            }
            item.cursor = entry.cursor;
            items.push(item);
        }
        Ok(Response::new(PullFeedResponse { items, next_cursor }))
    }
}

fn decode(id: &str, payload: &[u8]) -> Result<FeedItem> {
    FeedItem::decode(payload).map_err(|source| Error::Corrupt {
        id: id.to_string(),
        source,
    })
}
