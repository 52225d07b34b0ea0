//! `RelayService`. Operators manage subscribers; a subscriber reads its own feed (pull or
//! stream), forwards and rotates its secret, its identity taken from its token; an
//! operator (`relay:admin`) names the subscriber it acts for ([`acting_for`]).

use std::{
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::Stream;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use zhida_bus::Producer;
use zhida_proto::{
    events::v1::{PolicyPublished, PolicyStatus, RelayForward, RelayForwardRequested},
    relay::v1::{
        FeedEvent, FeedItem, ForwardRequest, ForwardResponse, GetRelayReachRequest,
        GetRelayReachResponse, GetSubscriberRequest, ListSubscribersRequest,
        ListSubscribersResponse, PullFeedRequest, PullFeedResponse, PutSubscriberRequest,
        PutSubscriberResponse, RemoveSubscriberRequest, RemoveSubscriberResponse,
        RotateWebhookSecretRequest, RotateWebhookSecretResponse, StreamFeedRequest, Subscriber,
        relay_service_server::RelayService,
    },
};
use zhida_runtime::{
    FieldViolations,
    auth::{Kind, Principal, RELAY_ADMIN},
};
use zhida_store::{Feed, FeedEntry, FeedReadError, ReachMark};
use zhida_webhook::{Guard, Secret};

use crate::{
    delivery::{Delivery, Prepared},
    error::{Error, Result},
    registry::Registry,
    subscriber::{self, Entry, Stored},
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// Entries a stream reads at a time.
const STREAM_PAGE: usize = 100;
/// Entries a stream may have on their way to a slow client.
const STREAM_BUFFER: usize = 32;
/// A stream looks for new entries this often even without a signal.
const STREAM_POLL: Duration = Duration::from_secs(5);
const MAX_NOTE_CHARS: usize = 500;

#[derive(Clone)]
pub(crate) struct Relay {
    pub registry: Arc<Registry>,
    pub delivery: Arc<Delivery>,
    /// Each relayed policy's current status and content (its state; see `feed_writer`).
    pub states: Arc<dyn Feed>,
    pub producer: Producer,
    pub guard: Guard,
    pub rotation_grace: Duration,
    pub shutdown: CancellationToken,
}

/// The subscriber a call acts for: a subscriber token's own id (naming another is refused),
/// or for `relay:admin` the one named (required).
fn acting_for<T>(request: &Request<T>, named: &str, field: &str) -> Result<String, Status> {
    let principal = Principal::of(request);
    match principal {
        Some(p) if p.kind == Kind::Subscriber && !p.has(RELAY_ADMIN) => {
            if named.is_empty() || named == p.id {
                Ok(p.id.clone())
            } else {
                Err(Status::permission_denied(format!(
                    "{} may not act for subscriber {named}",
                    p.key()
                )))
            }
        }
        Some(p) if !p.has(RELAY_ADMIN) => Err(Status::permission_denied(format!(
            "{} is not a relay subscriber; an operator needs scope {RELAY_ADMIN}",
            p.key()
        ))),
        _ if named.is_empty() => {
            let mut bad = FieldViolations::new();
            bad.add(field, "required: the subscriber to act for");
            Err(Error::Invalid(bad).into())
        }
        _ => Ok(named.to_string()),
    }
}

/// Whether `url`'s host resolves to addresses the guard allows (an IP literal was checked
/// with the URL).
async fn resolves_allowed(guard: &Guard, url: &str) -> Result<(), String> {
    let endpoint = guard.check_url(url).map_err(|e| e.to_string())?;
    if endpoint.ip().is_none() {
        guard
            .resolve(&endpoint.host(), endpoint.port())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

impl Relay {
    async fn entry(&self, id: &str) -> Result<Entry> {
        self.registry
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("subscriber {id}")))
    }

    /// `subscriber` as shown: tier and the webhook's queue.
    async fn shown(&self, entry: &Entry) -> Result<Subscriber> {
        let mut shown = entry.subscriber().clone();
        shown.tier = entry.tier;
        if let Some(webhook) = &mut shown.webhook {
            let stats = self.delivery.outbox.stats(&shown.id).await?;
            webhook.pending = stats.pending;
            webhook.overflowed = stats.overflowed;
        }
        Ok(shown)
    }

    /// Each of `entries` as it reads now (the policy's current status overlaid).
    async fn items(&self, entries: Vec<FeedEntry>) -> Result<Vec<FeedItem>> {
        let ids: Vec<String> = entries
            .iter()
            .map(|e| policy_of(&e.id).to_string())
            .collect();
        let states = self.states.states(&ids).await?;
        let mut items = Vec::with_capacity(entries.len());
        for (entry, state) in entries.into_iter().zip(states) {
            let mut item = decode(&entry.id, &entry.payload)?;
            if let Some(state) = state {
                let state = decode(&entry.id, &state)?;
                // The entry keeps its own content and version; the status is today's.
                if state.status != PolicyStatus::Unspecified as i32 {
                    item.status = state.status;
                }
                item.withdrawal_reason = state.withdrawal_reason;
            }
            if item.event == FeedEvent::Unspecified as i32 {
                item.event = FeedEvent::Relayed as i32;
            }
            item.cursor = entry.cursor;
            items.push(item);
        }
        Ok(items)
    }

    async fn read(
        &self,
        feed: &Arc<dyn Feed>,
        after: Option<&str>,
        limit: usize,
        field: &str,
    ) -> Result<Vec<FeedEntry>> {
        feed.read(after, limit).await.map_err(|e| match e {
            FeedReadError::InvalidCursor(_) => {
                let mut bad = FieldViolations::new();
                bad.add(field, "not a cursor this feed returned");
                Error::Invalid(bad)
            }
            FeedReadError::Store(store) => Error::Store(store),
        })
    }

    async fn mark(&self, subscriber: &str, items: &[FeedItem], mark: ReachMark) -> Result<()> {
        let policies: Vec<String> = items
            .iter()
            .filter(|i| !i.policy_id.is_empty())
            .map(|i| i.policy_id.clone())
            .collect();
        if !policies.is_empty() {
            self.delivery
                .reach
                .mark(subscriber, &policies, mark)
                .await?;
        }
        Ok(())
    }
}

/// The policy an entry id is about (`<policy>`, `<policy>#…`).
fn policy_of(entry_id: &str) -> &str {
    entry_id.split_once('#').map_or(entry_id, |(p, _)| p)
}

fn decode(id: &str, payload: &[u8]) -> Result<FeedItem> {
    FeedItem::decode(payload).map_err(|source| Error::Corrupt {
        id: id.to_string(),
        source,
    })
}

/// A forward's checked request.
#[derive(Debug)]
struct Forward {
    policy_id: String,
    member_ids: Vec<String>,
    all_members: bool,
    child_ids: Vec<String>,
    note: String,
    request_id: String,
}

fn check_forward(
    request: ForwardRequest,
    from: &Entry,
    children: &[&Entry],
) -> Result<Forward, FieldViolations> {
    let mut bad = FieldViolations::new();
    if request.policy_id.is_empty() || request.policy_id.len() > 128 {
        bad.add("policy_id", "required, at most 128 characters");
    }
    if request.request_id.is_empty() || request.request_id.chars().count() > 128 {
        bad.add("request_id", "required, 1–128 characters");
    }
    let note = request.note.trim().to_string();
    if note.chars().count() > MAX_NOTE_CHARS || note.chars().any(|c| c.is_control() && c != '\n') {
        bad.add(
            "note",
            format!("at most {MAX_NOTE_CHARS} characters, no control characters but line breaks"),
        );
    }
    if request.all_members && !request.member_ids.is_empty() {
        bad.add("member_ids", "give members or all_members, not both");
    }
    if !request.all_members && request.member_ids.is_empty() && request.child_ids.is_empty() {
        bad.add("member_ids", "forward to members, all_members or child_ids");
    }
    let sub = from.subscriber();
    if request.member_ids.len() > subscriber::MAX_MEMBERS {
        bad.add("member_ids", format!("at most {}", subscriber::MAX_MEMBERS));
    }
    for (i, member) in request.member_ids.iter().enumerate() {
        if !subscriber::valid_member(member) {
            bad.add(format!("member_ids[{i}]"), "not an enterprise id");
        } else if !sub.members_from_profiles && sub.members.binary_search(member).is_err() {
            bad.add(
                format!("member_ids[{i}]"),
                format!("not a member of {}", sub.id),
            );
        }
    }
    for (i, child) in request.child_ids.iter().enumerate() {
        if !children.iter().any(|c| c.stored.id() == child) {
            bad.add(
                format!("child_ids[{i}]"),
                format!("not a child tier of {}", sub.id),
            );
        }
    }
    let mut member_ids = request.member_ids;
    member_ids.sort();
    member_ids.dedup();
    let mut child_ids = request.child_ids;
    child_ids.sort();
    child_ids.dedup();
    bad.into_result().map(|()| Forward {
        policy_id: request.policy_id,
        member_ids,
        all_members: request.all_members,
        child_ids,
        note,
        request_id: request.request_id,
    })
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<FeedItem, Status>> + Send>>;

#[tonic::async_trait]
impl RelayService for Relay {
    async fn put_subscriber(
        &self,
        request: Request<PutSubscriberRequest>,
    ) -> Result<Response<PutSubscriberResponse>, Status> {
        let put = request.into_inner().subscriber;
        let snapshot = self.registry.snapshot().await.map_err(Error::from)?;
        let mut subscriber =
            subscriber::check(put, &snapshot, self.registry.industries(), &self.guard)
                .map_err(Error::from)?;
        // The name must resolve to an allowed address now (and is checked again at each send).
        if let Some(webhook) = &subscriber.webhook
            && let Err(error) = resolves_allowed(&self.guard, &webhook.url).await
        {
            let mut bad = FieldViolations::new();
            bad.add("subscriber.webhook.url", error.to_string());
            return Err(Error::Invalid(bad).into());
        }
        subscriber.updated_at = Some(zhida_proto::timestamp_now());
        let previous = snapshot.get(&subscriber.id).map(|e| e.stored.clone());
        // Secrets carry over from the previous record; the rest is what was put.
        let mut stored = Stored {
            subscriber: Some(subscriber.clone()),
            ..previous.clone().unwrap_or_default()
        };
        let mut new_secret = String::new();
        if subscriber.webhook.is_some() && stored.secrets.is_empty() {
            new_secret = Secret::generate().expose();
            stored.secrets = vec![new_secret.clone()];
        }
        if subscriber.webhook.is_none() {
            stored.secrets.clear();
        }
        self.registry.put(&stored).await.map_err(Error::from)?;
        let outbox = &self.delivery.outbox;
        if subscriber.webhook.is_some() {
            // Enabled (again): whatever waited goes out.
            outbox
                .resume(&subscriber.id, SystemTime::now())
                .await
                .map_err(Error::from)?;
        } else if previous.is_some_and(|p| p.webhook().is_some()) {
            outbox.clear(&subscriber.id).await.map_err(Error::from)?;
        }
        let entry = self.entry(&subscriber.id).await?;
        tracing::info!(
            subscriber = subscriber.id,
            tier = entry.tier,
            "subscriber put"
        );
        Ok(Response::new(PutSubscriberResponse {
            subscriber: Some(self.shown(&entry).await?),
            webhook_secret: new_secret,
        }))
    }

    async fn get_subscriber(
        &self,
        request: Request<GetSubscriberRequest>,
    ) -> Result<Response<Subscriber>, Status> {
        let id = acting_for(&request, &request.get_ref().subscriber_id, "subscriber_id")?;
        let entry = self.entry(&id).await?;
        Ok(Response::new(self.shown(&entry).await?))
    }

    async fn list_subscribers(
        &self,
        request: Request<ListSubscribersRequest>,
    ) -> Result<Response<ListSubscribersResponse>, Status> {
        let parent = request.into_inner().parent_id;
        let snapshot = self.registry.snapshot().await.map_err(Error::from)?;
        let mut subscribers = Vec::new();
        for entry in snapshot.values() {
            if parent.is_empty() || entry.subscriber().parent_id == parent {
                subscribers.push(self.shown(entry).await?);
            }
        }
        Ok(Response::new(ListSubscribersResponse { subscribers }))
    }

    async fn remove_subscriber(
        &self,
        request: Request<RemoveSubscriberRequest>,
    ) -> Result<Response<RemoveSubscriberResponse>, Status> {
        let id = request.into_inner().subscriber_id;
        let snapshot = self.registry.snapshot().await.map_err(Error::from)?;
        if !snapshot.contains_key(&id) {
            return Err(Error::NotFound(format!("subscriber {id}")).into());
        }
        if let Some(child) = snapshot.values().find(|e| e.subscriber().parent_id == id) {
            return Err(Status::failed_precondition(format!(
                "subscriber {id} has child tier {}: remove it first",
                child.stored.id()
            )));
        }
        // Unregistered first, so the dispatcher sends nothing more even if it holds a claim.
        self.registry.remove(&id).await.map_err(Error::from)?;
        let pending_dropped = self.delivery.outbox.clear(&id).await.map_err(Error::from)?;
        self.delivery.feeds.remove(&id).await.map_err(Error::from)?;
        self.delivery
            .reach
            .remove_subscriber(&id)
            .await
            .map_err(Error::from)?;
        tracing::info!(subscriber = id, pending_dropped, "subscriber removed");
        Ok(Response::new(RemoveSubscriberResponse { pending_dropped }))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<RotateWebhookSecretRequest>,
    ) -> Result<Response<RotateWebhookSecretResponse>, Status> {
        let id = acting_for(&request, &request.get_ref().subscriber_id, "subscriber_id")?;
        let mut stored = self.entry(&id).await?.stored;
        if stored.webhook().is_none() {
            return Err(Status::failed_precondition(format!(
                "subscriber {id} has no webhook"
            )));
        }
        let secret = Secret::generate().expose();
        let previous = stored.secrets.first().cloned();
        stored.secrets = std::iter::once(secret.clone()).chain(previous).collect();
        let grace = i64::try_from(self.rotation_grace.as_millis()).unwrap_or(i64::MAX);
        stored.previous_valid_until_ms = now_ms().saturating_add(grace);
        self.registry.put(&stored).await.map_err(Error::from)?;
        tracing::info!(subscriber = id, "webhook secret rotated");
        Ok(Response::new(RotateWebhookSecretResponse {
            webhook_secret: secret,
            previous_valid_until: Some(prost_types::Timestamp::from(
                SystemTime::now() + self.rotation_grace,
            )),
        }))
    }

    async fn pull_feed(
        &self,
        request: Request<PullFeedRequest>,
    ) -> Result<Response<PullFeedResponse>, Status> {
        let id = acting_for(&request, &request.get_ref().subscriber_id, "subscriber_id")?;
        let request = request.into_inner();
        let mut bad = FieldViolations::new();
        let limit = bad.page_size("limit", request.limit, DEFAULT_LIMIT, MAX_LIMIT);
        bad.into_result().map_err(Error::from)?;
        self.entry(&id).await?;
        let after = Some(request.after_cursor.as_str()).filter(|c| !c.is_empty());
        let feed = self.delivery.feeds.of(&id);
        let entries = self
            .read(&feed, after, limit as usize, "after_cursor")
            .await?;
        let next_cursor = entries
            .last()
            .map_or(request.after_cursor.clone(), |e| e.cursor.clone());
        let items = self.items(entries).await?;
        self.mark(&id, &items, ReachMark::Pulled).await?;
        Ok(Response::new(PullFeedResponse { items, next_cursor }))
    }

    type StreamFeedStream = FeedStream;

    async fn stream_feed(
        &self,
        request: Request<StreamFeedRequest>,
    ) -> Result<Response<Self::StreamFeedStream>, Status> {
        let id = acting_for(&request, &request.get_ref().subscriber_id, "subscriber_id")?;
        let request = request.into_inner();
        self.entry(&id).await?;
        let feed = self.delivery.feeds.of(&id);
        let mut cursor = Some(request.after_cursor).filter(|c| !c.is_empty());
        // Signals from now on, before the first read, so nothing appended in between is
        // missed; the first read also refuses a bad cursor before the stream starts.
        let mut signals = self.delivery.signals.subscribe();
        let mut entries = self
            .read(&feed, cursor.as_deref(), STREAM_PAGE, "after_cursor")
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let relay = self.clone();
        tokio::spawn(async move {
            loop {
                let full = entries.len() == STREAM_PAGE;
                if let Some(last) = entries.last() {
                    cursor = Some(last.cursor.clone());
                }
                let items = match relay.items(std::mem::take(&mut entries)).await {
                    Ok(items) => items,
                    Err(error) => {
                        let _ = tx.send(Err(error.into())).await;
                        return;
                    }
                };
                if let Err(error) = relay.mark(&id, &items, ReachMark::Streamed).await {
                    tracing::debug!(%error, "stream reach not recorded");
                }
                for item in items {
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
                if !full {
                    // Wait for this feed's signal, a poll, or the end.
                    let deadline = tokio::time::sleep(STREAM_POLL);
                    tokio::pin!(deadline);
                    loop {
                        tokio::select! {
                            () = relay.shutdown.cancelled() => return,
                            () = tx.closed() => return,
                            () = &mut deadline => break,
                            signal = signals.recv() => match signal {
                                Ok(name) if name == id => break,
                                Ok(_) => {}
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                    (&mut deadline).await;
                                    break;
                                }
                            },
                        }
                    }
                }
                entries = match relay
                    .read(&feed, cursor.as_deref(), STREAM_PAGE, "after_cursor")
                    .await
                {
                    Ok(entries) => entries,
                    Err(Error::Invalid(_)) => {
                        // The feed was deleted (its subscriber removed) under the stream.
                        let _ = tx
                            .send(Err(Status::not_found(format!("subscriber {id}"))))
                            .await;
                        return;
                    }
                    Err(error) => {
                        let _ = tx.send(Err(error.into())).await;
                        return;
                    }
                };
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardResponse>, Status> {
        let id = acting_for(&request, &request.get_ref().subscriber_id, "subscriber_id")?;
        let from = self.entry(&id).await?;
        let snapshot = self.registry.snapshot().await.map_err(Error::from)?;
        let children: Vec<&Entry> = snapshot
            .values()
            .filter(|e| e.subscriber().parent_id == id)
            .collect();
        let forward = check_forward(request.into_inner(), &from, &children).map_err(Error::from)?;
        // Only what its own feed holds, as the policy reads now.
        let holds = self
            .delivery
            .reach
            .reach(&forward.policy_id)
            .await
            .map_err(Error::from)?
            .iter()
            .any(|r| r.subscriber_id == id && r.tier > 0);
        let state = self
            .states
            .states(std::slice::from_ref(&forward.policy_id))
            .await
            .map_err(Error::from)?
            .pop()
            .flatten();
        let (true, Some(state)) = (holds, state) else {
            return Err(Error::NotFound(format!(
                "policy {} in the feed of {id}",
                forward.policy_id
            ))
            .into());
        };
        let policy = decode(&forward.policy_id, &state)?;
        if policy.status != PolicyStatus::Published as i32 {
            return Err(Status::failed_precondition(format!(
                "policy {} is {}: it must not be forwarded",
                forward.policy_id,
                PolicyStatus::try_from(policy.status).map_or("not published", |s| s.as_str_name())
            )));
        }
        let forward_id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!(
                "zhida-relay-forward\n{id}\n{}\n{}",
                forward.policy_id, forward.request_id
            )
            .as_bytes(),
        )
        .to_string();
        let sub = from.subscriber();
        let relay_forward = RelayForward {
            forward_id: forward_id.clone(),
            subscriber_id: id.clone(),
            subscriber_name: sub.display_name.clone(),
            note: forward.note.clone(),
        };
        // Children first: their feeds hold it even if the members' part fails and is retried.
        let forwarded = FeedItem {
            event: FeedEvent::Forwarded as i32,
            forwarded_by: id.clone(),
            forward_note: forward.note.clone(),
            at: Some(zhida_proto::timestamp_now()),
            cursor: String::new(),
            ..policy.clone()
        };
        let entry_id = format!("{}#from:{id}", forward.policy_id);
        let forwarded = Prepared::new(&forwarded);
        for child in &forward.child_ids {
            if let Some(child) = snapshot.get(child) {
                self.delivery
                    .deliver(child, &entry_id, &forwarded)
                    .await
                    .map_err(Error::from)?;
            }
        }
        let members: Vec<String> = if forward.all_members {
            sub.members.clone()
        } else {
            forward.member_ids.clone()
        };
        if forward.all_members || !members.is_empty() {
            self.delivery
                .reach
                .forwarded(&forward.policy_id, &id, &members)
                .await
                .map_err(Error::from)?;
            let event = RelayForwardRequested {
                forward: Some(relay_forward),
                policy: Some(PolicyPublished {
                    policy_id: policy.policy_id.clone(),
                    title: policy.title.clone(),
                    tags: policy.tags.clone(),
                    department: policy.department.clone(),
                    service_url: policy.service_url.clone(),
                    published_at: policy.published_at,
                    summary: policy.summary.clone(),
                    version: policy.version,
                    ..PolicyPublished::default()
                }),
                member_ids: forward.member_ids.clone(),
                all_members: forward.all_members,
                members: sub.members.clone(),
                members_from_profiles: sub.members_from_profiles,
                subscriber_kind: sub.kind,
                requested_at: Some(zhida_proto::timestamp_now()),
            };
            self.producer
                .emit_with_id(&forward.policy_id, &forward_id, &event)
                .await
                .map_err(|e| {
                    Status::unavailable(format!("the forward was not recorded; retry: {e}"))
                })?;
        }
        tracing::info!(
            subscriber = id,
            policy_id = forward.policy_id,
            forward_id,
            members = members.len(),
            children = forward.child_ids.len(),
            "forwarded"
        );
        Ok(Response::new(ForwardResponse {
            forward_id,
            members_requested: u32::try_from(members.len()).unwrap_or(u32::MAX),
            children: forward.child_ids,
        }))
    }

    async fn get_relay_reach(
        &self,
        request: Request<GetRelayReachRequest>,
    ) -> Result<Response<GetRelayReachResponse>, Status> {
        let principal = Principal::of(&request).cloned();
        let policy_id = request.into_inner().policy_id;
        if policy_id.is_empty() {
            let mut bad = FieldViolations::new();
            bad.add("policy_id", "required");
            return Err(Error::Invalid(bad).into());
        }
        // A department sees the reach of its own policies only.
        if let Some(p) = principal.filter(|p| p.kind == Kind::Department && !p.has(RELAY_ADMIN)) {
            let state = self
                .states
                .states(std::slice::from_ref(&policy_id))
                .await
                .map_err(Error::from)?
                .pop()
                .flatten();
            let department = match state {
                Some(state) => decode(&policy_id, &state)?.department,
                None => String::new(),
            };
            if department != p.id {
                return Err(Error::NotFound(format!("policy {policy_id} of {}", p.id)).into());
            }
        }
        let stored = self
            .delivery
            .reach
            .reach(&policy_id)
            .await
            .map_err(Error::from)?;
        let snapshot = self.registry.snapshot().await.map_err(Error::from)?;
        let (subscribers, tiers) = crate::reach::report(stored, &snapshot);
        Ok(Response::new(GetRelayReachResponse {
            policy_id,
            subscribers,
            tiers,
        }))
    }
}

#[cfg(test)]
mod tests {
    use zhida_catalogue::Industries;
    use zhida_proto::events::v1::RelaySubscriberKind;

    use super::*;
    use crate::subscriber::entries;

    fn registry() -> crate::registry::Snapshot {
        let stored = |id: &str, parent: &str, members: &[&str]| Stored {
            subscriber: Some(Subscriber {
                id: id.into(),
                kind: RelaySubscriberKind::Association as i32,
                parent_id: parent.into(),
                display_name: id.into(),
                members: members.iter().map(|m| m.to_string()).collect(),
                ..Subscriber::default()
            }),
            ..Stored::default()
        };
        entries(
            vec![
                stored("assoc", "", &["e-1", "e-2"]),
                stored("branch", "assoc", &[]),
                stored("other", "", &[]),
            ],
            &Industries::gbt4754_2017(),
        )
    }

    #[test]
    fn a_forward_names_members_and_children_of_its_own() {
        let reg = registry();
        let children: Vec<&Entry> = vec![&reg["branch"]];
        let ok = check_forward(
            ForwardRequest {
                policy_id: "p-1".into(),
                member_ids: vec!["e-2".into(), "e-1".into(), "e-2".into()],
                child_ids: vec!["branch".into()],
                note: " 请会员企业关注 ".into(),
                request_id: "r-1".into(),
                ..ForwardRequest::default()
            },
            &reg["assoc"],
            &children,
        )
        .expect("valid");
        assert_eq!(ok.member_ids, ["e-1", "e-2"]);
        assert_eq!(ok.note, "请会员企业关注");
        let bad = check_forward(
            ForwardRequest {
                policy_id: "p-1".into(),
                member_ids: vec!["e-9".into()],
                child_ids: vec!["other".into()],
                note: "a\u{1b}[31m".into(),
                all_members: true,
                ..ForwardRequest::default()
            },
            &reg["assoc"],
            &children,
        )
        .expect_err("invalid");
        let status: Status = bad.into();
        let fields: Vec<String> = tonic_types::StatusExt::get_details_bad_request(&status)
            .expect("details")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        for field in [
            "request_id",
            "note",
            "member_ids",
            "member_ids[0]",
            "child_ids[0]",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
    }

    #[test]
    fn entry_ids_name_their_policy() {
        assert_eq!(policy_of("p-1"), "p-1");
        assert_eq!(policy_of("p-1#v2"), "p-1");
        assert_eq!(policy_of("p-1#from:assoc"), "p-1");
    }
}
