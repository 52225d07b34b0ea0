//! The tag catalogue's operator RPCs: each change is one `TagDefined` on the compacted
//! `tags` topic (the latest record per tag is the tag), answered once this replica's
//! catalogue, which follows that topic like every other service's, shows it.

use std::time::Duration;

use tonic::Status;
use zhida_bus::Producer;
use zhida_catalogue::{SharedTags, TagDefinition, check_tag_id, check_tag_name};
use zhida_proto::{events::v1::TagDefined, policy::v1::Tag};
use zhida_runtime::FieldViolations;

/// How long a change waits to come back through the topic.
const APPLY_WITHIN: Duration = Duration::from_secs(10);

/// The catalogue, active tags only unless `include_retired`.
pub fn list(tags: &SharedTags, include_retired: bool) -> Vec<Tag> {
    tags.snapshot()
        .iter()
        .filter(|t| include_retired || !t.retired)
        .map(|t| Tag {
            tag: t.tag.clone(),
            name: t.name.clone(),
            retired: t.retired,
        })
        .collect()
}

pub async fn create(
    producer: &Producer,
    tags: &SharedTags,
    tag: String,
    name: String,
) -> Result<Tag, Status> {
    let (tag, name) = checked(Some(tag), Some(name))?;
    if let Some(existing) = tags.snapshot().get(&tag) {
        return if existing.name == name && !existing.retired {
            // The same create again.
            Ok(to_api(existing))
        } else {
            Err(Status::already_exists(format!(
                "tag {tag:?} exists{}: rename it, or choose another id",
                if existing.retired { " (retired)" } else { "" }
            )))
        };
    }
    define(
        producer,
        tags,
        TagDefinition {
            tag,
            name,
            retired: false,
        },
    )
    .await
}

pub async fn rename(
    producer: &Producer,
    tags: &SharedTags,
    tag: String,
    name: String,
) -> Result<Tag, Status> {
    let (tag, name) = checked(Some(tag), Some(name))?;
    let existing = known(tags, &tag)?;
    if existing.retired {
        return Err(Status::failed_precondition(format!(
            "tag {tag:?} is retired: it cannot be renamed"
        )));
    }
    define(producer, tags, TagDefinition { name, ..existing }).await
}

pub async fn retire(producer: &Producer, tags: &SharedTags, tag: String) -> Result<Tag, Status> {
    let (tag, _) = checked(Some(tag), None)?;
    let existing = known(tags, &tag)?;
    if existing.retired {
        return Ok(to_api(&existing));
    }
    define(
        producer,
        tags,
        TagDefinition {
            retired: true,
            ..existing
        },
    )
    .await
}

fn checked(tag: Option<String>, name: Option<String>) -> Result<(String, String), Status> {
    let mut bad = FieldViolations::new();
    let tag = tag.unwrap_or_default().trim().to_string();
    if let Err(rule) = check_tag_id(&tag) {
        bad.add("tag", rule);
    }
    let name = name.map(|n| n.trim().to_string());
    if let Some(name) = &name
        && let Err(rule) = check_tag_name(name)
    {
        bad.add("name", rule);
    }
    bad.into_result()?;
    Ok((tag, name.unwrap_or_default()))
}

fn known(tags: &SharedTags, tag: &str) -> Result<TagDefinition, Status> {
    tags.snapshot()
        .get(tag)
        .cloned()
        .ok_or_else(|| Status::not_found(format!("no tag {tag:?} in the catalogue")))
}

async fn define(
    producer: &Producer,
    tags: &SharedTags,
    definition: TagDefinition,
) -> Result<Tag, Status> {
    let event = TagDefined {
        tag: definition.tag.clone(),
        name: definition.name.clone(),
        retired: definition.retired,
        updated_at: Some(zhida_proto::timestamp_now()),
    };
    producer.emit(&event.tag, &event).await.map_err(|error| {
        tracing::warn!(%error, tag = event.tag, "tag change not recorded");
        Status::unavailable("the event log is unavailable; retry")
    })?;
    let deadline = tokio::time::Instant::now() + APPLY_WITHIN;
    while tokio::time::Instant::now() < deadline {
        if tags.snapshot().get(&definition.tag) == Some(&definition) {
            tracing::info!(
                tag = definition.tag,
                retired = definition.retired,
                "tag defined"
            );
            return Ok(to_api(&definition));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Status::unavailable(
        "the change was recorded but this replica has not read it back yet; list the tags again",
    ))
}

fn to_api(t: &TagDefinition) -> Tag {
    Tag {
        tag: t.tag.clone(),
        name: t.name.clone(),
        retired: t.retired,
    }
}
