//! The tag catalogue on the bus: every service that checks tags follows the compacted
//! `tags` topic into its [`SharedTags`] ([`follow_tags`]), so no service asks another for
//! them; an operator's change (`TagDefined`, produced by the publisher) reaches every
//! replica of every service without a restart.
//!
//! A fresh deployment's topic is empty: the first service to have read it to the end
//! writes the tags built into the release ([`seed_tags_if_empty`]). Replicas starting
//! together may both find it empty and both write the seed; their records are identical
//! (same key, payload and CloudEvents id), so the topic still says the same thing, and
//! compaction keeps one. What such a race cannot rule out: an operator changing a seeded
//! tag on another replica in the instant between this seeder finding the topic empty and
//! its seed landing (the seed would then land after the change and win). That instant
//! exists once, at a deployment's first start, before any operator has seen a tag.

use prost::Message as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zhida_catalogue::{SharedTags, TagDefinition, check_tag_id};
use zhida_proto::events::v1::TagDefined;
use zhida_runtime::config::KafkaConfig;

use crate::{
    envelope::Event,
    producer::{ProduceError, Producer},
    table::{TableReader, TableRecord},
    topics::Topic,
};

/// Replays the `tags` topic into `tags` and keeps following it until `shutdown`.
/// `caught_up` turns true once everything the topic held at start is applied. A record
/// that is not a valid definition (a tombstone, a payload that does not decode, a key
/// other than its tag id, an id that is not one) is logged and skipped: the catalogue
/// keeps what it had.
pub async fn follow_tags(
    config: &KafkaConfig,
    tags: SharedTags,
    caught_up: watch::Sender<bool>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    TableReader::new(config, Topic::Tags)
        .run(
            move |record| match definition(&record) {
                Ok(definition) => tags.apply(definition),
                Err(problem) => tracing::warn!(
                    key = record.key,
                    partition = record.partition,
                    offset = record.offset,
                    problem,
                    "tags record skipped"
                ),
            },
            caught_up,
            shutdown,
        )
        .await
}

/// The definition a `tags` record carries, or why it carries none.
fn definition(record: &TableRecord) -> Result<TagDefinition, String> {
    let Some(value) = &record.value else {
        return Err("a tombstone: tags are retired, never deleted".into());
    };
    if !record.meta.ty.is_empty() && record.meta.ty != TagDefined::TYPE {
        return Err(format!(
            "type {:?}, not {}",
            record.meta.ty,
            TagDefined::TYPE
        ));
    }
    let event = TagDefined::decode(value.as_slice())
        .map_err(|error| format!("not a TagDefined: {error}"))?;
    if event.tag != record.key {
        return Err(format!("defines {:?} under another key", event.tag));
    }
    check_tag_id(&event.tag).map_err(|rule| format!("not a tag id: {rule}"))?;
    Ok(TagDefinition {
        tag: event.tag,
        name: event.name,
        retired: event.retired,
    })
}

/// When `tags` (read to the end of the topic: call it once the reader caught up) has no
/// tag at all, writes `seed` to the `tags` topic, one `TagDefined` per tag keyed by its id
/// with the CloudEvents id `tag:<id>:seed` and no `updated_at`, so that every seeder writes
/// the same records (see the module docs for racing seeders), and applies each to `tags`
/// unless the topic delivered that id meanwhile. Answers how many it wrote: 0 when the
/// catalogue was not empty.
pub async fn seed_tags_if_empty(
    producer: &Producer,
    tags: &SharedTags,
    seed: Vec<TagDefinition>,
) -> Result<usize, ProduceError> {
    if !tags.is_empty() {
        return Ok(0);
    }
    let events: Vec<TagDefined> = seed
        .iter()
        .map(|definition| TagDefined {
            tag: definition.tag.clone(),
            name: definition.name.clone(),
            retired: definition.retired,
            updated_at: None,
        })
        .collect();
    futures::future::try_join_all(events.iter().map(|event| async move {
        let id = seed_event_id(&event.tag);
        producer.emit_with_id(&event.tag, &id, event).await
    }))
    .await?;
    let written = seed.len();
    for definition in seed {
        tags.apply_if_absent(definition);
    }
    tracing::info!(tags = written, "seeded the empty tags topic");
    Ok(written)
}

/// The CloudEvents id of tag `tag`'s seed record: the same from every seeder.
fn seed_event_id(tag: &str) -> String {
    format!("tag:{tag}:seed")
}

/// Follows the `tags` topic into `tags` (as [`follow_tags`]) and, once it caught up,
/// seeds it with `seed` if it is empty ([`seed_tags_if_empty`]); then `ready` turns true:
/// from then on `tags` holds the catalogue. What a service that checks tags runs as one
/// task, its readiness waiting for `ready`. Fails when the seed cannot be written (a
/// service without a catalogue would refuse every tag).
pub async fn replicate_tags(
    config: &KafkaConfig,
    producer: &Producer,
    tags: SharedTags,
    seed: Vec<TagDefinition>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (caught_up_tx, mut caught_up) = watch::channel(false);
    let follow = follow_tags(config, tags.clone(), caught_up_tx, shutdown.clone());
    let seed = async {
        // Ends without seeding when the reader stops first (shutdown, or its error).
        if caught_up.wait_for(|caught_up| *caught_up).await.is_err() {
            return Ok(());
        }
        seed_tags_if_empty(producer, &tags, seed).await?;
        ready.send_replace(true);
        anyhow::Ok(())
    };
    tokio::try_join!(follow, seed).map(|_| ())
}

#[cfg(test)]
mod tests {
    use crate::envelope::EventMeta;

    use super::*;

    fn record(key: &str, value: Option<Vec<u8>>, ty: &str) -> TableRecord {
        TableRecord {
            key: key.into(),
            value,
            meta: EventMeta {
                ty: ty.into(),
                ..EventMeta::default()
            },
            partition: 0,
            offset: 7,
        }
    }

    fn defined(tag: &str, name: &str, retired: bool) -> Vec<u8> {
        TagDefined {
            tag: tag.into(),
            name: name.into(),
            retired,
            updated_at: None,
        }
        .encode_to_vec()
    }

    #[test]
    fn a_tag_defined_record_is_its_tags_definition() {
        let got = definition(&record(
            "housing",
            Some(defined("housing", "住房保障", true)),
            TagDefined::TYPE,
        ));
        assert_eq!(
            got,
            Ok(TagDefinition {
                tag: "housing".into(),
                name: "住房保障".into(),
                retired: true,
            })
        );
        // Written without CloudEvents headers (by hand, or by an older tool): still read.
        assert!(
            definition(&record(
                "housing",
                Some(defined("housing", "住房", false)),
                ""
            ))
            .is_ok()
        );
    }

    #[test]
    fn records_that_define_no_tag_are_refused_with_the_reason() {
        let cases = [
            (record("housing", None, ""), "tombstone"),
            (
                record("housing", Some(vec![0xff, 0xff]), TagDefined::TYPE),
                "not a TagDefined",
            ),
            (
                record(
                    "housing",
                    Some(defined("housing", "住房", false)),
                    "zhida.events.v1.ProfileUpserted",
                ),
                "type",
            ),
            (
                record(
                    "tax",
                    Some(defined("housing", "住房", false)),
                    TagDefined::TYPE,
                ),
                "another key",
            ),
            (
                record("", Some(defined("", "空", false)), TagDefined::TYPE),
                "not a tag id",
            ),
            (
                record("Tax", Some(defined("Tax", "税", false)), TagDefined::TYPE),
                "not a tag id",
            ),
        ];
        for (record, reason) in cases {
            let problem = definition(&record).expect_err(reason);
            assert!(
                problem.contains(reason),
                "{problem:?} should say {reason:?}"
            );
        }
    }
}
