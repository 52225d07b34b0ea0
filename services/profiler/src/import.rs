//! `ImportProfiles`: a directory system's bulk load, as a stream of chunks. Each chunk is
//! checked profile by profile as `UpsertProfile` checks one ([`check_chunk`], pure): a bad
//! profile is answered as rejected with its sequence number and field violations, and the
//! others go to the [`Writer`] as one batch ([`Writer::import`]). A chunk is answered once
//! its profiles are durable; the next chunk is written meanwhile, and the one after it is
//! read only once the first is answered, so the stream's own flow control paces the client
//! and at most [`CHUNKS_IN_FLIGHT`] chunks per stream are in the server.
//!
//! What bounds a stream (it is one call to the per-caller write limit, and one of the
//! caller's open streams): a chunk holds at most [`MAX_CHUNK`] profiles, and each message
//! is at most `grpc.max_request_bytes` (the limits layer counts an import's bytes per
//! message, not per stream). A chunk over the cap, or without profiles, ends the stream
//! with `INVALID_ARGUMENT`; a write that fails ends it with the writer's status, its
//! message naming the chunk (everything answered before it is durable).
//!
//! Tags are checked against one snapshot of the tag catalogue per chunk, and a profile
//! naming a retired tag against the subject's stored profile when its chunk is checked
//! (not again under the write lease, as `UpsertProfile` does: a subscription removed by a
//! concurrent write in that instant can come back with the import's line).

use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use tonic::Status;
use zhida_catalogue::{Catalogue, SharedTags, Tags};
use zhida_proto::{
    events::v1::Profile,
    profile::v1::{FieldViolation, ImportProfilesRequest, ImportProfilesResponse, RejectedProfile},
};
use zhida_runtime::FieldViolations;

use crate::{profile, replica::Replica, writer::Writer};

/// What a stream's profiles are checked against.
#[derive(Clone)]
pub(crate) struct Checks {
    pub catalogue: Catalogue,
    /// Snapshotted once per chunk.
    pub tags: SharedTags,
    /// Where the stored profiles are, for profiles naming retired tags.
    pub replica: Arc<Replica>,
}

/// The most profiles one chunk may carry.
pub const MAX_CHUNK: usize = 1_000;

/// A chunk after its check: the profiles to write, and the answer so far.
#[derive(Debug, PartialEq)]
pub(crate) struct Checked {
    pub accepted: Vec<Profile>,
    pub rejected: Vec<RejectedProfile>,
}

/// Checks a chunk: its size (a violation ends the stream), then each profile as
/// `UpsertProfile` does (a violation rejects that profile alone), `stored` answering a
/// subject's stored profile (asked only for profiles that name a retired tag); accepted
/// profiles get their subscription ids.
pub(crate) fn check_chunk(
    chunk: ImportProfilesRequest,
    today: &str,
    catalogue: &Catalogue,
    tags: &Tags,
    stored: impl Fn(&str) -> Option<Profile>,
) -> Result<Checked, FieldViolations> {
    let mut bad = FieldViolations::new();
    if chunk.profiles.is_empty() {
        bad.add("profiles", "required: at least one profile");
    } else if chunk.profiles.len() > MAX_CHUNK {
        bad.add(
            "profiles",
            format!(
                "{} profiles: a chunk holds at most {MAX_CHUNK}",
                chunk.profiles.len()
            ),
        );
    }
    bad.into_result()?;
    let mut checked = Checked {
        accepted: Vec::with_capacity(chunk.profiles.len()),
        rejected: Vec::new(),
    };
    for (sequence, mut profile) in (chunk.first_sequence..).zip(chunk.profiles) {
        let stored = profile::names_retired_tag(&profile.subscriptions, tags)
            .then(|| stored(&profile.subject_id))
            .flatten();
        let valid = profile::validate(Some(&profile), today, catalogue, tags, stored.as_ref())
            .and_then(|()| profile::assign_subscription_ids(&mut profile));
        match valid {
            Ok(()) => checked.accepted.push(profile),
            Err(bad) => checked.rejected.push(RejectedProfile {
                sequence,
                subject_id: profile.subject_id,
                violations: bad
                    .violations()
                    .iter()
                    .map(|(field, description)| FieldViolation {
                        field: field.clone(),
                        description: description.clone(),
                    })
                    .collect(),
            }),
        }
    }
    Ok(checked)
}

/// Chunks of one stream written at once: while one waits for the broker's
/// acknowledgements, the next is checked, leased and sealed.
const CHUNKS_IN_FLIGHT: usize = 2;

/// The answers to `chunks`: one per chunk, in order, until the chunks end or one fails
/// (then that failure is the last item). Up to [`CHUNKS_IN_FLIGHT`] chunks are written at
/// once; a subject in both waits for the earlier chunk's lease, so the later line wins.
pub(crate) fn run(
    chunks: impl Stream<Item = Result<ImportProfilesRequest, Status>> + Send + 'static,
    writer: Writer,
    checks: Checks,
) -> impl Stream<Item = Result<ImportProfilesResponse, Status>> + Send + 'static {
    chunks
        .map(move |chunk| {
            let writer = writer.clone();
            let checks = checks.clone();
            async move { import_chunk(chunk?, &writer, &checks).await }
        })
        .buffered(CHUNKS_IN_FLIGHT)
        .scan(false, |failed, answer| {
            let next = (!*failed).then(|| {
                *failed = answer.is_err();
                answer
            });
            futures::future::ready(next)
        })
}

async fn import_chunk(
    chunk: ImportProfilesRequest,
    writer: &Writer,
    checks: &Checks,
) -> Result<ImportProfilesResponse, Status> {
    let first_sequence = chunk.first_sequence;
    let checked = check_chunk(
        chunk,
        &zhida_runtime::district::today(),
        &checks.catalogue,
        &checks.tags.snapshot(),
        |subject| {
            checks
                .replica
                .with_directory(|directory| directory.get(subject))
        },
    )?;
    let accepted = checked.accepted.len();
    let unchanged = if accepted == 0 {
        0
    } else {
        writer.import(checked.accepted).await.map_err(|error| {
            let status = Status::from(error);
            Status::new(
                status.code(),
                format!(
                    "the chunk from sequence {first_sequence} was not imported (some of it, and \
                     of the chunk after it, may have been; every chunk answered before it \
                     was): {}",
                    status.message()
                ),
            )
        })?
    };
    Ok(ImportProfilesResponse {
        first_sequence,
        imported: (accepted - unchanged) as u32,
        unchanged: unchanged as u32,
        rejected: checked.rejected,
    })
}

#[cfg(test)]
mod tests {
    use zhida_proto::events::v1::{Contact, SubjectKind, Subscription};

    use super::*;

    fn citizen(id: &str) -> Profile {
        Profile {
            subject_id: id.into(),
            kind: SubjectKind::Citizen as i32,
            display_name: "王芳".into(),
            street: "殷行街道".into(),
            contacts: vec![Contact {
                channel: zhida_proto::events::v1::Channel::Email as i32,
                address: format!("{id}@example.cn"),
                consent: true,
                ..Contact::default()
            }],
            subscriptions: vec![Subscription {
                tags: vec!["employment".into()],
                channels: vec![zhida_proto::events::v1::Channel::Email as i32],
                ..Subscription::default()
            }],
            ..Profile::default()
        }
    }

    fn chunk(first_sequence: u64, profiles: Vec<Profile>) -> ImportProfilesRequest {
        ImportProfilesRequest {
            first_sequence,
            profiles,
        }
    }

    #[test]
    fn a_bad_profile_is_rejected_alone_with_its_sequence_and_fields() {
        let catalogue = Catalogue::yangpu();
        let mut bad = citizen("c-2");
        bad.contacts[0].address = "not an address".into();
        bad.display_name = String::new();
        let checked = check_chunk(
            chunk(40, vec![citizen("c-1"), bad, citizen("c-3")]),
            "2026-11-28",
            &catalogue,
            &Tags::built_in(),
            |_| None,
        )
        .expect("the chunk's size is fine");
        let accepted: Vec<&str> = checked
            .accepted
            .iter()
            .map(|p| p.subject_id.as_str())
            .collect();
        assert_eq!(accepted, vec!["c-1", "c-3"]);
        assert!(
            checked
                .accepted
                .iter()
                .all(|p| !p.subscriptions[0].id.is_empty()),
            "accepted profiles get their subscription ids"
        );
        assert_eq!(checked.rejected.len(), 1);
        let rejected = &checked.rejected[0];
        assert_eq!(
            (rejected.sequence, rejected.subject_id.as_str()),
            (41, "c-2")
        );
        let fields: Vec<&str> = rejected
            .violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(
            fields,
            vec!["profile.display_name", "profile.contacts[0].address"]
        );
        // The same violations UpsertProfile answers.
        let mut alone = citizen("c-2");
        alone.contacts[0].address = "not an address".into();
        alone.display_name = String::new();
        let upsert = profile::validate(
            Some(&alone),
            "2026-11-28",
            &catalogue,
            &Tags::built_in(),
            None,
        )
        .expect_err("invalid");
        let same: Vec<(String, String)> = rejected
            .violations
            .iter()
            .map(|v| (v.field.clone(), v.description.clone()))
            .collect();
        assert_eq!(same, upsert.violations());
    }

    #[test]
    fn a_profile_naming_a_retired_tag_is_checked_against_its_stored_profile_alone() {
        let catalogue = Catalogue::yangpu();
        let mut tags = Tags::built_in();
        let mut retired = tags.get("employment").expect("built in").clone();
        retired.retired = true;
        tags.apply(retired);
        let mut follower = citizen("c-old");
        profile::assign_subscription_ids(&mut follower).expect("one subscription");
        let mut housing = citizen("c-housing");
        housing.subscriptions[0].tags = vec!["housing".into()];
        let asked = std::cell::RefCell::new(Vec::new());
        let checked = check_chunk(
            chunk(1, vec![citizen("c-old"), citizen("c-new"), housing]),
            "2026-11-28",
            &catalogue,
            &tags,
            |subject| {
                asked.borrow_mut().push(subject.to_string());
                (subject == "c-old").then(|| follower.clone())
            },
        )
        .expect("the chunk's size is fine");
        let accepted: Vec<&str> = checked
            .accepted
            .iter()
            .map(|p| p.subject_id.as_str())
            .collect();
        assert_eq!(accepted, ["c-old", "c-housing"], "its subscription stays");
        assert_eq!(checked.rejected.len(), 1);
        assert_eq!(checked.rejected[0].subject_id, "c-new");
        assert_eq!(
            checked.rejected[0].violations[0].field,
            "profile.subscriptions[0].tags[0]"
        );
        assert_eq!(
            asked.into_inner(),
            ["c-old", "c-new"],
            "only profiles naming a retired tag look up their stored profile"
        );
    }

    #[test]
    fn a_chunk_is_at_most_max_chunk_profiles_and_not_empty() {
        let catalogue = Catalogue::yangpu();
        let full: Vec<Profile> = (0..MAX_CHUNK).map(|i| citizen(&format!("c-{i}"))).collect();
        let checked = check_chunk(
            chunk(1, full.clone()),
            "2026-11-28",
            &catalogue,
            &Tags::built_in(),
            |_| None,
        )
        .expect("a full chunk is fine");
        assert_eq!(checked.accepted.len(), MAX_CHUNK);
        let mut over = full;
        over.push(citizen("c-over"));
        let error = check_chunk(
            chunk(1, over),
            "2026-11-28",
            &catalogue,
            &Tags::built_in(),
            |_| None,
        )
        .expect_err("too large");
        assert_eq!(error.violations()[0].0, "profiles");
        let error = check_chunk(
            chunk(1, vec![]),
            "2026-11-28",
            &catalogue,
            &Tags::built_in(),
            |_| None,
        )
        .expect_err("empty");
        assert_eq!(error.violations()[0].0, "profiles");
    }
}
