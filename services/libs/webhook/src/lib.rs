//! Standard Webhooks (<https://www.standardwebhooks.com>) for the relay, which pushes policies
//! to the endpoints associations and parks register. Receivers check our deliveries with any
//! Standard Webhooks library, so the wire form is the specification's, not ours.
//!
//! - [`secret`]: an endpoint's signing key, [`Secret`] (`whsec_…`), never printed.
//! - [`sign`](mod@sign): the `webhook-id`/`-timestamp`/`-signature` headers, [`sign()`] (one `v1,…` per
//!   secret, which is how rotation works) and [`verify()`] (for receivers and tests).
//! - [`schedule`]: [`RetrySchedule`], the delays before each attempt; after the last one the
//!   endpoint is to be disabled.
//! - [`guard`]: the SSRF guard, [`Guard`]: which URLs and which addresses a delivery may go
//!   to (no loopback, private, link-local, cloud metadata… unless configured).
//! - [`sender`]: [`Sender`], one HTTPS attempt with the guard applied when connecting, its
//!   outcome an [`Attempt`].
//! - [`receiver`]: reading and checking a delivery, for the receivers Zhida runs itself
//!   (the demo's, the bench's).
//!
//! Everything but the sender and [`Guard::resolve`] is pure.

pub mod guard;
pub mod receiver;
pub mod schedule;
pub mod secret;
pub mod sender;
pub mod sign;

pub use guard::{Endpoint, Guard, GuardConfigError, GuardError, UrlError};
pub use schedule::{RetrySchedule, ScheduleError};
pub use secret::{Secret, SecretError};
pub use sender::{Attempt, Sender, SenderConfig, SenderError};
pub use sign::{
    DEFAULT_TOLERANCE_SECS, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, VerifyError, sign,
    verify,
};
