//! Every profile this replica knows, with the two indexes that answer "who receives this
//! policy": the audience [`Index`] over profile documents and the [`Subscriptions`] index.
//! Pure data structure, no I/O; the service feeds it from the `profiles` topic.
//!
//! Memory is what a replica of a million profiles costs (issue 9: at most 400 bytes a
//! profile, all included; `just bench-rebuild` measures it). A profile is kept as its
//! protobuf encoding, in a `Vec` at its audience document number ([`Index::doc`]), so the
//! subject id is held once (by the index) and no decoded struct with its dozen heap
//! strings stays resident: the encoding is a seventh of that. Only the profiles a policy
//! reaches, a `get` or an `explain` are decoded, and a recipient's fields are cloned from
//! them exactly as they were from the stored structs before.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use prost::Message as _;
use serde_json::Value;
use zhida_audience::{Index, Rule, Subscription as IndexedSubscription, Subscriptions};
use zhida_catalogue::Industries;
use zhida_proto::events::v1::{
    Channel, Citizen, Contact, Frequency, Profile, SubjectKind, Subscription, profile::Details,
};

use crate::document;

/// Channels the notifier delivers; others are never requested.
const DELIVERED: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Inbox];

/// A policy as matching sees it.
#[derive(Debug, Clone)]
pub struct Target {
    pub tags: Vec<String>,
    /// The policy's audience rule, if it has one.
    pub audience: Option<Rule>,
    /// The policy document subscription filters are matched against.
    pub document: Value,
}

/// One delivery the profiler will request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub subject_id: String,
    pub display_name: String,
    pub channel: Channel,
    /// The contact's address in clear: only in profiles written before addresses were
    /// sealed (see [`contacts`](crate::contacts)). Personal data: never log it.
    pub address: String,
    /// The contact's sealed address, as stored; empty for the inbox.
    pub sealed_address: Vec<u8>,
    /// Why, for the notice.
    pub reason: String,
    /// Now, or in the daily digest (when only digest subscriptions ask for this channel).
    pub frequency: Frequency,
    /// The profile's notice language (a citizen's `language`), or empty.
    pub language: String,
    /// The first matching subscription that asks for this channel; empty when only the
    /// policy's audience reaches the subject here.
    pub subscription_id: String,
}

/// Who a policy reaches.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Ordered by subject id, then channel; one per (subject, channel).
    pub recipients: Vec<Recipient>,
    /// Profiles the audience rule matched (before channels and consent).
    pub audience_matches: u64,
    /// Subscriptions whose tags and filter matched.
    pub subscription_matches: u64,
}

/// Why one subject matches a policy.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The audience rule's conditions the profile satisfies (empty: not in the audience).
    pub conditions: Vec<String>,
    /// Matching subscriptions, by id.
    pub subscriptions: Vec<String>,
    /// Channels it would be delivered on.
    pub channels: Vec<Channel>,
    /// Those of `channels` on which it comes in the daily digest rather than at once.
    pub digest: Vec<Channel>,
    pub reason: String,
}

impl Explanation {
    pub fn matched(&self) -> bool {
        !self.conditions.is_empty() || !self.subscriptions.is_empty()
    }
}

/// The fields of a stored profile that resolving a policy reads, decoded from its encoding
/// without the rest (street, details but the language): a policy may reach a fifth of the
/// directory, and these are the fields its recipients are built from. Tags as in
/// `zhida.events.v1.Profile`; a test holds them to it.
#[derive(Clone, PartialEq, prost::Message)]
struct Reach {
    #[prost(string, tag = "1")]
    subject_id: String,
    #[prost(string, tag = "3")]
    display_name: String,
    #[prost(message, repeated, tag = "5")]
    contacts: Vec<Contact>,
    #[prost(message, repeated, tag = "6")]
    subscriptions: Vec<Subscription>,
    #[prost(message, optional, tag = "7")]
    citizen: Option<Language>,
}

/// Of a citizen's details, the language (`zhida.events.v1.Citizen` field 4).
#[derive(Clone, PartialEq, prost::Message)]
struct Language {
    #[prost(string, tag = "4")]
    language: String,
}

impl Reach {
    /// A profile holding only these fields, for the code that reads full profiles.
    fn into_profile(self) -> Profile {
        Profile {
            subject_id: self.subject_id,
            display_name: self.display_name,
            contacts: self.contacts,
            subscriptions: self.subscriptions,
            details: self.citizen.map(|c| {
                Details::Citizen(Citizen {
                    language: c.language,
                    ..Citizen::default()
                })
            }),
            ..Profile::default()
        }
    }
}

#[derive(Debug)]
pub struct Directory {
    /// Each profile's protobuf encoding at its audience document number; `None` where no
    /// document has that number now.
    profiles: Vec<Option<Box<[u8]>>>,
    audience: Index,
    subscriptions: Subscriptions,
    /// The codes `industry` conditions in subscription filters may name.
    industries: Industries,
}

fn indexed(profile: &Profile, industries: &Industries) -> Vec<IndexedSubscription> {
    profile
        .subscriptions
        .iter()
        .filter_map(|s| {
            let filter = if s.filter.is_empty() {
                None
            } else {
                // Filters are validated before a profile is written; one that no longer
                // parses (the rule language changed) matches nothing rather than everything.
                match Rule::parse(&s.filter, industries) {
                    Ok(rule) => Some(rule),
                    Err(e) => {
                        tracing::error!(
                            subject_id = profile.subject_id,
                            subscription = s.id,
                            error = %e,
                            "stored subscription filter no longer parses; the subscription is ignored"
                        );
                        return None;
                    }
                }
            };
            Some(IndexedSubscription {
                id: s.id.clone(),
                tags: s.tags.clone(),
                filter,
            })
        })
        .collect()
}

impl Directory {
    /// An empty directory; `industries` are the codes subscription filters may name.
    pub fn new(industries: Industries) -> Self {
        Self {
            profiles: Vec::new(),
            audience: Index::default(),
            subscriptions: Subscriptions::default(),
            industries,
        }
    }

    pub fn len(&self) -> usize {
        self.audience.len()
    }

    pub fn is_empty(&self) -> bool {
        self.audience.is_empty()
    }

    /// The stored profile of `subject_id`, decoded (profiles are kept encoded).
    pub fn get(&self, subject_id: &str) -> Option<Profile> {
        self.decoded(self.audience.doc(subject_id)?)
    }

    fn decoded(&self, doc: u32) -> Option<Profile> {
        let bytes = self.profiles.get(doc as usize)?.as_deref()?;
        // Encoded by `upsert` from a `Profile`, in this process: it decodes.
        Some(Profile::decode(bytes).expect("a profile this directory encoded"))
    }

    /// What resolving a policy reads of the profile `id` (see [`Reach`]).
    fn reach(&self, id: &str) -> Option<Profile> {
        let bytes = self
            .profiles
            .get(self.audience.doc(id)? as usize)?
            .as_deref()?;
        let reach = Reach::decode(bytes).expect("a profile this directory encoded");
        Some(reach.into_profile())
    }

    /// Inserts or replaces a profile: its old attributes and subscriptions stop matching.
    pub fn upsert(&mut self, profile: Profile) {
        let id = profile.subject_id.as_str();
        let previous = self.take(id);
        let doc = self.audience.upsert(
            id,
            &document::profile(&profile),
            previous.as_ref().map(document::profile).as_ref(),
        );
        self.subscriptions
            .replace(id, indexed(&profile, &self.industries));
        let slot = doc as usize;
        if self.profiles.len() <= slot {
            self.profiles.resize(slot + 1, None);
        }
        self.profiles[slot] = Some(profile.encode_to_vec().into_boxed_slice());
    }

    /// Takes `subject_id`'s profile out of the store, leaving the indexes as they are.
    fn take(&mut self, subject_id: &str) -> Option<Profile> {
        let doc = self.audience.doc(subject_id)?;
        let bytes = self.profiles.get_mut(doc as usize)?.take()?;
        Some(Profile::decode(&*bytes).expect("a profile this directory encoded"))
    }

    /// Removes a profile from every index.
    pub fn remove(&mut self, subject_id: &str) -> Option<Profile> {
        let old = self.take(subject_id)?;
        self.audience
            .remove(subject_id, Some(&document::profile(&old)));
        self.subscriptions.remove_owner(subject_id);
        Some(old)
    }

    /// Everyone `target` reaches, once per (subject, channel), on channels where the
    /// subject can be reached: a consented contact, or the inbox every subject has.
    pub fn resolve(&self, target: &Target) -> Resolution {
        // subject -> (the audience conditions it meets, matching subscriptions)
        let mut matched: BTreeMap<&str, (Vec<Arc<str>>, Vec<&str>)> = BTreeMap::new();
        let mut audience_matches = 0;
        if let Some(rule) = &target.audience {
            // Explained from the index: no per-recipient document or rule evaluation.
            for (id, conditions) in self.audience.matching_explained(rule) {
                matched.entry(id).or_default().0 = conditions;
                audience_matches += 1;
            }
        }
        let subscriptions = self.subscriptions.matching(&target.tags, &target.document);
        for m in &subscriptions {
            matched.entry(m.owner).or_default().1.push(m.subscription);
        }
        let mut recipients = Vec::new();
        for (id, (conditions, subscription_ids)) in matched {
            let Some(profile) = self.reach(id) else {
                continue;
            };
            let conditions = conditions.iter().map(|c| c.to_string()).collect();
            let explanation = self.explanation(&profile, target, conditions, &subscription_ids);
            recipients.extend(recipients_of(&profile, &explanation));
        }
        Resolution {
            recipients,
            audience_matches,
            subscription_matches: subscriptions.len() as u64,
        }
    }

    /// Whether and why `subject_id` matches `target`; `None` if there is no such profile.
    pub fn explain(&self, subject_id: &str, target: &Target) -> Option<Explanation> {
        let profile = self.get(subject_id)?;
        let conditions = target
            .audience
            .as_ref()
            .and_then(|rule| rule.explain(&document::profile(&profile)))
            .unwrap_or_default();
        let subscription_ids = self.subscribed(subject_id, target);
        Some(self.explanation(&profile, target, conditions, &subscription_ids))
    }

    /// The subscriptions of `subject_id` whose tags and filter match `target`.
    fn subscribed(&self, subject_id: &str, target: &Target) -> Vec<&str> {
        self.subscriptions
            .of(subject_id)
            .filter(|s| s.tags.iter().any(|t| target.tags.contains(t)))
            .filter(|s| s.filter.is_none_or(|f| f.matches(&target.document)))
            .map(|s| s.id)
            .collect()
    }

    /// The enterprises whose profile names the relay subscriber `subscriber_id` in
    /// `enterprise.<field>` (`parks` or `associations`): its members by their own account.
    /// Read from the audience index, as a rule naming it would be.
    pub fn naming(&self, field: &str, subscriber_id: &str) -> Vec<String> {
        let rule = serde_json::json!({"enterprise": {field: [subscriber_id]}});
        match Rule::from_json(&rule, &self.industries) {
            Ok(rule) => self
                .audience
                .matching(&rule)
                .into_iter()
                .map(str::to_string)
                .collect(),
            // Exact strings under a known key always make a rule; an id too long for one
            // names nobody.
            Err(e) => {
                tracing::warn!(subscriber_id, error = %e, "no members by profile");
                Vec::new()
            }
        }
    }

    /// What the enterprise `subject_id` gets when a relay subscriber forwards `target` to
    /// it ("政府+"): the deliveries a match of its profile by the policy's audience would
    /// give (every channel it can be reached on, at once, with its contacts, language and
    /// the subscription that covers each channel), the reason being `reason` (the forward).
    /// `None` when there is no such profile, or it is not an enterprise's.
    pub fn forwarded(
        &self,
        subject_id: &str,
        target: &Target,
        reason: &str,
    ) -> Option<Vec<Recipient>> {
        let profile = self.get(subject_id)?;
        if profile.kind != SubjectKind::Enterprise as i32 {
            return None;
        }
        let subscription_ids = self.subscribed(subject_id, target);
        // The forward stands where the audience's conditions would: it reaches the member
        // as the policy's audience reaches a profile it matches.
        let mut explanation = self.explanation(
            &profile,
            target,
            vec![reason.to_string()],
            &subscription_ids,
        );
        explanation.reason = reason.to_string();
        Some(recipients_of(&profile, &explanation).collect())
    }

    fn explanation(
        &self,
        profile: &Profile,
        target: &Target,
        conditions: Vec<String>,
        subscription_ids: &[&str],
    ) -> Explanation {
        // Channels wanted now, and channels wanted only in the daily digest. Being in the
        // audience, or any immediate subscription, makes a channel immediate.
        let mut now = BTreeSet::new();
        let mut later = BTreeSet::new();
        if !conditions.is_empty() {
            now.extend(DELIVERED.iter().copied());
        }
        let mut tags = Vec::new();
        for s in profile
            .subscriptions
            .iter()
            .filter(|s| subscription_ids.contains(&s.id.as_str()))
        {
            let wanted = s.channels.iter().filter_map(|c| Channel::try_from(*c).ok());
            if s.frequency == Frequency::DailyDigest as i32 {
                later.extend(wanted);
            } else {
                now.extend(wanted);
            }
            tags.extend(s.tags.iter().filter(|t| target.tags.contains(t)).cloned());
        }
        let digest: Vec<Channel> = later
            .difference(&now)
            .copied()
            .filter(|c| DELIVERED.contains(c) && reachable(profile, *c).is_some())
            .collect();
        let mut channels = now;
        channels.extend(later);
        tags.sort();
        tags.dedup();
        let channels: Vec<Channel> = channels
            .into_iter()
            .filter(|c| DELIVERED.contains(c) && reachable(profile, *c).is_some())
            .collect();
        let mut reasons = Vec::new();
        if !tags.is_empty() {
            reasons.push(format!("您订阅了政策标签“{}”", tags.join("”“")));
        }
        if !conditions.is_empty() {
            reasons.push(format!("该政策面向：{}", conditions.join("；")));
        }
        Explanation {
            conditions,
            subscriptions: subscription_ids.iter().map(|s| s.to_string()).collect(),
            channels,
            digest,
            reason: reasons.join("；"),
        }
    }
}

/// The deliveries `explanation` gives `profile`: one per channel it names on which the
/// profile can be reached, with the contact there.
fn recipients_of<'a>(
    profile: &'a Profile,
    explanation: &'a Explanation,
) -> impl Iterator<Item = Recipient> + 'a {
    explanation.channels.iter().filter_map(move |channel| {
        let contact = reachable(profile, *channel)?;
        Some(Recipient {
            subject_id: profile.subject_id.clone(),
            display_name: profile.display_name.clone(),
            channel: *channel,
            address: contact.map_or_else(String::new, |c| c.address.clone()),
            sealed_address: contact.map_or_else(Vec::new, |c| c.sealed_address.clone()),
            reason: explanation.reason.clone(),
            frequency: if explanation.digest.contains(channel) {
                Frequency::DailyDigest
            } else {
                Frequency::Immediate
            },
            language: language(profile).to_string(),
            subscription_id: profile
                .subscriptions
                .iter()
                .find(|s| {
                    explanation.subscriptions.contains(&s.id)
                        && s.channels.contains(&(*channel as i32))
                })
                .map(|s| s.id.clone())
                .unwrap_or_default(),
        })
    })
}

/// The language notices to `profile` are written in, if it has one.
fn language(profile: &Profile) -> &str {
    match &profile.details {
        Some(zhida_proto::events::v1::profile::Details::Citizen(c)) => &c.language,
        _ => "",
    }
}

/// Whether `channel` reaches `profile`, and at which contact: its consented contact there,
/// or none for the inbox (every citizen and enterprise has one, their page: it is
/// addressed by subject id).
fn reachable(profile: &Profile, channel: Channel) -> Option<Option<&Contact>> {
    if channel == Channel::Inbox {
        return Some(None);
    }
    profile
        .contacts
        .iter()
        .find(|c| c.channel == channel as i32 && c.consent)
        .map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn directory() -> Directory {
        Directory::new(Industries::gbt4754_2017())
    }

    fn citizen(id: &str, street: &str, groups: &[&str], consent: bool) -> Profile {
        Profile {
            subject_id: id.into(),
            kind: SubjectKind::Citizen as i32,
            display_name: id.into(),
            street: street.into(),
            contacts: vec![Contact {
                channel: Channel::Email as i32,
                address: format!("{id}@example.cn"),
                consent,
                ..Contact::default()
            }],
            details: Some(Details::Citizen(Citizen {
                birth_year: 2000,
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..Citizen::default()
            })),
            ..Profile::default()
        }
    }

    #[test]
    fn digest_subscriptions_wait_for_the_digest_unless_something_asks_for_now() {
        let mut d = directory();
        let mut daily = subscribed(citizen("a", "殷行街道", &[], true), "d", &["housing"], "");
        daily.subscriptions[0].frequency = Frequency::DailyDigest as i32;
        d.upsert(daily.clone());
        // Also in the audience: the audience is told at once.
        let mut both = daily.clone();
        both.subject_id = "b".into();
        both.street = "五角场街道".into();
        d.upsert(both);
        let t = target(
            &["housing"],
            Some(r#"{"street": ["五角场街道"]}"#),
            "区住房保障局",
        );
        let r = d.resolve(&t);
        let frequencies: Vec<(&str, Channel, Frequency)> = r
            .recipients
            .iter()
            .map(|r| (r.subject_id.as_str(), r.channel, r.frequency))
            .collect();
        assert_eq!(
            frequencies,
            [
                ("a", Channel::Email, Frequency::DailyDigest),
                // In the audience: the page too, at once.
                ("b", Channel::Email, Frequency::Immediate),
                ("b", Channel::Inbox, Frequency::Immediate),
            ]
        );
        let why = d.explain("a", &t).expect("a exists");
        assert_eq!(why.digest, [Channel::Email]);
    }

    #[test]
    fn sms_reaches_a_consented_mobile_and_requests_carry_language_and_subscription() {
        let mut d = directory();
        let mut a = subscribed(
            citizen("a", "殷行街道", &[], true),
            "s-email",
            &["housing"],
            "",
        );
        a.subscriptions.push(Subscription {
            id: "s-sms".into(),
            tags: vec!["housing".into()],
            channels: vec![Channel::Sms as i32],
            ..Subscription::default()
        });
        a.contacts.push(Contact {
            channel: Channel::Sms as i32,
            address: "13800138000".into(),
            consent: true,
            ..Contact::default()
        });
        if let Some(Details::Citizen(c)) = &mut a.details {
            c.language = "en".into();
        }
        d.upsert(a.clone());
        // The same wishes without consent to SMS: no SMS.
        let mut b = a.clone();
        b.subject_id = "b".into();
        b.contacts[1].consent = false;
        d.upsert(b);
        let r = d.resolve(&target(&["housing"], None, "区住房保障局"));
        let got: Vec<(&str, Channel, &str, &str)> = r
            .recipients
            .iter()
            .map(|r| {
                (
                    r.subject_id.as_str(),
                    r.channel,
                    r.language.as_str(),
                    r.subscription_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", Channel::Email, "en", "s-email"),
                ("a", Channel::Sms, "en", "s-sms"),
                ("b", Channel::Email, "en", "s-email"),
            ]
        );
        assert_eq!(
            r.recipients[1].address, "13800138000",
            "the consented mobile"
        );
        // Reached by the audience alone: no subscription to unsubscribe from.
        let r = d.resolve(&target(
            &[],
            Some(r#"{"street": ["殷行街道"]}"#),
            "区住房保障局",
        ));
        assert!(r.recipients.iter().all(|r| r.subscription_id.is_empty()));
        assert!(deliveries(&r).contains(&("a", Channel::Sms)));
    }

    fn subscribed(mut p: Profile, id: &str, tags: &[&str], filter: &str) -> Profile {
        p.subscriptions.push(Subscription {
            id: id.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            channels: vec![Channel::Email as i32],
            filter: filter.into(),
            ..Subscription::default()
        });
        p
    }

    fn target(tags: &[&str], audience: Option<&str>, department: &str) -> Target {
        Target {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            audience: audience
                .map(|a| Rule::parse(a, &Industries::gbt4754_2017()).expect("valid rule")),
            document: json!({"department": department, "tags": tags}),
        }
    }

    /// (subject, channel) of every delivery.
    fn deliveries(resolution: &Resolution) -> Vec<(&str, Channel)> {
        resolution
            .recipients
            .iter()
            .map(|r| (r.subject_id.as_str(), r.channel))
            .collect()
    }

    #[test]
    fn audience_and_subscriptions_merge_into_one_list_with_reasons() {
        let mut d = directory();
        // In the audience and subscribed: one delivery, both reasons.
        d.upsert(subscribed(
            citizen("a", "五角场街道", &["高校毕业生"], true),
            "jobs",
            &["employment"],
            "",
        ));
        // In the audience only.
        d.upsert(citizen("b", "五角场街道", &["高校毕业生"], true));
        // Subscribed only, with a filter that accepts the department.
        d.upsert(subscribed(
            citizen("c", "殷行街道", &[], true),
            "hrss",
            &["employment"],
            r#"{"department": ["区人社局"]}"#,
        ));
        // Subscribed with a filter that rejects it.
        d.upsert(subscribed(
            citizen("d", "殷行街道", &[], true),
            "kewei",
            &["employment"],
            r#"{"department": ["区科委"]}"#,
        ));
        // In the audience, but no consent to email: only the page (inbox) gets it.
        d.upsert(citizen("e", "五角场街道", &["高校毕业生"], false));
        let t = target(
            &["employment"],
            Some(r#"{"street": ["五角场街道"], "citizen": {"groups": ["高校毕业生"]}}"#),
            "区人社局",
        );
        let r = d.resolve(&t);
        // Audience matches reach every subject's inbox; email needs consent; c's
        // subscription asks for email only.
        assert_eq!(
            deliveries(&r),
            [
                ("a", Channel::Email),
                ("a", Channel::Inbox),
                ("b", Channel::Email),
                ("b", Channel::Inbox),
                ("c", Channel::Email),
                ("e", Channel::Inbox),
            ]
        );
        assert!(
            r.recipients[5].address.is_empty(),
            "the inbox has no address"
        );
        assert_eq!(r.audience_matches, 3);
        assert_eq!(
            r.subscription_matches, 2,
            "d's filter rejects the department"
        );
        assert_eq!(
            r.recipients[0].reason,
            "您订阅了政策标签“employment”；该政策面向：citizen.groups = \"高校毕业生\"；street = \"五角场街道\""
        );
        assert_eq!(r.recipients[4].reason, "您订阅了政策标签“employment”");

        let why = d.explain("a", &t).expect("a exists");
        assert!(why.matched());
        assert_eq!(why.subscriptions, ["jobs"]);
        assert_eq!(why.channels, [Channel::Email, Channel::Inbox]);
        let why_not = d.explain("d", &t).expect("d exists");
        assert!(!why_not.matched());
        assert!(why_not.reason.is_empty());
        let no_consent = d.explain("e", &t).expect("e exists");
        assert!(no_consent.matched());
        assert_eq!(no_consent.channels, [Channel::Inbox]);
        assert!(d.explain("nobody", &t).is_none());
    }

    #[test]
    fn stored_profiles_come_back_exactly_as_given_after_replacement_and_reuse() {
        let mut d = directory();
        let a = subscribed(
            citizen("a", "五角场街道", &["高校毕业生"], true),
            "s",
            &["employment"],
            r#"{"department": ["区人社局"]}"#,
        );
        let mut b = citizen("b", "殷行街道", &[], false);
        b.contacts[0].sealed_address = vec![0, 1, 2, 255];
        b.contacts[0].address.clear();
        d.upsert(a.clone());
        d.upsert(b.clone());
        assert_eq!(d.get("a"), Some(a.clone()));
        assert_eq!(d.get("b"), Some(b.clone()));
        let mut a2 = a.clone();
        a2.display_name = "改名".into();
        a2.subscriptions.clear();
        d.upsert(a2.clone());
        assert_eq!(
            d.get("a"),
            Some(a2.clone()),
            "the replacement, not the first"
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d.remove("a"), Some(a2));
        // c takes the number a had: nothing of a shows through.
        let c = citizen("c", "新江湾城街道", &[], true);
        d.upsert(c.clone());
        assert_eq!(d.get("a"), None);
        assert_eq!(d.get("c"), Some(c));
        assert_eq!(d.get("b"), Some(b));
        assert_eq!(d.remove("a"), None);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn what_resolution_decodes_is_the_profile_without_street_and_details_but_language() {
        let mut full = subscribed(
            citizen("a", "五角场街道", &["高校毕业生"], true),
            "s",
            &["employment"],
            r#"{"department": ["区人社局"]}"#,
        );
        full.contacts[0].sealed_address = vec![9, 8, 7];
        if let Some(Details::Citizen(c)) = &mut full.details {
            c.language = "en".into();
            c.hukou = "本市".into();
        }
        let mut d = directory();
        d.upsert(full.clone());
        let expected = Profile {
            street: String::new(),
            kind: 0,
            details: Some(Details::Citizen(Citizen {
                language: "en".into(),
                ..Citizen::default()
            })),
            ..full.clone()
        };
        assert_eq!(d.reach("a"), Some(expected));
        let enterprise = Profile {
            subject_id: "e".into(),
            details: Some(Details::Enterprise(zhida_proto::events::v1::Enterprise {
                industry: "I6513".into(),
                ..Default::default()
            })),
            ..full
        };
        d.upsert(enterprise.clone());
        let reach = d.reach("e").expect("stored");
        assert_eq!(reach.details, None, "an enterprise has no notice language");
        assert_eq!(reach.contacts, enterprise.contacts);
        assert_eq!(reach.subscriptions, enterprise.subscriptions);
        assert_eq!(d.reach("nobody"), None);
    }

    #[test]
    fn replacing_or_removing_a_profile_updates_every_index() {
        let mut d = directory();
        d.upsert(subscribed(
            citizen("a", "五角场街道", &["高校毕业生"], true),
            "s",
            &["employment"],
            "",
        ));
        let by_rule = target(&[], Some(r#"{"street": ["五角场街道"]}"#), "x");
        let by_tag = target(&["employment"], None, "x");
        assert_eq!(
            deliveries(&d.resolve(&by_rule)),
            [("a", Channel::Email), ("a", Channel::Inbox)]
        );
        d.upsert(citizen("a", "殷行街道", &[], true));
        assert!(d.resolve(&by_rule).recipients.is_empty(), "moved away");
        assert!(d.resolve(&by_tag).recipients.is_empty(), "unsubscribed");
        d.upsert(subscribed(
            citizen("a", "五角场街道", &[], true),
            "s",
            &["employment"],
            "",
        ));
        assert!(d.remove("a").is_some());
        assert!(d.resolve(&by_rule).recipients.is_empty());
        assert!(d.resolve(&by_tag).recipients.is_empty());
        assert!(d.is_empty());
    }
}
