//! The subscription index: which profiles subscribe to which tags. Pure data structure,
//! no I/O; the service feeds it from the `profiles` topic.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zhida_proto::events::v1::{Channel, Profile};

/// One delivery the profiler will request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub subject_id: String,
    pub display_name: String,
    pub channel: Channel,
    /// Personal data: never log it.
    pub address: String,
    /// Why, for the notice: "您订阅了标签 employment".
    pub reason: String,
}

/// Profiles by id, and subject ids by subscribed tag.
#[derive(Debug, Default)]
pub struct Index {
    profiles: HashMap<String, Profile>,
    by_tag: HashMap<String, BTreeSet<String>>,
}

impl Index {
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    pub fn get(&self, subject_id: &str) -> Option<&Profile> {
        self.profiles.get(subject_id)
    }

    /// Inserts or replaces a profile (a replaced profile's old tags stop matching).
    pub fn upsert(&mut self, profile: Profile) {
        self.remove(&profile.subject_id);
        for tag in profile.subscriptions.iter().flat_map(|s| &s.tags) {
            self.by_tag
                .entry(tag.clone())
                .or_default()
                .insert(profile.subject_id.clone());
        }
        self.profiles.insert(profile.subject_id.clone(), profile);
    }

    pub fn remove(&mut self, subject_id: &str) -> Option<Profile> {
        let old = self.profiles.remove(subject_id)?;
        for tag in old.subscriptions.iter().flat_map(|s| &s.tags) {
            if let Some(ids) = self.by_tag.get_mut(tag) {
                ids.remove(subject_id);
                if ids.is_empty() {
                    self.by_tag.remove(tag);
                }
            }
        }
        Some(old)
    }

    /// Everyone subscribed to any of `tags`, once per (subject, channel), on channels where
    /// the subject has a contact and consented. Ordered by subject id.
    pub fn recipients(&self, tags: &[String]) -> Vec<Recipient> {
        let mut subjects = BTreeSet::new();
        for tag in tags {
            if let Some(ids) = self.by_tag.get(tag) {
                subjects.extend(ids.iter());
            }
        }
        let mut out = Vec::new();
        for id in subjects {
            let Some(profile) = self.profiles.get(id) else {
                continue;
            };
            // channel -> first matching tag, for the reason.
            let mut channels: BTreeMap<i32, &str> = BTreeMap::new();
            for subscription in &profile.subscriptions {
                let Some(tag) = subscription.tags.iter().find(|t| tags.contains(t)) else {
                    continue;
                };
                for channel in &subscription.channels {
                    channels.entry(*channel).or_insert(tag);
                }
            }
            for (channel, tag) in channels {
                let Some(contact) = profile
                    .contacts
                    .iter()
                    .find(|c| c.channel == channel && c.consent)
                else {
                    continue;
                };
                out.push(Recipient {
                    subject_id: profile.subject_id.clone(),
                    display_name: profile.display_name.clone(),
                    channel: Channel::try_from(channel).unwrap_or(Channel::Unspecified),
                    address: contact.address.clone(),
                    reason: format!("您订阅了政策标签“{tag}”"),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use zhida_proto::events::v1::{Contact, Subscription};

    use super::*;

    fn profile(id: &str, tags: &[&str], consent: bool) -> Profile {
        Profile {
            subject_id: id.into(),
            display_name: id.into(),
            contacts: vec![Contact {
                channel: Channel::Email as i32,
                address: format!("{id}@example.cn"),
                consent,
            }],
            subscriptions: vec![Subscription {
                tags: tags.iter().map(|t| t.to_string()).collect(),
                channels: vec![Channel::Email as i32],
            }],
            ..Profile::default()
        }
    }

    fn ids(recipients: &[Recipient]) -> Vec<&str> {
        recipients.iter().map(|r| r.subject_id.as_str()).collect()
    }

    #[test]
    fn matches_any_tag_once_per_subject_and_honours_consent() {
        let mut index = Index::default();
        index.upsert(profile("a", &["employment", "graduates"], true));
        index.upsert(profile("b", &["tech"], true));
        index.upsert(profile("c", &["employment"], false));
        let tags = vec!["employment".to_string(), "graduates".to_string()];
        let recipients = index.recipients(&tags);
        assert_eq!(
            ids(&recipients),
            ["a"],
            "b is not subscribed, c did not consent"
        );
        assert_eq!(recipients[0].reason, "您订阅了政策标签“employment”");
    }

    #[test]
    fn replacing_or_removing_a_profile_updates_what_matches() {
        let mut index = Index::default();
        index.upsert(profile("a", &["employment"], true));
        index.upsert(profile("a", &["tech"], true));
        assert!(
            index.recipients(&["employment".into()]).is_empty(),
            "old tags stop matching"
        );
        assert_eq!(ids(&index.recipients(&["tech".into()])), ["a"]);
        index.remove("a");
        assert!(index.recipients(&["tech".into()]).is_empty());
        assert!(index.is_empty());
    }
}
