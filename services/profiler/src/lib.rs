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
    time::{Duration, Instant},
};

use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
};
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
use zhida_store::{Lease, LogPosition, Stores, WriteLeases};

pub use directory::{Directory, Explanation, Recipient, Resolution, Target};
pub use profile::{
    GROUPS, HUKOU, QUALIFICATIONS, SIZES, credit_code, credit_code_check, is_email, is_mobile,
    subscription_id, validate,
};
pub use streets::YANGPU_STREETS;

/// The profiler's gRPC routes, its `profiles` replay, and its `policy.events` consumer.
pub async fn component(config: &Config, shutdown: &Shutdown) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/profiler")?;
    let leases = Stores::open(&config.store)
        .await?
        .write_leases("profile-writes");
    let index = Arc::new(RwLock::new(Replica::default()));
    let replayed = Arc::new(Notify::new());
    let (caught_up_tx, caught_up) = watch::channel(false);

    let table = {
        let (index, replayed) = (index.clone(), replayed.clone());
        let reader = TableReader::new(&config.kafka, Topic::Profiles);
        reader.run(
            move |record| {
                apply(&index, record);
                replayed.notify_waiters();
            },
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
            replayed,
            producer,
            leases,
            lease_ttl: config.kafka.produce_timeout + LEASE_SLACK,
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
    /// partition → offset of the last record the replay has passed.
    replayed: HashMap<i32, i64>,
}

impl Replica {
    fn wrote(&mut self, key: &str, offset: i64) {
        self.ahead.insert(key.to_string(), offset);
    }

    /// Whether this replica's copy of `key` includes the write that landed `at`: the replay
    /// passed it, or this replica wrote it (or a later version) itself.
    fn has_seen(&self, key: &str, at: LogPosition) -> bool {
        self.replayed
            .get(&at.partition)
            .is_some_and(|&offset| offset >= at.offset)
            || self
                .ahead
                .get(key)
                .is_some_and(|&offset| offset >= at.offset)
    }
}

fn apply(replica: &RwLock<Replica>, record: TableRecord) {
    let mut replica = replica.write().unwrap_or_else(|e| e.into_inner());
    replica.replayed.insert(record.partition, record.offset);
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
    /// Woken whenever the replay applied a record.
    replayed: Arc<Notify>,
    producer: Producer,
    /// One writer per subject across every replica; see [`Profiles::change`].
    leases: Arc<dyn WriteLeases>,
    /// `kafka.produce_timeout` + [`LEASE_SLACK`].
    lease_ttl: Duration,
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
const LOADING_WAIT: Duration = Duration::from_secs(5);

/// How long a write waits for its subject's lease (held by a concurrent write on this or
/// another replica) before answering ABORTED.
const LEASE_WAIT: Duration = Duration::from_secs(10);

/// A write lease lasts the producer's timeout plus this. A writer appends only while at
/// least the producer's timeout plus half of this is left, so an append that the broker
/// acknowledges lands while the lease is held, with time left to release it.
const LEASE_SLACK: Duration = Duration::from_secs(10);

/// A change a write makes to a subject's profile.
enum Change {
    Put(Box<Profile>),
    Delete,
}

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

    /// Read-modify-write of one subject's profile, safe with any number of replicas:
    ///
    /// 1. take the subject's write lease (one writer per subject across replicas);
    /// 2. wait until this replica has replayed the previous writer's append, wherever it
    ///    was made, so `decide` sees the latest profile;
    /// 3. append what `decide` returns to `profiles`, apply it here (read-your-writes; the
    ///    replay skips what came before it, see [`Replica`]);
    /// 4. release the lease, recording where the append landed for the next writer.
    ///
    /// A writer that dies holding the lease blocks the subject's writes until it expires.
    async fn change<T>(
        &self,
        subject: &str,
        decide: impl FnOnce(Option<&Profile>) -> Result<(Change, T), Status>,
    ) -> Result<T, Status> {
        let lease = self.lease(subject).await?;
        let taken = Instant::now();
        let result = self.change_leased(subject, &lease, taken, decide).await;
        let written = result.as_ref().ok().map(|(at, _)| *at);
        match self.leases.release(subject, &lease.token, written).await {
            Ok(true) => {}
            Ok(false) if written.is_some() => {
                tracing::warn!(subject, "write lease expired before the write was released");
                return Err(Status::aborted(
                    "the profile's write lease expired before the write was confirmed; retry",
                ));
            }
            Ok(false) => {}
            Err(error) if written.is_some() => {
                tracing::warn!(%error, subject, "write lease not released after a write");
                return Err(Status::unavailable(
                    "the write could not be confirmed to other replicas; retry",
                ));
            }
            Err(error) => tracing::warn!(%error, subject, "write lease not released"),
        }
        result.map(|(_, value)| value)
    }

    async fn change_leased<T>(
        &self,
        subject: &str,
        lease: &Lease,
        taken: Instant,
        decide: impl FnOnce(Option<&Profile>) -> Result<(Change, T), Status>,
    ) -> Result<(LogPosition, T), Status> {
        if let Some(at) = lease.last_write {
            self.replayed_to(subject, at).await?;
        }
        let (change, value) = decide(self.replica().directory.get(subject))?;
        if taken.elapsed() > LEASE_SLACK / 2 {
            return Err(Status::aborted(
                "the profile's write lease is about to expire; retry",
            ));
        }
        let unavailable = |error: zhida_bus::ProduceError| {
            tracing::warn!(%error, subject, "profile write not acknowledged");
            Status::unavailable("the profiles log is unavailable; retry")
        };
        let delivered = match &change {
            Change::Put(profile) => {
                let event = ProfileUpserted {
                    profile: Some(Profile::clone(profile)),
                };
                self.producer.emit(subject, &event).await
            }
            Change::Delete => self.producer.tombstone(Topic::Profiles, subject).await,
        }
        .map_err(unavailable)?;
        let mut replica = self.index.write().unwrap_or_else(|e| e.into_inner());
        replica.wrote(subject, delivered.offset);
        match change {
            Change::Put(profile) => replica.directory.upsert(*profile),
            Change::Delete => {
                replica.directory.remove(subject);
            }
        }
        let at = LogPosition {
            partition: delivered.partition,
            offset: delivered.offset,
        };
        Ok((at, value))
    }

    /// Takes `subject`'s write lease, waiting for a concurrent writer up to [`LEASE_WAIT`].
    async fn lease(&self, subject: &str) -> Result<Lease, Status> {
        let deadline = Instant::now() + LEASE_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.leases.acquire(subject, self.lease_ttl).await {
                Ok(Some(lease)) => return Ok(lease),
                Ok(None) if Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Ok(None) => {
                    return Err(Status::aborted(
                        "another write of this profile is in progress; retry",
                    ));
                }
                Err(error) => {
                    tracing::warn!(%error, subject, "write lease store unavailable");
                    return Err(Status::unavailable(
                        "profile writes are unavailable right now; retry",
                    ));
                }
            }
        }
    }

    /// Waits until this replica has seen the write that landed `at`.
    async fn replayed_to(&self, subject: &str, at: LogPosition) -> Result<(), Status> {
        let deadline = tokio::time::Instant::now() + LOADING_WAIT;
        loop {
            // Registered before the check, so a record applied in between still wakes us.
            let replayed = self.replayed.notified();
            tokio::pin!(replayed);
            replayed.as_mut().enable();
            if self.replica().has_seen(subject, at) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, replayed).await.is_err() {
                tracing::warn!(subject, %at, "replay has not reached the last write");
                return Err(Status::unavailable(
                    "this replica has not yet replayed the profile's last write; retry",
                ));
            }
        }
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
        let subject = profile.subject_id.clone();
        self.change(&subject, |_| Ok((Change::Put(Box::new(profile)), ())))
            .await?;
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
        self.change(id, |_| Ok((Change::Delete, ()))).await?;
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
        let subject = request.subject_id.as_str();
        self.change(subject, |current| {
            let mut profile = current
                .cloned()
                .ok_or_else(|| Status::not_found(format!("no profile {subject}")))?;
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
            Ok((Change::Put(Box::new(profile)), ()))
        })
        .await?;
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
        let subject = request.subject_id.as_str();
        self.change(subject, |current| {
            let mut profile = current
                .cloned()
                .ok_or_else(|| Status::not_found(format!("no profile {subject}")))?;
            let before = profile.subscriptions.len();
            profile
                .subscriptions
                .retain(|s| s.id != request.subscription_id);
            if profile.subscriptions.len() == before {
                return Err(Status::not_found(format!(
                    "profile {subject} has no subscription {}",
                    request.subscription_id
                )));
            }
            Ok((Change::Put(Box::new(profile)), ()))
        })
        .await?;
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
