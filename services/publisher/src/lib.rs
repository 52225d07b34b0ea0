//! The publisher: departments draft policies, reviewers approve them, and the library
//! (公文库) serves what was published, through `PolicyService`. docs/lifecycle.md has the
//! state diagram.
//!
//! Event-sourced on `policy.events` (keyed by policy id): every change is one event, the
//! RPC answers once the broker acknowledged it and this replica's fold applied it, and a
//! restarted replica rebuilds its records and search index by replaying the topic. Only
//! the publisher reads its own `PolicyRecorded` snapshots (drafts, reviews, FAQ edits);
//! other services act on `PolicyPublished`, `PolicyRevised`, `PolicyWithdrawn` and
//! `PolicyExpired`.
//!
//! Tags are checked against the catalogue replicated from the compacted `tags` topic
//! (operators change it through `CreateTag`, `RenameTag`, `RetireTag`); the review gate
//! (先审查后公开) screens every text a version publishes (`zhida-screen`).
//!
//! The map:
//! - pure: [`content`] (a request's content checked field by field), [`lifecycle`] (the
//!   state machine: decide a command, fold an event), [`library`] (ids, the review gate
//!   over a policy, list filters and page tokens);
//! - state: [`records`] (the fold of `policy.events` and the search index), [`writer`]
//!   (the one write path), [`schedule`] (scheduled releases and expiry);
//! - edges: [`grpc`] (`PolicyService`), [`tags`] (the catalogue's operator RPCs),
//!   [`error`] (errors and their one mapping to gRPC statuses).

mod content;
mod error;
mod grpc;
mod library;
mod lifecycle;
mod records;
mod schedule;
mod tags;
mod writer;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::watch};
use zhida_bus::{Producer, TableReader, Topic};
use zhida_catalogue::{Catalogue, SharedTags};
use zhida_proto::{
    policy::v1::policy_service_server::PolicyServiceServer,
    profile::v1::profile_service_client::ProfileServiceClient,
};
use zhida_runtime::{Component, Config, Shutdown};
use zhida_screen::Screen;

pub use lifecycle::status_name;

/// The publisher's gRPC routes and its tasks: the replay of `policy.events`, the tags
/// replica, the scheduler.
pub async fn component(config: &Config, shutdown: &Shutdown) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/publisher")?;
    let screen = Screen::new(&config.publisher.forbidden_words)
        .map_err(|e| anyhow::anyhow!("invalid configuration: publisher.forbidden_words: {e}"))?;
    let search = Arc::new(zhida_search::Library::new().context("creating the search index")?);
    let (caught_up_tx, caught_up) = watch::channel(false);
    let records = Arc::new(records::Records::new(search, caught_up.clone()));
    let replay = {
        let records = records.clone();
        let mut caught_up = caught_up.clone();
        let kafka = config.kafka.clone();
        let token = shutdown.token.clone();
        async move {
            let committer = {
                let records = records.clone();
                async move {
                    if caught_up.wait_for(|c| *c).await.is_ok() {
                        records.caught_up();
                    }
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                result = TableReader::new(&kafka, Topic::PolicyEvents).run(
                    move |record| records.apply(record),
                    caught_up_tx,
                    token,
                ) => result,
                () = committer => Ok(()),
            }
        }
    };
    let tags = SharedTags::default();
    let (tags_ready_tx, tags_ready) = watch::channel(false);
    let tag_replica = {
        let kafka = config.kafka.clone();
        let producer = producer.clone();
        let tags = tags.clone();
        let token = shutdown.token.clone();
        async move {
            zhida_bus::replicate_tags(
                &kafka,
                &producer,
                tags,
                zhida_catalogue::seed_definitions(),
                tags_ready_tx,
                token,
            )
            .await
        }
    };
    let profiler = if config.publisher.profiler_url.is_empty() {
        None
    } else {
        let endpoint =
            tonic::transport::Endpoint::from_shared(config.publisher.profiler_url.clone())
                .context("invalid configuration: publisher.profiler_url")?;
        Some(ProfileServiceClient::new(endpoint.connect_lazy()))
    };
    let writer = Arc::new(writer::Writer::new(producer, records));
    let caught_up_ready = caught_up.clone();
    let scheduler = schedule::run(writer.clone(), caught_up, shutdown.token.clone());
    Ok(Component::new("publisher")
        .grpc(PolicyServiceServer::new(grpc::Publisher {
            writer,
            tags,
            industries: Catalogue::yangpu().industries,
            screen: Arc::new(screen),
            profiler,
        }))
        .ready_when(caught_up_ready)
        .ready_when(tags_ready)
        .task("policy-replay", replay)
        .task("tags-replica", tag_replica)
        .task("scheduler", scheduler))
}

/// Runs the publisher alone on `listener` until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let component = component(&config, &shutdown).await?;
    zhida_runtime::serve(
        vec![component],
        listener,
        shutdown,
        zhida_runtime::Host::from_config(&config),
    )
    .await
}
