//! Profile validation: [`validate`] reports every bad field of an incoming profile.

use zhida_proto::events::v1::{Channel, Profile, SubjectKind};
use zhida_runtime::FieldViolations;

use crate::streets;

const MAX_CONTACTS: usize = 10;
const MAX_SUBSCRIPTIONS: usize = 50;
const MAX_TAGS_PER_SUBSCRIPTION: usize = 20;

/// Subject ids: 1–64 of `A-Z a-z 0-9 _ . : -` (they appear in keys and dedup ledgers).
pub fn is_subject_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// A plausible mailbox: `local@domain.tld`, no spaces or control characters, ≤ 254 bytes.
pub fn is_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    address.len() <= 254
        && (1..=64).contains(&local.len())
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && address.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"' | '\\')
        })
}

/// A mainland China mobile number, optionally with `+86`.
pub fn is_mobile(number: &str) -> bool {
    let digits = number.strip_prefix("+86").unwrap_or(number);
    digits.len() == 11
        && digits.starts_with('1')
        && matches!(digits.as_bytes()[1], b'3'..=b'9')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

pub fn validate(profile: Option<&Profile>) -> Result<(), FieldViolations> {
    let mut bad = FieldViolations::new();
    let Some(p) = profile else {
        bad.add("profile", "required");
        return Err(bad);
    };
    if !is_subject_id(&p.subject_id) {
        bad.add(
            "profile.subject_id",
            "required: 1–64 of A-Z a-z 0-9 _ . : -",
        );
    }
    match SubjectKind::try_from(p.kind) {
        Ok(SubjectKind::Citizen | SubjectKind::Enterprise) => {}
        Ok(SubjectKind::Unspecified) => bad.add("profile.kind", "required: CITIZEN or ENTERPRISE"),
        Err(_) => bad.add("profile.kind", format!("unknown value {}", p.kind)),
    }
    let name = p.display_name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        bad.add(
            "profile.display_name",
            "required: 1–100 characters, no control characters",
        );
    }
    if !streets::is_street(&p.street) {
        bad.add(
            "profile.street",
            format!(
                "{:?} is not a street of the district; one of {}",
                p.street,
                streets::YANGPU_STREETS.join(" ")
            ),
        );
    }
    if p.contacts.len() > MAX_CONTACTS {
        bad.add("profile.contacts", format!("at most {MAX_CONTACTS}"));
    }
    for (i, contact) in p.contacts.iter().enumerate() {
        let field = format!("profile.contacts[{i}]");
        // Never echo the address: it is personal data and error messages get logged.
        match Channel::try_from(contact.channel) {
            Ok(Channel::Email) if !is_email(&contact.address) => {
                bad.add(format!("{field}.address"), "not a valid email address")
            }
            Ok(Channel::Sms) if !is_mobile(&contact.address) => bad.add(
                format!("{field}.address"),
                "not a valid mobile number (11 digits, optionally +86)",
            ),
            Ok(Channel::Email | Channel::Sms) => {}
            Ok(Channel::Inbox) => bad.add(format!("{field}.channel"), "the inbox needs no contact"),
            Ok(Channel::Unspecified) => {
                bad.add(format!("{field}.channel"), "required: EMAIL or SMS")
            }
            Err(_) => bad.add(
                format!("{field}.channel"),
                format!("unknown value {}", contact.channel),
            ),
        }
    }
    if p.subscriptions.len() > MAX_SUBSCRIPTIONS {
        bad.add(
            "profile.subscriptions",
            format!("at most {MAX_SUBSCRIPTIONS}"),
        );
    }
    for (i, subscription) in p.subscriptions.iter().enumerate() {
        let field = format!("profile.subscriptions[{i}]");
        if subscription.tags.is_empty() || subscription.tags.len() > MAX_TAGS_PER_SUBSCRIPTION {
            bad.add(
                format!("{field}.tags"),
                format!("1–{MAX_TAGS_PER_SUBSCRIPTION} tags required"),
            );
        }
        for (j, tag) in subscription.tags.iter().enumerate() {
            if !zhida_publisher::is_tag(tag) {
                bad.add(
                    format!("{field}.tags[{j}]"),
                    format!("{tag:?} is not a tag: 1–64 of a-z, 0-9, -"),
                );
            }
        }
        if subscription.channels.is_empty() {
            bad.add(format!("{field}.channels"), "at least one channel required");
        }
        for (j, channel) in subscription.channels.iter().enumerate() {
            match Channel::try_from(*channel) {
                Ok(Channel::Email) => {}
                Ok(Channel::Sms | Channel::Inbox) => bad.add(
                    format!("{field}.channels[{j}]"),
                    "only EMAIL is delivered in this version",
                ),
                Ok(Channel::Unspecified) => bad.add(format!("{field}.channels[{j}]"), "required"),
                Err(_) => bad.add(
                    format!("{field}.channels[{j}]"),
                    format!("unknown value {channel}"),
                ),
            }
        }
    }
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}
