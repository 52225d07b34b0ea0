//! One bound SMPP transceiver session: connect and bind, pipelined `submit_sm` calls under
//! a window, and one background task that owns the socket.
//!
//! The task reads every PDU and writes every PDU. It hands each response to the call that
//! waits for its `sequence_number`, answers `enquire_link` and `deliver_sm` (after queuing
//! the receipt for [`Receipts`]), sends an `enquire_link` every interval, and ends the
//! session when the link goes: EOF, an I/O error, a byte stream that is not PDUs, an
//! `unbind` from the SMSC, an `enquire_link` unanswered for a whole interval, or
//! [`Session::close`]. Ending marks the session closed *before* it fails the calls still
//! waiting, so a caller that sees [`SubmitError::ConnectionLost`] also sees
//! [`Session::is_closed`].

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use secrecy::SecretString;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{Notify, Semaphore, mpsc, oneshot},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior, timeout},
};

use crate::{
    Error, Result,
    pdu::{self, DeliverSm, Pdu, Status, id},
    receipt::Receipt,
    text::Segment,
};

/// How to reach and bind to one SMSC.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` of the SMSC.
    pub addr: String,
    /// `system_id` to bind with (at most 15 characters).
    pub system_id: String,
    /// `password` to bind with (at most 8 characters).
    pub password: SecretString,
    /// `system_type` to bind with (at most 12 characters; usually empty).
    pub system_type: String,
    /// Limit on the TCP connect. Default 5 s.
    pub connect_timeout: Duration,
    /// Limit on the wait for `bind_transceiver_resp`. Default 5 s.
    pub bind_timeout: Duration,
    /// Limit on the wait for each `submit_sm_resp`. Default 10 s.
    pub response_timeout: Duration,
    /// An `enquire_link` goes out this often; one still unanswered at the next is a
    /// dead link. Default 30 s.
    pub enquire_link_interval: Duration,
    /// `submit_sm`s in flight at once; further calls wait for a slot. Default 10.
    pub window: u32,
    /// Limit on the wait for `unbind_resp` in [`Session::close`]. Default 2 s.
    pub unbind_timeout: Duration,
    /// Receipts held for [`Receipts::recv`]; when full, further receipts are answered
    /// `ESME_RX_T_APPN` so the SMSC sends them again later. Default 1024.
    pub receipt_buffer: usize,
}

impl Config {
    /// A configuration with the defaults above.
    pub fn new(
        addr: impl Into<String>,
        system_id: impl Into<String>,
        password: SecretString,
    ) -> Config {
        Config {
            addr: addr.into(),
            system_id: system_id.into(),
            password,
            system_type: String::new(),
            connect_timeout: Duration::from_secs(5),
            bind_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            enquire_link_interval: Duration::from_secs(30),
            window: 10,
            unbind_timeout: Duration::from_secs(2),
            receipt_buffer: 1024,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_owned()));
        if !(1..=Semaphore::MAX_PERMITS as u64).contains(&u64::from(self.window)) {
            return bad("window must be at least 1");
        }
        if self.receipt_buffer == 0 {
            return bad("receipt_buffer must be at least 1");
        }
        if self.enquire_link_interval.is_zero() {
            return bad("enquire_link_interval must be positive");
        }
        Ok(())
    }
}

/// An SMPP address: type of number, numbering plan indicator, digits or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// `*_addr_ton`: 0 unknown, 1 international, 2 national, 5 alphanumeric …
    pub ton: u8,
    /// `*_addr_npi`: 0 unknown, 1 ISDN (E.164) …
    pub npi: u8,
    /// The address itself (at most 20 characters).
    pub addr: String,
}

impl Address {
    /// An E.164 number without `+` (TON 1, NPI 1), e.g. `8613800138000`.
    pub fn international(digits: impl Into<String>) -> Address {
        Address {
            ton: 1,
            npi: 1,
            addr: digits.into(),
        }
    }

    /// A sender name or service code as the SMSC knows it (TON 5, NPI 0).
    pub fn alphanumeric(name: impl Into<String>) -> Address {
        Address {
            ton: 5,
            npi: 0,
            addr: name.into(),
        }
    }
}

/// One `submit_sm`: one SMS (one segment of a message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// Sender.
    pub source: Address,
    /// Recipient.
    pub destination: Address,
    /// 8 for UCS-2 (see [`crate::DATA_CODING_UCS2`]).
    pub data_coding: u8,
    /// 0, or 0x40 (UDHI) when `short_message` starts with a user data header.
    pub esm_class: u8,
    /// 1 asks for a receipt whatever the outcome, 2 only on failure, 0 none.
    pub registered_delivery: u8,
    /// The message octets, UDH included (at most 254; one SMS is 140).
    pub short_message: Vec<u8>,
}

impl Submit {
    /// The `submit_sm` for one segment from [`crate::segments`].
    pub fn segment(
        source: Address,
        destination: Address,
        registered_delivery: u8,
        segment: Segment,
    ) -> Submit {
        Submit {
            source,
            destination,
            data_coding: segment.data_coding,
            esm_class: segment.esm_class,
            registered_delivery,
            short_message: segment.short_message,
        }
    }
}

/// The SMSC accepted a `submit_sm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The SMSC's id for the message, which its receipt will carry.
    pub message_id: String,
}

/// Why a `submit_sm` did not succeed, classified so the caller can decide what to do
/// (the crate documentation has the table of statuses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The SMSC asks us to slow down (`ESME_RTHROTTLED`, `ESME_RMSGQFUL`): send again later.
    #[error("the SMSC is throttling: {status}")]
    Throttled {
        /// The status it answered.
        status: Status,
    },
    /// The SMSC will never accept this message as it is (bad destination, length …).
    #[error("the SMSC refused the message: {status}")]
    Refused {
        /// The status it answered.
        status: Status,
    },
    /// The SMSC failed for a reason that may pass, or a status this crate does not
    /// know (vendor codes included): send again later, perhaps through another SMSC.
    #[error("the SMSC failed to take the message: {status}")]
    Failed {
        /// The status it answered.
        status: Status,
    },
    /// The connection ended before the answer came; the message may or may not have
    /// been accepted. The session is closed: connect again.
    #[error("the connection to the SMSC was lost before it answered")]
    ConnectionLost,
    /// No answer within [`Config::response_timeout`]; the message may or may not have
    /// been accepted.
    #[error("the SMSC did not answer in time")]
    Timeout,
    /// The message cannot be encoded as a `submit_sm` (a field too long); nothing was
    /// sent, and sending again will not help.
    #[error("not an SMPP submit_sm: {0}")]
    Invalid(String),
}

impl SubmitError {
    /// The class of a non-`ESME_ROK` status answered to a `submit_sm`.
    pub fn from_status(status: Status) -> SubmitError {
        match status {
            Status::ESME_RTHROTTLED | Status::ESME_RMSGQFUL => SubmitError::Throttled { status },
            Status::ESME_RINVMSGLEN
            | Status::ESME_RINVCMDLEN
            | Status::ESME_RINVPRTFLG
            | Status::ESME_RINVREGDLVFLG
            | Status::ESME_RINVDSTADR
            | Status::ESME_RINVDSTTON
            | Status::ESME_RINVDSTNPI
            | Status::ESME_RINVESMCLASS
            | Status::ESME_RINVSCHED
            | Status::ESME_RINVEXPIRY
            | Status::ESME_RINVDFTMSGID
            | Status::ESME_RINVOPTPARSTREAM
            | Status::ESME_ROPTPARNOTALLWD
            | Status::ESME_RINVPARLEN
            | Status::ESME_RMISSINGOPTPARAM
            | Status::ESME_RINVOPTPARAMVAL => SubmitError::Refused { status },
            _ => SubmitError::Failed { status },
        }
    }
}

/// Delivery receipts from the SMSC, in arrival order. A receipt may also come on another
/// session bound with the same `system_id` (the SMSC picks any receiver), so match them
/// by [`Receipt::message_id`], not by session.
#[derive(Debug)]
pub struct Receipts(mpsc::Receiver<Receipt>);

impl Receipts {
    /// The next receipt; `None` once the session has ended and every receipt it
    /// acknowledged has been taken.
    pub async fn recv(&mut self) -> Option<Receipt> {
        self.0.recv().await
    }
}

/// A bound transceiver session. Cheap to clone: clones share the connection, so tasks
/// submit concurrently and their `submit_sm`s pipeline within the window. The
/// connection is unbound and closed by [`Session::close`], or when the SMSC ends it, or
/// when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Session {
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<Vec<u8>>,
}

#[derive(Debug)]
struct Shared {
    calls: Mutex<Calls>,
    window: Semaphore,
    window_size: u32,
    next_sequence: AtomicU32,
    response_timeout: Duration,
    unbind_timeout: Duration,
    shutdown: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Calls waiting for their response, by `sequence_number`.
#[derive(Debug, Default)]
struct Calls {
    closed: bool,
    waiting: HashMap<u32, oneshot::Sender<Pdu>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Sequence numbers run 1..=0x7FFFFFFF and wrap; 1 is the bind's.
    fn sequence(&self) -> u32 {
        self.next_sequence
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(if n >= 0x7FFF_FFFF { 1 } else { n + 1 })
            })
            .unwrap_or(1)
    }

    /// Marks the session closed, then fails every waiting call and every caller
    /// waiting for a window slot.
    fn close(&self) {
        let waiting = {
            let mut calls = lock(&self.calls);
            calls.closed = true;
            std::mem::take(&mut calls.waiting)
        };
        drop(waiting);
        self.window.close();
    }
}

/// Outcome of one request/response exchange.
enum CallError {
    Lost,
    Timeout,
}

impl From<CallError> for SubmitError {
    fn from(e: CallError) -> SubmitError {
        match e {
            CallError::Lost => SubmitError::ConnectionLost,
            CallError::Timeout => SubmitError::Timeout,
        }
    }
}

/// Forgets a call's entry when the call ends, however it ends (dropped futures included).
struct Forget<'a>(&'a Shared, u32);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.0.calls).waiting.remove(&self.1);
    }
}

impl Session {
    /// Connects, binds as a transceiver, and starts the session's background task.
    pub async fn connect(config: Config) -> Result<(Session, Receipts)> {
        config.validate()?;
        let bind = pdu::bind_transceiver(&config).map_err(Error::Config)?;
        let stream = timeout(config.connect_timeout, TcpStream::connect(&config.addr))
            .await
            .map_err(|_| Error::Timeout {
                what: "connect",
                after: config.connect_timeout,
            })?
            .map_err(|source| Error::Connect {
                addr: config.addr.clone(),
                source,
            })?;
        stream.set_nodelay(true)?;
        let (mut reader, mut writer) = stream.into_split();
        let mut buf = Vec::new();
        let resp = timeout(
            config.bind_timeout,
            bind_exchange(&mut reader, &mut writer, &mut buf, bind),
        )
        .await
        .map_err(|_| Error::Timeout {
            what: "bind",
            after: config.bind_timeout,
        })??;
        if !resp.status.is_ok() {
            return Err(Error::BindRefused {
                status: resp.status,
            });
        }
        tracing::debug!(smsc = %config.addr, system_id = %config.system_id, "SMPP bound");

        let shared = Arc::new(Shared {
            calls: Mutex::default(),
            window: Semaphore::new(config.window as usize),
            window_size: config.window,
            next_sequence: AtomicU32::new(2),
            response_timeout: config.response_timeout,
            unbind_timeout: config.unbind_timeout,
            shutdown: Notify::new(),
            task: Mutex::default(),
        });
        let (outgoing, outgoing_rx) = mpsc::channel(config.window as usize + 4);
        let (receipts, receipts_rx) = mpsc::channel(config.receipt_buffer);
        let connection = Connection {
            reader,
            writer,
            buf,
            shared: shared.clone(),
            outgoing: outgoing_rx,
            receipts,
            enquire_link_interval: config.enquire_link_interval,
            enquire_link_waiting: None,
        };
        let smsc = config.addr;
        let task = tokio::spawn(async move {
            let _closes = CloseOnDrop(connection.shared.clone());
            let why = connection.run().await;
            tracing::info!(smsc = %smsc, "SMPP session ended: {why}");
        });
        *lock(&shared.task) = Some(task);
        Ok((Session { shared, outgoing }, Receipts(receipts_rx)))
    }

    /// Sends one `submit_sm` and waits for its answer (at most
    /// [`Config::response_timeout`] once the window has a slot for it).
    pub async fn submit(&self, submit: &Submit) -> Result<Submitted, SubmitError> {
        let body = pdu::submit_sm(submit).map_err(SubmitError::Invalid)?;
        let _slot = self
            .shared
            .window
            .acquire()
            .await
            .map_err(|_| SubmitError::ConnectionLost)?;
        let resp = self
            .call(id::SUBMIT_SM, body, self.shared.response_timeout)
            .await?;
        // A generic_nack: the SMSC could not read our PDU at all.
        if resp.command_id == id::GENERIC_NACK || !resp.status.is_ok() {
            return Err(SubmitError::from_status(resp.status));
        }
        Ok(Submitted {
            message_id: pdu::submit_sm_resp(&resp.body),
        })
    }

    /// Whether the session has ended; every further submit fails with
    /// [`SubmitError::ConnectionLost`], so connect again.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.calls).closed
    }

    /// Unbinds politely and closes the connection: waits (at most
    /// [`Config::response_timeout`]) for the submits in flight, starting no new one, then
    /// sends `unbind` and waits at most [`Config::unbind_timeout`] for its answer. The
    /// session is closed when this returns, whatever the SMSC did; the error only says
    /// it did not answer the unbind.
    pub async fn close(&self) -> Result<()> {
        let shared = &self.shared;
        // Holding every slot keeps new submits out; submits in flight end by their timeout.
        let slots = timeout(
            shared.response_timeout,
            shared.window.acquire_many(shared.window_size),
        )
        .await;
        let unbound = match slots {
            Ok(Err(_)) => Ok(()), // already closed
            _ => match self
                .call(id::UNBIND, Vec::new(), shared.unbind_timeout)
                .await
            {
                Ok(_) | Err(CallError::Lost) => Ok(()),
                Err(CallError::Timeout) => Err(Error::Timeout {
                    what: "unbind",
                    after: shared.unbind_timeout,
                }),
            },
        };
        shared.shutdown.notify_one();
        let task = lock(&shared.task).take();
        if let Some(task) = task {
            let abort = task.abort_handle();
            if timeout(shared.unbind_timeout, task).await.is_err() {
                // A write stuck on a peer that reads nothing: drop the socket.
                abort.abort();
            }
        }
        shared.close();
        unbound
    }

    /// Sends a request and waits for the response with its sequence number.
    async fn call(
        &self,
        command_id: u32,
        body: Vec<u8>,
        limit: Duration,
    ) -> Result<Pdu, CallError> {
        let sequence = self.shared.sequence();
        let (tx, rx) = oneshot::channel();
        {
            let mut calls = lock(&self.shared.calls);
            if calls.closed {
                return Err(CallError::Lost);
            }
            calls.waiting.insert(sequence, tx);
        }
        let _forget = Forget(&self.shared, sequence);
        let frame = Pdu::request(command_id, sequence, body).encode();
        self.outgoing
            .send(frame)
            .await
            .map_err(|_| CallError::Lost)?;
        match timeout(limit, rx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(CallError::Lost),
            Err(_) => Err(CallError::Timeout),
        }
    }
}

/// Sends the bind and reads until its answer; PDUs behind it (a receipt the SMSC held
/// for us, say) stay in `buf` for the session task.
async fn bind_exchange(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    buf: &mut Vec<u8>,
    body: Vec<u8>,
) -> Result<Pdu> {
    writer
        .write_all(&Pdu::request(id::BIND_TRANSCEIVER, 1, body).encode())
        .await?;
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(pdu) = Pdu::take(buf).map_err(|e| Error::Protocol(e.to_string()))? {
            match pdu.command_id {
                id::BIND_TRANSCEIVER_RESP | id::GENERIC_NACK if pdu.sequence == 1 => {
                    return Ok(pdu);
                }
                id::ENQUIRE_LINK => {
                    let resp = Pdu::request(id::ENQUIRE_LINK_RESP, pdu.sequence, Vec::new());
                    writer.write_all(&resp.encode()).await?;
                }
                other => {
                    return Err(Error::Protocol(format!(
                        "command {other:#010x} before the bind was answered"
                    )));
                }
            }
        }
        match reader.read(&mut chunk).await? {
            0 => {
                return Err(Error::Protocol(
                    "connection closed during the bind".to_owned(),
                ));
            }
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Closes the session when the task ends, however it ends (aborted or panicking too).
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The background task's state: the socket and what it serves.
struct Connection {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    /// Octets read but not yet a whole PDU.
    buf: Vec<u8>,
    shared: Arc<Shared>,
    outgoing: mpsc::Receiver<Vec<u8>>,
    receipts: mpsc::Sender<Receipt>,
    enquire_link_interval: Duration,
    enquire_link_waiting: Option<u32>,
}

/// Why the session ended, for the log.
type Ended = String;

impl Connection {
    async fn run(mut self) -> Ended {
        match self.serve().await {
            Ok(()) => "closed".to_owned(),
            Err(why) => why,
        }
    }

    async fn serve(&mut self) -> Result<(), Ended> {
        let interval = self.enquire_link_interval;
        let mut enquire = tokio::time::interval_at(Instant::now() + interval, interval);
        enquire.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut chunk = vec![0u8; 16 * 1024];
        self.drain_buffer().await?;
        loop {
            tokio::select! {
                read = self.reader.read(&mut chunk) => match read {
                    Ok(0) => return Err("the SMSC closed the connection".to_owned()),
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        self.drain_buffer().await?;
                    }
                    Err(e) => return Err(format!("read failed: {e}")),
                },
                frame = self.outgoing.recv() => match frame {
                    Some(frame) => self.write_batch(frame).await?,
                    None => {
                        // Every Session clone is gone: unbind without waiting.
                        let unbind = Pdu::request(id::UNBIND, self.shared.sequence(), Vec::new());
                        let _ = self.writer.write_all(&unbind.encode()).await;
                        return Ok(());
                    }
                },
                _ = enquire.tick() => {
                    if self.enquire_link_waiting.is_some() {
                        return Err(format!("enquire_link unanswered for {interval:?}"));
                    }
                    let sequence = self.shared.sequence();
                    self.enquire_link_waiting = Some(sequence);
                    self.write(&Pdu::request(id::ENQUIRE_LINK, sequence, Vec::new())).await?;
                }
                () = self.shared.shutdown.notified() => return Ok(()),
            }
        }
    }

    /// Handles every complete PDU in the buffer.
    async fn drain_buffer(&mut self) -> Result<(), Ended> {
        while let Some(pdu) = Pdu::take(&mut self.buf).map_err(|e| e.to_string())? {
            self.handle(pdu).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, pdu: Pdu) -> Result<(), Ended> {
        match pdu.command_id {
            id::ENQUIRE_LINK_RESP if self.enquire_link_waiting == Some(pdu.sequence) => {
                self.enquire_link_waiting = None;
            }
            c if c & id::RESPONSE != 0 => {
                let waiting = lock(&self.shared.calls).waiting.remove(&pdu.sequence);
                match waiting {
                    Some(call) => {
                        let _ = call.send(pdu);
                    }
                    None => tracing::debug!(
                        command_id = c,
                        sequence = pdu.sequence,
                        "SMPP response nobody waits for (timed out?)"
                    ),
                }
            }
            id::ENQUIRE_LINK => {
                self.respond(&pdu, id::ENQUIRE_LINK_RESP, Status::ESME_ROK, Vec::new())
                    .await?;
            }
            id::DELIVER_SM => {
                let status = self.on_deliver_sm(&pdu);
                self.respond(&pdu, id::DELIVER_SM_RESP, status, pdu::deliver_sm_resp())
                    .await?;
            }
            id::UNBIND => {
                self.respond(&pdu, id::UNBIND_RESP, Status::ESME_ROK, Vec::new())
                    .await?;
                return Err("the SMSC unbound".to_owned());
            }
            other => {
                tracing::debug!(command_id = other, "unsupported SMPP request: generic_nack");
                self.respond(&pdu, id::GENERIC_NACK, Status::ESME_RINVCMDID, Vec::new())
                    .await?;
            }
        }
        Ok(())
    }

    /// Queues a receipt for the caller; the status to answer the `deliver_sm` with.
    fn on_deliver_sm(&self, pdu: &Pdu) -> Status {
        let deliver = match DeliverSm::parse(&pdu.body) {
            Ok(deliver) => deliver,
            Err(e) => {
                tracing::warn!("SMPP deliver_sm refused: {e}");
                return Status::ESME_RX_P_APPN;
            }
        };
        if !deliver.is_receipt() {
            tracing::debug!("mobile-originated SMS ignored");
            return Status::ESME_ROK;
        }
        let Some(receipt) = Receipt::parse(
            &deliver.message,
            deliver.receipted_message_id.as_deref(),
            deliver.message_state,
        ) else {
            tracing::warn!("SMPP receipt without a message id ignored");
            return Status::ESME_ROK;
        };
        match self.receipts.try_send(receipt) {
            // Nobody reads receipts: acknowledging is all we can do.
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Status::ESME_ROK,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("SMPP receipt buffer full: asking the SMSC to send it again");
                Status::ESME_RX_T_APPN
            }
        }
    }

    async fn respond(
        &mut self,
        to: &Pdu,
        command_id: u32,
        status: Status,
        body: Vec<u8>,
    ) -> Result<(), Ended> {
        let resp = Pdu {
            command_id,
            status,
            sequence: to.sequence,
            body,
        };
        self.write(&resp).await
    }

    async fn write(&mut self, pdu: &Pdu) -> Result<(), Ended> {
        self.writer
            .write_all(&pdu.encode())
            .await
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Writes `first` and whatever else is queued, in one write.
    async fn write_batch(&mut self, first: Vec<u8>) -> Result<(), Ended> {
        let mut out = first;
        while out.len() < 32 * 1024 {
            match self.outgoing.try_recv() {
                Ok(frame) => out.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        self.writer
            .write_all(&out)
            .await
            .map_err(|e| format!("write failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_for_the_caller() {
        for status in [Status::ESME_RTHROTTLED, Status::ESME_RMSGQFUL] {
            assert_eq!(
                SubmitError::from_status(status),
                SubmitError::Throttled { status }
            );
        }
        for status in [
            Status::ESME_RINVDSTADR,
            Status::ESME_RINVMSGLEN,
            Status::ESME_RINVESMCLASS,
        ] {
            assert_eq!(
                SubmitError::from_status(status),
                SubmitError::Refused { status }
            );
        }
        // Temporary, about our configuration, or unknown: never a lost message.
        for status in [
            Status::ESME_RSYSERR,
            Status::ESME_RSUBMITFAIL,
            Status::ESME_RINVBNDSTS,
            Status::ESME_RINVSRCADR,
            Status(0x0000_0401),
        ] {
            assert_eq!(
                SubmitError::from_status(status),
                SubmitError::Failed { status }
            );
        }
    }

    #[test]
    fn sequence_numbers_wrap_within_the_positive_range() {
        let shared = Shared {
            calls: Mutex::default(),
            window: Semaphore::new(1),
            window_size: 1,
            next_sequence: AtomicU32::new(0x7FFF_FFFE),
            response_timeout: Duration::from_secs(1),
            unbind_timeout: Duration::from_secs(1),
            shutdown: Notify::new(),
            task: Mutex::default(),
        };
        let got: Vec<u32> = (0..3).map(|_| shared.sequence()).collect();
        assert_eq!(got, [0x7FFF_FFFE, 0x7FFF_FFFF, 1]);
    }
}
