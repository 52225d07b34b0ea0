//! The profiler: keeps citizen and enterprise profiles with their subscriptions, and turns
//! each published policy into delivery requests: for the profiles its audience rule
//! matches ("千人千面", "一业一档") and for the subscriptions its tags and their filters
//! match, one request per (recipient, channel), each with the reason.
//!
//! The compacted `profiles` topic is the record: every write appends to it, and every
//! replica replays it into its in-memory [`Directory`] at start (policies are matched, and
//! calls answered, only once the replay caught up, so a restart never silently skips
//! recipients).
//!
//! Tags are checked against the operator-managed tag catalogue, followed from the `tags`
//! topic (and seeded with the built-in tags when this replica finds it empty, as the
//! publisher does, so a profiler never waits for another service to have started); the
//! profiler answers calls only once it has read that topic too.
//!
//! The map:
//! - [`replica`]: this replica's copy of the `profiles` table and its replay;
//! - [`writer`]: profile writes, one at a time per subject across every replica;
//! - [`contacts`]: contact addresses sealed under the subject's key, shredded on delete;
//! - [`matcher`]: the `policy.events` handler that requests deliveries;
//! - [`forwards`]: the `relay.forwards` handler: policies an association or park forwards
//!   to its members ("政府+") are requested for them like a match;
//! - [`grpc`]: the `ProfileService` handlers;
//! - [`import`]: `ImportProfiles`, bulk upserts in checked chunks;
//! - [`profile`], [`directory`], [`document`]: the pure model, its validation (against the
//!   district's [`Catalogue`], built once here and passed down, and the replicated
//!   [`SharedTags`]) and indexes;
//! - [`error`]: the profiler's errors and their one mapping to gRPC statuses.

mod contacts;
mod directory;
pub mod document;
mod error;
mod forwards;
mod grpc;
mod import;
mod matcher;
mod profile;
mod replica;
mod writer;

use std::sync::Arc;

use tokio::{net::TcpListener, sync::watch};
use zhida_bus::{ConsumerSpec, Group, Producer, TableReader, Topic};
use zhida_catalogue::{Catalogue, SharedTags, seed_definitions};
use zhida_proto::profile::v1::profile_service_server::ProfileServiceServer;
use zhida_runtime::{Component, Config, Shutdown};
use zhida_store::Stores;

pub use directory::{Directory, Explanation, Recipient, Resolution, Target};
pub use profile::{credit_code, credit_code_check, is_email, is_mobile, subscription_id, validate};

/// The profiler's gRPC routes, its `profiles` replay, and its `policy.events` and
/// `relay.forwards` consumers.
pub async fn component(config: &Config, shutdown: &Shutdown) -> anyhow::Result<Component> {
    let keyring = config
        .unsubscribe
        .keyring()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let producer = Producer::new(&config.kafka, "/zhida/profiler")?;
    let stores = Stores::open(&config.store).await?;
    let leases = stores.write_leases("profile-writes");
    let catalogue = Catalogue::yangpu();
    let replica = Arc::new(replica::Replica::new(catalogue.industries.clone()));
    let (caught_up_tx, caught_up) = watch::channel(false);
    let tags = SharedTags::default();
    let (tags_ready_tx, tags_ready) = watch::channel(false);

    let replicate_tags = {
        let (kafka, producer, tags, token) = (
            config.kafka.clone(),
            producer.clone(),
            tags.clone(),
            shutdown.token.clone(),
        );
        async move {
            zhida_bus::replicate_tags(
                &kafka,
                &producer,
                tags,
                seed_definitions(),
                tags_ready_tx,
                token,
            )
            .await
        }
    };
    let replay = {
        let replica = replica.clone();
        TableReader::new(&config.kafka, Topic::Profiles).run(
            move |record| replica.apply(record),
            caught_up_tx,
            shutdown.token.clone(),
        )
    };
    let matcher = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec::new(Group::Profiler, Topic::PolicyEvents),
        matcher::PolicyMatcher {
            replica: replica.clone(),
            producer: producer.clone(),
            caught_up: caught_up.clone(),
            industries: catalogue.industries.clone(),
        },
        producer.clone(),
        shutdown.token.clone(),
    );
    let forwards = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec::new(Group::ProfilerForwards, Topic::RelayForwards),
        forwards::Forwards {
            replica: replica.clone(),
            producer: producer.clone(),
            caught_up: caught_up.clone(),
        },
        producer.clone(),
        shutdown.token.clone(),
    );
    let writer = writer::Writer::new(
        replica.clone(),
        producer,
        leases,
        contacts::Contacts::new(stores.subject_keys()),
        config.kafka.produce_timeout,
    );
    Ok(Component::new("profiler")
        .grpc(ProfileServiceServer::new(grpc::ProfileApi {
            replica,
            writer,
            catalogue,
            tags,
            keyring,
        }))
        .ready_when(caught_up)
        .ready_when(tags_ready)
        .task("profiles-replay", replay)
        .task("tags-replica", replicate_tags)
        .task("policy-matcher", matcher)
        .task("relay-forwards", forwards))
}

/// Runs the profiler alone on `listener` until `shutdown`.
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
