//! policy → subscriptions: every subscription sharing a tag with the policy whose own filter
//! (a [`Rule`] over the policy document) matches it. Candidates come from per-tag bitmaps;
//! only they have their filters evaluated.

use std::collections::HashMap;

use roaring::RoaringBitmap;
use serde_json::Value;

use crate::Rule;

/// One subscription as the index sees it.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Unique within its owner.
    pub id: String,
    /// The policy must carry at least one of them.
    pub tags: Vec<String>,
    /// The subscriber's own condition on the policy; `None` accepts every policy of the tags.
    pub filter: Option<Rule>,
}

#[derive(Debug)]
struct Entry {
    owner: Box<str>,
    subscription: Subscription,
}

/// Subscriptions by tag, grouped by owner (a profile's subject id).
#[derive(Debug, Default)]
pub struct Subscriptions {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_owner: HashMap<Box<str>, Vec<u32>>,
    by_tag: HashMap<Box<str>, RoaringBitmap>,
}

/// A subscription that matched a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Matched<'a> {
    pub owner: &'a str,
    pub subscription: &'a str,
}

impl Subscriptions {
    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces all subscriptions of `owner` (an empty list removes them).
    pub fn replace(&mut self, owner: &str, subscriptions: impl IntoIterator<Item = Subscription>) {
        self.remove_owner(owner);
        let mut slots = Vec::new();
        for subscription in subscriptions {
            let slot = self.free.pop().unwrap_or_else(|| {
                self.entries.push(None);
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 subscriptions")
            });
            for tag in &subscription.tags {
                match self.by_tag.get_mut(tag.as_str()) {
                    Some(set) => {
                        set.insert(slot);
                    }
                    None => {
                        self.by_tag
                            .insert(tag.as_str().into(), RoaringBitmap::from_iter([slot]));
                    }
                }
            }
            self.entries[slot as usize] = Some(Entry {
                owner: owner.into(),
                subscription,
            });
            slots.push(slot);
        }
        if !slots.is_empty() {
            self.by_owner.insert(owner.into(), slots);
        }
    }

    /// Removes every subscription of `owner`.
    pub fn remove_owner(&mut self, owner: &str) {
        let Some(slots) = self.by_owner.remove(owner) else {
            return;
        };
        for slot in slots {
            let Some(entry) = self.entries[slot as usize].take() else {
                continue;
            };
            for tag in &entry.subscription.tags {
                if let Some(set) = self.by_tag.get_mut(tag.as_str()) {
                    set.remove(slot);
                    if set.is_empty() {
                        self.by_tag.remove(tag.as_str());
                    }
                }
            }
            self.free.push(slot);
        }
    }

    /// The subscriptions of `owner`.
    pub fn of(&self, owner: &str) -> impl Iterator<Item = &Subscription> {
        self.by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|slot| self.entries[*slot as usize].as_ref())
            .map(|entry| &entry.subscription)
    }

    /// Subscriptions sharing a tag with the policy whose filter matches `policy` (the
    /// policy document), ordered by owner, then subscription id.
    pub fn matching<'a>(&'a self, tags: &[String], policy: &Value) -> Vec<Matched<'a>> {
        let mut candidates = RoaringBitmap::new();
        for tag in tags {
            if let Some(set) = self.by_tag.get(tag.as_str()) {
                candidates |= set;
            }
        }
        let mut out: Vec<Matched<'a>> = candidates
            .iter()
            .filter_map(|slot| self.entries[slot as usize].as_ref())
            .filter(|entry| {
                entry
                    .subscription
                    .filter
                    .as_ref()
                    .is_none_or(|filter| filter.matches(policy))
            })
            .map(|entry| Matched {
                owner: &entry.owner,
                subscription: &entry.subscription.id,
            })
            .collect();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
    use serde_json::json;

    use super::*;

    fn subscription(id: &str, tags: &[&str], filter: Option<&str>) -> Subscription {
        Subscription {
            id: id.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            filter: filter.map(|f| Rule::parse(f).expect("valid filter")),
        }
    }

    fn tags(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn a_subscription_matches_by_any_tag_and_its_own_filter() {
        let mut index = Subscriptions::default();
        index.replace(
            "alice",
            [
                subscription("jobs", &["employment", "graduates"], None),
                subscription(
                    "tech-from-kewei",
                    &["tech-innovation"],
                    Some(r#"{"department": ["区科委"]}"#),
                ),
            ],
        );
        index.replace(
            "bob",
            [subscription("all-tech", &["tech-innovation"], None)],
        );
        let policy = json!({"department": "区科委", "tags": ["tech-innovation"]});
        let matched = index.matching(&tags(&["tech-innovation"]), &policy);
        assert_eq!(
            matched,
            [
                Matched {
                    owner: "alice",
                    subscription: "tech-from-kewei"
                },
                Matched {
                    owner: "bob",
                    subscription: "all-tech"
                }
            ]
        );
        let other = json!({"department": "区人社局", "tags": ["tech-innovation"]});
        let matched = index.matching(&tags(&["tech-innovation"]), &other);
        assert_eq!(
            matched.len(),
            1,
            "alice's filter rejects another department"
        );
        assert!(index.matching(&tags(&["housing"]), &policy).is_empty());
    }

    #[test]
    fn replacing_and_removing_an_owner_updates_what_matches() {
        let mut index = Subscriptions::default();
        index.replace("alice", [subscription("a", &["employment"], None)]);
        index.replace("alice", [subscription("b", &["housing"], None)]);
        assert!(
            index
                .matching(&tags(&["employment"]), &json!({}))
                .is_empty()
        );
        assert_eq!(index.matching(&tags(&["housing"]), &json!({})).len(), 1);
        assert_eq!(
            index.of("alice").map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        index.remove_owner("alice");
        assert!(index.is_empty());
        assert!(index.matching(&tags(&["housing"]), &json!({})).is_empty());
        assert_eq!(index.of("alice").count(), 0);
    }

    #[test]
    fn matches_what_a_scan_of_every_subscription_finds() {
        const TAGS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
        const DEPARTMENTS: [&str; 3] = ["区科委", "区人社局", "区商务委"];
        let mut rng = StdRng::seed_from_u64(42);
        let mut index = Subscriptions::default();
        let mut all: HashMap<String, Vec<Subscription>> = HashMap::new();
        for round in 0..3 {
            for owner in 0..200 {
                let owner = format!("o{owner}");
                let subscriptions: Vec<Subscription> = (0..rng.random_range(0..3))
                    .map(|i| {
                        let n = rng.random_range(1..3);
                        let picked: Vec<&str> =
                            TAGS.choose_multiple(&mut rng, n).copied().collect();
                        let filter = rng.random_bool(0.4).then(|| {
                            format!(
                                r#"{{"department": ["{}"]}}"#,
                                DEPARTMENTS.choose(&mut rng).unwrap_or(&"x")
                            )
                        });
                        subscription(&format!("s{round}-{i}"), &picked, filter.as_deref())
                    })
                    .collect();
                index.replace(&owner, subscriptions.clone());
                all.insert(owner, subscriptions);
            }
        }
        for _ in 0..50 {
            let n = rng.random_range(1..3);
            let policy_tags = tags(
                &TAGS
                    .choose_multiple(&mut rng, n)
                    .copied()
                    .collect::<Vec<_>>(),
            );
            let policy = json!({"department": DEPARTMENTS.choose(&mut rng), "tags": policy_tags});
            let mut expected: Vec<(String, String)> = all
                .iter()
                .flat_map(|(owner, subs)| subs.iter().map(move |s| (owner, s)))
                .filter(|(_, s)| s.tags.iter().any(|t| policy_tags.contains(t)))
                .filter(|(_, s)| s.filter.as_ref().is_none_or(|f| f.matches(&policy)))
                .map(|(owner, s)| (owner.clone(), s.id.clone()))
                .collect();
            expected.sort();
            let actual: Vec<(String, String)> = index
                .matching(&policy_tags, &policy)
                .iter()
                .map(|m| (m.owner.to_string(), m.subscription.to_string()))
                .collect();
            assert_eq!(actual, expected, "{policy}");
        }
    }
}
