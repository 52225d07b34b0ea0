//! Who makes a call: the [`Principal`] the gRPC host's authentication layer puts into
//! every request's extensions, and the scopes a principal may hold.
//!
//! Handlers read it with [`Principal::of`]; what a call acts for (a department, an
//! association, a subject) comes from the principal, never from a request field.

use std::collections::BTreeSet;

/// The kinds of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A district department: publishes (and drafts) its own policies. `id`: its name,
    /// e.g. `区科委`.
    Department,
    /// Approves policies before publication. `id`: a department, or `*` district-wide.
    Reviewer,
    /// An industry association or industrial park: reads its own relay feed. `id`: its
    /// relay id, e.g. `assoc-yangpu-software`.
    Subscriber,
    /// A citizen or enterprise acting on their own profile (through the "两页" portal).
    /// `id`: the subject id.
    Subject,
    /// The portal or directory system that imports and manages profiles in bulk.
    Directory,
    /// Runs the system: metrics, dead-letter replays, subscribers.
    Operator,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 6] = [
        Kind::Department,
        Kind::Reviewer,
        Kind::Subscriber,
        Kind::Subject,
        Kind::Directory,
        Kind::Operator,
    ];

    /// The name used in tokens (`kind` claim) and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Department => "department",
            Kind::Reviewer => "reviewer",
            Kind::Subscriber => "subscriber",
            Kind::Subject => "subject",
            Kind::Directory => "directory",
            Kind::Operator => "operator",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: Kind,
    /// Who within the kind (see [`Kind`]).
    pub id: String,
    /// What it may do, e.g. `policy:publish`.
    pub scopes: BTreeSet<String>,
}

impl Principal {
    /// The caller of `request`, as the authentication layer found it; `None` only when no
    /// layer ran (a handler called directly in a unit test).
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Principal> {
        request.extensions().get::<Principal>()
    }

    /// Whether it holds `scope`.
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// A stable key for per-caller limits and audit records: `kind:id`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.name(), self.id)
    }
}

// ---------------------------------------------------------------------------------------
// Scopes and the one table of what each RPC needs.

/// Publish (and preview) a policy as one's own department.
pub const POLICY_PUBLISH: &str = "policy:publish";
/// Review policies before publication.
pub const POLICY_REVIEW: &str = "policy:review";
/// Read one's own profile (a subject).
pub const PROFILE_READ_SELF: &str = "profile:read:self";
/// Change one's own profile and subscriptions (a subject).
pub const PROFILE_WRITE_SELF: &str = "profile:write:self";
/// Read any profile (the directory, operators).
pub const PROFILE_READ_ANY: &str = "profile:read:any";
/// Write any profile (the directory's imports).
pub const PROFILE_WRITE_ANY: &str = "profile:write:any";
/// Read one's own relay feed (associations and parks).
pub const RELAY_READ: &str = "relay:read";
/// Forward items of one's own relay feed to one's members and child tiers.
pub const RELAY_FORWARD: &str = "relay:forward";
/// Register and manage relay subscribers, act for any of them, and read relay reach
/// (operators).
pub const RELAY_ADMIN: &str = "relay:admin";
/// Read and mark one's own inbox.
pub const INBOX_SELF: &str = "inbox:self";
/// Any inbox (the portal serving every page).
pub const INBOX_ANY: &str = "inbox:any";
/// The delivery status of one's own notices.
pub const DELIVERY_READ_SELF: &str = "delivery:read:self";
/// Any delivery status (operators, the directory).
pub const DELIVERY_READ_ANY: &str = "delivery:read:any";
/// Replay dead letters and other operations.
pub const OPS_REPLAY: &str = "ops:replay";
/// Create, rename and retire tags of the catalogue (operators).
pub const TAGS_ADMIN: &str = "tags:admin";

/// Every scope there is.
pub const ALL_SCOPES: [&str; 15] = [
    POLICY_PUBLISH,
    POLICY_REVIEW,
    PROFILE_READ_SELF,
    PROFILE_WRITE_SELF,
    PROFILE_READ_ANY,
    PROFILE_WRITE_ANY,
    RELAY_READ,
    RELAY_FORWARD,
    RELAY_ADMIN,
    INBOX_SELF,
    INBOX_ANY,
    DELIVERY_READ_SELF,
    DELIVERY_READ_ANY,
    OPS_REPLAY,
    TAGS_ADMIN,
];

impl Kind {
    /// The scopes a token of this kind gets when none are named.
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Kind::Department => &[POLICY_PUBLISH],
            Kind::Reviewer => &[POLICY_REVIEW],
            Kind::Subscriber => &[RELAY_READ, RELAY_FORWARD],
            Kind::Subject => &[
                PROFILE_READ_SELF,
                PROFILE_WRITE_SELF,
                INBOX_SELF,
                DELIVERY_READ_SELF,
            ],
            Kind::Directory => &[
                PROFILE_READ_ANY,
                PROFILE_WRITE_ANY,
                INBOX_ANY,
                DELIVERY_READ_ANY,
            ],
            Kind::Operator => &[
                PROFILE_READ_ANY,
                DELIVERY_READ_ANY,
                OPS_REPLAY,
                TAGS_ADMIN,
                RELAY_ADMIN,
            ],
        }
    }
}

/// What a call to one RPC needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (the request itself carries what proves it, or it is
    /// harmless).
    Public,
    /// Anyone, without a token; a caller that sends one is identified by it (an invalid
    /// token is refused), and the handler may show it more (the library: drafts to their
    /// department and reviewers).
    Optional,
    /// A token with this scope.
    Scope(&'static str),
    /// A token with one of these scopes.
    AnyOf(&'static [&'static str]),
    /// Something that belongs to a subject (named in the request): `any` reaches every
    /// subject's, `own` only the caller's own (a [`Kind::Subject`] token whose id is the
    /// subject). The layer checks the caller holds one of them; the handler names the
    /// subject with [`authorize_subject`].
    Subject {
        any: &'static str,
        own: &'static str,
    },
}

impl Access {
    /// Whether `principal` holds what this needs (before any per-subject check).
    fn admits(self, principal: &Principal) -> bool {
        match self {
            Access::Public | Access::Optional => true,
            Access::Scope(scope) => principal.has(scope),
            Access::AnyOf(scopes) => scopes.iter().any(|s| principal.has(s)),
            Access::Subject { any, own } => principal.has(any) || principal.has(own),
        }
    }

    /// What to tell a caller that lacks it.
    fn needs(self) -> String {
        match self {
            Access::Public | Access::Optional => "nothing".into(),
            Access::Scope(scope) => format!("scope {scope}"),
            Access::AnyOf(scopes) => format!("one of the scopes {}", scopes.join(", ")),
            Access::Subject { any, own } => format!("scope {any}, or {own} for one's own"),
        }
    }
}

const PROFILE_READ: Access = Access::Subject {
    any: PROFILE_READ_ANY,
    own: PROFILE_READ_SELF,
};
const PROFILE_WRITE: Access = Access::Subject {
    any: PROFILE_WRITE_ANY,
    own: PROFILE_WRITE_SELF,
};
const RELAY_OWN_READ: Access = Access::AnyOf(&[RELAY_READ, RELAY_ADMIN]);
const INBOX: Access = Access::Subject {
    any: INBOX_ANY,
    own: INBOX_SELF,
};

/// Every RPC of every Zhida service: what it needs ([`Access`]) and what it costs its
/// caller ([`Class`], for the limits): the one place both are decided. A test checks it
/// names every method in the services' descriptors, and nothing else.
pub const RPC_ACCESS: &[(&str, Access, Class)] = &[
    // A department drafts, submits, publishes, revises and withdraws its own policies
    // (the handler checks the policy is the caller's department's).
    (
        "/zhida.policy.v1.PolicyService/CreateDraft",
        Access::Scope(POLICY_PUBLISH),
        Class::Write,
    ),
    (
        "/zhida.policy.v1.PolicyService/UpdateDraft",
        Access::Scope(POLICY_PUBLISH),
        Class::Write,
    ),
    (
        "/zhida.policy.v1.PolicyService/SubmitForReview",
        Access::Scope(POLICY_PUBLISH),
        Class::Write,
    ),
    // A reviewer of the department (or district-wide), never the one who submitted.
    (
        "/zhida.policy.v1.PolicyService/Review",
        Access::Scope(POLICY_REVIEW),
        Class::Write,
    ),
    (
        "/zhida.policy.v1.PolicyService/Publish",
        Access::Scope(POLICY_PUBLISH),
        Class::Write,
    ),
    (
        "/zhida.policy.v1.PolicyService/Revise",
        Access::Scope(POLICY_PUBLISH),
        Class::Write,
    ),
    (
        "/zhida.policy.v1.PolicyService/Withdraw",
        Access::Scope(POLICY_PUBLISH),
        Class::Write,
    ),
    (
        "/zhida.policy.v1.PolicyService/UpdateFaqs",
        Access::Scope(POLICY_PUBLISH),
        Class::Write,
    ),
    // The library (公文库) is public; drafts show only to their department and reviewers,
    // identified by the token they may send.
    (
        "/zhida.policy.v1.PolicyService/GetPolicy",
        Access::Optional,
        Class::Read,
    ),
    (
        "/zhida.policy.v1.PolicyService/GetInterpretation",
        Access::Optional,
        Class::Read,
    ),
    (
        "/zhida.policy.v1.PolicyService/ListPolicies",
        Access::Optional,
        Class::Read,
    ),
    (
        "/zhida.policy.v1.PolicyService/SearchPolicies",
        Access::Public,
        Class::Read,
    ),
    // The catalogue is public knowledge (政策标签目录); operators change it.
    (
        "/zhida.policy.v1.PolicyService/ListTags",
        Access::Public,
        Class::Read,
    ),
    (
        "/zhida.policy.v1.PolicyService/CreateTag",
        Access::Scope(TAGS_ADMIN),
        Class::Write,
    ),
    (
        "/zhida.policy.v1.PolicyService/RenameTag",
        Access::Scope(TAGS_ADMIN),
        Class::Write,
    ),
    (
        "/zhida.policy.v1.PolicyService/RetireTag",
        Access::Scope(TAGS_ADMIN),
        Class::Write,
    ),
    (
        "/zhida.profile.v1.ProfileService/UpsertProfile",
        PROFILE_WRITE,
        Class::Write,
    ),
    // A directory system's bulk load: every subject's profile, so only `any`.
    (
        "/zhida.profile.v1.ProfileService/ImportProfiles",
        Access::Scope(PROFILE_WRITE_ANY),
        Class::WriteStream,
    ),
    (
        "/zhida.profile.v1.ProfileService/GetProfile",
        PROFILE_READ,
        Class::Read,
    ),
    (
        "/zhida.profile.v1.ProfileService/DeleteProfile",
        PROFILE_WRITE,
        Class::Write,
    ),
    (
        "/zhida.profile.v1.ProfileService/ListSubscriptions",
        PROFILE_READ,
        Class::Read,
    ),
    (
        "/zhida.profile.v1.ProfileService/Subscribe",
        PROFILE_WRITE,
        Class::Write,
    ),
    (
        "/zhida.profile.v1.ProfileService/Unsubscribe",
        PROFILE_WRITE,
        Class::Write,
    ),
    // One click from a mail client carries no bearer token: the signed token in the
    // request is the credential, scoped to one recipient and subscription.
    (
        "/zhida.profile.v1.ProfileService/UnsubscribeByToken",
        Access::Public,
        Class::Write,
    ),
    (
        "/zhida.profile.v1.ProfileService/PreviewAudience",
        Access::AnyOf(&[POLICY_PUBLISH, POLICY_REVIEW]),
        Class::Read,
    ),
    (
        "/zhida.profile.v1.ProfileService/ExplainMatch",
        PROFILE_READ,
        Class::Read,
    ),
    // Operators manage subscribers. A subscriber reaches its own feed, forwards and
    // secret (the handler checks the id; `relay:admin` acts for any subscriber).
    (
        "/zhida.relay.v1.RelayService/PutSubscriber",
        Access::Scope(RELAY_ADMIN),
        Class::Write,
    ),
    (
        "/zhida.relay.v1.RelayService/GetSubscriber",
        RELAY_OWN_READ,
        Class::Read,
    ),
    (
        "/zhida.relay.v1.RelayService/ListSubscribers",
        Access::Scope(RELAY_ADMIN),
        Class::Read,
    ),
    (
        "/zhida.relay.v1.RelayService/RemoveSubscriber",
        Access::Scope(RELAY_ADMIN),
        Class::Write,
    ),
    (
        "/zhida.relay.v1.RelayService/RotateWebhookSecret",
        Access::AnyOf(&[RELAY_FORWARD, RELAY_ADMIN]),
        Class::Write,
    ),
    (
        "/zhida.relay.v1.RelayService/PullFeed",
        RELAY_OWN_READ,
        Class::Read,
    ),
    (
        "/zhida.relay.v1.RelayService/StreamFeed",
        RELAY_OWN_READ,
        Class::Stream,
    ),
    (
        "/zhida.relay.v1.RelayService/Forward",
        Access::AnyOf(&[RELAY_FORWARD, RELAY_ADMIN]),
        Class::Write,
    ),
    // How far a policy went: operators, and departments for the policies they publish.
    (
        "/zhida.relay.v1.RelayService/GetRelayReach",
        Access::AnyOf(&[RELAY_ADMIN, POLICY_PUBLISH]),
        Class::Read,
    ),
    (
        "/zhida.notification.v1.NotificationService/GetDeliveryStatus",
        Access::Subject {
            any: DELIVERY_READ_ANY,
            own: DELIVERY_READ_SELF,
        },
        Class::Read,
    ),
    (
        "/zhida.notification.v1.InboxService/ListInbox",
        INBOX,
        Class::Read,
    ),
    (
        "/zhida.notification.v1.InboxService/MarkRead",
        INBOX,
        Class::Write,
    ),
    (
        "/zhida.notification.v1.InboxService/StreamInbox",
        INBOX,
        Class::Stream,
    ),
];

/// What `path` (`/package.Service/Method`) needs; `None` for a path not in the table.
pub fn access(path: &str) -> Option<Access> {
    RPC_ACCESS
        .iter()
        .find(|(rpc, _, _)| *rpc == path)
        .map(|(_, access, _)| *access)
}

/// Checks that the caller of `request` may reach what belongs to `subject_id` under the
/// RPC's [`Access::Subject`] rule: its `any` scope, or its `own` scope as that subject.
/// Requests without a principal (no layer ran: unit tests) pass.
pub fn authorize_subject<T>(
    request: &tonic::Request<T>,
    subject_id: &str,
) -> Result<(), tonic::Status> {
    let (Some(principal), Some(access)) =
        (Principal::of(request), request.extensions().get::<Access>())
    else {
        return Ok(());
    };
    let Access::Subject { any, own } = *access else {
        return Ok(());
    };
    if principal.has(any)
        || (principal.has(own) && principal.kind == Kind::Subject && principal.id == subject_id)
    {
        return Ok(());
    }
    Err(tonic::Status::permission_denied(format!(
        "{} may not reach subject {subject_id}: it needs scope {any}",
        principal.key()
    )))
}

/// The department a publishing call acts for: the caller's own (a [`Kind::Department`]
/// token). `named` is what the request says: empty takes the token's; another
/// department's name is refused. Requests without a principal keep `named`.
pub fn acting_department<T>(
    request: &tonic::Request<T>,
    named: &str,
) -> Result<String, tonic::Status> {
    let Some(principal) = Principal::of(request) else {
        return Ok(named.to_string());
    };
    if principal.kind == Kind::Operator && principal.id == ANONYMOUS {
        // `auth.mode = "off"`: whatever the request says.
        return Ok(named.to_string());
    }
    if principal.kind != Kind::Department {
        return Err(tonic::Status::permission_denied(format!(
            "{} is not a department: only departments publish",
            principal.key()
        )));
    }
    let named = named.trim();
    if !named.is_empty() && named != principal.id {
        return Err(tonic::Status::permission_denied(format!(
            "{} may not publish as {named}",
            principal.key()
        )));
    }
    Ok(principal.id.clone())
}

/// The principal of every call when `auth.mode = "off"`.
pub const ANONYMOUS: &str = "anonymous";

impl Principal {
    /// Everything allowed: `auth.mode = "off"`.
    pub fn anonymous() -> Principal {
        Principal {
            kind: Kind::Operator,
            id: ANONYMOUS.into(),
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

mod layer;
mod token;

use crate::limits::Class;

/// A client-side interceptor that sends a bearer token with every call:
/// `PolicyServiceClient::with_interceptor(channel, Bearer::new(&token)?)`.
#[derive(Clone, Debug)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// Sends `token` as `authorization: Bearer <token>`.
    pub fn new(token: &str) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        Ok(Self(Some(format!("Bearer {token}").parse()?)))
    }

    /// Sends no token (for public calls, and for tests of refusals).
    pub fn none() -> Self {
        Self(None)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub use layer::AuthLayer;
pub use token::{
    AuthConfig, AuthMode, Claims, KeyConfig, Signer, TokenError, Verifier, generate_key,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_every_service_has_exactly_one_access_rule() {
        let mut rpcs = zhida_proto::rpc_paths();
        rpcs.sort();
        let mut table: Vec<String> = RPC_ACCESS.iter().map(|(p, _, _)| p.to_string()).collect();
        table.sort();
        assert_eq!(
            table, rpcs,
            "RPC_ACCESS must name every RPC once, and nothing else"
        );
    }

    #[test]
    fn every_scope_a_kind_gets_exists_and_kinds_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.name()), Some(kind));
            for scope in kind.default_scopes() {
                assert!(ALL_SCOPES.contains(scope), "{scope}");
            }
        }
        for (_, access, _) in RPC_ACCESS {
            let named: Vec<&str> = match access {
                Access::Public | Access::Optional => vec![],
                Access::Scope(s) => vec![s],
                Access::AnyOf(s) => s.to_vec(),
                Access::Subject { any, own } => vec![any, own],
            };
            for scope in named {
                assert!(ALL_SCOPES.contains(&scope), "{scope}");
            }
        }
    }

    fn request(principal: Principal, access: Access) -> tonic::Request<()> {
        let mut request = tonic::Request::new(());
        request.extensions_mut().insert(principal);
        request.extensions_mut().insert(access);
        request
    }

    fn principal(kind: Kind, id: &str) -> Principal {
        Principal {
            kind,
            id: id.into(),
            scopes: kind
                .default_scopes()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    #[test]
    fn a_subject_reaches_only_its_own_and_the_directory_reaches_all() {
        let own = request(principal(Kind::Subject, "c-1"), PROFILE_WRITE);
        assert!(authorize_subject(&own, "c-1").is_ok());
        let denied = authorize_subject(&own, "c-2").expect_err("another subject");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        // `profile:write:self` on a token of another kind is no licence to any subject.
        let mut odd = principal(Kind::Subscriber, "c-2");
        odd.scopes.insert(PROFILE_WRITE_SELF.into());
        assert!(authorize_subject(&request(odd, PROFILE_WRITE), "c-2").is_err());
        let directory = request(principal(Kind::Directory, "portal"), PROFILE_WRITE);
        assert!(authorize_subject(&directory, "c-2").is_ok());
    }

    #[test]
    fn a_department_publishes_as_itself_only() {
        let publish = Access::Scope(POLICY_PUBLISH);
        let kw = request(principal(Kind::Department, "区科委"), publish);
        assert_eq!(acting_department(&kw, "").expect("filled"), "区科委");
        assert_eq!(acting_department(&kw, "区科委").expect("same"), "区科委");
        let other = acting_department(&kw, "区人力资源社会保障局").expect_err("another");
        assert_eq!(other.code(), tonic::Code::PermissionDenied);
        let mut operator = principal(Kind::Operator, "ops");
        operator.scopes.insert(POLICY_PUBLISH.into());
        assert!(acting_department(&request(operator, publish), "区科委").is_err());
        let off = request(Principal::anonymous(), publish);
        assert_eq!(acting_department(&off, "区科委").expect("off"), "区科委");
    }
}
