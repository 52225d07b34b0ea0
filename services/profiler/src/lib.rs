//! The profiler: keeps citizen and enterprise profiles with their subscriptions, and turns
//! each published policy into delivery requests for the subscribers of its tags.
//!
//! The compacted `profiles` topic is the record: `UpsertProfile` appends to it, and every
//! replica replays it into its in-memory [`Index`] at start (policies are matched only once
//! the replay caught up, so a restart never silently skips recipients).

mod index;
mod profile;
mod streets;

use std::sync::{Arc, RwLock};

use tokio::{net::TcpListener, sync::watch};
use tonic::{Request, Response, Status};
use zhida_bus::{
    ConsumerSpec, HandleError, Handler, Producer, Record, TableReader, TableRecord, Topic,
};
use zhida_proto::{
    events::v1::{DeliveryRequested, PolicyPublished, ProfileUpserted},
    profile::v1::{
        AudienceSample, DeleteProfileRequest, DeleteProfileResponse, GetProfileRequest,
        GetProfileResponse, PreviewAudienceRequest, PreviewAudienceResponse, UpsertProfileRequest,
        UpsertProfileResponse,
        profile_service_server::{ProfileService, ProfileServiceServer},
    },
};
use zhida_runtime::{Component, Config, FieldViolations, Shutdown};

pub use index::{Index, Recipient};
pub use profile::{is_email, is_mobile};
pub use streets::YANGPU_STREETS;

/// The profiler's gRPC routes, its `profiles` replay, and its `policy.events` consumer.
pub async fn component(config: &Config, shutdown: &Shutdown) -> anyhow::Result<Component> {
    let producer = Producer::new(&config.kafka, "/zhida/profiler")?;
    let index = Arc::new(RwLock::new(Index::default()));
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
            caught_up,
        },
        producer.clone(),
        shutdown.token.clone(),
    );
    Ok(Component::new("profiler")
        .grpc(ProfileServiceServer::new(Profiles { index, producer }))
        .task("profiles-replay", table)
        .task("policy-matcher", matcher))
}

/// Runs the profiler alone on `listener` until `shutdown`.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let component = component(&config, &shutdown).await?;
    zhida_runtime::serve(vec![component], listener, shutdown).await
}

fn apply(index: &RwLock<Index>, record: TableRecord) {
    let mut index = index.write().unwrap_or_else(|e| e.into_inner());
    match record.value {
        None => {
            index.remove(&record.key);
        }
        Some(bytes) => match prost::Message::decode(bytes.as_slice()) {
            Ok(ProfileUpserted {
                profile: Some(profile),
            }) if profile.subject_id == record.key => index.upsert(profile),
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
    index: Arc<RwLock<Index>>,
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
        if policy.policy_id.is_empty() || policy.tags.is_empty() {
            return Err(HandleError::permanent("policy without id or tags"));
        }
        let recipients = self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .recipients(&policy.tags);
        tracing::info!(
            policy_id = policy.policy_id,
            recipients = recipients.len(),
            "policy matched"
        );
        // Every request is acknowledged before the policy event counts as handled; on a
        // retry the same requests go out again, with the same ids, and the notifier dedups.
        let sends = recipients.iter().map(|r| {
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
        Ok(())
    }
}

struct Profiles {
    index: Arc<RwLock<Index>>,
    producer: Producer,
}

fn subject_id(id: &str) -> Result<&str, Status> {
    if profile::is_subject_id(id) {
        return Ok(id);
    }
    let mut bad = FieldViolations::new();
    bad.add("subject_id", "required: 1–64 of A-Z a-z 0-9 _ . : -");
    Err(bad.into())
}

#[tonic::async_trait]
impl ProfileService for Profiles {
    #[tracing::instrument(skip_all, fields(rpc.system = "grpc", rpc.method = "UpsertProfile"))]
    async fn upsert_profile(
        &self,
        request: Request<UpsertProfileRequest>,
    ) -> Result<Response<UpsertProfileResponse>, Status> {
        let request = request.into_inner();
        profile::validate(request.profile.as_ref())?;
        let Some(profile) = request.profile else {
            return Err(Status::invalid_argument("profile: required"));
        };
        let event = ProfileUpserted {
            profile: Some(profile.clone()),
        };
        self.producer
            .emit(&profile.subject_id, &event)
            .await
            .map_err(|_| Status::unavailable("the profiles log is unavailable; retry"))?;
        // The replay applies the same record again shortly; applying now gives this replica
        // read-your-writes.
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .upsert(profile);
        Ok(Response::new(UpsertProfileResponse {}))
    }

    async fn get_profile(
        &self,
        request: Request<GetProfileRequest>,
    ) -> Result<Response<GetProfileResponse>, Status> {
        let request = request.into_inner();
        let id = subject_id(&request.subject_id)?;
        let profile = self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        match profile {
            Some(profile) => Ok(Response::new(GetProfileResponse {
                profile: Some(profile),
            })),
            None => Err(Status::not_found(format!("no profile {id}"))),
        }
    }

    #[tracing::instrument(skip_all, fields(rpc.system = "grpc", rpc.method = "DeleteProfile"))]
    async fn delete_profile(
        &self,
        request: Request<DeleteProfileRequest>,
    ) -> Result<Response<DeleteProfileResponse>, Status> {
        let request = request.into_inner();
        let id = subject_id(&request.subject_id)?;
        self.producer
            .tombstone(Topic::Profiles, id)
            .await
            .map_err(|_| Status::unavailable("the profiles log is unavailable; retry"))?;
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(Response::new(DeleteProfileResponse {}))
    }

    async fn preview_audience(
        &self,
        request: Request<PreviewAudienceRequest>,
    ) -> Result<Response<PreviewAudienceResponse>, Status> {
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        if request.tags.is_empty() {
            bad.add("tags", "at least one tag required");
        }
        for (i, tag) in request.tags.iter().enumerate() {
            if !zhida_publisher::is_tag(tag) {
                bad.add(format!("tags[{i}]"), format!("{tag:?} is not a tag"));
            }
        }
        if request.sample_size > 100 {
            bad.add("sample_size", "at most 100");
        }
        bad.into_result()?;
        let sample_size = if request.sample_size == 0 {
            10
        } else {
            request.sample_size as usize
        };
        let recipients = self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .recipients(&request.tags);
        let mut distinct: Vec<&str> = recipients.iter().map(|r| r.subject_id.as_str()).collect();
        distinct.dedup();
        Ok(Response::new(PreviewAudienceResponse {
            deliveries: recipients.len() as u64,
            recipients: distinct.len() as u64,
            sample: recipients
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
}
