//! The tag catalogue on the bus: seeding an empty `tags` topic, and replicas following it.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zhida_bus::{Producer, Topic, replicate_tags, seed_tags_if_empty};
use zhida_catalogue::{SharedTags, TagDefinition, Tags};
use zhida_proto::events::v1::TagDefined;
use zhida_runtime::config::KafkaConfig;

use crate::{setup, wait_for};

fn define(tag: &str, name: &str, retired: bool) -> TagDefinition {
    TagDefinition {
        tag: tag.into(),
        name: name.into(),
        retired,
    }
}

/// A replica's catalogue: [`replicate_tags`] running until `shutdown`, and its readiness.
async fn replica(
    config: &KafkaConfig,
    producer: &Producer,
    seed: Vec<TagDefinition>,
    shutdown: &CancellationToken,
) -> SharedTags {
    let tags = SharedTags::default();
    let (ready_tx, mut ready) = watch::channel(false);
    tokio::spawn({
        let (config, producer, tags, shutdown) = (
            config.clone(),
            producer.clone(),
            tags.clone(),
            shutdown.clone(),
        );
        async move { replicate_tags(&config, &producer, tags, seed, ready_tx, shutdown).await }
    });
    tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|ready| *ready))
        .await
        .expect("ready in time")
        .expect("replica running");
    tags
}

fn ids(tags: &Tags) -> Vec<(String, bool)> {
    tags.iter().map(|t| (t.tag.clone(), t.retired)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_replica_seeds_an_empty_topic_and_every_replica_follows_changes() {
    let (config, producer) = setup("tags").await;
    let shutdown = CancellationToken::new();
    let seed = vec![
        define("employment", "就业创业", false),
        define("housing", "住房保障", false),
        define("tax", "税费优惠", false),
    ];
    let first = replica(&config, &producer, seed.clone(), &shutdown).await;
    assert_eq!(
        first.snapshot(),
        Tags::new(seed.clone()),
        "seeded and ready"
    );

    // The topic is not empty any more: a second replica seeds nothing of its own.
    let second = replica(
        &config,
        &producer,
        vec![define("sports", "体育健身", false)],
        &shutdown,
    )
    .await;
    assert_eq!(second.snapshot(), Tags::new(seed.clone()));

    // A seeder that raced the first one (it found the topic empty too) writes the same
    // records again: the catalogue a replica replays is the same.
    assert_eq!(
        seed_tags_if_empty(&producer, &SharedTags::default(), seed.clone())
            .await
            .expect("seeded"),
        3
    );
    assert_eq!(
        seed_tags_if_empty(&producer, &first, seed.clone())
            .await
            .expect("nothing to do"),
        0,
        "a catalogue with tags is not seeded"
    );
    let third = replica(&config, &producer, vec![], &shutdown).await;
    assert_eq!(third.snapshot(), Tags::new(seed.clone()));

    // An operator's changes reach every running replica; records that define no tag are
    // skipped without stopping the reader.
    producer
        .tombstone(Topic::Tags, "tax")
        .await
        .expect("tombstone");
    producer
        .emit(
            "housing",
            &TagDefined {
                tag: "housing".into(),
                name: "住房保障".into(),
                retired: true,
                updated_at: None,
            },
        )
        .await
        .expect("retired");
    producer
        .emit(
            "sports",
            &TagDefined {
                tag: "sports".into(),
                name: "体育健身".into(),
                retired: false,
                updated_at: None,
            },
        )
        .await
        .expect("created");
    for tags in [&first, &second, &third] {
        wait_for("the new tag", || tags.is_active("sports")).await;
        assert_eq!(
            ids(&tags.snapshot()),
            [
                ("employment".to_string(), false),
                ("tax".to_string(), false),
                ("housing".to_string(), true),
                ("sports".to_string(), false),
            ]
        );
    }
    shutdown.cancel();
}
