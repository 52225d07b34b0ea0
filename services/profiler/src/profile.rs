//! Profile validation: [`validate`] reports every bad field of an incoming profile, so a
//! client fixes them all in one round. Contact addresses are never echoed (personal data).
//! Closed lists (streets, groups …) and industries are checked against the [`Catalogue`]
//! the caller passes, tags against the tag catalogue ([`Tags`], as this replica follows
//! it on the `tags` topic).
//!
//! A subscription names tags of the catalogue. A retired tag takes no new subscriptions,
//! but a subscription that already followed it keeps it: a subscription may name a
//! retired tag only when the subject's stored profile has a subscription with the same id
//! (given, or derived from an id-less subscription as [`subscription_id`] does) that
//! names that tag too. So an unchanged profile upserted again, or a subscription edited
//! without adding tags, stays valid, and an old subscription stays readable.

use zhida_audience::Rule;
use zhida_catalogue::{Catalogue, Tags, Terms};
use zhida_proto::events::v1::{
    Channel, Citizen, Enterprise, Frequency, Profile, SubjectKind, Subscription, profile::Details,
};
use zhida_runtime::FieldViolations;

const MAX_CONTACTS: usize = 10;
pub(crate) const MAX_SUBSCRIPTIONS: usize = 50;
const MAX_TAGS_PER_SUBSCRIPTION: usize = 20;
const MAX_MEMBERSHIPS: usize = 20;
/// A subscriber's own filter is small; with 50 subscriptions a profile stays well under
/// Kafka's default 1 MB message limit.
const MAX_FILTER_BYTES: usize = 4096;

/// Largest registered capital accepted, in 万元 (rules compare numbers within ±10⁹).
const MAX_CAPITAL: f64 = 1e9;
const MAX_EMPLOYEES: u32 = 10_000_000;

/// Subject ids: 1–64 of `A-Z a-z 0-9 _ . : -` (they appear in keys and dedup ledgers).
pub fn is_subject_id(id: &str) -> bool {
    zhida_runtime::ids::is_identifier(id, 64)
}

/// A mailbox the notifier can address: `local@domain.tld` with a dot-atom local part
/// (RFC 5322: letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots only between them) and a
/// domain of LDH labels, at most 254 bytes. Stricter than RFC 5322 (no quoted local parts,
/// no address literals), so every address accepted here can be sent to.
pub fn is_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    let atom = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
    };
    let label = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    address.len() <= 254
        && local.len() <= 64
        && local.split('.').all(atom)
        && domain.contains('.')
        && domain.split('.').all(label)
}

/// A mainland China mobile number, optionally with `+86`.
pub fn is_mobile(number: &str) -> bool {
    let digits = number.strip_prefix("+86").unwrap_or(number);
    digits.len() == 11
        && digits.starts_with('1')
        && matches!(digits.as_bytes()[1], b'3'..=b'9')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The characters of a unified social credit code, in value order (no I, O, S, V, Z).
const CREDIT_CODE_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// The check character (18th) of a unified social credit code whose first 17 characters
/// are `body`, per GB 32100-2015: weights 3^(i-1) mod 31, check = 31 − (Σ mod 31).
/// `None` when `body` is not 17 valid characters.
pub fn credit_code_check(body: &str) -> Option<char> {
    if body.len() != 17 {
        return None;
    }
    let mut sum = 0usize;
    let mut weight = 1usize;
    for b in body.bytes() {
        let value = CREDIT_CODE_CHARS.iter().position(|c| *c == b)?;
        sum += value * weight;
        weight = weight * 3 % 31;
    }
    Some(char::from(CREDIT_CODE_CHARS[(31 - sum % 31) % 31]))
}

/// `body` (17 characters) completed with its check character into a unified social credit
/// code; `None` when `body` is not 17 valid characters.
pub fn credit_code(body: &str) -> Option<String> {
    credit_code_check(body).map(|check| format!("{body}{check}"))
}

/// Why `code` is not a valid unified social credit code, if it is not.
fn credit_code_problem(code: &str) -> Option<String> {
    if code.len() != 18 || !code.is_ascii() {
        return Some("18 characters required (统一社会信用代码, GB 32100-2015)".into());
    }
    if let Some(c) = code
        .chars()
        .find(|c| !CREDIT_CODE_CHARS.contains(&(*c as u8)))
    {
        return Some(format!(
            "{c:?} cannot appear: digits and upper-case letters except I, O, S, V, Z"
        ));
    }
    if !code[2..8].bytes().all(|b| b.is_ascii_digit()) {
        return Some("characters 3–8 are the administrative division code: digits".into());
    }
    let expected = credit_code_check(&code[..17])?;
    (code.as_bytes()[17] as char != expected)
        .then(|| format!("check character is wrong: {expected} expected for this code"))
}

/// A BCP 47 language tag, simplified: `zh`, `en`, `zh-Hant`, `en-GB`.
fn is_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Adds a violation for each value of `values` outside `allowed` and for duplicates; at
/// most every term once.
fn closed_list(bad: &mut FieldViolations, field: &str, values: &[String], allowed: &Terms) {
    let max = allowed.len();
    if values.len() > max {
        bad.add(field, format!("at most {max}"));
    }
    for (i, value) in values.iter().enumerate() {
        if !allowed.contains(value) {
            bad.add(
                format!("{field}[{i}]"),
                format!("{value:?} is not one of {allowed}"),
            );
        } else if values[..i].contains(value) {
            bad.add(
                format!("{field}[{i}]"),
                format!("{value:?} is listed twice"),
            );
        }
    }
}

fn memberships(bad: &mut FieldViolations, field: &str, ids: &[String]) {
    if ids.len() > MAX_MEMBERSHIPS {
        bad.add(field, format!("at most {MAX_MEMBERSHIPS}"));
    }
    for (i, id) in ids.iter().enumerate() {
        if !is_subject_id(id) {
            bad.add(
                format!("{field}[{i}]"),
                "a relay subscriber id: 1–64 of A-Z a-z 0-9 _ . : -",
            );
        } else if ids[..i].contains(id) {
            bad.add(format!("{field}[{i}]"), format!("{id:?} is listed twice"));
        }
    }
}

fn validate_citizen(bad: &mut FieldViolations, c: &Citizen, this_year: u32, catalogue: &Catalogue) {
    if c.birth_year != 0 && !(1900..=this_year).contains(&c.birth_year) {
        bad.add(
            "profile.citizen.birth_year",
            format!("between 1900 and {this_year}, or 0 when unknown"),
        );
    }
    closed_list(bad, "profile.citizen.groups", &c.groups, &catalogue.groups);
    if !c.hukou.is_empty() && !catalogue.hukou.contains(&c.hukou) {
        bad.add(
            "profile.citizen.hukou",
            format!("{:?} is not one of {}", c.hukou, catalogue.hukou),
        );
    }
    if !c.language.is_empty() && !is_language(&c.language) {
        bad.add(
            "profile.citizen.language",
            "a BCP 47 language tag such as zh, en or zh-Hant",
        );
    }
}

fn validate_enterprise(
    bad: &mut FieldViolations,
    e: &Enterprise,
    today: &str,
    catalogue: &Catalogue,
) {
    if let Some(problem) = credit_code_problem(&e.credit_code) {
        bad.add("profile.enterprise.credit_code", problem);
    }
    if !catalogue.industries.contains(&e.industry) {
        bad.add(
            "profile.enterprise.industry",
            format!(
                "{:?} is not a GB/T 4754-2017 code: section letter then 2–4 digits, e.g. I6513",
                e.industry
            ),
        );
    }
    if !catalogue.sizes.contains(&e.size) {
        bad.add(
            "profile.enterprise.size",
            format!("{:?} is not one of {}", e.size, catalogue.sizes),
        );
    }
    if !e.registered_on.is_empty() {
        if !zhida_audience::is_date(&e.registered_on) {
            bad.add(
                "profile.enterprise.registered_on",
                "a date written YYYY-MM-DD",
            );
        } else if e.registered_on.as_str() > today {
            bad.add("profile.enterprise.registered_on", "in the future");
        }
    }
    if !e.registered_capital.is_finite() || !(0.0..=MAX_CAPITAL).contains(&e.registered_capital) {
        bad.add(
            "profile.enterprise.registered_capital",
            "in 万元, between 0 and 1e9",
        );
    }
    if e.employees > MAX_EMPLOYEES {
        bad.add(
            "profile.enterprise.employees",
            format!("at most {MAX_EMPLOYEES}"),
        );
    }
    closed_list(
        bad,
        "profile.enterprise.qualifications",
        &e.qualifications,
        &catalogue.qualifications,
    );
    memberships(bad, "profile.enterprise.parks", &e.parks);
    memberships(bad, "profile.enterprise.associations", &e.associations);
}

/// Checks one subscription; `field` is where it sits (`profile.subscriptions[2]`). Its
/// tags are checked against `tags` and the subject's `stored` profile (see the module
/// docs).
pub fn validate_subscription(
    bad: &mut FieldViolations,
    field: &str,
    s: &Subscription,
    catalogue: &Catalogue,
    tags: &Tags,
    stored: Option<&Profile>,
) {
    if !s.id.is_empty() && !is_subject_id(&s.id) {
        bad.add(
            format!("{field}.id"),
            "1–64 of A-Z a-z 0-9 _ . : -, or empty to have one assigned",
        );
    }
    if s.tags.is_empty() || s.tags.len() > MAX_TAGS_PER_SUBSCRIPTION {
        bad.add(
            format!("{field}.tags"),
            format!("1–{MAX_TAGS_PER_SUBSCRIPTION} tags required"),
        );
    }
    check_tags(bad, field, s, tags, stored);
    if s.filter.len() > MAX_FILTER_BYTES {
        bad.add(
            format!("{field}.filter"),
            format!("at most {MAX_FILTER_BYTES} bytes"),
        );
    } else if !s.filter.is_empty()
        && let Err(e) = Rule::parse(&s.filter, &catalogue.industries)
    {
        bad.add(format!("{field}.filter"), e.to_string());
    }
    match Frequency::try_from(s.frequency) {
        Ok(Frequency::Unspecified | Frequency::Immediate | Frequency::DailyDigest) => {}
        Err(_) => bad.add(
            format!("{field}.frequency"),
            format!("unknown value {}", s.frequency),
        ),
    }
    if s.channels.is_empty() {
        bad.add(format!("{field}.channels"), "at least one channel required");
    }
    for (j, channel) in s.channels.iter().enumerate() {
        match Channel::try_from(*channel) {
            Ok(Channel::Email | Channel::Sms | Channel::Inbox) => {}
            Ok(Channel::Unspecified) => bad.add(format!("{field}.channels[{j}]"), "required"),
            Err(_) => bad.add(
                format!("{field}.channels[{j}]"),
                format!("unknown value {channel}"),
            ),
        }
    }
}

/// Adds a violation for each tag of `s` that is not in `tags`, or is retired and not
/// already followed by the same subscription in `stored`.
fn check_tags(
    bad: &mut FieldViolations,
    field: &str,
    s: &Subscription,
    tags: &Tags,
    stored: Option<&Profile>,
) {
    // The id the subscription has or will be given, computed only when a tag is retired.
    let mut id = None;
    for (j, tag) in s.tags.iter().enumerate() {
        if !tags.contains(tag) {
            bad.add(
                format!("{field}.tags[{j}]"),
                format!("{tag:?} is not in the tag catalogue: {tags}"),
            );
        } else if !tags.is_active(tag) {
            let id = id.get_or_insert_with(|| {
                if s.id.is_empty() {
                    subscription_id(s)
                } else {
                    s.id.clone()
                }
            });
            if !already_follows(stored, id, tag) {
                bad.add(
                    format!("{field}.tags[{j}]"),
                    format!("tag {tag:?} is retired: no new subscriptions"),
                );
            }
        }
    }
}

/// Whether `stored` has the subscription `id` and it names `tag`.
fn already_follows(stored: Option<&Profile>, id: &str, tag: &str) -> bool {
    stored.is_some_and(|p| {
        p.subscriptions
            .iter()
            .any(|s| s.id == id && s.tags.iter().any(|t| t == tag))
    })
}

/// Whether any of `subscriptions` names a retired tag of `tags`: only then does their
/// check need the subject's stored profile.
pub(crate) fn names_retired_tag(subscriptions: &[Subscription], tags: &Tags) -> bool {
    subscriptions
        .iter()
        .flat_map(|s| &s.tags)
        .any(|tag| tags.contains(tag) && !tags.is_active(tag))
}

/// The tag check of [`validate`] alone, for the subscriptions of `profile` against the
/// subject's `stored` profile: what an upsert repeats under the subject's write lease,
/// where `stored` is the profile it replaces (a concurrent write may have changed it since
/// the request was checked).
pub(crate) fn check_profile_tags(
    profile: &Profile,
    tags: &Tags,
    stored: Option<&Profile>,
) -> Result<(), FieldViolations> {
    let mut bad = FieldViolations::new();
    for (i, subscription) in profile.subscriptions.iter().enumerate() {
        let field = format!("profile.subscriptions[{i}]");
        check_tags(&mut bad, &field, subscription, tags, stored);
    }
    bad.into_result()
}

/// The tag check of [`validate_subscription`] alone, as [`check_profile_tags`] for one
/// subscription at `field` (what Subscribe repeats under the lease).
pub(crate) fn check_subscription_tags(
    field: &str,
    subscription: &Subscription,
    tags: &Tags,
    stored: Option<&Profile>,
) -> Result<(), FieldViolations> {
    let mut bad = FieldViolations::new();
    check_tags(&mut bad, field, subscription, tags, stored);
    bad.into_result()
}

/// Checks every field of `profile` against `catalogue`, and its subscriptions' tags
/// against `tags` and the subject's `stored` profile (`None`: it has none; see the module
/// docs). `today` is `YYYY-MM-DD` (registration dates and birth years cannot lie after
/// it).
pub fn validate(
    profile: Option<&Profile>,
    today: &str,
    catalogue: &Catalogue,
    tags: &Tags,
    stored: Option<&Profile>,
) -> Result<(), FieldViolations> {
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
    let this_year: u32 = today.get(..4).and_then(|y| y.parse().ok()).unwrap_or(9999);
    match (SubjectKind::try_from(p.kind), &p.details) {
        (Ok(SubjectKind::Citizen), None) => {}
        (Ok(SubjectKind::Citizen), Some(Details::Citizen(c))) => {
            validate_citizen(&mut bad, c, this_year, catalogue)
        }
        (Ok(SubjectKind::Enterprise), Some(Details::Enterprise(e))) => {
            validate_enterprise(&mut bad, e, today, catalogue)
        }
        (Ok(SubjectKind::Citizen), Some(Details::Enterprise(_))) => bad.add(
            "profile.enterprise",
            "a citizen has no enterprise details; set kind ENTERPRISE",
        ),
        (Ok(SubjectKind::Enterprise), _) => bad.add(
            "profile.enterprise",
            "required for an enterprise (credit_code, industry, size at least)",
        ),
        (Ok(SubjectKind::Unspecified), _) => {
            bad.add("profile.kind", "required: CITIZEN or ENTERPRISE")
        }
        (Err(_), _) => bad.add("profile.kind", format!("unknown value {}", p.kind)),
    }
    let name = p.display_name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        bad.add(
            "profile.display_name",
            "required: 1–100 characters, no control characters",
        );
    }
    if !catalogue.streets.contains(&p.street) {
        bad.add(
            "profile.street",
            format!(
                "{:?} is not a street of the district; one of {}",
                p.street, catalogue.streets
            ),
        );
    }
    if p.contacts.len() > MAX_CONTACTS {
        bad.add("profile.contacts", format!("at most {MAX_CONTACTS}"));
    }
    for (i, contact) in p.contacts.iter().enumerate() {
        let field = format!("profile.contacts[{i}]");
        if !contact.sealed_address.is_empty() {
            bad.add(
                format!("{field}.sealed_address"),
                "must be empty: give the address in clear, the profiler seals it",
            );
        }
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
        validate_subscription(&mut bad, &field, subscription, catalogue, tags, stored);
        if !subscription.id.is_empty()
            && p.subscriptions[..i].iter().any(|s| s.id == subscription.id)
        {
            bad.add(format!("{field}.id"), "another subscription has this id");
        }
    }
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}

/// A stable id for a subscription that came without one: derived from what it says, so a
/// retried Subscribe names the same subscription instead of adding a second.
pub fn subscription_id(s: &Subscription) -> String {
    let mut text = s.tags.join(",");
    text.push('|');
    text.push_str(&s.filter);
    for channel in &s.channels {
        text.push_str(&format!("|{channel}"));
    }
    text.push_str(&format!("|{}", s.frequency));
    format!("sub-{:016x}", zhida_runtime::ids::stable_hash(text.bytes()))
}

/// Gives every subscription without an id its derived one; then ids must be unique (two
/// identical subscriptions derive the same id).
pub fn assign_subscription_ids(profile: &mut Profile) -> Result<(), FieldViolations> {
    for s in &mut profile.subscriptions {
        if s.id.is_empty() {
            s.id = subscription_id(s);
        }
    }
    let mut bad = FieldViolations::new();
    for (i, s) in profile.subscriptions.iter().enumerate() {
        if let Some(j) = profile.subscriptions[..i].iter().position(|t| t.id == s.id) {
            bad.add(
                format!("profile.subscriptions[{i}].id"),
                format!("the same id as subscriptions[{j}] ({}); identical subscriptions get the same id", s.id),
            );
        }
    }
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}

/// Why a subscription could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the profile already has {MAX_SUBSCRIPTIONS} subscriptions, the most it may have")]
pub struct TooManySubscriptions;

/// Adds `subscription` to `profile`, or replaces the one with its id (so a retried Subscribe
/// changes nothing); a new one must fit under [`MAX_SUBSCRIPTIONS`].
pub fn subscribe(
    profile: &mut Profile,
    subscription: Subscription,
) -> Result<(), TooManySubscriptions> {
    if let Some(existing) = profile
        .subscriptions
        .iter_mut()
        .find(|s| s.id == subscription.id)
    {
        *existing = subscription;
        return Ok(());
    }
    if profile.subscriptions.len() >= MAX_SUBSCRIPTIONS {
        return Err(TooManySubscriptions);
    }
    profile.subscriptions.push(subscription);
    Ok(())
}

/// Removes the subscription `id`; false if the profile has none by that id.
pub fn unsubscribe(profile: &mut Profile, id: &str) -> bool {
    let before = profile.subscriptions.len();
    profile.subscriptions.retain(|s| s.id != id);
    profile.subscriptions.len() < before
}

/// What a one-click unsubscribe changed in a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    /// Nothing was left to remove.
    Nothing,
    /// The scope's channel left its subscriptions.
    Subscriptions,
    /// The consent to the scope's channel was withdrawn.
    Consent,
}

/// Removes from `profile` exactly what a verified one-click unsubscribe `scope` names (its
/// recipient is the caller's business): its channel from each of its subscriptions, a
/// subscription left without channels going entirely (others of the profile are not
/// touched); or, when it names no subscription (the message came by a policy's audience
/// alone), the consent of every contact on its channel. Doing it again changes nothing.
pub fn unsubscribe_scope(profile: &mut Profile, scope: &zhida_unsubscribe::Scope) -> Unsubscribed {
    let channel = scope.channel as i32;
    if scope.subscriptions.is_empty() {
        let mut withdrawn = false;
        for contact in &mut profile.contacts {
            if contact.channel == channel && contact.consent {
                contact.consent = false;
                withdrawn = true;
            }
        }
        return if withdrawn {
            Unsubscribed::Consent
        } else {
            Unsubscribed::Nothing
        };
    }
    let mut changed = false;
    profile.subscriptions.retain_mut(|s| {
        if !scope.subscriptions.contains(&s.id) || !s.channels.contains(&channel) {
            return true;
        }
        changed = true;
        s.channels.retain(|c| *c != channel);
        !s.channels.is_empty()
    });
    if changed {
        Unsubscribed::Subscriptions
    } else {
        Unsubscribed::Nothing
    }
}

#[cfg(test)]
mod tests {
    use zhida_proto::events::v1::Contact;

    use super::*;

    /// A valid code for a Yangpu (310110) enterprise with organisation code `org`.
    pub fn yangpu_code(org: &str) -> String {
        credit_code(&format!("91310110{org}")).expect("valid body")
    }

    #[test]
    fn credit_code_check_digit_follows_gb_32100() {
        // Published examples of valid codes (national enterprise credit system).
        for code in ["91350100M000100Y43", "91110000802100433B"] {
            assert_eq!(credit_code_problem(code), None, "{code}");
        }
        let code = yangpu_code("MA1FL0B2X");
        assert_eq!(credit_code_problem(&code), None);
        let mut wrong = code.clone();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(17.., last);
        assert!(
            credit_code_problem(&wrong)
                .expect("rejected")
                .contains("check character")
        );
        assert!(
            credit_code_problem("91310110MA1FL0B2XI").is_some(),
            "I is not a code character"
        );
        assert!(credit_code_problem("9131011").is_some());
        assert!(
            credit_code_problem("91AB0110MA1FL0B2X0")
                .expect("rejected")
                .contains("division")
        );
    }

    fn enterprise() -> Profile {
        Profile {
            subject_id: "ent-1".into(),
            kind: SubjectKind::Enterprise as i32,
            display_name: "上海某软件有限公司".into(),
            street: "五角场街道".into(),
            details: Some(Details::Enterprise(Enterprise {
                credit_code: yangpu_code("MA1FL0B2X"),
                industry: "I6513".into(),
                size: "小".into(),
                registered_on: "2021-06-01".into(),
                registered_capital: 500.0,
                employees: 35,
                qualifications: vec!["高新技术企业".into()],
                parks: vec!["park-yangpu-science".into()],
                associations: vec![],
            })),
            ..Profile::default()
        }
    }

    fn fields(profile: &Profile) -> Vec<String> {
        fields_with(profile, &Tags::built_in(), None)
    }

    fn fields_with(profile: &Profile, tags: &Tags, stored: Option<&Profile>) -> Vec<String> {
        match validate(
            Some(profile),
            "2026-11-27",
            &Catalogue::yangpu(),
            tags,
            stored,
        ) {
            Ok(()) => Vec::new(),
            Err(bad) => bad.violations().iter().map(|(f, _)| f.clone()).collect(),
        }
    }

    /// The built-in tags with `retired` retired.
    fn retiring(retired: &str) -> Tags {
        let mut tags = Tags::built_in();
        let mut tag = tags.get(retired).expect("a built-in tag").clone();
        tag.retired = true;
        tags.apply(tag);
        tags
    }

    /// A citizen following `subscriptions`.
    fn following(subscriptions: Vec<Subscription>) -> Profile {
        Profile {
            subject_id: "c-1".into(),
            kind: SubjectKind::Citizen as i32,
            display_name: "张三".into(),
            street: "殷行街道".into(),
            subscriptions,
            ..Profile::default()
        }
    }

    fn on(tags: &[&str]) -> Subscription {
        Subscription {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            channels: vec![Channel::Inbox as i32],
            ..Subscription::default()
        }
    }

    #[test]
    fn a_retired_tag_takes_no_new_subscription() {
        let tags = retiring("housing");
        let profile = following(vec![on(&["employment"]), on(&["tax", "housing"])]);
        assert_eq!(
            fields_with(&profile, &tags, None),
            ["profile.subscriptions[1].tags[1]"]
        );
        let bad = validate(
            Some(&profile),
            "2026-11-27",
            &Catalogue::yangpu(),
            &tags,
            None,
        )
        .expect_err("retired");
        assert_eq!(
            bad.violations()[0].1,
            r#"tag "housing" is retired: no new subscriptions"#
        );
        // Stored profiles without that subscription do not help.
        let other = following(vec![on(&["employment"]), on(&["housing"])]);
        assert_eq!(
            fields_with(&profile, &tags, Some(&other)),
            ["profile.subscriptions[1].tags[1]"],
            "another subscription (another id) followed it, not this one"
        );
        // Unknown is still unknown, and listed without the retired tag.
        let unknown = following(vec![on(&["blockchain"])]);
        let bad = validate(
            Some(&unknown),
            "2026-11-27",
            &Catalogue::yangpu(),
            &tags,
            None,
        )
        .expect_err("unknown");
        assert_eq!(bad.violations()[0].0, "profile.subscriptions[0].tags[0]");
        assert!(bad.violations()[0].1.contains("not in the tag catalogue"));
        assert!(!bad.violations()[0].1.contains("housing"));
    }

    #[test]
    fn a_subscription_that_followed_a_tag_before_it_was_retired_keeps_it() {
        let tags = retiring("housing");
        let mut stored = following(vec![on(&["employment"]), on(&["tax", "housing"])]);
        assign_subscription_ids(&mut stored).expect("distinct");
        // Upserted again unchanged, with its ids or without (derived alike).
        assert_eq!(
            fields_with(&stored, &tags, Some(&stored)),
            Vec::<String>::new()
        );
        let without_ids = following(vec![on(&["employment"]), on(&["tax", "housing"])]);
        assert_eq!(
            fields_with(&without_ids, &tags, Some(&stored)),
            Vec::<String>::new()
        );
        // The same subscription (its id) with another channel keeps the tag it followed...
        let mut edited = stored.clone();
        edited.subscriptions[1].channels = vec![Channel::Email as i32];
        assert_eq!(
            fields_with(&edited, &tags, Some(&stored)),
            Vec::<String>::new()
        );
        // ...but cannot add the retired tag to a subscription that did not follow it.
        let mut added = stored.clone();
        added.subscriptions[0].tags.push("housing".into());
        assert_eq!(
            fields_with(&added, &tags, Some(&stored)),
            ["profile.subscriptions[0].tags[1]"]
        );
        // The lease's re-check answers the same as the first one.
        assert!(check_profile_tags(&stored, &tags, Some(&stored)).is_ok());
        assert_eq!(
            check_profile_tags(&added, &tags, Some(&stored))
                .expect_err("added")
                .violations()[0]
                .0,
            "profile.subscriptions[0].tags[1]"
        );
        assert!(
            check_profile_tags(&stored, &tags, None).is_err(),
            "nothing stored"
        );
        // Subscribe's check of one subscription, at its own field.
        let old = stored.subscriptions[1].clone();
        assert!(check_subscription_tags("subscription", &old, &tags, Some(&stored)).is_ok());
        let bad = check_subscription_tags("subscription", &on(&["housing"]), &tags, Some(&stored))
            .expect_err("a new subscription");
        assert_eq!(bad.violations()[0].0, "subscription.tags[0]");
    }

    #[test]
    fn only_subscriptions_naming_a_retired_tag_need_the_stored_profile() {
        let tags = retiring("housing");
        assert!(!names_retired_tag(
            &[on(&["employment"]), on(&["blockchain"])],
            &tags
        ));
        assert!(names_retired_tag(
            &[on(&["employment"]), on(&["housing"])],
            &tags
        ));
        assert!(!names_retired_tag(&[on(&["housing"])], &Tags::built_in()));
    }

    #[test]
    fn a_complete_enterprise_and_a_bare_citizen_are_valid() {
        assert_eq!(fields(&enterprise()), Vec::<String>::new());
        let citizen = Profile {
            subject_id: "c-1".into(),
            kind: SubjectKind::Citizen as i32,
            display_name: "张三".into(),
            street: "殷行街道".into(),
            ..Profile::default()
        };
        assert_eq!(fields(&citizen), Vec::<String>::new());
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut p = enterprise();
        let Some(Details::Enterprise(e)) = &mut p.details else {
            unreachable!()
        };
        e.credit_code = "913101100000000000".into();
        e.industry = "I6510".into();
        e.size = "特大".into();
        e.registered_on = "2027-01-01".into();
        e.registered_capital = f64::NAN;
        e.qualifications = vec!["高新技术企业".into(), "高新技术企业".into(), "五星".into()];
        e.parks = vec!["bad id!".into()];
        p.street = "南京路街道".into();
        p.contacts = vec![Contact {
            channel: Channel::Email as i32,
            address: "not-an-email".into(),
            consent: true,
            ..Contact::default()
        }];
        p.subscriptions = vec![Subscription {
            tags: vec!["employment".into()],
            channels: vec![Channel::Email as i32],
            filter: r#"{"department": "区科委"}"#.into(),
            frequency: 9,
            ..Subscription::default()
        }];
        assert_eq!(
            fields(&p),
            [
                "profile.enterprise.credit_code",
                "profile.enterprise.industry",
                "profile.enterprise.size",
                "profile.enterprise.registered_on",
                "profile.enterprise.registered_capital",
                "profile.enterprise.qualifications[1]",
                "profile.enterprise.qualifications[2]",
                "profile.enterprise.parks[0]",
                "profile.street",
                "profile.contacts[0].address",
                "profile.subscriptions[0].filter",
                "profile.subscriptions[0].frequency",
            ]
        );
    }

    #[test]
    fn citizen_details_are_checked_and_must_match_the_kind() {
        let mut p = enterprise();
        p.kind = SubjectKind::Citizen as i32;
        assert_eq!(fields(&p), ["profile.enterprise"]);
        p.details = Some(Details::Citizen(Citizen {
            birth_year: 2030,
            groups: vec!["高校毕业生".into(), "学生".into()],
            hukou: "上海".into(),
            language: "Chinese".into(),
        }));
        assert_eq!(
            fields(&p),
            [
                "profile.citizen.birth_year",
                "profile.citizen.groups[1]",
                "profile.citizen.hukou",
                "profile.citizen.language",
            ]
        );
        p.kind = SubjectKind::Enterprise as i32;
        assert_eq!(fields(&p), ["profile.enterprise"]);
    }

    #[test]
    fn emails_are_ones_the_notifier_can_address() {
        for ok in [
            "wang.fang@example.cn",
            "hr+jobs@zhizao.example.cn",
            "a_b-c@x.co",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "li..qiang@example.cn",
            ".li@example.cn",
            "a[b@x.cn",
            "a@x..cn",
            "a@-x.cn",
            "a@localhost",
            "王@example.cn",
            "a b@x.cn",
            "a@b@x.cn",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn identical_subscriptions_are_one_too_many() {
        let mut p = enterprise();
        let s = Subscription {
            tags: vec!["sme".into()],
            channels: vec![Channel::Email as i32],
            ..Subscription::default()
        };
        p.subscriptions = vec![s.clone(), s];
        let bad = assign_subscription_ids(&mut p).expect_err("duplicate ids");
        assert_eq!(bad.violations()[0].0, "profile.subscriptions[1].id");
    }

    #[test]
    fn derived_subscription_ids_are_stable_and_distinct() {
        let a = Subscription {
            tags: vec!["employment".into()],
            channels: vec![Channel::Email as i32],
            ..Subscription::default()
        };
        let mut b = a.clone();
        b.filter = r#"{"department": ["区科委"]}"#.into();
        assert_eq!(subscription_id(&a), subscription_id(&a.clone()));
        assert_ne!(subscription_id(&a), subscription_id(&b));
        assert!(is_subject_id(&subscription_id(&a)));
    }

    fn subscription(id: &str, tag: &str) -> Subscription {
        Subscription {
            id: id.into(),
            tags: vec![tag.into()],
            ..Subscription::default()
        }
    }

    #[test]
    fn subscribing_again_replaces_and_a_full_profile_takes_no_new_subscription() {
        let mut profile = Profile::default();
        for i in 0..MAX_SUBSCRIPTIONS {
            subscribe(&mut profile, subscription(&format!("s{i}"), "housing")).expect("fits");
        }
        assert_eq!(
            subscribe(&mut profile, subscription("one-more", "housing")),
            Err(TooManySubscriptions)
        );
        // The same id replaces, even when full.
        subscribe(&mut profile, subscription("s3", "employment")).expect("replaces");
        assert_eq!(profile.subscriptions.len(), MAX_SUBSCRIPTIONS);
        assert_eq!(profile.subscriptions[3].tags, ["employment"]);
    }

    #[test]
    fn unsubscribing_removes_only_the_named_subscription() {
        let mut profile = Profile::default();
        subscribe(&mut profile, subscription("a", "housing")).expect("fits");
        subscribe(&mut profile, subscription("b", "sme")).expect("fits");
        assert!(!unsubscribe(&mut profile, "c"));
        assert!(unsubscribe(&mut profile, "a"));
        assert!(!unsubscribe(&mut profile, "a"), "already gone");
        let ids: Vec<_> = profile
            .subscriptions
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["b"]);
    }

    #[test]
    fn a_token_scope_removes_its_channel_from_its_subscriptions_only_once() {
        use zhida_unsubscribe::Scope;
        let with = |id: &str, channels: &[Channel]| Subscription {
            id: id.into(),
            tags: vec!["housing".into()],
            channels: channels.iter().map(|c| *c as i32).collect(),
            ..Subscription::default()
        };
        let mut profile = Profile {
            subscriptions: vec![
                with("a", &[Channel::Email]),
                with("b", &[Channel::Email, Channel::Inbox]),
                with("c", &[Channel::Email]),
                with("d", &[Channel::Inbox]),
            ],
            ..Profile::default()
        };
        let scope = Scope::new("c-1", Channel::Email, ["a", "b", "d", "gone"]);
        assert_eq!(
            unsubscribe_scope(&mut profile, &scope),
            Unsubscribed::Subscriptions
        );
        let left: Vec<(&str, &[i32])> = profile
            .subscriptions
            .iter()
            .map(|s| (s.id.as_str(), s.channels.as_slice()))
            .collect();
        assert_eq!(
            left,
            [
                ("b", &[Channel::Inbox as i32][..]),
                ("c", &[Channel::Email as i32][..]),
                ("d", &[Channel::Inbox as i32][..]),
            ],
            "a gone, b keeps its inbox, c (not in the token) and d (no email) untouched"
        );
        let before = profile.clone();
        assert_eq!(
            unsubscribe_scope(&mut profile, &scope),
            Unsubscribed::Nothing
        );
        assert_eq!(profile, before);
    }

    #[test]
    fn an_audience_token_withdraws_consent_on_its_channel_only() {
        use zhida_unsubscribe::Scope;
        let contact = |channel: Channel| Contact {
            channel: channel as i32,
            address: "x".into(),
            consent: true,
            ..Contact::default()
        };
        let mut profile = Profile {
            contacts: vec![contact(Channel::Email), contact(Channel::Sms)],
            subscriptions: vec![subscription("a", "housing")],
            ..Profile::default()
        };
        let scope = Scope::new("c-1", Channel::Email, []);
        assert_eq!(
            unsubscribe_scope(&mut profile, &scope),
            Unsubscribed::Consent
        );
        let consent: Vec<bool> = profile.contacts.iter().map(|c| c.consent).collect();
        assert_eq!(consent, [false, true]);
        assert_eq!(profile.subscriptions.len(), 1, "subscriptions stay");
        assert_eq!(
            unsubscribe_scope(&mut profile, &scope),
            Unsubscribed::Nothing
        );
    }
}
