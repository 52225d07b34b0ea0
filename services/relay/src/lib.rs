//! The relay ("政府+"): industry associations and industrial parks pull a feed of released
//! policies and forward them to their member enterprises. Every `PolicyPublished` becomes
//! one feed item, at most once per policy however often the event is redelivered.

mod error;

use std::sync::Arc;

use prost::Message;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use zhida_bus::{ConsumerSpec, Group, HandleError, Handler, Producer, Record, Topic};
use zhida_proto::{
    events::v1::PolicyPublished,
    relay::v1::{
        FeedItem, PullFeedRequest, PullFeedResponse,
        relay_service_server::{RelayService, RelayServiceServer},
    },
};
use zhida_runtime::{Component, Config, FieldViolations, Shutdown};
use zhida_store::{Feed, FeedReadError, Stores};

use crate::error::{Error, Result};

/// The district-wide feed; per-scope feeds (by industry, by park) come with scopes.
const FEED: &str = "all";
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// The relay's gRPC routes and its `policy.events` consumer.
pub async fn component(config: &Config, shutdown: &Shutdown) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/relay")?;
    let feed = Stores::open(&config.store).await?.feed(FEED);
    let consumer = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec {
            group: Group::Relay,
            topic: Topic::PolicyEvents,
        },
        FeedWriter { feed: feed.clone() },
        producer,
        shutdown.token.clone(),
    );
    Ok(Component::new("relay")
        .grpc(RelayServiceServer::new(Relay { feed }))
        .task("feed-writer", consumer))
}

/// Runs the relay alone on `listener` until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let component = component(&config, &shutdown).await?;
    zhida_runtime::serve(vec![component], listener, shutdown).await
}

struct FeedWriter {
    feed: Arc<dyn Feed>,
}

#[async_trait::async_trait]
impl Handler for FeedWriter {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let policy: PolicyPublished = record.decode()?;
        if policy.policy_id.is_empty() {
            return Err(HandleError::permanent("policy without id"));
        }
        let item = FeedItem {
            cursor: String::new(),
            policy_id: policy.policy_id.clone(),
            title: policy.title,
            tags: policy.tags,
            department: policy.department,
            service_url: policy.service_url,
            published_at: policy.published_at,
        };
        let appended = self
            .feed
            .append(&policy.policy_id, &item.encode_to_vec())
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(policy_id = policy.policy_id, appended, "relayed");
        Ok(())
    }
}

struct Relay {
    feed: Arc<dyn Feed>,
}

#[tonic::async_trait]
impl RelayService for Relay {
    async fn pull_feed(
        &self,
        request: Request<PullFeedRequest>,
    ) -> Result<Response<PullFeedResponse>, Status> {
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            n if n <= MAX_LIMIT => n,
            _ => {
                bad.add("limit", format!("at most {MAX_LIMIT}"));
                0
            }
        };
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
        let mut items = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut item = decode(&entry.id, &entry.payload)?;
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
