//! The profiler: keeps citizen and enterprise profiles with their subscriptions, and turns
//! each published policy into delivery requests: for the profiles its audience rule
//! matches ("千人千面", "一业一档") and for the subscriptions its tags and their filters
//! match, one request per (recipient, channel), each with the reason.
//!
//! The compacted `profiles` topic is the record: every write appends to it, and every
//! replica replays it into its in-memory [`Directory`] at start (policies are matched only
//! once the replay caught up, so a restart never silently skips recipients).

mod directory;
pub mod document;
mod profile;
mod streets;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use tokio::{net::TcpListener, sync::watch};
use tonic::{Request, Response, Status};
use zhida_audience::Rule;
use zhida_bus::{
    ConsumerSpec, HandleError, Handler, Producer, Record, TableReader, TableRecord, Topic,
};
use zhida_proto::{
    events::v1::{DeliveryRequested, PolicyPublished, Profile, ProfileUpserted},
    profile::v1::{
        AudienceSample, DeleteProfileRequest, DeleteProfileResponse, ExplainMatchRequest,
        ExplainMatchResponse, GetProfileRequest, GetProfileResponse, ListSubscriptionsRequest,
        ListSubscriptionsResponse, PolicyDraft, PreviewAudienceRequest, PreviewAudienceResponse,
        SubscribeRequest, SubscribeResponse, UnsubscribeRequest, UnsubscribeResponse,
        UpsertProfileRequest, UpsertProfileResponse,
        profile_service_server::{ProfileService, ProfileServiceServer},
    },
};
use zhida_runtime::{Component, Config, FieldViolations, Shutdown};

pub use directory::{Directory, Explanation, Recipient, Resolution, Target};
pub use profile::{
    GROUPS, HUKOU, QUALIFICATIONS, SIZES, credit_code, credit_code_check, is_email, is_mobile,
    subscription_id, validate,
};
pub use streets::YANGPU_STREETS;

/// The profiler's gRPC routes, its `profiles` replay, and its `policy.events` consumer.
pub async fn component(config: &Config, shutdown: &Shutdown) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/profiler")?;
    let index = Arc::new(RwLock::new(Replica::default()));
    let (caught_up_tx, caught_up) = watch::channel(false);

    let table = {
        let index = index.clone();
        let reader = TableReader::new(&config.kafka, Topic::Profiles);
        reader.run(
            move |record| apply(&index, record),
            caught_up_tx,
            shutdown.token.clone(),
        )
    };
    let matcher = zhida_bus::run_consumer(
        config.kafka.clone(),
        ConsumerSpec {
            group: "zhida-profiler",
            topic: Topic::PolicyEvents,
        },
        PolicyMatcher {
            index: index.clone(),
            producer: producer.clone(),
            caught_up: caught_up.clone(),
        },
        producer.clone(),
        shutdown.token.clone(),
    );
    Ok(Component::new("profiler")
        .grpc(ProfileServiceServer::new(Profiles {
            index,
            producer,
            writes: tokio::sync::Mutex::new(()),
            caught_up: caught_up.clone(),
        }))
        .ready_when(caught_up)
        .task("profiles-replay", table)
        .task("policy-matcher", matcher))
}

/// Runs the profiler alone on `listener` until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let component = component(&config, &shutdown).await?;
    zhida_runtime::serve(vec![component], listener, shutdown).await
}

/// This replica's view of the `profiles` topic: the directory, plus the offsets of its own
/// writes that the replay has not reached yet.
#[derive(Default)]
struct Replica {
    directory: Directory,
    /// subject → offset of the last record this replica wrote for it. A write is applied at
    /// once (read-your-writes); replayed records older than it are skipped, or the replay
    /// would briefly bring back the previous version and a Subscribe reading it would
    /// write it back.
    ahead: HashMap<String, i64>,
}

impl Replica {
    fn wrote(&mut self, key: &str, offset: i64) {
        self.ahead.insert(key.to_string(), offset);
    }
}

fn apply(replica: &RwLock<Replica>, record: TableRecord) {
    let mut replica = replica.write().unwrap_or_else(|e| e.into_inner());
    if let Some(&written) = replica.ahead.get(&record.key) {
        if record.offset < written {
            return;
        }
        replica.ahead.remove(&record.key);
    }
    let directory = &mut replica.directory;
    match record.value {
        None => {
            directory.remove(&record.key);
        }
        Some(bytes) => match prost::Message::decode(bytes.as_slice()) {
            Ok(ProfileUpserted {
                profile: Some(profile),
            }) if profile.subject_id == record.key => directory.upsert(profile),
            // A table has no dead-letter topic: a record that cannot be a profile is skipped
            // loudly. Upserts are validated before they are written, so this means tampering.
            _ => tracing::error!(
                key = record.key,
                "profiles record is not a valid ProfileUpserted; skipped"
            ),
        },
    }
}

struct PolicyMatcher {
    index: Arc<RwLock<Replica>>,
    producer: Producer,
    caught_up: watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl Handler for PolicyMatcher {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        if !*self.caught_up.borrow() {
            return Err(HandleError::transient(
                "profile index is still replaying the profiles topic",
            ));
        }
        let policy: PolicyPublished = record.decode()?;
        if policy.policy_id.is_empty() || (policy.tags.is_empty() && policy.audience.is_empty()) {
            return Err(HandleError::permanent(
                "policy without id, or without tags and audience",
            ));
        }
        // The publisher validated the rule; one that does not parse here was written by
        // something else (or a newer rule language): not retryable.
        let target = target_of(&policy).map_err(|e| {
            HandleError::permanent(format!("policy {} audience: {e}", policy.policy_id))
        })?;
        let resolution = resolve(&self.index, target)
            .await
            .map_err(HandleError::transient)?;
        tracing::info!(
            policy_id = policy.policy_id,
            deliveries = resolution.recipients.len(),
            audience_matches = resolution.audience_matches,
            subscription_matches = resolution.subscription_matches,
            "policy matched"
        );
        // Every request is acknowledged before the policy event counts as handled; on a
        // retry the same requests go out again, with the same ids, and the notifier dedups.
        // Bounded batches keep a city-wide audience from filling the producer queue at once.
        for batch in resolution.recipients.chunks(SEND_BATCH) {
            let sends = batch.iter().map(|r| {
                let event = DeliveryRequested {
                    policy_id: policy.policy_id.clone(),
                    recipient_id: r.subject_id.clone(),
                    channel: r.channel as i32,
                    address: r.address.clone(),
                    recipient_name: r.display_name.clone(),
                    title: policy.title.clone(),
                    body: policy.body.clone(),
                    department: policy.department.clone(),
                    service_url: policy.service_url.clone(),
                    reason: r.reason.clone(),
                    frequency: r.frequency as i32,
                };
                let id = format!(
                    "{}|{}|{}",
                    policy.policy_id,
                    r.subject_id,
                    r.channel.as_str_name()
                );
                async move {
                    self.producer
                        .emit_with_id(&event.recipient_id, &id, &event)
                        .await
                }
            });
            for result in futures::future::join_all(sends).await {
                result.map_err(HandleError::transient)?;
            }
        }
        Ok(())
    }
}

/// Resolves `target` on a blocking thread: at a million profiles it takes up to a few
/// hundred milliseconds, which must not stall an async worker.
async fn resolve(
    replica: &Arc<RwLock<Replica>>,
    target: Target,
) -> Result<Resolution, tokio::task::JoinError> {
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || {
        replica
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .directory
            .resolve(&target)
    })
    .await
}

/// Delivery requests in flight at once per policy.
const SEND_BATCH: usize = 1000;

/// What matching needs of a published policy.
fn target_of(policy: &PolicyPublished) -> Result<Target, zhida_audience::RuleError> {
    Ok(Target {
        tags: policy.tags.clone(),
        audience: if policy.audience.trim().is_empty() {
            None
        } else {
            Some(Rule::parse(&policy.audience)?)
        },
        document: document::policy(policy),
    })
}

/// A draft from PreviewAudience or ExplainMatch, checked field by field (`policy.…`).
fn draft_target(draft: Option<PolicyDraft>) -> Result<Target, Status> {
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
        if !zhida_publisher::is_tag(tag) {
            bad.add(
                format!("policy.tags[{i}]"),
                format!("{tag:?} is not in the tag catalogue"),
            );
        }
    }
    let audience = if draft.audience.trim().is_empty() {
        None
    } else {
        match Rule::parse(&draft.audience) {
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

struct Profiles {
    index: Arc<RwLock<Replica>>,
    producer: Producer,
    /// Serialises this replica's writes, so a Subscribe's read-modify-write of a profile
    /// cannot interleave with another write here. (Replicas behind one load balancer can
    /// still race; see the README's known limits.)
    writes: tokio::sync::Mutex<()>,
    /// True once the `profiles` replay caught up: before, reads would miss profiles and a
    /// Subscribe's read-modify-write would overwrite them.
    caught_up: watch::Receiver<bool>,
}

fn subject_id(field: &str, id: &str) -> Result<(), Status> {
    if profile::is_subject_id(id) {
        return Ok(());
    }
    let mut bad = FieldViolations::new();
    bad.add(field, "required: 1–64 of A-Z a-z 0-9 _ . : -");
    Err(bad.into())
}

/// Today in the district (UTC+8), `YYYY-MM-DD`: the date profiles are checked against.
pub fn today() -> String {
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    chrono::Utc::now()
        .with_timezone(&china)
        .format("%Y-%m-%d")
        .to_string()
}

/// How long an RPC waits for the replay before answering UNAVAILABLE.
const LOADING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Profiles {
    /// Waits (briefly) until the directory holds every profile of the topic.
    async fn loaded(&self) -> Result<(), Status> {
        let mut caught_up = self.caught_up.clone();
        match tokio::time::timeout(LOADING_WAIT, caught_up.wait_for(|ready| *ready)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Status::unavailable(
                "the profile directory is still loading from the profiles topic; retry",
            )),
        }
    }

    fn replica(&self) -> std::sync::RwLockReadGuard<'_, Replica> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn profile(&self, id: &str) -> Result<Profile, Status> {
        self.replica()
            .directory
            .get(id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no profile {id}")))
    }

    /// Appends `profile` to the `profiles` topic, then applies it here (read-your-writes;
    /// the replay skips what came before it, see [`Replica`]).
    async fn write(&self, profile: Profile) -> Result<(), Status> {
        let event = ProfileUpserted {
            profile: Some(profile.clone()),
        };
        let delivered = self
            .producer
            .emit(&profile.subject_id, &event)
            .await
            .map_err(|_| Status::unavailable("the profiles log is unavailable; retry"))?;
        let mut replica = self.index.write().unwrap_or_else(|e| e.into_inner());
        replica.wrote(&profile.subject_id, delivered.offset);
        replica.directory.upsert(profile);
        Ok(())
    }
}

#[tonic::async_trait]
impl ProfileService for Profiles {
    #[tracing::instrument(skip_all, fields(rpc.system = "grpc", rpc.method = "UpsertProfile"))]
    async fn upsert_profile(
        &self,
        request: Request<UpsertProfileRequest>,
    ) -> Result<Response<UpsertProfileResponse>, Status> {
        self.loaded().await?;
        let request = request.into_inner();
        profile::validate(request.profile.as_ref(), &today())?;
        let Some(mut profile) = request.profile else {
            return Err(Status::invalid_argument("profile: required"));
        };
        profile::assign_subscription_ids(&mut profile)?;
        let _write = self.writes.lock().await;
        self.write(profile).await?;
        Ok(Response::new(UpsertProfileResponse {}))
    }

    async fn get_profile(
        &self,
        request: Request<GetProfileRequest>,
    ) -> Result<Response<GetProfileResponse>, Status> {
        self.loaded().await?;
        let request = request.into_inner();
        subject_id("subject_id", &request.subject_id)?;
        let profile = self.profile(&request.subject_id)?;
        Ok(Response::new(GetProfileResponse {
            profile: Some(profile),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc.system = "grpc", rpc.method = "DeleteProfile"))]
    async fn delete_profile(
        &self,
        request: Request<DeleteProfileRequest>,
    ) -> Result<Response<DeleteProfileResponse>, Status> {
        self.loaded().await?;
        let request = request.into_inner();
        let id = request.subject_id.as_str();
        subject_id("subject_id", id)?;
        let _write = self.writes.lock().await;
        let delivered = self
            .producer
            .tombstone(Topic::Profiles, id)
            .await
            .map_err(|_| Status::unavailable("the profiles log is unavailable; retry"))?;
        let mut replica = self.index.write().unwrap_or_else(|e| e.into_inner());
        replica.wrote(id, delivered.offset);
        replica.directory.remove(id);
        Ok(Response::new(DeleteProfileResponse {}))
    }

    async fn list_subscriptions(
        &self,
        request: Request<ListSubscriptionsRequest>,
    ) -> Result<Response<ListSubscriptionsResponse>, Status> {
        self.loaded().await?;
        let request = request.into_inner();
        subject_id("subject_id", &request.subject_id)?;
        let profile = self.profile(&request.subject_id)?;
        Ok(Response::new(ListSubscriptionsResponse {
            subscriptions: profile.subscriptions,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc.system = "grpc", rpc.method = "Subscribe"))]
    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<SubscribeResponse>, Status> {
        self.loaded().await?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        if !profile::is_subject_id(&request.subject_id) {
            bad.add("subject_id", "required: 1–64 of A-Z a-z 0-9 _ . : -");
        }
        let Some(mut subscription) = request.subscription else {
            bad.add("subscription", "required");
            return Err(bad.into());
        };
        profile::validate_subscription(&mut bad, "subscription", &subscription);
        bad.into_result()?;
        if subscription.id.is_empty() {
            subscription.id = profile::subscription_id(&subscription);
        }
        let _write = self.writes.lock().await;
        let mut profile = self.profile(&request.subject_id)?;
        let full = profile.subscriptions.len() >= profile::MAX_SUBSCRIPTIONS;
        match profile
            .subscriptions
            .iter_mut()
            .find(|s| s.id == subscription.id)
        {
            Some(existing) => *existing = subscription.clone(),
            None if full => {
                return Err(Status::failed_precondition(format!(
                    "the profile already has {} subscriptions, the most it may have",
                    profile::MAX_SUBSCRIPTIONS
                )));
            }
            None => profile.subscriptions.push(subscription.clone()),
        }
        self.write(profile).await?;
        Ok(Response::new(SubscribeResponse {
            subscription: Some(subscription),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc.system = "grpc", rpc.method = "Unsubscribe"))]
    async fn unsubscribe(
        &self,
        request: Request<UnsubscribeRequest>,
    ) -> Result<Response<UnsubscribeResponse>, Status> {
        self.loaded().await?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        if !profile::is_subject_id(&request.subject_id) {
            bad.add("subject_id", "required: 1–64 of A-Z a-z 0-9 _ . : -");
        }
        if !profile::is_subject_id(&request.subscription_id) {
            bad.add("subscription_id", "required: 1–64 of A-Z a-z 0-9 _ . : -");
        }
        bad.into_result()?;
        let _write = self.writes.lock().await;
        let mut profile = self.profile(&request.subject_id)?;
        let before = profile.subscriptions.len();
        profile
            .subscriptions
            .retain(|s| s.id != request.subscription_id);
        if profile.subscriptions.len() == before {
            return Err(Status::not_found(format!(
                "profile {} has no subscription {}",
                request.subject_id, request.subscription_id
            )));
        }
        self.write(profile).await?;
        Ok(Response::new(UnsubscribeResponse {}))
    }

    async fn preview_audience(
        &self,
        request: Request<PreviewAudienceRequest>,
    ) -> Result<Response<PreviewAudienceResponse>, Status> {
        self.loaded().await?;
        let request = request.into_inner();
        if request.sample_size > 100 {
            let mut bad = FieldViolations::new();
            bad.add("sample_size", "at most 100");
            return Err(bad.into());
        }
        let target = draft_target(request.policy)?;
        let sample_size = if request.sample_size == 0 {
            10
        } else {
            request.sample_size as usize
        };
        let resolution = resolve(&self.index, target)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut distinct: Vec<&str> = resolution
            .recipients
            .iter()
            .map(|r| r.subject_id.as_str())
            .collect();
        distinct.dedup();
        Ok(Response::new(PreviewAudienceResponse {
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
        self.loaded().await?;
        let request = request.into_inner();
        subject_id("subject_id", &request.subject_id)?;
        let target = draft_target(request.policy)?;
        let explanation = self
            .replica()
            .directory
            .explain(&request.subject_id, &target)
            .ok_or_else(|| Status::not_found(format!("no profile {}", request.subject_id)))?;
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
    use zhida_bus::EventMeta;
    use zhida_proto::events::v1::{SubjectKind, Subscription};

    use super::*;

    fn version(subscriptions: &[&str]) -> Profile {
        Profile {
            subject_id: "c-1".into(),
            kind: SubjectKind::Citizen as i32,
            display_name: "王芳".into(),
            street: "五角场街道".into(),
            subscriptions: subscriptions
                .iter()
                .map(|id| Subscription {
                    id: id.to_string(),
                    tags: vec!["housing".into()],
                    ..Subscription::default()
                })
                .collect(),
            ..Profile::default()
        }
    }

    fn record(profile: Option<&Profile>, offset: i64) -> TableRecord {
        TableRecord {
            key: "c-1".into(),
            value: profile.map(|p| {
                prost::Message::encode_to_vec(&ProfileUpserted {
                    profile: Some(p.clone()),
                })
            }),
            meta: EventMeta::default(),
            partition: 0,
            offset,
        }
    }

    fn subscriptions(replica: &RwLock<Replica>) -> Option<Vec<String>> {
        let replica = replica.read().unwrap_or_else(|e| e.into_inner());
        let profile = replica.directory.get("c-1")?;
        Some(profile.subscriptions.iter().map(|s| s.id.clone()).collect())
    }

    #[test]
    fn the_replay_never_rolls_back_this_replicas_own_writes() {
        let replica = RwLock::new(Replica::default());
        let (v1, v2, v3) = (version(&["a"]), version(&["a", "b"]), version(&["c"]));
        // v1 and v2 written here (offsets 3 and 5) and applied at once.
        for (profile, offset) in [(&v1, 3), (&v2, 5)] {
            let mut r = replica.write().unwrap_or_else(|e| e.into_inner());
            r.wrote("c-1", offset);
            r.directory.upsert(profile.clone());
        }
        // The replay is behind: v1 must not come back over v2.
        apply(&replica, record(Some(&v1), 3));
        assert_eq!(subscriptions(&replica), Some(vec!["a".into(), "b".into()]));
        apply(&replica, record(Some(&v2), 5));
        // Another replica's later write is applied as usual.
        apply(&replica, record(Some(&v3), 7));
        assert_eq!(subscriptions(&replica), Some(vec!["c".into()]));
        // A local delete is not undone by replaying the upsert before it.
        {
            let mut r = replica.write().unwrap_or_else(|e| e.into_inner());
            r.wrote("c-1", 9);
            r.directory.remove("c-1");
        }
        apply(&replica, record(Some(&v3), 7));
        assert_eq!(subscriptions(&replica), None);
        apply(&replica, record(None, 9));
        assert_eq!(subscriptions(&replica), None);
    }
}
