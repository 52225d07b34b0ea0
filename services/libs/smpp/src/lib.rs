//! A small async SMPP 3.4 ESME: a transceiver client for the SMS gateways of Chinese
//! carriers and SMS clouds, tested against a real SMPP peer (`deploy/smsc`).
//!
//! - [`Session::connect`] binds (`bind_transceiver`) and returns the session and its
//!   [`Receipts`]; one background task per session owns the socket, answers
//!   `enquire_link` and `deliver_sm`, and sends `enquire_link` every interval.
//! - [`Session::submit`] sends one `submit_sm` and awaits its `submit_sm_resp`, matched by
//!   sequence number; up to [`Config::window`] submits are in flight at once, so calls
//!   from several tasks pipeline on one connection.
//! - [`Session::close`] waits for the submits in flight, unbinds, and closes.
//! - [`segments`] and [`encode_ucs2`] turn text into UCS-2 SMS segments (UDH
//!   concatenation); [`Receipt::parse`] reads a delivery receipt. Both are pure.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use zhida_smpp::{Address, Config, Session, Submit, segments};
//!
//! let config = Config::new("127.0.0.1:2775", "zhida", "secret".into());
//! let (session, mut receipts) = Session::connect(config).await?;
//! for segment in segments("【杨浦区政务】您关注的政策已发布：https://y.example/p/1", 7, 3)? {
//!     let submit = Submit::segment(
//!         Address::alphanumeric("10690000"),
//!         Address::international("8613800138000"),
//!         1,
//!         segment,
//!     );
//!     let submitted = session.submit(&submit).await?;
//!     println!("accepted as {}", submitted.message_id);
//! }
//! if let Some(receipt) = receipts.recv().await {
//!     println!("{} is {:?}", receipt.message_id, receipt.state);
//! }
//! session.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Outcomes of a submit
//!
//! [`Session::submit`] answers [`Submitted`] (with the SMSC's `message_id`) or a
//! [`SubmitError`] that says what the caller should do:
//!
//! | error | statuses (`command_status` of `submit_sm_resp` or `generic_nack`) | meaning, what to do |
//! |---|---|---|
//! | [`SubmitError::Throttled`] | `ESME_RTHROTTLED` 0x58, `ESME_RMSGQFUL` 0x14 | too fast for the SMSC: slow down, send again |
//! | [`SubmitError::Refused`] | `ESME_RINVMSGLEN` 0x01, `ESME_RINVCMDLEN` 0x02, `ESME_RINVPRTFLG` 0x06, `ESME_RINVREGDLVFLG` 0x07, `ESME_RINVDSTADR` 0x0B, `ESME_RINVESMCLASS` 0x43, `ESME_RINVDSTTON` 0x50, `ESME_RINVDSTNPI` 0x51, `ESME_RINVSCHED` 0x61, `ESME_RINVEXPIRY` 0x62, `ESME_RINVDFTMSGID` 0x63, TLV errors 0xC0–0xC4 | this message will never be accepted as it is: record it undeliverable, do not retry |
//! | [`SubmitError::Failed`] | everything else: `ESME_RSYSERR` 0x08, `ESME_RSUBMITFAIL` 0x45, `ESME_RINVBNDSTS` 0x04, source-address and `system_type` errors (0x0A, 0x48, 0x49, 0x53: our configuration at this SMSC, not the message), vendor codes 0x400–0x4FF, unknown codes | may pass, or another SMSC may take it: send again later, perhaps elsewhere |
//! | [`SubmitError::ConnectionLost`] | the connection ended first | unknown whether accepted: reconnect, send again (the ledger dedups) |
//! | [`SubmitError::Timeout`] | no answer within [`Config::response_timeout`] | unknown whether accepted: send again (the ledger dedups) |
//! | [`SubmitError::Invalid`] | none: refused before sending (a field longer than SMPP allows) | a bug or bad data: do not retry |
//!
//! An unknown status is `Failed`, never `Refused`: a code we cannot read must not turn a
//! deliverable message into a lost one. After a connection loss every submit waiting for
//! an answer or a window slot resolves `ConnectionLost` and [`Session::is_closed`] is true.
//!
//! # Receipts
//!
//! A `deliver_sm` marked as a receipt (`esm_class` bits 2–5, or a `receipted_message_id`
//! TLV) is parsed into a [`Receipt`] and queued for [`Receipts::recv`] *before* the
//! `deliver_sm_resp` goes out, so an acknowledged receipt is never dropped by this crate;
//! when the queue is full the answer is `ESME_RX_T_APPN` and the SMSC sends it again later.
//! Mobile-originated messages are acknowledged and ignored.
//!
//! # Why not `rusmpp`
//!
//! We evaluated `rusmpp` 0.4 with its tokio codec and wrote the wire format ourselves
//! (`pdu.rs`, about 300 lines without tests, half of them the status table):
//! - we need six PDU bodies of SMPP 3.4; `rusmpp` is a complete SMPP 5.0 implementation
//!   (~27 000 lines in `rusmpp-core`, plus `heapless` and two proc-macro crates), and its
//!   builders with length-bounded string types made our call sites about as long as
//!   encoding the fields directly;
//! - its codec treats a body it cannot decode as fatal to the stream (`Framed` stops after
//!   a decoder error, and the bytes of the bad PDU are left half-read), so one odd
//!   `deliver_sm` from a carrier's SMSC would drop the session and every submit in flight.
//!   Here framing is by `command_length` alone, and a body we cannot read is answered
//!   with an error status while the session carries on;
//! - it speaks 5.0 by default (`interface_version` 0x50); Chinese carrier gateways speak 3.4.
//!
//! The bytes are pinned by unit tests (a bind laid out octet by octet, as in the specification)
//! and by the integration tests against `deploy/smsc`, a peer built on a different SMPP
//! implementation (npm `smpp`).

mod pdu;
mod receipt;
mod session;
mod text;

use std::time::Duration;

pub use pdu::Status;
pub use receipt::{Receipt, ReceiptState};
pub use session::{Address, Config, Receipts, Session, Submit, SubmitError, Submitted};
pub use text::{DATA_CODING_UCS2, ESM_CLASS_UDHI, Segment, TooLong, encode_ucs2, segments};

/// Why a session could not be set up (or unbound cleanly).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work (a field longer than SMPP allows, a zero window …).
    #[error("invalid SMPP configuration: {0}")]
    Config(String),
    /// The TCP connection was refused or failed.
    #[error("cannot connect to the SMSC at {addr}: {source}")]
    Connect {
        /// The SMSC's address.
        addr: String,
        /// What the socket said.
        #[source]
        source: std::io::Error,
    },
    /// A step had no answer in time.
    #[error("SMPP {what} timed out after {after:?}")]
    Timeout {
        /// `connect`, `bind` or `unbind`.
        what: &'static str,
        /// The limit that passed.
        after: Duration,
    },
    /// The SMSC answered the bind with an error, e.g. `ESME_RINVPASWD` or `ESME_RBINDFAIL`.
    #[error("the SMSC refused the bind: {status}")]
    BindRefused {
        /// The status it answered.
        status: Status,
    },
    /// The connection failed during the bind.
    #[error("SMPP connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The SMSC sent something that is not SMPP as we know it.
    #[error("SMPP protocol error: {0}")]
    Protocol(String),
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
