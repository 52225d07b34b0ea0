//! What a delivery carries (the policy itself, or a notice about a policy the recipient
//! received earlier) and the ledger key that makes each go out once.
//!
//! A policy keeps the key it always had, `(policy, recipient, channel)`, so deployed
//! ledgers still dedup it. A notice is another delivery of its own: its ledger policy id is
//! `<policy>#rev<version>` (a revision's "政策已更新") or `<policy>#withdrawn` (the one
//! withdrawal notice), so each goes out once per (policy, notice, version, recipient,
//! channel). `#` never occurs in a policy id, so no policy's key can be a notice's. Pure.

use zhida_proto::events::v1::{Channel, DeliveryRequested, Notice};
use zhida_store::DeliveryKey;

/// What `request` carries; `None` for a notice kind this notifier does not know.
pub(crate) fn notice_of(request: &DeliveryRequested) -> Option<Notice> {
    Notice::try_from(request.notice).ok()
}

/// The ledger's policy id of `notice` about version `version` (0 reads as 1) of
/// `policy_id`.
pub(crate) fn ledger_policy_id(policy_id: &str, notice: Notice, version: u32) -> String {
    match notice {
        Notice::PolicyUnspecified => policy_id.to_string(),
        Notice::Revision => format!("{policy_id}#rev{}", version.max(1)),
        Notice::Withdrawal => format!("{policy_id}#withdrawn"),
    }
}

/// The ledger key of `request` on `channel` (its notice kind known).
pub(crate) fn delivery_key(
    request: &DeliveryRequested,
    notice: Notice,
    channel: Channel,
) -> DeliveryKey {
    DeliveryKey {
        policy_id: ledger_policy_id(&request.policy_id, notice, request.version),
        recipient_id: request.recipient_id.clone(),
        channel,
    }
}

/// The key a channel knows `request` by (an SMS receipt, a Message-ID, an inbox item):
/// its ledger key, or the policy's when the notice kind is unknown (never sent: the
/// sender refuses such a request first).
pub(crate) fn channel_key(request: &DeliveryRequested, channel: Channel) -> DeliveryKey {
    delivery_key(
        request,
        notice_of(request).unwrap_or(Notice::PolicyUnspecified),
        channel,
    )
}

/// Whether `text` names a delivery as [`ledger_policy_id`] spells it: a policy id, or a
/// policy id with a notice's suffix (`#rev<n>` with `n` from 1, `#withdrawn`). What an
/// inbox item is marked read by.
pub(crate) fn is_item_id(text: &str) -> bool {
    let (policy_id, suffix) = match text.split_once('#') {
        Some((policy_id, suffix)) => (policy_id, Some(suffix)),
        None => (text, None),
    };
    let suffix_ok = match suffix {
        None | Some("withdrawn") => true,
        Some(suffix) => suffix.strip_prefix("rev").is_some_and(|n| {
            !n.starts_with('0') && n.len() <= 10 && n.parse::<u32>().is_ok_and(|n| n >= 1)
        }),
    };
    suffix_ok && crate::sender::is_id(policy_id) && text.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_are_the_ledger_policy_ids_and_nothing_else() {
        for notice in [
            Notice::PolicyUnspecified,
            Notice::Revision,
            Notice::Withdrawal,
        ] {
            let id = ledger_policy_id("p-1", notice, 12);
            assert!(is_item_id(&id), "{id}");
        }
        for bad in [
            "",
            "#rev1",
            "p-1#",
            "p-1#rev",
            "p-1#rev0",
            "p-1#rev01",
            "p-1#rev-1",
            "p-1#rev99999999999",
            "p-1#withdrawn#rev2",
            "p-1#WITHDRAWN",
            "p 1",
            "p-1#rev2 ",
        ] {
            assert!(!is_item_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_policy_keeps_its_key_and_each_notice_has_its_own() {
        let request = DeliveryRequested {
            policy_id: "p-1".into(),
            recipient_id: "c-1".into(),
            version: 3,
            ..DeliveryRequested::default()
        };
        let key = |notice| delivery_key(&request, notice, Channel::Email).encoded();
        assert_eq!(key(Notice::PolicyUnspecified), "p-1|c-1|email");
        assert_eq!(key(Notice::Revision), "p-1#rev3|c-1|email");
        assert_eq!(key(Notice::Withdrawal), "p-1#withdrawn|c-1|email");
        assert_eq!(
            ledger_policy_id("p-1", Notice::Revision, 0),
            "p-1#rev1",
            "version 0 reads as 1"
        );
        assert_ne!(
            ledger_policy_id("p-1", Notice::Revision, 2),
            ledger_policy_id("p-1", Notice::Revision, 3)
        );
        let unknown = DeliveryRequested {
            notice: 99,
            ..request.clone()
        };
        assert_eq!(notice_of(&unknown), None);
        assert_eq!(channel_key(&unknown, Channel::Sms).policy_id, "p-1");
        let revision = DeliveryRequested {
            notice: Notice::Revision as i32,
            ..request
        };
        assert_eq!(channel_key(&revision, Channel::Sms).policy_id, "p-1#rev3");
    }
}
