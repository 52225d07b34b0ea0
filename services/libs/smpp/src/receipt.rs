//! Delivery receipts: the final (or intermediate) state of a submitted message, as the
//! SMSC reports it in a `deliver_sm`. Pure parsing, no I/O.
//!
//! SMPP 3.4 (appendix B) gives the receipt's text the de-facto format
//! `id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
//! err:E text:…`; the `receipted_message_id` and `message_state` TLVs carry the id and
//! state in binary, and win when present: some SMSCs write the id in the text in another
//! base than in `submit_sm_resp`, but the TLV is always the id `submit_sm_resp` gave.

/// A parsed delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The `message_id` the SMSC answered the `submit_sm` with.
    pub message_id: String,
    /// What became of the message.
    pub state: ReceiptState,
    /// The text's `err:` field as written (e.g. `000`, `001`), network or SMSC specific.
    pub error_code: Option<String>,
}

/// The state a receipt reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptState {
    /// `DELIVRD` / `message_state` 2: on the handset.
    Delivered,
    /// `UNDELIV` / 5: the network gave up (number out of service, blocked …).
    Undeliverable,
    /// `EXPIRED` / 3: the validity period ran out before delivery.
    Expired,
    /// `REJECTD` / 8: the SMSC or network rejected it after accepting the submit.
    Rejected,
    /// `UNKNOWN` / 7: the SMSC does not know.
    Unknown,
    /// Any other state, e.g. `ENROUTE`, `ACCEPTD`, `DELETED`, or an SMSC's own code;
    /// a numeric `message_state` without a name shows as its number.
    Other(String),
}

impl ReceiptState {
    fn from_stat(stat: &str) -> ReceiptState {
        match stat.to_ascii_uppercase().as_str() {
            "DELIVRD" => ReceiptState::Delivered,
            "UNDELIV" => ReceiptState::Undeliverable,
            "EXPIRED" => ReceiptState::Expired,
            "REJECTD" => ReceiptState::Rejected,
            "UNKNOWN" => ReceiptState::Unknown,
            other => ReceiptState::Other(other.to_owned()),
        }
    }

    /// SMPP 3.4, section 5.2.28.
    fn from_message_state(state: u8) -> ReceiptState {
        match state {
            1 => ReceiptState::Other("ENROUTE".to_owned()),
            2 => ReceiptState::Delivered,
            3 => ReceiptState::Expired,
            4 => ReceiptState::Other("DELETED".to_owned()),
            5 => ReceiptState::Undeliverable,
            6 => ReceiptState::Other("ACCEPTD".to_owned()),
            7 => ReceiptState::Unknown,
            8 => ReceiptState::Rejected,
            n => ReceiptState::Other(n.to_string()),
        }
    }
}

impl Receipt {
    /// Parses a receipt from a `deliver_sm`'s text and its `receipted_message_id` and
    /// `message_state` TLVs (which take precedence over the text's `id:` and `stat:`).
    /// `None` when no message id can be found: that is not a receipt we can match.
    pub fn parse(
        text: &[u8],
        receipted_message_id: Option<&str>,
        message_state: Option<u8>,
    ) -> Option<Receipt> {
        let text = String::from_utf8_lossy(text);
        let (mut id, mut stat, mut err) = (None, None, None);
        // Everything after `text:` is the message's own words: never read fields there.
        for token in head(&text).split_whitespace() {
            let Some((key, value)) = token.split_once(':') else {
                continue;
            };
            if key.eq_ignore_ascii_case("id") {
                id.get_or_insert(value);
            } else if key.eq_ignore_ascii_case("stat") {
                stat.get_or_insert(value);
            } else if key.eq_ignore_ascii_case("err") {
                err.get_or_insert(value);
            }
        }
        let message_id = receipted_message_id
            .filter(|id| !id.is_empty())
            .or(id.filter(|id| !id.is_empty()))?
            .to_owned();
        let state = match (message_state, stat) {
            (Some(state), _) => ReceiptState::from_message_state(state),
            (None, Some(stat)) => ReceiptState::from_stat(stat),
            (None, None) => ReceiptState::Unknown,
        };
        Some(Receipt {
            message_id,
            state,
            error_code: err.map(str::to_owned),
        })
    }
}

/// The text before its `text:` field.
fn head(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("text:") {
        let at = from + at;
        if at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace() {
            return &text[..at];
        }
        from = at + 5;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERED: &str = "id:9f3a00000001 sub:001 dlvrd:001 submit date:2506010830 \
        done date:2506010831 stat:DELIVRD err:000 text:stat:UNDELIV id:x";

    #[test]
    fn text_receipt_gives_id_state_and_error() {
        let r = Receipt::parse(DELIVERED.as_bytes(), None, None).expect("a receipt");
        assert_eq!(
            r,
            Receipt {
                message_id: "9f3a00000001".to_owned(),
                state: ReceiptState::Delivered,
                error_code: Some("000".to_owned()),
            }
        );
    }

    #[test]
    fn tlvs_win_over_the_text() {
        let text = "id:123 sub:001 dlvrd:000 submit date:2506010830 done date:2506010831 \
            stat:DELIVRD err:001 text:";
        let r = Receipt::parse(text.as_bytes(), Some("7b"), Some(5)).expect("a receipt");
        assert_eq!(r.message_id, "7b");
        assert_eq!(r.state, ReceiptState::Undeliverable);
        assert_eq!(r.error_code.as_deref(), Some("001"));
    }

    #[test]
    fn every_named_state_maps() {
        for (stat, state) in [
            ("UNDELIV", ReceiptState::Undeliverable),
            ("EXPIRED", ReceiptState::Expired),
            ("REJECTD", ReceiptState::Rejected),
            ("UNKNOWN", ReceiptState::Unknown),
            ("ACCEPTD", ReceiptState::Other("ACCEPTD".to_owned())),
        ] {
            let text = format!("id:1 stat:{stat} err:000");
            let r = Receipt::parse(text.as_bytes(), None, None).expect("a receipt");
            assert_eq!(r.state, state, "{stat}");
        }
        for (n, state) in [
            (2, ReceiptState::Delivered),
            (3, ReceiptState::Expired),
            (8, ReceiptState::Rejected),
            (1, ReceiptState::Other("ENROUTE".to_owned())),
            (42, ReceiptState::Other("42".to_owned())),
        ] {
            let r = Receipt::parse(b"", Some("1"), Some(n)).expect("a receipt");
            assert_eq!(r.state, state, "{n}");
        }
    }

    #[test]
    fn without_a_message_id_it_is_not_a_receipt() {
        assert_eq!(Receipt::parse(b"hello stat:DELIVRD", None, Some(2)), None);
        assert_eq!(Receipt::parse(b"id: stat:DELIVRD", Some(""), None), None);
    }
}
