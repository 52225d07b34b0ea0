//! The one place topic and consumer group names come from.

use zhida_runtime::config::KafkaConfig;

/// Every topic Zhida uses. Keys: see each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `PolicyPublished`, keyed by policy id.
    PolicyEvents,
    /// `ProfileUpserted`, keyed by subject id; compacted; empty value = deleted.
    Profiles,
    /// `DeliveryRequested`, keyed by recipient id.
    DeliveryRequests,
    /// `DeliveryStatusChanged`, keyed by recipient id.
    DeliveryStatus,
    /// `AuditRecorded`, keyed by principal: every state-changing call.
    Audit,
    /// `TagDefined`, keyed by tag id; compacted: the latest record of an id is the tag
    /// (the operator-managed tag catalogue, which every service replays).
    Tags,
    /// `RelayForwardRequested`, keyed by policy id: an association or park forwards a
    /// relayed policy to its members (the profiler turns it into delivery requests).
    RelayForwards,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::PolicyEvents,
        Topic::Profiles,
        Topic::DeliveryRequests,
        Topic::DeliveryStatus,
        Topic::Audit,
        Topic::Tags,
        Topic::RelayForwards,
    ];

    /// The name without the deployment prefix.
    pub const fn base_name(self) -> &'static str {
        match self {
            Topic::PolicyEvents => "policy.events",
            Topic::Profiles => "profiles",
            Topic::DeliveryRequests => "delivery.requests",
            Topic::DeliveryStatus => "delivery.status",
            Topic::Audit => "audit",
            Topic::Tags => "tags",
            Topic::RelayForwards => "relay.forwards",
        }
    }

    /// Compacted topics keep the latest value per key forever.
    pub const fn compacted(self) -> bool {
        matches!(self, Topic::Profiles | Topic::Tags)
    }
}

/// Every consumer group Zhida runs: one per consuming service, so each service handles every
/// record of its topic once, however many replicas it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// The profiler's, on `policy.events` (it replays `profiles` without a group).
    Profiler,
    /// The profiler's, on `relay.forwards`: forwarded policies reach the members.
    ProfilerForwards,
    /// The relay's, on `policy.events`.
    Relay,
    /// The notifier's, on `delivery.requests`.
    Notifier,
    /// The notifier's, on `profiles`: a deleted profile's inbox goes with it.
    NotifierErasure,
    /// The notifier's, on `policy.events`: revisions and withdrawals reach earlier
    /// recipients.
    NotifierPolicies,
    /// The relay's, on `delivery.status`: what became of the members it forwarded to.
    RelayReceipts,
}

impl Group {
    /// The group id without the deployment prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Group::Profiler => "zhida-profiler",
            Group::ProfilerForwards => "zhida-profiler-forwards",
            Group::Relay => "zhida-relay",
            Group::Notifier => "zhida-notifier",
            Group::NotifierErasure => "zhida-notifier-erasure",
            Group::NotifierPolicies => "zhida-notifier-policies",
            Group::RelayReceipts => "zhida-relay-receipts",
        }
    }
}

/// Topic and group names of one deployment (prefix applied).
#[derive(Debug, Clone)]
pub struct Topics {
    topic_prefix: String,
    group_prefix: String,
}

impl Topics {
    pub fn new(config: &KafkaConfig) -> Self {
        Self {
            topic_prefix: config.topic_prefix.clone(),
            group_prefix: config.group_prefix.clone(),
        }
    }

    pub fn name(&self, topic: Topic) -> String {
        format!("{}{}", self.topic_prefix, topic.base_name())
    }

    /// Where permanently failing records of `topic` go.
    pub fn dead_letter(&self, topic: Topic) -> String {
        format!("{}.dlq", self.name(topic))
    }

    pub fn group(&self, group: Group) -> String {
        format!("{}{}", self.group_prefix, group.name())
    }
}
