//! The SMPP 3.4 wire format of the PDUs an ESME transceiver needs, and nothing more:
//! the 16-octet header, framing by `command_length`, the bodies of `bind_transceiver`,
//! `submit_sm` and `deliver_sm_resp` (encoded) and of `submit_sm_resp` and `deliver_sm`
//! (decoded), and the `command_status` codes. Every other PDU we send or read
//! (`enquire_link`, `unbind`, their responses, `generic_nack`) is a header without a body.
//!
//! Field sizes are the specification's maxima *including* the terminating NUL of a
//! C-octet string (SMPP 3.4, section 5.2): a value that does not fit is refused before
//! anything is sent rather than truncated.

use std::fmt;

use secrecy::ExposeSecret;

use crate::session::{Config, Submit};

/// `command_id` values (SMPP 3.4, section 5.1.2.1).
pub(crate) mod id {
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const UNBIND_RESP: u32 = 0x8000_0006;
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
    /// The bit that marks a response.
    pub const RESPONSE: u32 = 0x8000_0000;
}

/// TLV tags read from `deliver_sm` (SMPP 3.4, section 5.3.2).
mod tag {
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const MESSAGE_STATE: u16 = 0x0427;
}

const HEADER_LEN: usize = 16;
/// Longest PDU we accept from the SMSC: a `deliver_sm` with a full `message_payload`
/// TLV fits; anything longer means the stream is out of step.
const MAX_PDU_LEN: usize = 70_000;
/// `interface_version` in the bind: SMPP 3.4.
const INTERFACE_VERSION_34: u8 = 0x34;

/// An SMPP `command_status` (SMPP 3.4, section 5.1.3), shown as its name and code,
/// e.g. `ESME_RTHROTTLED (0x00000058)`; codes the specification does not name
/// (such as the SMSC vendor range 0x400–0x4FF) show as the code alone.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u32);

macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        #[allow(missing_docs)]
        impl Status {
            $($(#[$doc])* pub const $name: Status = Status($code);)*

            /// The specification's name of this status, if it has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($code => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    ESME_ROK = 0x00,
    ESME_RINVMSGLEN = 0x01,
    ESME_RINVCMDLEN = 0x02,
    ESME_RINVCMDID = 0x03,
    ESME_RINVBNDSTS = 0x04,
    ESME_RALYBND = 0x05,
    ESME_RINVPRTFLG = 0x06,
    ESME_RINVREGDLVFLG = 0x07,
    ESME_RSYSERR = 0x08,
    ESME_RINVSRCADR = 0x0A,
    ESME_RINVDSTADR = 0x0B,
    ESME_RINVMSGID = 0x0C,
    ESME_RBINDFAIL = 0x0D,
    ESME_RINVPASWD = 0x0E,
    ESME_RINVSYSID = 0x0F,
    ESME_RCANCELFAIL = 0x11,
    ESME_RREPLACEFAIL = 0x13,
    ESME_RMSGQFUL = 0x14,
    ESME_RINVSERTYP = 0x15,
    ESME_RINVNUMDESTS = 0x33,
    ESME_RINVDLNAME = 0x34,
    ESME_RINVDESTFLAG = 0x40,
    ESME_RINVSUBREP = 0x42,
    ESME_RINVESMCLASS = 0x43,
    ESME_RCNTSUBDL = 0x44,
    ESME_RSUBMITFAIL = 0x45,
    ESME_RINVSRCTON = 0x48,
    ESME_RINVSRCNPI = 0x49,
    ESME_RINVDSTTON = 0x50,
    ESME_RINVDSTNPI = 0x51,
    ESME_RINVSYSTYP = 0x53,
    ESME_RINVREPFLAG = 0x54,
    ESME_RINVNUMMSGS = 0x55,
    ESME_RTHROTTLED = 0x58,
    ESME_RINVSCHED = 0x61,
    ESME_RINVEXPIRY = 0x62,
    ESME_RINVDFTMSGID = 0x63,
    ESME_RX_T_APPN = 0x64,
    ESME_RX_P_APPN = 0x65,
    ESME_RX_R_APPN = 0x66,
    ESME_RQUERYFAIL = 0x67,
    ESME_RINVOPTPARSTREAM = 0xC0,
    ESME_ROPTPARNOTALLWD = 0xC1,
    ESME_RINVPARLEN = 0xC2,
    ESME_RMISSINGOPTPARAM = 0xC3,
    ESME_RINVOPTPARAMVAL = 0xC4,
    ESME_RDELIVERYFAILURE = 0xFE,
    ESME_RUNKNOWNERR = 0xFF,
}

impl Status {
    /// Whether this is `ESME_ROK`.
    pub fn is_ok(self) -> bool {
        self == Status::ESME_ROK
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#010x})", self.0),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One PDU: its header and the raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pdu {
    pub command_id: u32,
    pub status: Status,
    pub sequence: u32,
    pub body: Vec<u8>,
}

/// The byte stream cannot be PDUs: the connection must be dropped.
#[derive(Debug, thiserror::Error)]
#[error("command_length {0} is outside {HEADER_LEN}..={MAX_PDU_LEN}")]
pub(crate) struct BadLength(usize);

/// A PDU body that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("malformed PDU body: {0}")]
pub(crate) struct Malformed(&'static str);

impl Pdu {
    /// A request (status 0).
    pub fn request(command_id: u32, sequence: u32, body: Vec<u8>) -> Pdu {
        Pdu {
            command_id,
            status: Status::ESME_ROK,
            sequence,
            body,
        }
    }

    /// The framed bytes: `command_length`, the rest of the header, the body.
    pub fn encode(&self) -> Vec<u8> {
        let len = HEADER_LEN + self.body.len();
        let mut out = Vec::with_capacity(len);
        // Bodies we build are at most a few hundred octets.
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.command_id.to_be_bytes());
        out.extend_from_slice(&self.status.0.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Splits the first complete PDU off `buf`; `Ok(None)` until one has fully arrived.
    pub fn take(buf: &mut Vec<u8>) -> Result<Option<Pdu>, BadLength> {
        let Some(len) = buf.get(..4).map(be_u32) else {
            return Ok(None);
        };
        let len = len as usize;
        if !(HEADER_LEN..=MAX_PDU_LEN).contains(&len) {
            return Err(BadLength(len));
        }
        if buf.len() < len {
            return Ok(None);
        }
        let pdu = Pdu {
            command_id: be_u32(&buf[4..8]),
            status: Status(be_u32(&buf[8..12])),
            sequence: be_u32(&buf[12..16]),
            body: buf[HEADER_LEN..len].to_vec(),
        };
        buf.drain(..len);
        Ok(Some(pdu))
    }
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0, |n, &x| (n << 8) | u32::from(x))
}

/// Appends a C-octet string of at most `max` octets including its NUL.
fn put_cstr(out: &mut Vec<u8>, field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() >= max {
        return Err(format!(
            "{field} is {} octets, SMPP allows {}",
            value.len(),
            max - 1
        ));
    }
    if value.contains('\0') {
        return Err(format!("{field} contains a NUL"));
    }
    out.extend_from_slice(value.as_bytes());
    out.push(0);
    Ok(())
}

/// The `bind_transceiver` body (SMPP 3.4, section 4.1.5).
pub(crate) fn bind_transceiver(config: &Config) -> Result<Vec<u8>, String> {
    let mut b = Vec::with_capacity(48);
    put_cstr(&mut b, "system_id", &config.system_id, 16)?;
    put_cstr(&mut b, "password", config.password.expose_secret(), 9)?;
    put_cstr(&mut b, "system_type", &config.system_type, 13)?;
    b.push(INTERFACE_VERSION_34);
    b.extend_from_slice(&[0, 0]); // addr_ton, addr_npi
    b.push(0); // address_range: empty
    Ok(b)
}

/// The `submit_sm` body (SMPP 3.4, section 4.4.1); the message goes in `short_message`,
/// never in `message_payload`, so every segment is one SMS.
pub(crate) fn submit_sm(s: &Submit) -> Result<Vec<u8>, String> {
    let len = u8::try_from(s.short_message.len())
        .ok()
        .filter(|&n| n <= 254)
        .ok_or_else(|| {
            format!(
                "short_message is {} octets, SMPP allows 254",
                s.short_message.len()
            )
        })?;
    let mut b = Vec::with_capacity(64 + s.short_message.len());
    b.push(0); // service_type: default
    b.extend_from_slice(&[s.source.ton, s.source.npi]);
    put_cstr(&mut b, "source_addr", &s.source.addr, 21)?;
    b.extend_from_slice(&[s.destination.ton, s.destination.npi]);
    put_cstr(&mut b, "destination_addr", &s.destination.addr, 21)?;
    b.push(s.esm_class);
    b.push(0); // protocol_id
    b.push(0); // priority_flag
    b.push(0); // schedule_delivery_time: immediate
    b.push(0); // validity_period: the SMSC's default
    b.push(s.registered_delivery);
    b.push(0); // replace_if_present_flag
    b.push(s.data_coding);
    b.push(0); // sm_default_msg_id
    b.push(len);
    b.extend_from_slice(&s.short_message);
    Ok(b)
}

/// The `deliver_sm_resp` body: `message_id`, unused, NULL.
pub(crate) fn deliver_sm_resp() -> Vec<u8> {
    vec![0]
}

/// Reads fields front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A C-octet string, without its NUL.
    fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self.0.iter().position(|&b| b == 0).ok_or(Malformed(what))?;
        let s = &self.0[..end];
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
}

/// The `message_id` of a `submit_sm_resp`. SMSCs that send no body (some do, even with
/// `ESME_ROK`) get an empty id rather than an error: the message *was* accepted.
pub(crate) fn submit_sm_resp(body: &[u8]) -> String {
    let id = match body.iter().position(|&b| b == 0) {
        Some(end) => &body[..end],
        None => body,
    };
    String::from_utf8_lossy(id).into_owned()
}

/// What we read from a `deliver_sm` (SMPP 3.4, section 4.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeliverSm {
    pub esm_class: u8,
    /// `short_message`, or the `message_payload` TLV when that carries the text.
    pub message: Vec<u8>,
    pub receipted_message_id: Option<String>,
    pub message_state: Option<u8>,
}

impl DeliverSm {
    pub fn parse(body: &[u8]) -> Result<DeliverSm, Malformed> {
        let mut r = Reader(body);
        r.cstr("service_type")?;
        r.take(2, "source_addr_ton/npi")?;
        r.cstr("source_addr")?;
        r.take(2, "dest_addr_ton/npi")?;
        r.cstr("destination_addr")?;
        let esm_class = r.u8("esm_class")?;
        r.take(2, "protocol_id, priority_flag")?;
        r.cstr("schedule_delivery_time")?;
        r.cstr("validity_period")?;
        r.take(3, "registered_delivery .. data_coding")?;
        r.u8("sm_default_msg_id")?;
        let sm_length = r.u8("sm_length")?;
        let mut message = r.take(usize::from(sm_length), "short_message")?.to_vec();
        let mut receipted_message_id = None;
        let mut message_state = None;
        while !r.0.is_empty() {
            let tag = r.u16("TLV tag")?;
            let len = r.u16("TLV length")?;
            let value = r.take(usize::from(len), "TLV value")?;
            match tag {
                tag::RECEIPTED_MESSAGE_ID => {
                    let id = value.split(|&b| b == 0).next().unwrap_or_default();
                    receipted_message_id = Some(String::from_utf8_lossy(id).into_owned());
                }
                tag::MESSAGE_STATE => message_state = value.first().copied(),
                tag::MESSAGE_PAYLOAD if message.is_empty() => message = value.to_vec(),
                _ => {}
            }
        }
        Ok(DeliverSm {
            esm_class,
            message,
            receipted_message_id,
            message_state,
        })
    }

    /// Whether the SMSC marks this as a receipt or an intermediate notification
    /// (`esm_class` message type bits 2–5), rather than a mobile-originated message.
    pub fn is_receipt(&self) -> bool {
        self.esm_class & 0x3C != 0 || self.receipted_message_id.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Address;

    #[test]
    fn bind_transceiver_matches_the_specification_layout() {
        let config = Config::new("127.0.0.1:2775", "SMPP3TEST", "secret08".into());
        let body = bind_transceiver(&config).expect("fits");
        let pdu = Pdu::request(id::BIND_TRANSCEIVER, 1, body).encode();
        let mut expected = vec![0, 0, 0, 0x28, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1];
        expected.extend_from_slice(b"SMPP3TEST\0secret08\0\0");
        expected.extend_from_slice(&[0x34, 0, 0, 0]);
        assert_eq!(pdu, expected);
    }

    #[test]
    fn fields_longer_than_smpp_allows_are_refused_not_truncated() {
        let config = Config::new("x:1", "sixteen-chars-id", "secret".into());
        assert!(bind_transceiver(&config).is_err());
        let config = Config::new("x:1", "t", "ninechars".into());
        assert!(bind_transceiver(&config).is_err());

        let mut submit = Submit {
            source: Address::alphanumeric("Zhida"),
            destination: Address::international("8613800138000"),
            data_coding: 8,
            esm_class: 0,
            registered_delivery: 1,
            short_message: vec![0; 254],
        };
        assert!(submit_sm(&submit).is_ok());
        submit.short_message.push(0);
        assert!(submit_sm(&submit).is_err());
        submit.short_message.clear();
        submit.destination.addr = "1".repeat(21);
        assert!(submit_sm(&submit).is_err());
    }

    #[test]
    fn submit_sm_round_trips_through_the_deliver_sm_reader() {
        // deliver_sm shares submit_sm's layout, so the reader checks the writer.
        let submit = Submit {
            source: Address::alphanumeric("Zhida"),
            destination: Address::international("8613800138000"),
            data_coding: 8,
            esm_class: 0x40,
            registered_delivery: 1,
            short_message: vec![5, 0, 3, 7, 2, 1, 0x4E, 0x2D],
        };
        let mut body = submit_sm(&submit).expect("fits");
        body.extend_from_slice(&[0x00, 0x1E, 0x00, 0x04, b'a', b'b', b'c', 0]);
        body.extend_from_slice(&[0x04, 0x27, 0x00, 0x01, 0x05]);
        let d = DeliverSm::parse(&body).expect("parses");
        assert_eq!(d.esm_class, 0x40);
        assert_eq!(d.message, submit.short_message);
        assert_eq!(d.receipted_message_id.as_deref(), Some("abc"));
        assert_eq!(d.message_state, Some(5));
    }

    #[test]
    fn frames_are_split_by_command_length_and_wait_for_their_last_octet() {
        let a = Pdu::request(id::ENQUIRE_LINK, 7, vec![]).encode();
        let b = Pdu {
            command_id: id::BIND_TRANSCEIVER_RESP,
            status: Status::ESME_RINVPASWD,
            sequence: 1,
            body: vec![],
        }
        .encode();
        let mut buf = [a.clone(), b[..10].to_vec()].concat();
        let first = Pdu::take(&mut buf).expect("valid").expect("complete");
        assert_eq!((first.command_id, first.sequence), (id::ENQUIRE_LINK, 7));
        assert!(Pdu::take(&mut buf).expect("valid").is_none());
        buf.extend_from_slice(&b[10..]);
        let second = Pdu::take(&mut buf).expect("valid").expect("complete");
        assert_eq!(second.status, Status::ESME_RINVPASWD);
        assert!(buf.is_empty());

        let mut bad = vec![0, 0, 0, 8, 0, 0, 0, 0];
        assert!(Pdu::take(&mut bad).is_err());
    }

    #[test]
    fn statuses_show_their_name_and_code() {
        assert_eq!(
            Status::ESME_RTHROTTLED.to_string(),
            "ESME_RTHROTTLED (0x00000058)"
        );
        assert_eq!(Status(0x401).to_string(), "0x00000401");
    }
}
