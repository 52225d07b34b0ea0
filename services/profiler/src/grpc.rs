//! `ProfileService`: profiles and subscriptions (written through the [`Writer`]), one-click
//! unsubscribe with the signed token of an email's link (checked with the
//! [`Keyring`](zhida_unsubscribe::Keyring)), and the read-only questions asked before
//! publishing (`PreviewAudience`, `ExplainMatch`); bulk loads stream through [`import`]. Handlers check requests field by field
//! and speak [`Error`]; the host holds calls until the replay caught up and gives each its
//! span.

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use tonic::{Request, Response, Status, Streaming};
use zhida_audience::Rule;
use zhida_catalogue::{Catalogue, SharedTags, Tags};
use zhida_proto::{
    events::v1::{PolicyPublished, Profile},
    profile::v1::{
        AudienceSample, ChannelCount, DeleteProfileRequest, DeleteProfileResponse,
        ExplainMatchRequest, ExplainMatchResponse, GetProfileRequest, GetProfileResponse,
        ImportProfilesRequest, ImportProfilesResponse, ListSubscriptionsRequest,
        ListSubscriptionsResponse, PolicyDraft, PreviewAudienceRequest, PreviewAudienceResponse,
        SubscribeRequest, SubscribeResponse, UnsubscribeByTokenRequest, UnsubscribeByTokenResponse,
        UnsubscribeRequest, UnsubscribeResponse, Unsubscribed, UpsertProfileRequest,
        UpsertProfileResponse, profile_service_server::ProfileService,
    },
};
use zhida_runtime::{FieldViolations, auth::authorize_subject};

use crate::{
    directory::Target,
    document,
    error::{Error, Result},
    import, profile,
    replica::Replica,
    writer::{Change, Writer},
};

/// Samples `PreviewAudience` returns by default, and at most.
const DEFAULT_SAMPLE: u32 = 10;
const MAX_SAMPLE: u32 = 100;

pub(crate) struct ProfileApi {
    pub replica: Arc<Replica>,
    pub writer: Writer,
    /// What profiles, subscriptions and drafts are checked against, but for tags.
    pub catalogue: Catalogue,
    /// The tag catalogue as this replica follows it (the `tags` topic): new subscriptions
    /// and drafts need active tags, stored subscriptions keep retired ones.
    pub tags: SharedTags,
    /// Checks one-click unsubscribe tokens (the notifier signs them with the same keys).
    pub keyring: zhida_unsubscribe::Keyring,
}

impl ProfileApi {
    fn profile(&self, id: &str) -> Result<Profile> {
        self.replica
            .with_directory(|directory| directory.get(id))
            .ok_or_else(|| Error::NoProfile(id.to_string()))
    }

    /// The subject's stored profile when `needed` (a request naming a retired tag is
    /// checked against it), else `None` without a look-up.
    fn stored_if(&self, needed: bool, id: &str) -> Option<Profile> {
        needed
            .then(|| self.replica.with_directory(|directory| directory.get(id)))
            .flatten()
    }
}

/// Checks one subject id field.
fn subject_id(field: &str, id: &str) -> Result<()> {
    let mut bad = FieldViolations::new();
    check_id(&mut bad, field, id);
    Ok(bad.into_result()?)
}

fn check_id(bad: &mut FieldViolations, field: &str, id: &str) {
    if !profile::is_subject_id(id) {
        bad.add(field, "required: 1–64 of A-Z a-z 0-9 _ . : -");
    }
}

/// A draft from PreviewAudience or ExplainMatch, checked field by field (`policy.…`): its
/// tags must be active (a policy cannot be filed under a retired tag).
fn draft_target(draft: Option<PolicyDraft>, catalogue: &Catalogue, tags: &Tags) -> Result<Target> {
    let mut bad = FieldViolations::new();
    let Some(draft) = draft else {
        bad.add(
            "policy",
            "required: the draft policy's tags and/or audience",
        );
        return Err(bad.into());
    };
    if draft.tags.is_empty() && draft.audience.trim().is_empty() {
        bad.add("policy", "give tags, an audience rule, or both");
    }
    for (i, tag) in draft.tags.iter().enumerate() {
        if !tags.contains(tag) {
            bad.add(
                format!("policy.tags[{i}]"),
                format!("{tag:?} is not in the tag catalogue"),
            );
        } else if !tags.is_active(tag) {
            bad.add(
                format!("policy.tags[{i}]"),
                format!("tag {tag:?} is retired: no new policies or subscriptions"),
            );
        }
    }
    let audience = if draft.audience.trim().is_empty() {
        None
    } else {
        match Rule::parse(&draft.audience, &catalogue.industries) {
            Ok(rule) => Some(rule),
            Err(e) => {
                bad.add("policy.audience", e.to_string());
                None
            }
        }
    };
    bad.into_result()?;
    let published = PolicyPublished {
        tags: draft.tags,
        department: draft.department,
        title: draft.title,
        service_url: draft.service_url,
        ..PolicyPublished::default()
    };
    Ok(Target {
        document: document::policy(&published),
        tags: published.tags,
        audience,
    })
}

#[tonic::async_trait]
impl ProfileService for ProfileApi {
    type ImportProfilesStream =
        Pin<Box<dyn Stream<Item = Result<ImportProfilesResponse, Status>> + Send + 'static>>;

    /// Needs the `profile:write:any` scope (the layer checks it): no per-subject check.
    async fn import_profiles(
        &self,
        request: Request<Streaming<ImportProfilesRequest>>,
    ) -> Result<Response<Self::ImportProfilesStream>, Status> {
        Ok(Response::new(Box::pin(import::run(
            request.into_inner(),
            self.writer.clone(),
            import::Checks {
                catalogue: self.catalogue.clone(),
                tags: self.tags.clone(),
                replica: self.replica.clone(),
            },
        ))))
    }

    async fn upsert_profile(
        &self,
        request: Request<UpsertProfileRequest>,
    ) -> Result<Response<UpsertProfileResponse>, Status> {
        authorize_subject(
            &request,
            request
                .get_ref()
                .profile
                .as_ref()
                .map_or("", |p| p.subject_id.as_str()),
        )?;
        let request = request.into_inner();
        let tags = self.tags.snapshot();
        let stored = request.profile.as_ref().and_then(|p| {
            self.stored_if(
                profile::names_retired_tag(&p.subscriptions, &tags),
                &p.subject_id,
            )
        });
        profile::validate(
            request.profile.as_ref(),
            &zhida_runtime::district::today(),
            &self.catalogue,
            &tags,
            stored.as_ref(),
        )
        .map_err(Error::Invalid)?;
        let Some(mut profile) = request.profile else {
            return Err(Status::invalid_argument("profile: required"));
        };
        profile::assign_subscription_ids(&mut profile).map_err(Error::Invalid)?;
        let subject = profile.subject_id.clone();
        let retired = profile::names_retired_tag(&profile.subscriptions, &tags);
        self.writer
            .change(&subject, |current| {
                // Again against the profile this one replaces, which may have changed since.
                if retired {
                    profile::check_profile_tags(&profile, &tags, current)
                        .map_err(Error::Invalid)?;
                }
                Ok(Change::put(profile))
            })
            .await?;
        Ok(Response::new(UpsertProfileResponse {}))
    }

    async fn get_profile(
        &self,
        request: Request<GetProfileRequest>,
    ) -> Result<Response<GetProfileResponse>, Status> {
        authorize_subject(&request, &request.get_ref().subject_id)?;
        let request = request.into_inner();
        subject_id("subject_id", &request.subject_id)?;
        let profile = self
            .writer
            .opened(self.profile(&request.subject_id)?)
            .await?;
        Ok(Response::new(GetProfileResponse {
            profile: Some(profile),
        }))
    }

    async fn delete_profile(
        &self,
        request: Request<DeleteProfileRequest>,
    ) -> Result<Response<DeleteProfileResponse>, Status> {
        authorize_subject(&request, &request.get_ref().subject_id)?;
        let request = request.into_inner();
        subject_id("subject_id", &request.subject_id)?;
        self.writer
            .change(&request.subject_id, |_| Ok(Change::Delete))
            .await?;
        Ok(Response::new(DeleteProfileResponse {}))
    }

    async fn list_subscriptions(
        &self,
        request: Request<ListSubscriptionsRequest>,
    ) -> Result<Response<ListSubscriptionsResponse>, Status> {
        authorize_subject(&request, &request.get_ref().subject_id)?;
        let request = request.into_inner();
        subject_id("subject_id", &request.subject_id)?;
        let profile = self.profile(&request.subject_id)?;
        Ok(Response::new(ListSubscriptionsResponse {
            subscriptions: profile.subscriptions,
        }))
    }

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<SubscribeResponse>, Status> {
        authorize_subject(&request, &request.get_ref().subject_id)?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        check_id(&mut bad, "subject_id", &request.subject_id);
        let Some(mut subscription) = request.subscription else {
            bad.add("subscription", "required");
            return Err(bad.into());
        };
        let tags = self.tags.snapshot();
        let retired = profile::names_retired_tag(std::slice::from_ref(&subscription), &tags);
        let stored = self.stored_if(retired, &request.subject_id);
        profile::validate_subscription(
            &mut bad,
            "subscription",
            &subscription,
            &self.catalogue,
            &tags,
            stored.as_ref(),
        );
        bad.into_result()?;
        if subscription.id.is_empty() {
            subscription.id = profile::subscription_id(&subscription);
        }
        let subject = request.subject_id.as_str();
        self.writer
            .edit(subject, |profile| {
                // Again against the profile as it is under the lease.
                if retired {
                    profile::check_subscription_tags(
                        "subscription",
                        &subscription,
                        &tags,
                        Some(profile),
                    )?;
                }
                Ok(profile::subscribe(profile, subscription.clone())?)
            })
            .await?;
        Ok(Response::new(SubscribeResponse {
            subscription: Some(subscription),
        }))
    }

    async fn unsubscribe(
        &self,
        request: Request<UnsubscribeRequest>,
    ) -> Result<Response<UnsubscribeResponse>, Status> {
        authorize_subject(&request, &request.get_ref().subject_id)?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        check_id(&mut bad, "subject_id", &request.subject_id);
        check_id(&mut bad, "subscription_id", &request.subscription_id);
        bad.into_result()?;
        let (subject, id) = (request.subject_id.as_str(), request.subscription_id);
        self.writer
            .edit(subject, |profile| {
                if profile::unsubscribe(profile, &id) {
                    Ok(())
                } else {
                    Err(Error::NoSubscription {
                        subject: subject.to_string(),
                        id,
                    })
                }
            })
            .await?;
        Ok(Response::new(UnsubscribeResponse {}))
    }

    async fn unsubscribe_by_token(
        &self,
        request: Request<UnsubscribeByTokenRequest>,
    ) -> Result<Response<UnsubscribeByTokenResponse>, Status> {
        let request = request.into_inner();
        // The token is the caller's only credential: it is never logged or echoed.
        let scope = self.keyring.verify(&request.token).map_err(|error| {
            let mut bad = FieldViolations::new();
            bad.add("token", error.to_string());
            Error::Invalid(bad)
        })?;
        let mut unsubscribed = profile::Unsubscribed::Nothing;
        self.writer
            .change(&scope.recipient_id, |current| {
                // A profile deleted since has nothing left to unsubscribe from.
                let Some(current) = current else {
                    return Ok(Change::Keep);
                };
                let mut profile = current.clone();
                unsubscribed = profile::unsubscribe_scope(&mut profile, &scope);
                Ok(match unsubscribed {
                    profile::Unsubscribed::Nothing => Change::Keep,
                    _ => Change::put(profile),
                })
            })
            .await?;
        tracing::info!(
            subject = scope.recipient_id,
            channel = scope.channel.as_str_name(),
            subscriptions = scope.subscriptions.len(),
            ?unsubscribed,
            "one-click unsubscribe"
        );
        Ok(Response::new(UnsubscribeByTokenResponse {
            unsubscribed: match unsubscribed {
                profile::Unsubscribed::Nothing => Unsubscribed::Nothing,
                profile::Unsubscribed::Subscriptions => Unsubscribed::Subscriptions,
                profile::Unsubscribed::Consent => Unsubscribed::Consent,
            } as i32,
            channel: scope.channel as i32,
        }))
    }

    async fn preview_audience(
        &self,
        request: Request<PreviewAudienceRequest>,
    ) -> Result<Response<PreviewAudienceResponse>, Status> {
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let sample_size = bad.page_size(
            "sample_size",
            request.sample_size,
            DEFAULT_SAMPLE,
            MAX_SAMPLE,
        ) as usize;
        bad.into_result()?;
        let target = draft_target(request.policy, &self.catalogue, &self.tags.snapshot())?;
        let resolution = self.replica.resolve(target).await.map_err(Error::from)?;
        let mut distinct: Vec<&str> = resolution
            .recipients
            .iter()
            .map(|r| r.subject_id.as_str())
            .collect();
        distinct.dedup();
        let mut by_channel: Vec<ChannelCount> = Vec::new();
        for r in &resolution.recipients {
            match by_channel
                .iter_mut()
                .find(|c| c.channel == r.channel as i32)
            {
                Some(count) => count.deliveries += 1,
                None => by_channel.push(ChannelCount {
                    channel: r.channel as i32,
                    deliveries: 1,
                }),
            }
        }
        by_channel.sort_by_key(|c| c.channel);
        Ok(Response::new(PreviewAudienceResponse {
            by_channel,
            deliveries: resolution.recipients.len() as u64,
            recipients: distinct.len() as u64,
            audience_matches: resolution.audience_matches,
            subscription_matches: resolution.subscription_matches,
            sample: resolution
                .recipients
                .iter()
                .take(sample_size)
                .map(|r| AudienceSample {
                    subject_id: r.subject_id.clone(),
                    channel: r.channel as i32,
                    reason: r.reason.clone(),
                })
                .collect(),
        }))
    }

    async fn explain_match(
        &self,
        request: Request<ExplainMatchRequest>,
    ) -> Result<Response<ExplainMatchResponse>, Status> {
        authorize_subject(&request, &request.get_ref().subject_id)?;
        let request = request.into_inner();
        subject_id("subject_id", &request.subject_id)?;
        let target = draft_target(request.policy, &self.catalogue, &self.tags.snapshot())?;
        let explanation = self
            .replica
            .with_directory(|directory| directory.explain(&request.subject_id, &target))
            .ok_or_else(|| Error::NoProfile(request.subject_id.clone()))?;
        Ok(Response::new(ExplainMatchResponse {
            matched: explanation.matched(),
            audience_conditions: explanation.conditions,
            subscription_ids: explanation.subscriptions,
            channels: explanation.channels.iter().map(|c| *c as i32).collect(),
            digest_channels: explanation.digest.iter().map(|c| *c as i32).collect(),
            reason: explanation.reason,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(tags: &[&str]) -> Option<PolicyDraft> {
        Some(PolicyDraft {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..PolicyDraft::default()
        })
    }

    fn bad_fields(result: Result<Target>) -> Vec<(String, String)> {
        match result {
            Err(Error::Invalid(bad)) => bad.violations().to_vec(),
            Err(other) => panic!("not a field error: {other}"),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn a_draft_needs_active_tags() {
        let catalogue = Catalogue::yangpu();
        let mut tags = Tags::built_in();
        assert!(draft_target(draft(&["employment", "housing"]), &catalogue, &tags).is_ok());
        let mut housing = tags.get("housing").expect("built in").clone();
        housing.retired = true;
        tags.apply(housing);
        let bad = bad_fields(draft_target(
            draft(&["employment", "housing", "blockchain"]),
            &catalogue,
            &tags,
        ));
        let fields: Vec<&str> = bad.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(fields, ["policy.tags[1]", "policy.tags[2]"]);
        assert!(bad[0].1.contains("retired"), "{}", bad[0].1);
        assert!(
            bad[1].1.contains("not in the tag catalogue"),
            "{}",
            bad[1].1
        );
    }
}
