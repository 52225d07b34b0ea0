//! Subscribers as the relay keeps them: the registered [`Subscriber`] with its webhook's
//! secrets ([`Stored`]), how a put is checked ([`check`]), and which secrets sign now
//! ([`Stored::signing_secrets`]). Pure: the registry store and DNS are the caller's.

use std::collections::BTreeMap;

use zhida_audience::Rule;
use zhida_catalogue::Industries;
use zhida_proto::{
    events::v1::RelaySubscriberKind,
    relay::v1::{Subscriber, SubscriberContact, Webhook, WebhookState},
};
use zhida_runtime::FieldViolations;
use zhida_webhook::{Guard, Secret};

/// Deepest tier: a park, its building operator, and one more.
pub const MAX_TIER: u32 = 3;
/// Most members one subscriber may list.
pub const MAX_MEMBERS: usize = 10_000;
const MAX_CONTACTS: usize = 5;

/// A subscriber record in the registry: what was put, its webhook's state, and its secrets.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stored {
    /// As put, with output fields (`tier`, `updated_at`, the webhook's state) the relay's.
    #[prost(message, optional, tag = "1")]
    pub subscriber: Option<Subscriber>,
    /// `whsec_…`: the current secret first, then the one rotated out.
    #[prost(string, repeated, tag = "2")]
    pub secrets: Vec<String>,
    /// Until when (Unix ms) the second secret still signs.
    #[prost(int64, tag = "3")]
    pub previous_valid_until_ms: i64,
}

impl Stored {
    pub fn id(&self) -> &str {
        self.subscriber.as_ref().map_or("", |s| s.id.as_str())
    }

    pub fn webhook(&self) -> Option<&Webhook> {
        self.subscriber.as_ref().and_then(|s| s.webhook.as_ref())
    }

    /// Whether deliveries go out to its webhook now.
    pub fn webhook_enabled(&self) -> bool {
        self.webhook()
            .is_some_and(|w| w.state != WebhookState::Disabled as i32 && !w.url.is_empty())
    }

    /// The secrets that sign a delivery at `now_ms`: the current one, and the previous one
    /// during its grace period. Unreadable ones (never written by this relay) are skipped.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<Secret> {
        self.secrets
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || now_ms < self.previous_valid_until_ms)
            .take(2)
            .filter_map(|(_, s)| Secret::parse(s).ok())
            .collect()
    }
}

/// A subscriber's place in the registry: its parsed scope and its tier.
#[derive(Debug, Clone)]
pub struct Entry {
    pub stored: Stored,
    pub scope: Option<Rule>,
    pub tier: u32,
}

impl Entry {
    pub fn subscriber(&self) -> &Subscriber {
        static EMPTY: std::sync::OnceLock<Subscriber> = std::sync::OnceLock::new();
        self.stored
            .subscriber
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Subscriber::default))
    }
}

/// Every subscriber by id, with tiers computed from the parent links.
pub fn entries(stored: Vec<Stored>, industries: &Industries) -> BTreeMap<String, Entry> {
    let parents: BTreeMap<String, String> = stored
        .iter()
        .filter_map(|s| s.subscriber.as_ref())
        .map(|s| (s.id.clone(), s.parent_id.clone()))
        .collect();
    let tier = |id: &str| {
        let mut tier = 1;
        let mut at = id;
        while let Some(parent) = parents.get(at).filter(|p| !p.is_empty()) {
            tier += 1;
            at = parent;
            if tier > MAX_TIER + 1 {
                break; // a loop nothing valid writes; cut it
            }
        }
        tier
    };
    stored
        .into_iter()
        .filter(|s| !s.id().is_empty())
        .map(|s| {
            let scope = s
                .subscriber
                .as_ref()
                .and_then(|sub| crate::scope::parse(&sub.scope, industries).ok().flatten());
            let id = s.id().to_string();
            let tier = tier(&id);
            (
                id,
                Entry {
                    stored: s,
                    scope,
                    tier,
                },
            )
        })
        .collect()
}

/// Checks a put against the registry as it is (`existing`), returning the subscriber to
/// store (trimmed, members deduplicated, output fields cleared).
pub fn check(
    put: Option<Subscriber>,
    existing: &BTreeMap<String, Entry>,
    industries: &Industries,
    guard: &Guard,
) -> Result<Subscriber, FieldViolations> {
    let mut bad = FieldViolations::new();
    let Some(mut s) = put else {
        bad.add("subscriber", "required");
        return Err(bad);
    };
    if !valid_id(&s.id) {
        bad.add(
            "subscriber.id",
            "2–64 of a-z, 0-9 and -, starting with a letter or digit",
        );
    }
    let kind = RelaySubscriberKind::try_from(s.kind).ok();
    match kind {
        None => bad.add(
            "subscriber.kind",
            format!("unknown kind {}: ASSOCIATION or PARK", s.kind),
        ),
        Some(RelaySubscriberKind::Unspecified) => {
            bad.add("subscriber.kind", "required: ASSOCIATION or PARK");
        }
        Some(_) => {}
    }
    if !s.parent_id.is_empty() {
        match existing.get(&s.parent_id) {
            _ if s.parent_id == s.id => bad.add("subscriber.parent_id", "cannot be itself"),
            None => bad.add("subscriber.parent_id", "no such subscriber"),
            Some(parent) if parent.tier >= MAX_TIER => bad.add(
                "subscriber.parent_id",
                format!("is at tier {MAX_TIER}, the deepest"),
            ),
            Some(parent) if parent.subscriber().kind != s.kind => bad.add(
                "subscriber.kind",
                "must be the kind of its parent (a park's tiers are parks)",
            ),
            Some(_) => {}
        }
    }
    if let Some(current) = existing.get(&s.id)
        && current.subscriber().parent_id != s.parent_id
        && existing.values().any(|e| e.subscriber().parent_id == s.id)
    {
        bad.add(
            "subscriber.parent_id",
            "cannot change while it has child tiers: move or remove them first",
        );
    }
    s.display_name = s.display_name.trim().to_string();
    if s.display_name.is_empty()
        || s.display_name.chars().count() > 100
        || s.display_name.chars().any(char::is_control)
    {
        bad.add(
            "subscriber.display_name",
            "1–100 characters, no control characters",
        );
    }
    if s.contacts.len() > MAX_CONTACTS {
        bad.add(
            "subscriber.contacts",
            format!("at most {MAX_CONTACTS} contacts"),
        );
    }
    for (i, contact) in s.contacts.iter().enumerate() {
        check_contact(&mut bad, i, contact);
    }
    if let Err(error) = crate::scope::parse(&s.scope, industries) {
        bad.add("subscriber.scope", error.to_string());
    }
    if s.members.len() > MAX_MEMBERS {
        bad.add(
            "subscriber.members",
            format!("at most {MAX_MEMBERS} members"),
        );
    }
    for (i, member) in s.members.iter().enumerate() {
        if !valid_member(member) {
            bad.add(
                format!("subscriber.members[{i}]"),
                "an enterprise id: 1–128 characters, no spaces or control characters",
            );
        }
    }
    s.members.sort();
    s.members.dedup();
    if let Some(webhook) = &mut s.webhook {
        if let Err(error) = guard.check_url(&webhook.url) {
            bad.add("subscriber.webhook.url", error.to_string());
        }
        if webhook.max_per_second > 10_000 {
            bad.add("subscriber.webhook.max_per_second", "at most 10000");
        }
        // Output only: the relay's.
        webhook.state = WebhookState::Enabled as i32;
        webhook.disabled_reason.clear();
        webhook.pending = 0;
        webhook.overflowed = 0;
    }
    s.tier = 0;
    s.updated_at = None;
    bad.into_result().map(|()| s)
}

fn check_contact(bad: &mut FieldViolations, i: usize, contact: &SubscriberContact) {
    let at = |field: &str| format!("subscriber.contacts[{i}].{field}");
    if contact.name.chars().count() > 50 || contact.name.chars().any(char::is_control) {
        bad.add(at("name"), "at most 50 characters, no control characters");
    }
    if contact.email.is_empty() && contact.phone.is_empty() {
        bad.add(at("email"), "an email or a phone is required");
    }
    let email = &contact.email;
    if !email.is_empty()
        && (email.len() > 254
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
            || !email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.')))
    {
        bad.add(at("email"), "not an email address");
    }
    let phone = &contact.phone;
    let mobile =
        phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit());
    if !phone.is_empty() && !mobile {
        bad.add(at("phone"), "not a mainland mobile number (11 digits)");
    }
}

/// 2–64 of `[a-z0-9-]`, starting with a letter or digit.
pub fn valid_id(id: &str) -> bool {
    (2..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

/// An enterprise's subject id as profiles spell it.
pub fn valid_member(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= 128
        && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::from_config(&[]).expect("guard")
    }

    fn park(id: &str, parent: &str) -> Subscriber {
        Subscriber {
            id: id.into(),
            kind: RelaySubscriberKind::Park as i32,
            parent_id: parent.into(),
            display_name: format!("{id} 园区"),
            scope: r#"{"tags": ["数字经济"]}"#.into(),
            members: vec!["e-2".into(), "e-1".into(), "e-2".into()],
            ..Subscriber::default()
        }
    }

    fn registry(subscribers: &[Subscriber]) -> BTreeMap<String, Entry> {
        entries(
            subscribers
                .iter()
                .map(|s| Stored {
                    subscriber: Some(s.clone()),
                    ..Stored::default()
                })
                .collect(),
            &Industries::gbt4754_2017(),
        )
    }

    fn fields(error: FieldViolations) -> Vec<String> {
        let status: tonic::Status = error.into();
        let details =
            tonic_types::StatusExt::get_details_bad_request(&status).expect("bad request details");
        details
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_valid_subscriber_is_normalised_and_tiers_follow_parents() {
        let reg = registry(&[park("park-a", ""), park("park-a-b1", "park-a")]);
        assert_eq!(reg["park-a"].tier, 1);
        assert_eq!(reg["park-a-b1"].tier, 2);
        let s = check(
            Some(park("park-a-b1-f3", "park-a-b1")),
            &reg,
            &Industries::gbt4754_2017(),
            &guard(),
        )
        .expect("valid");
        assert_eq!(s.members, ["e-1", "e-2"]);
        let three = registry(&[park("park-a", ""), park("park-a-b1", "park-a"), s]);
        assert_eq!(three["park-a-b1-f3"].tier, 3);
        let too_deep = check(
            Some(park("park-x", "park-a-b1-f3")),
            &three,
            &Industries::gbt4754_2017(),
            &guard(),
        )
        .expect_err("tier 4");
        assert_eq!(fields(too_deep), ["subscriber.parent_id"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut s = park("Park A", "nobody");
        s.kind = 9;
        s.display_name = "\u{7}".into();
        s.scope = r#"{"tags": [{"prefix": 1}]}"#.into();
        s.members.push("e 3".into());
        s.contacts.push(SubscriberContact {
            name: "王".into(),
            email: "nope".into(),
            phone: "12345".into(),
        });
        s.webhook = Some(Webhook {
            url: "http://example.com/hook".into(),
            ..Webhook::default()
        });
        let error = check(
            Some(s),
            &registry(&[]),
            &Industries::gbt4754_2017(),
            &guard(),
        )
        .expect_err("bad");
        let fields = fields(error);
        for field in [
            "subscriber.id",
            "subscriber.kind",
            "subscriber.parent_id",
            "subscriber.display_name",
            "subscriber.contacts[0].email",
            "subscriber.contacts[0].phone",
            "subscriber.scope",
            "subscriber.members[3]",
            "subscriber.webhook.url",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
    }

    #[test]
    fn a_parent_cannot_move_under_its_children_and_kinds_follow_the_parent() {
        let reg = registry(&[park("park-a", ""), park("park-b", "park-a")]);
        let error = check(
            Some(park("park-a", "park-b")),
            &reg,
            &Industries::gbt4754_2017(),
            &guard(),
        )
        .expect_err("a loop");
        assert_eq!(fields(error), ["subscriber.parent_id"]);
        let mut association = park("assoc-c", "park-a");
        association.kind = RelaySubscriberKind::Association as i32;
        let error = check(
            Some(association),
            &reg,
            &Industries::gbt4754_2017(),
            &guard(),
        )
        .expect_err("kind");
        assert_eq!(fields(error), ["subscriber.kind"]);
    }

    #[test]
    fn the_previous_secret_signs_only_during_its_grace() {
        let (new, old) = (Secret::generate(), Secret::generate());
        let stored = Stored {
            secrets: vec![new.expose(), old.expose()],
            previous_valid_until_ms: 1_000,
            ..Stored::default()
        };
        assert_eq!(stored.signing_secrets(999).len(), 2);
        assert_eq!(stored.signing_secrets(1_000).len(), 1);
        assert_eq!(stored.signing_secrets(1_000)[0].expose(), new.expose());
    }
}
