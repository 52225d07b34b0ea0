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
